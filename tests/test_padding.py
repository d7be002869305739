"""Boundary kinds of the padding (numerics.padding): outflow and slip next to periodic and Dirichlet."""
import math

import numpy as np
import pytest
import torch

from pymsde.data.grid import BOUNDARY_TYPES
from pymsde.numerics.padding import PAD_RULES, gather_stencil, pad
from pymsde.util.errors import ConfigError


def test_every_grid_kind_has_a_padding_rule():
    assert set(BOUNDARY_TYPES) == set(PAD_RULES)


def test_slip_padding_continues_a_wall_bounded_velocity_exactly():
    """Cell-centred samples of a flow with free-slip walls at y = 0 and y = 1: the wall-normal
    velocity v = sin(pi y) g(x) is odd about each wall, the tangential u = cos(pi y) g(x) even, so
    the slip padding reproduces the field's own values at the ghost cells, to round-off; the
    outflow padding of x (a field constant in x there) likewise."""
    nx, ny, w = 6, 8, 3
    h = 1.0 / ny
    y = (np.arange(-w, ny + w) + 0.5) * h                  # centres of cells and ghost cells
    g = np.ones(nx + 2 * w)
    exact = np.stack([np.outer(g, np.cos(math.pi * y)), np.outer(g, np.sin(math.pi * y))])[None]
    field = torch.from_numpy(np.ascontiguousarray(exact[:, :, w:-w, w:-w]))
    padded = pad(field, w, ("outflow", "slip")).numpy()
    assert padded.shape == exact.shape
    np.testing.assert_allclose(padded, exact, rtol=0, atol=1e-15)
    # the edge rule would get the sign of v outside the wall wrong
    wrong = pad(field, w, ("outflow", "dirichlet")).numpy()
    assert np.abs(wrong - exact).max() > 0.5


def test_slip_matches_numpy_symmetric_padding_with_the_normal_channel_negated():
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = np.pad(x.numpy(), ((0, 0), (0, 0), (2, 2), (2, 2)), mode="symmetric")
    ref[:, 0, :2] *= -1
    ref[:, 0, -2:] *= -1                                   # u is normal to the walls of axis 0
    ref[:, 1, :, :2] *= -1
    ref[:, 1, :, -2:] *= -1                                # v to those of axis 1
    np.testing.assert_array_equal(pad(x, 2, ("slip", "slip")).numpy(), ref)
    # a scalar on two axes is mirrored evenly; the one channel of a 1-D field is its velocity
    s = x[:, :1]
    np.testing.assert_array_equal(pad(s, 2, ("slip", "slip")).numpy(),
                                  np.pad(s.numpy(), ((0, 0), (0, 0), (2, 2), (2, 2)), mode="symmetric"))
    line = x[:, :1, :, 0]
    ref1 = np.pad(line.numpy(), ((0, 0), (0, 0), (3, 3)), mode="symmetric")
    ref1[..., :3] *= -1
    ref1[..., -3:] *= -1
    np.testing.assert_array_equal(pad(line, 3, ("slip",)).numpy(), ref1)


def test_outflow_repeats_the_edge_in_either_dirichlet_mode():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    edge = np.pad(x.numpy(), ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
    for mode in ("edge", "zeros"):
        np.testing.assert_array_equal(pad(x, 2, ("outflow", "outflow"), mode).numpy(), edge)


def test_gather_stencil_reads_the_slip_ghosts():
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64)
    st = gather_stencil(x, 1, ("dirichlet", "slip"))       # (B, nx, ny, C * 9), channel slowest
    # the neighbour below cell (i, 0) in y (offset (0, -1), index 3 of the 9) is the mirror of (i, 0):
    # +u there, -v
    np.testing.assert_array_equal(st[0, :, 0, 3].numpy(), x[0, 0, :, 0].numpy())
    np.testing.assert_array_equal(st[0, :, 0, 9 + 3].numpy(), -x[0, 1, :, 0].numpy())


@pytest.mark.parametrize("x,width,boundary,message", [
    (torch.zeros(1, 3, 5, 5), 1, ("dirichlet", "slip"),
     "slip boundary on axis 1: the field has 3 channels; expected 2 (the velocity, channel i along axis i) "
     "or 1 (a scalar)"),
    (torch.zeros(1, 1, 4), 5, ("slip",), "slip padding (a mirror image) of 5 points on an axis of 4 points"),
    (torch.zeros(6), 1, ("slip",), "slip boundary on axis 0: the field has no channel axis"),
    (torch.zeros(1, 1, 6), 1, ("wall",), "unknown boundary type 'wall'; expected one of"),
])
def test_refusals_are_one_line(x, width, boundary, message):
    with pytest.raises(ConfigError) as err:
        pad(x, width, boundary)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_model_on_slip_walls_checks_its_channels_at_construction():
    from pymsde.model.config import ModelConfig

    cfg = ModelConfig(fine_shape=(16, 8), channels=2, coarse_shape=(4, 2), boundary=("dirichlet", "slip"),
                      domain=((0.0, 2.0), (0.0, 1.0)), micro_dim=1, stencil_radius=1)
    assert cfg.boundary == ("dirichlet", "slip")
    with pytest.raises(ConfigError, match="model config: slip boundary on axis 1: the field has 3 channels"):
        ModelConfig(fine_shape=(16, 8), channels=3, coarse_shape=(4, 2), boundary=("dirichlet", "slip"),
                    domain=((0.0, 2.0), (0.0, 1.0)), micro_dim=1, stencil_radius=1)
    with pytest.raises(ConfigError, match="slip padding \\(a mirror image\\) of 3 points on an axis of 2 points"):
        ModelConfig(fine_shape=(16, 8), channels=2, coarse_shape=(4, 2), boundary=("dirichlet", "slip"),
                    domain=((0.0, 2.0), (0.0, 1.0)), micro_dim=1, stencil_radius=3)
