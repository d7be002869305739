"""The backend switch: torch explicit, auto falls back with the reason logged once, explicit
julia fails loudly with the install hint, and nothing imports juliacall behind the user's back."""
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from pymsde.backends import protocol as bk
from pymsde.backends import julia as jl
from pymsde.util.errors import BackendUnavailableError, ConfigError

REAL_FIND_JULIA = jl.find_julia  # before the fixture replaces it


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    """No Julia reachable, and no cached resolution or Julia state between tests."""
    for var in ("PYTHON_JULIACALL_EXE", "PYTHON_JULIAPKG_EXE", "PYTHON_JULIACALL_BINDIR",
                "PYMSDE_JULIA_ALLOW_INSTALL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(jl, "find_julia", lambda: (None, "no Julia executable found (test)"))
    monkeypatch.setattr(jl, "_STATE", {"module": None, "error": None, "fns": {}, "cuda": False, "info": {}})


def test_torch_explicit_is_the_callers_own_loop():
    be = bk.resolve_backend("torch")
    assert be.name == "torch" and be.requested == "torch" and not be.accelerated
    with pytest.raises(ConfigError, match="'sde_rollout' is the caller's own torch loop"):
        be.sde_rollout
    d = be.describe()
    assert d["name"] == "torch" and d["torch_version"] == torch.__version__
    assert bk.resolve_backend("torch") is be        # one object


def test_unknown_backend_and_kernel_names():
    with pytest.raises(ConfigError, match=r"backend 'jax'; expected one of \('torch', 'julia', 'auto'\)"):
        bk.resolve_backend("jax")
    with pytest.raises(ConfigError, match="unknown kernel 'fft'"):
        bk.resolve_backend("torch").kernel("fft")


def test_auto_falls_back_to_torch_and_logs_the_reason(caplog):
    caplog.set_level(logging.INFO, logger="pymsde.backends.protocol")
    be = bk.resolve_backend("auto")
    assert be.name == "torch" and be.requested == "auto"
    assert "no Julia executable found" in be.reason
    msgs = [r.getMessage() for r in caplog.records if r.name == "pymsde.backends.protocol"]
    assert len(msgs) == 1
    assert msgs[0].startswith("backend auto -> torch: Julia not used") and "no Julia executable" in msgs[0]
    assert be.describe()["reason"] == be.reason


def test_explicit_julia_raises_with_the_install_hint():
    with pytest.raises(BackendUnavailableError) as err:
        bk.resolve_backend("julia")
    msg = str(err.value)
    assert "no Julia executable found" in msg
    assert "pip install pymsde[julia]" in msg and "PYTHON_JULIACALL_EXE" in msg


def test_julia_that_fails_to_start_is_reported_and_remembered(monkeypatch, caplog):
    # an executable is found, but starting Julia fails: explicit julia raises with the cause,
    # auto falls back naming it, and no second start is attempted
    monkeypatch.setattr(jl, "find_julia", lambda: ("/opt/julia/bin/julia", "julia on PATH"))
    calls = []

    def broken(offline):
        calls.append(offline)
        raise RuntimeError("libjulia not found")

    monkeypatch.setattr(jl, "_import_juliacall", broken)
    caplog.set_level(logging.INFO, logger="pymsde.backends.protocol")
    be = bk.resolve_backend("auto")
    assert be.name == "torch" and "libjulia not found" in be.reason and "/opt/julia/bin/julia" in be.reason
    assert calls == [True]                       # auto probes with juliapkg offline
    with pytest.raises(BackendUnavailableError, match="RuntimeError: libjulia not found.*pip install pymsde"):
        bk.resolve_backend("julia")
    assert calls == [True]                       # the failure is remembered, not retried


FAKE_JULIACALL = """
import os, sys

# juliapkg's offline switch as the environment and juliapkg (imported by find_julia) see it
# while juliacall is imported (the moment juliapkg resolves)
SEEN = (os.environ.get("PYTHON_JULIAPKG_OFFLINE"), sys.modules["juliapkg.state"].STATE.get("offline"))


class _Main:
    PyMSDEKernels = object()

    def seval(self, code):
        answers = {"PyMSDEKernels.cuda_functional()": False, "Threads.nthreads()": 1}
        if code in answers:
            return answers[code]
        return (lambda *args: None) if code.startswith("PyMSDEKernels.") else "1.10.0"


Main = _Main()
"""


@pytest.fixture
def fake_juliacall(monkeypatch, tmp_path):
    """A stand-in `juliacall` module on sys.path (importing it starts nothing)."""
    juliapkg_state = pytest.importorskip("juliapkg.state")
    (tmp_path / "juliacall.py").write_text(FAKE_JULIACALL)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "juliacall", raising=False)
    monkeypatch.setattr(jl, "find_julia", lambda: ("/opt/julia/bin/julia", "julia on PATH"))
    monkeypatch.setitem(juliapkg_state.STATE, "offline", False)
    monkeypatch.delenv("PYTHON_JULIAPKG_OFFLINE", raising=False)
    yield juliapkg_state.STATE
    sys.modules.pop("juliacall", None)


def test_the_offline_probe_leaves_the_process_environment_as_it_was(fake_juliacall, monkeypatch):
    def start(offline):
        # a fresh process as far as the loader is concerned: no Julia state, juliacall not imported
        monkeypatch.setattr(jl, "_STATE", {"module": None, "error": None, "fns": {}, "cuda": False, "info": {}})
        sys.modules.pop("juliacall", None)
        before = dict(os.environ)
        jl.load(offline=offline)
        assert dict(os.environ) == before                 # nothing left behind
        assert jl.info()["julia_version"] == "1.10.0" and jl.cuda_functional() is False
        return sys.modules["juliacall"].SEEN

    # auto: offline while juliacall is imported, for the variable and for juliapkg's own state
    assert start(offline=True) == ("yes", True)
    assert fake_juliacall["offline"] is False
    # an explicit start is online; a value the user set is theirs
    assert start(offline=False) == (None, False)
    monkeypatch.setenv("PYTHON_JULIAPKG_OFFLINE", "no")
    assert start(offline=True) == ("no", False)


def test_find_julia_checks_the_documented_places(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYTHON_JULIACALL_EXE", str(tmp_path / "nope"))
    path, how = REAL_FIND_JULIA()
    if path is None:  # juliapkg's recorded executable may exist on a developer's machine
        assert "PYTHON_JULIACALL_EXE=" in how and "(not an executable)" in how and "julia on PATH" in how
    fake = tmp_path / "julia"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PYTHON_JULIACALL_EXE", str(fake))
    assert REAL_FIND_JULIA() == (str(fake), f"PYTHON_JULIACALL_EXE={fake}")


def test_importing_pymsde_and_resolving_auto_never_imports_juliacall():
    # a fresh interpreter without Julia: juliacall must stay unimported (it could download Julia)
    code = ("import sys, pymsde, pymsde.backends\n"
            "from pymsde.backends.protocol import resolve_backend\n"
            "assert 'juliacall' not in sys.modules\n"
            "import pymsde.backends.julia as j\n"
            "j.find_julia = lambda: (None, 'none (test)')\n"
            "be = resolve_backend('auto')\n"
            "assert be.name == 'torch', be\n"
            "assert 'juliacall' not in sys.modules and 'juliapkg.deps' not in sys.modules\n"
            "print('ok')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON_JULIA")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_torch_rollout_matches_sde_integrate_with_given_increments():
    from pymsde.forecast.rollout import sde_rollout
    from pymsde.model.drift import DriftParams, multiscale_drift
    from pymsde.model.mlp import init_mlp
    from pymsde.sde.integrator import integrate

    g = torch.Generator().manual_seed(1)
    C, n, r, dm = 1, 8, 2, 3
    mw, mb = init_mlp([C * (2 * r + 1) + dm, 16, C], generator=g, dtype=torch.float64)
    qw, qb = init_mlp([dm + C * n + 2, 16, dm], generator=g, dtype=torch.float64)
    p = DriftParams(mw, mb, qw, qb, "tanh", r, ("periodic",), (n,), C, dm)
    z0 = torch.randn(4, p.latent_dim, generator=g, dtype=torch.float64)
    dW = 0.1 * torch.randn(20, 4, p.latent_dim, generator=g, dtype=torch.float64)
    sigma = torch.full((p.latent_dim,), 0.3, dtype=torch.float64)
    ts, zs = sde_rollout(p, sigma, z0, 0.0, 0.01, 20, save_every=5, dW=dW)
    assert zs.shape == (5, 4, p.latent_dim) and torch.allclose(ts, torch.tensor([0, .05, .1, .15, .2], dtype=torch.float64))
    # one EM step by hand
    z1 = z0 + multiscale_drift(p, torch.tensor(0.0, dtype=torch.float64), z0) * 0.01 + sigma * dW[0]
    _, zz = sde_rollout(p, sigma, z0, 0.0, 0.01, 1, dW=dW[:1])
    assert torch.allclose(zz[1], z1, rtol=1e-14, atol=1e-15)
    _, ref = integrate(lambda t, z: multiscale_drift(p, t, z), sigma, z0, 0.0, 0.01, 20, save_every=5, dW=dW)
    assert torch.equal(zs, ref)


def test_torch_run_kernels_reproduce_the_simulator_loops():
    # the whole-run kernels the Julia port mirrors are the simulators' own loops
    import numpy as np

    from pymsde.numerics import pde
    from pymsde.numerics import spectral
    from pymsde.systems.solvers import burgers_fd_run, integrate_burgers, integrate_kdv, spectral_run

    g = np.random.default_rng(0)
    u0 = 0.3 * g.standard_normal((2, 1, 10, 12))
    t_out = np.linspace(0.0, 0.02, 3)
    dx, bc = (0.1, 0.1), ("dirichlet", "periodic")
    ref, info = integrate_burgers(u0, t_out, dx, 5e-3, bc, scheme="fd", show_progress=False)
    got = burgers_fd_run(torch.as_tensor(u0), info["dt_internal"], info["substeps"], 3, dx, 5e-3, bc)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-13, atol=1e-15)

    n = 64
    x = np.arange(n) * 10.0 / n
    u0 = (2 * np.cos(np.pi * x) * np.exp(-(x - 7.5) ** 2)).reshape(1, 1, n)
    t_out = np.linspace(0.0, 0.05, 3)
    ref, info = integrate_kdv(u0, t_out, 10.0, 0.02, show_progress=False)
    k = spectral.wavenumbers(n, 10.0)
    mask = spectral.dealias_mask(n, "2/3")
    coeffs = spectral.etd_coefficients(pde.kdv_linear_symbol(k, 0.02), info["dt_internal"])
    v0 = torch.fft.rfft(torch.as_tensor(u0))         # the solver keeps every mode of u0
    got = spectral_run(v0, coeffs, k, mask, n, "2/3", info["substeps"], 3)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-13)


def test_torch_fv_run_reproduces_one_ssprk3_loop():
    # the whole-run kernel the Julia port mirrors (burgers_fv_run!) is the coarse solver's loop
    from pymsde.numerics import pde
    from pymsde.systems.coarse import burgers_fv_run

    g = torch.Generator().manual_seed(2)
    c0 = 0.3 + 0.1 * torch.randn(2, 1, 6, 5, generator=g, dtype=torch.float64)
    lo, hi = torch.full((2, 1, 1, 5), 0.25, dtype=torch.float64), torch.full((2, 1, 1, 5), 0.35, dtype=torch.float64)
    faces = [(lo, hi), None]
    bc, dx, nu, dt = ("dirichlet", "periodic"), (0.2, 0.25), 0.01, 0.05
    out = burgers_fv_run(c0, dt, 3, 3, dx, nu, bc, faces)
    assert out.shape == (2, 3, 1, 6, 5) and torch.equal(out[:, 0], c0)
    c = c0
    for _ in range(6):
        c = pde.ssprk3_step(lambda v: pde.burgers_fv_rhs(v, dx, nu, bc, faces), c, dt)
    assert torch.equal(out[:, 2], c)
    # TVD: no new extrema beyond the initial data and the face values
    lo_b = min(float(c0.min()), 0.25)
    hi_b = max(float(c0.max()), 0.35)
    assert lo_b - 1e-12 <= float(out.min()) and float(out.max()) <= hi_b + 1e-12


class _RunOnlyBackend:
    """A non-torch backend for the routing tests: the whole-run kernels computed by torch."""

    name = "julia"
    accelerated = True

    def __init__(self):
        self.calls = []

    def burgers_fv_run(self, *args):
        self.calls.append(("burgers_fv_run", args))
        from pymsde.systems.coarse import burgers_fv_run

        return burgers_fv_run(*args)

    def spectral_run(self, *args):
        self.calls.append(("spectral_run", args))
        from pymsde.systems.solvers import spectral_run

        return spectral_run(*args)


def _coarse_inputs(case):
    import numpy as np

    g = np.random.default_rng(3)
    if case == "burgers1d":
        x = np.arange(200) / 200
        return (0.2 + 0.1 * np.sin(2 * np.pi * x) + 0.01 * g.standard_normal(200)).reshape(1, 1, 200), \
            np.linspace(0.0, 0.2, 5), (10,)
    if case == "burgers2d":
        return 0.2 + 0.05 * g.standard_normal((2, 1, 32, 32)), np.linspace(0.0, 0.05, 3), (4, 4)
    x = np.arange(200) * 10 / 200
    return (0.5 * np.exp(-(x - 5) ** 2)).reshape(1, 1, 200), np.linspace(0.0, 0.2, 3), (10,)


@pytest.mark.parametrize("case,kernel", [("burgers1d", "burgers_fv_run"), ("burgers2d", "burgers_fv_run"),
                                         ("kdv1d", "spectral_run")])
def test_solve_coarse_routes_the_time_loop_through_the_backend(monkeypatch, case, kernel):
    import numpy as np

    from pymsde.systems import coarse

    u0, t, fac = _coarse_inputs(case)
    ref_fine, ref_coarse = coarse.solve_coarse(case, u0, t, factors=fac, return_coarse=True)
    # the default is torch, and naming it explicitly changes nothing
    fine, crs = coarse.solve_coarse(case, u0, t, factors=fac, return_coarse=True, backend="torch")
    assert np.array_equal(fine, ref_fine) and np.array_equal(crs, ref_coarse)
    fake = _RunOnlyBackend()
    asked = []
    monkeypatch.setattr(coarse, "resolve_backend", lambda name: asked.append(name) or fake)
    fine, crs = coarse.solve_coarse(case, u0, t, factors=fac, return_coarse=True, backend="julia")
    assert asked == ["julia"] and [c[0] for c in fake.calls] == [kernel]
    # same kernels, same order of operations: identical numbers, and a run that really moved
    assert np.array_equal(crs, ref_coarse) and np.array_equal(fine, ref_fine)
    assert np.abs(crs[:, -1] - crs[:, 0]).max() > 1e-4
    args = fake.calls[0][1]
    if kernel == "burgers_fv_run":                            # (c0, dt, n_sub, n_out, dx, nu, boundary, faces)
        assert args[3] == len(t)
        faces = args[7]
        assert len(faces) == len(fac)
        assert all((f is None) == (b == "periodic") for f, b in zip(faces, coarse.CASES[case].boundary))
    else:                                                     # (v0_hat, coeffs, k, mask, n, dealias, n_sub, n_out)
        assert args[7] == len(t) and args[4] == u0.shape[-1] // fac[0]
        assert args[5] == "3/2"                               # the coarse KdV solver's dealiasing


def test_solve_coarse_with_unavailable_julia_fails_before_any_work():
    import numpy as np

    from pymsde.systems import coarse

    u0, t, fac = _coarse_inputs("burgers1d")
    with pytest.raises(BackendUnavailableError, match="pip install pymsde"):
        coarse.solve_coarse("burgers1d", u0, t, factors=fac, backend="julia")
    be_auto = np.array_equal(coarse.solve_coarse("burgers1d", u0, t, factors=fac, backend="auto"),
                             coarse.solve_coarse("burgers1d", u0, t, factors=fac))
    assert be_auto                                            # auto without Julia = torch


def test_julia_mirrors_every_protocol_kernel_with_the_torch_signature():
    """Every kernel of the protocol exists in the Julia bridge with the torch implementation's
    positional arguments, in the same order (the torch functions add keyword-only extras)."""
    import inspect

    from pymsde.backends import julia_flows as jf
    from pymsde.forecast.rollout import sde_rollout
    from pymsde.systems.coarse import burgers_fv_run
    from pymsde.systems.cylinder import cylinder_run
    from pymsde.systems.solvers import burgers_fd_run, spectral_run
    from pymsde.systems.swe import swe_run

    torch_impl = {"sde_rollout": sde_rollout, "burgers_fd_run": burgers_fd_run, "spectral_run": spectral_run,
                  "burgers_fv_run": burgers_fv_run, "swe_run": swe_run, "cylinder_run": cylinder_run}
    assert set(torch_impl) == set(bk.KERNELS)

    def positional(fn):
        return [p.name for p in inspect.signature(fn).parameters.values()
                if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]

    julia_backend = bk.Backend("julia", "julia", "signature check (Julia is not started)")
    for name, fn in torch_impl.items():
        bridge = jf if name in bk.FLOW_KERNELS else jl
        assert fn.__name__ == name
        assert positional(getattr(bridge, name)) == positional(fn), name
        assert julia_backend.kernel(name) is getattr(bridge, name)       # what a caller gets
    assert positional(swe_run)[:2] == ["q0", "t_out"] and positional(cylinder_run)[-1] == "probe"


class _TorchKernelsAsJulia(bk.Backend):
    """A resolved non-torch Backend whose kernels are the torch implementations, recording each
    call: the flow solvers' routing through the switch, checked without Julia (resolve_backend
    passes a Backend through, so callers take it wherever they take a name)."""

    def kernel(self, name):
        from pymsde.systems.cylinder import cylinder_run
        from pymsde.systems.swe import swe_run

        fn = {"swe_run": swe_run, "cylinder_run": cylinder_run}[name]

        def call(*args):
            self.info["calls"].append(name)
            return fn(*args)

        return call


SMALL_CYL = dict(n_grid=(32, 8), t_end=0.5, n_steps=21, refine=1, length=4.0, split=(15, 3, 3), progress=False)


def test_the_flow_cases_route_their_time_loops_through_the_backend():
    import numpy as np

    from pymsde.systems import simulate, solve_coarse

    be = _TorchKernelsAsJulia("julia", "julia", "torch kernels standing in for Julia", {"calls": []})
    kw = dict(n_traj=3, n_grid=16, n_steps=5, seed=2, chunk=2, progress=False)
    ref, got = simulate("swe2d", **kw), simulate("swe2d", backend=be, **kw)
    # same kernels, same operations: identical numbers; one kernel call per trajectory (batch 1)
    assert np.array_equal(got.u, ref.u) and be.info["calls"] == ["swe_run"] * 3
    assert (ref.attrs["backend"], got.attrs["backend"]) == ("torch", "julia")
    assert {**got.attrs, "backend": "torch"} == ref.attrs
    ref_c, got_c = simulate("cylinder2d", **SMALL_CYL), simulate("cylinder2d", backend=be, **SMALL_CYL)
    # the cylinder's set-up (volume fractions, first projection) runs in torch's thread pool around
    # the kernel call, so with more than one thread the two paths may differ in the last bits
    np.testing.assert_allclose(got_c.u, ref_c.u, rtol=0, atol=1e-12)
    assert be.info["calls"][-1] == "cylinder_run"
    assert got_c.attrs["steps"] == ref_c.attrs["steps"] and got_c.attrs["backend"] == "julia"
    # the coarse DNS of both: the set-up and the map back in torch, the loop a kernel call
    del be.info["calls"][:]
    tr = simulate("swe2d", n_traj=2, n_grid=32, n_steps=6, noise=0.0, progress=False)
    a = solve_coarse("swe2d", tr.u[:, 0], tr.t[0], return_coarse=True, backend=be)
    b = solve_coarse("swe2d", tr.u[:, 0], tr.t[0], return_coarse=True)
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and be.info["calls"] == ["swe_run"]
    tc = simulate("cylinder2d", **{**SMALL_CYL, "n_grid": (64, 16)})
    a = solve_coarse("cylinder2d", tc.u[:, -1], tc.t[0][:4], return_coarse=True, backend=be)
    b = solve_coarse("cylinder2d", tc.u[:, -1], tc.t[0][:4], return_coarse=True)
    for x, y in zip(a, b):                               # same thread-pool caveat as above
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-12)
    assert be.info["calls"][-1] == "cylinder_run"


def test_the_flow_cases_with_unavailable_julia_fail_before_any_work(monkeypatch, tmp_path):
    from pymsde.systems import cylinder, simulate, simulate_to_file, solve_coarse, swe

    def never(*args, **kwargs):
        raise AssertionError("a solver ran")

    monkeypatch.setattr(swe, "swe_run", never)
    monkeypatch.setattr(cylinder, "cylinder_run", never)
    monkeypatch.setattr(cylinder, "volume_fractions", never)
    calls = [lambda: simulate("swe2d", n_traj=1, n_grid=16, n_steps=3, backend="julia", progress=False),
             lambda: simulate_to_file("swe2d", tmp_path / "s.h5", n_traj=1, n_grid=16, n_steps=3, backend="julia",
                                      progress=False),
             lambda: simulate("cylinder2d", backend="julia", **SMALL_CYL),
             lambda: solve_coarse("swe2d", np.zeros((1, 1, 16, 16)), [0.0, 0.1], backend="julia"),
             lambda: solve_coarse("cylinder2d", np.ones((1, 2, 32, 8)), [0.0, 0.1], backend="julia"),
             lambda: swe.integrate_swe(swe.dam_break_state([0.5], 8), [0.0, 0.1], (0.5, 0.5), backend="julia"),
             lambda: cylinder.run_cylinder(backend="julia", show_progress=False)]
    for call in calls:
        with pytest.raises(BackendUnavailableError, match="pip install pymsde"):
            call()
    with pytest.raises(ConfigError, match="backend 'jax'"):
        simulate("swe2d", n_traj=1, n_grid=16, n_steps=3, backend="jax", progress=False)
    assert not (tmp_path / "s.h5").exists()
