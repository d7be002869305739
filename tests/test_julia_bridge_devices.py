"""The GPU side of the Julia bridge (issue 18, items 4-6), checked without Julia and without a
GPU: a recording stand-in replaces PyMSDEKernels (the functions `load()` would look up), and
stand-ins for `torch.cuda.device` / `torch.cuda.synchronize` record what the bridge does around
each call. `FakeCudaTensor` carries the two attributes the bridge reads of a CUDA tensor.

- item 4: a tensor on cuda:k is wrapped with device k current for torch and for CUDA.jl
  (`select_device`), the call runs on that device, tensors on two devices are refused;
- item 5: every torch-side conversion of an argument is queued before the one handover
  (`torch.cuda.synchronize`, the Julia call, `synchronize_device`);
- item 6: inputs torch refuses (a periodic stencil wider than its axis, a finite-volume axis of
  one cell) are refused before anything reaches Julia, with torch's message where it has one;
- an argument refused part-way through an argument list leaves nothing pending.
"""
import contextlib
import types

import pytest
import torch

from pymsde.backends import julia as jlmod
from pymsde.forecast.rollout import sde_rollout as torch_sde_rollout
from pymsde.model.drift import DriftParams, multiscale_drift as torch_drift
from pymsde.model.mlp import init_mlp
from pymsde.numerics import pde, stencils
from pymsde.systems.coarse import burgers_fv_run as torch_fv_run
from pymsde.systems.solvers import burgers_fd_run as torch_fd_run
from pymsde.util.errors import DataError


class Recorder:
    """PyMSDEKernels stand-in: `wrap_tensor` hands the tensor back, every call is logged."""

    def __init__(self, log, torch_device):
        self.log, self.torch_device = log, torch_device

    def wrap_tensor(self, t, *dims):
        self.log.append(("wrap", self.torch_device[0]))     # torch's current device meanwhile
        return t

    def select_device(self, ordinal):
        self.log.append(("select_device", ordinal))
        return ordinal

    def synchronize_device(self, a):
        self.log.append(("synchronize_device",))

    def kernel(self, name):
        return lambda *args: self.log.append(("call", name))


@pytest.fixture
def bridge(monkeypatch):
    log, current = [], [0]          # current: torch's current CUDA device
    rec = Recorder(log, current)
    fns = {n: getattr(rec, n) if hasattr(rec, n) else rec.kernel(n) for n in jlmod._JULIA_FUNCTIONS}
    monkeypatch.setattr(jlmod, "_STATE", {"module": rec, "error": None, "fns": fns, "cuda": True, "info": {}})

    @contextlib.contextmanager
    def device(d):
        old, current[0] = current[0], torch.device(d).index
        try:
            yield
        finally:
            current[0] = old

    monkeypatch.setattr(torch.cuda, "device", device)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: log.append(("torch.synchronize", str(d))))
    yield log
    jlmod._PENDING.items = []


class FakeCudaTensor:
    """What `_jl` and `_call` read of a tensor on cuda:<index> (or on the CPU)."""

    def __init__(self, index):
        self.device = torch.device("cpu") if index is None else torch.device("cuda", index)
        self.is_cuda = index is not None


def _fake_export(monkeypatch):
    monkeypatch.setattr(jlmod, "as_exportable",
                        lambda t, name, cuda_ok: types.SimpleNamespace(tensor=t, flat=t, julia_size=(4,)))


def _params(coarse, boundary, radius=2, C=1, dm=2):
    g = torch.Generator().manual_seed(0)
    n_cells = 1
    for c in coarse:
        n_cells *= c
    mw, mb = init_mlp([C * (2 * radius + 1) ** len(coarse) + dm, 8, C], generator=g, dtype=torch.float64)
    qw, qb = init_mlp([dm + C * n_cells + 2, 8, dm], generator=g, dtype=torch.float64)
    return DriftParams(mw, mb, qw, qb, "tanh", radius, tuple(boundary), tuple(coarse), C, dm)


# ---- item 4: the Julia device follows the tensor's device

def test_a_cuda1_tensor_is_wrapped_and_run_with_device_1_current_on_both_sides(bridge, monkeypatch):
    _fake_export(monkeypatch)
    jlmod._call("pad!", jlmod._jl(FakeCudaTensor(1), "out"), jlmod._jl(FakeCudaTensor(1), "x"),
                "1", "periodic", "edge")
    assert bridge == [("select_device", 1), ("wrap", 1), ("select_device", 1), ("wrap", 1),
                      ("select_device", 1), ("torch.synchronize", "cuda:1"), ("call", "pad!"),
                      ("synchronize_device",)]
    assert jlmod._PENDING.items == []


@pytest.mark.parametrize("first,second", [(0, 1), (0, None), (None, 1)])
def test_tensors_on_two_devices_are_refused_before_julia_runs(bridge, monkeypatch, first, second):
    _fake_export(monkeypatch)
    a, b = FakeCudaTensor(first), FakeCudaTensor(second)
    jlmod._jl(a, "out")
    with pytest.raises(DataError, match=f"x: tensor on {b.device}, the other tensors of this call are on {a.device}"):
        jlmod._jl(b, "x")
    assert not any(e[0] == "call" for e in bridge)


def test_the_device_is_synchronised_even_when_the_julia_call_fails(bridge, monkeypatch):
    _fake_export(monkeypatch)

    def boom(*args):
        raise RuntimeError("JuliaError stand-in")

    monkeypatch.setitem(jlmod._STATE["fns"], "pad!", boom)
    with pytest.raises(RuntimeError, match="stand-in"):
        jlmod._call("pad!", jlmod._jl(FakeCudaTensor(0), "out"))
    assert bridge[-1] == ("synchronize_device",) and jlmod._PENDING.items == []


def test_an_argument_refused_part_way_leaves_nothing_pending(bridge):
    x = torch.zeros(2, 1, 8, dtype=torch.float64).transpose(0, 2)      # non-contiguous
    with pytest.raises(DataError, match="x: non-contiguous"):
        jlmod.gather_stencil(x, 1, ("periodic",))                      # `out` was exported already
    assert jlmod._PENDING.items == []


# ---- item 5: every torch-side conversion is queued before the handover

@pytest.fixture
def conversions(bridge, monkeypatch):
    """Log every `.to` / `.contiguous()`; `looks_cuda()` then makes every tensor report
    `is_cuda` (on the CPU), so that the bridge takes its GPU path."""
    for meth in ("to", "contiguous"):
        orig = getattr(torch.Tensor, meth)

        def logged(self, *a, _orig=orig, _m=meth, **k):
            bridge.append(("torch", _m))
            return _orig(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, meth, logged)

    def looks_cuda():
        monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))

    return bridge, looks_cuda


def _handover_after_conversions(log, kernel):
    """torch.synchronize, the Julia call, synchronize_device in a row, after every conversion
    of an argument (whatever torch does with the results comes after synchronize_device)."""
    sync = log.index(("torch.synchronize", "cpu"))
    assert log[sync + 1:sync + 3] == [("call", kernel), ("synchronize_device",)]
    assert ("torch", "to") in log[:sync]
    assert not any(e[0] == "torch" for e in log[sync:sync + 3])


def test_drift_conversions_precede_the_handover(conversions):
    log, looks_cuda = conversions
    p = _params((6,), ("periodic",))
    z = torch.randn(3, p.latent_dim, dtype=torch.float64)
    t = torch.linspace(0.0, 1.0, 3, dtype=torch.float32)            # per-sample times, converted
    looks_cuda()
    jlmod.multiscale_drift(p, t, z)
    _handover_after_conversions(log, "multiscale_drift!")


def test_rollout_conversions_precede_the_handover(conversions, monkeypatch):
    log, looks_cuda = conversions
    monkeypatch.setattr(torch, "isfinite", lambda t: torch.ones((), dtype=torch.bool))   # zs stays unfilled
    p = DriftParams(*init_mlp([5 + 1, 8, 1], dtype=torch.float64), [], [], "tanh", 2, ("periodic",), (6,), 1, 0,
                    n_f=1)
    z0 = torch.randn(3, p.latent_dim, dtype=torch.float64)
    f = torch.randn(1, 1, dtype=torch.float32).expand(3, -1)      # broadcast, other dtype: converted
    looks_cuda()
    jlmod.sde_rollout(p, torch.ones(p.latent_dim), z0, 0.0, 0.1, 4, f=f, seed=1)
    _handover_after_conversions(log, "rollout!")


def test_spectral_run_conversions_precede_the_handover(conversions):
    log, looks_cuda = conversions
    n = 8
    v0 = torch.zeros(1, 1, n // 2 + 1, dtype=torch.complex128)
    coeffs = [torch.ones(n // 2 + 1, dtype=torch.complex128) for _ in range(6)]
    k = torch.arange(n // 2 + 1, dtype=torch.float32)             # converted to float64
    mask = torch.ones(n // 2 + 1, dtype=torch.bool)               # converted to int64
    looks_cuda()
    jlmod.spectral_run(v0, coeffs, k, mask, n, "2/3", 1, 2)
    _handover_after_conversions(log, "spectral_run!")


# ---- item 6: inputs torch refuses are refused before anything reaches Julia

MSG = "periodic padding of 3 points on an axis of 2 points"
_U = torch.randn(1, 1, 2, dtype=torch.float64)
_P3, _P2 = _params((2,), ("periodic",), radius=3), _params((2,), ("periodic",), radius=2)
_Z = torch.randn(2, _P3.latent_dim, dtype=torch.float64)
_SIGMA = torch.ones(_P3.latent_dim, dtype=torch.float64)

# name: (julia wrapper, the torch function, arguments with a 3-point periodic stencil on 2 points,
# the same with a 2-point one: one full wrap-around, which torch allows)
STENCILS = {
    "derivative": (jlmod.derivative, stencils.derivative, (_U, 0, 1, 0.1, "periodic", 6),
                   (_U, 0, 1, 0.1, "periodic", 4)),
    "burgers_rhs": (jlmod.burgers_rhs, pde.burgers_rhs, (_U, (0.1,), 0.01, ("periodic",), 6),
                    (_U, (0.1,), 0.01, ("periodic",), 4)),
    "burgers_fd_run": (jlmod.burgers_fd_run, torch_fd_run, (_U, 1e-3, 1, 2, (0.1,), 0.01, ("periodic",), 6),
                       (_U, 1e-3, 1, 2, (0.1,), 0.01, ("periodic",), 4)),
    "multiscale_drift": (jlmod.multiscale_drift, torch_drift, (_P3, 0.0, _Z), (_P2, 0.0, _Z)),
    "sde_rollout": (jlmod.sde_rollout, torch_sde_rollout, (_P3, _SIGMA, _Z, 0.0, 0.1, 2),
                    (_P2, _SIGMA, _Z, 0.0, 0.1, 2)),
}


@pytest.mark.parametrize("name", sorted(STENCILS))
def test_a_periodic_stencil_wider_than_its_axis_is_refused_as_torch_refuses_it(bridge, monkeypatch, name):
    julia_fn, torch_fn, too_wide, fits = STENCILS[name]
    with pytest.raises(ValueError, match=MSG):
        torch_fn(*too_wide)
    with pytest.raises(ValueError, match=MSG):
        julia_fn(*too_wide)
    assert bridge == []                                   # not even a tensor was wrapped
    assert jlmod._PENDING.items == []
    torch_fn(*fits)
    monkeypatch.setattr(torch, "isfinite", lambda t: torch.ones((), dtype=torch.bool))   # outputs stay unfilled
    julia_fn(*fits)
    assert [e for e in bridge if e[0] == "call"] == [("call", {"sde_rollout": "rollout!"}.get(name, name + "!"))]


@pytest.mark.parametrize("kernel", ["burgers_fv_rhs", "burgers_fv_run"])
def test_finite_volume_axes_need_two_cells(bridge, kernel):
    c = torch.zeros(1, 1, 1, 4, dtype=torch.float64)
    faces = [None, None]
    bc, dx = ("periodic", "periodic"), (0.1, 0.1)
    with pytest.raises(RuntimeError):                     # torch's narrow(dim, n - 2, 2) fails too
        torch_fv_run(c, 0.01, 1, 2, dx, 0.01, bc, faces)
    args = (c, dx, 0.01, bc, faces) if kernel == "burgers_fv_rhs" else (c, 0.01, 1, 2, dx, 0.01, bc, faces)
    with pytest.raises(ValueError, match="axis 0 has 1 cells; the MUSCL stencil needs at least 2"):
        getattr(jlmod, kernel)(*args)
    assert bridge == []
