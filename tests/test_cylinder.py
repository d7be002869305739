"""The cylinder-flow generator (pymsde.systems.cylinder) on coarse, short configurations."""
import math

import numpy as np
import pytest
import scipy.fft
import torch

from pymsde.systems import cylinder as cyl
from pymsde.util.errors import ConfigError, StabilityError

#: a coarse channel: 40 cells per unit (D = 5 cells), 3 units long, 4 time units
COARSE = dict(cells_per_unit=40, refine=1, length=3.0, out_length=3.0, t_end=4.0)


@pytest.fixture(scope="module")
def coarse_run():
    return cyl.run_cylinder(show_progress=False, **COARSE)


def test_cosine_transform_and_neumann_poisson_are_exact():
    x = torch.randn(10, 6, dtype=torch.float64)
    for dim in (0, 1):
        X = cyl.dct2(x, dim)
        assert np.abs(X.numpy() - scipy.fft.dct(x.numpy(), type=2, axis=dim)).max() < 1e-13
        assert (cyl.idct2(X, dim) - x).abs().max() < 1e-14
    h = 0.1
    d = torch.randn(12, 8, dtype=torch.float64)
    d -= d.mean()
    psi = cyl.NeumannPoisson(12, 8, h).solve(d)
    p = torch.nn.functional.pad(psi[None, None], (1, 1, 1, 1), mode="replicate")[0, 0]
    lap = (p[2:, 1:-1] + p[:-2, 1:-1] + p[1:-1, 2:] + p[1:-1, :-2] - 4 * psi) / h ** 2
    assert (lap - d).abs().max() < 1e-12


def test_volume_fractions_give_the_disc_area():
    h = 1.0 / 80
    chi_u, chi_v = cyl.volume_fractions(320, 80, h, (0.5, 0.5), 0.0625)
    area = math.pi * 0.0625 ** 2
    for chi in (chi_u, chi_v):
        assert float(chi.sum()) * h * h == pytest.approx(area, rel=2e-3)
        assert float(chi.min()) == 0.0 and float(chi.max()) == 1.0


def test_projection_is_divergence_free_and_matches_the_inflow_flux():
    nx, ny, h = 24, 10, 0.1
    g = torch.Generator().manual_seed(1)
    u = 1 + 0.3 * torch.randn(nx + 1, ny, generator=g, dtype=torch.float64)
    v = 0.3 * torch.randn(nx, ny + 1, generator=g, dtype=torch.float64)
    u[0], v[:, 0], v[:, -1] = 1.0, 0.0, 0.0
    cyl.project(u, v, cyl.NeumannPoisson(nx, ny, h), h)
    div = (u[1:] - u[:-1] + v[:, 1:] - v[:, :-1]) / h
    assert div.abs().max() < 1e-12
    assert (u.sum(dim=1) - ny).abs().max() < 1e-12           # every column carries the inflow
    assert (u[0] == 1.0).all() and (v[:, 0] == 0).all() and (v[:, -1] == 0).all()


def test_coarse_run_keeps_inflow_and_divergence_and_sheds(coarse_run):
    r = coarse_run
    assert r["u"].shape == (401, 2, 120, 40) and r["t"][-1] == pytest.approx(4.0)
    assert np.abs(r["u"][:, 0, 0].mean(axis=1) - 1.0).max() < 1e-12     # first column: mean u = 1
    assert r["max_div"].max() < 1e-11                                     # internal MAC field
    h = 1.0 / 40
    div = cyl.centred_divergence(r["u"][-1], h)
    scale = np.sqrt(sum(np.mean(gk ** 2) for gk in np.gradient(r["u"][-1], h, axis=(1, 2))))
    xc = (np.arange(1, 119) + 0.5) * h
    fluid = np.hypot(xc[:, None] - 0.5, xc[None, :38] - 0.5) > 0.0625 + 3 * h
    # the output is cell-centred, so only the MAC field is exactly solenoidal; central
    # differences of the output give 0.077 |grad u| (rms) with the body, 0.028 in the fluid
    assert np.sqrt(np.mean(div ** 2)) < 0.12 * scale
    assert np.sqrt(np.mean(div[fluid] ** 2)) < 0.05 * scale
    late = r["probe_v"][300:]                                             # t in [3, 4]
    assert late.std() > 0.1
    assert np.count_nonzero(np.diff(np.sign(late))) >= 2
    assert 1.2 < r["cd"][200:].mean() < 2.5
    assert np.abs(r["u"][-1, :, 20:30, 16:24]).max() < 2.5                # nothing runaway at the body


def test_low_reynolds_wake_stays_steady_and_symmetric():
    r = cyl.run_cylinder(show_progress=False, **{**COARSE, "nu": 0.125 / 20.0})   # Re = 20: no shedding
    early, late = np.abs(r["probe_v"][:100]).max(), np.abs(r["probe_v"][300:]).max()
    assert late < 2e-3 and late < early / 5                                # the perturbation dies out
    assert np.abs(r["cl"][300:]).max() < 5e-3
    u = r["u"][-1, 0]
    assert np.abs(u - u[:, ::-1]).max() < 1e-2                            # mirror symmetric in y (4e-3)


def test_strouhal_of_a_sine():
    t = np.arange(0.0, 8.0, 0.01)
    assert cyl.strouhal(np.sin(2 * np.pi * 1.53 * t + 0.4), 0.01) == pytest.approx(1.53 * 0.125, rel=2e-3)


def test_bad_setups_raise_config_error():
    with pytest.raises(ConfigError):
        cyl.run_cylinder(show_progress=False, **{**COARSE, "centre": (0.02, 0.5)})
    with pytest.raises(ConfigError):
        cyl.run_cylinder(show_progress=False, **{**COARSE, "nu": -1.0})
    with pytest.raises(ConfigError):
        cyl.run_cylinder(show_progress=False, **{**COARSE, "out_length": 5.0})
    with pytest.raises(ConfigError):
        cyl.run_cylinder(show_progress=False, **{**COARSE, "height": 1.01})
    with pytest.raises(TypeError):
        cyl.run_cylinder(show_progress=False, reynolds=100)


def test_blow_up_raises_stability_error(monkeypatch):
    def garbage(u, v, *args):
        return u * np.nan, v, (0.0, 0.0)

    monkeypatch.setattr(cyl, "rk3_step", garbage)
    with pytest.raises(StabilityError, match="blew up|non-finite"):
        cyl.run_cylinder(show_progress=False, **{**COARSE, "t_end": 0.05})
