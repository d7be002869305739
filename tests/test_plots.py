"""Plotting primitives write real, non-empty PNGs and refuse mismatched inputs."""
import numpy as np
import pytest

pytest.importorskip("matplotlib")

from pymsde.evaluate.plots import plot_error_curves, plot_profiles, plot_snapshots, plot_spacetime  # noqa: E402
from pymsde.util.errors import DataError  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return width, height


def test_spacetime(tmp_path):
    x = np.linspace(0, 1, 64, endpoint=False)
    t = np.linspace(0, 1, 41)
    truth = np.sin(2 * np.pi * (x[None] - t[:, None]))
    out = plot_spacetime({"truth": truth, "forecast": 1.01 * truth, "error": 0.01 * truth}, x, t,
                         tmp_path / "st.png", title="advection")
    w, h = png_size(out)
    assert w > 3 * h / 2 and out.stat().st_size > 10_000                # three panels side by side
    with pytest.raises(DataError, match=r"expected \(len\(t\), len\(x\)\) = \(41, 63\)"):
        plot_spacetime({"u": truth}, x[:-1], t, tmp_path / "bad.png")
    with pytest.raises(DataError, match="different shapes"):
        plot_spacetime({"a": truth, "b": truth[:-1]}, x, t, tmp_path / "bad.png")
    with pytest.raises(DataError, match="expected a file name ending in .png"):
        plot_spacetime({"u": truth}, x, t, tmp_path / "st.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["st.png"]


def test_snapshots(tmp_path):
    a = np.random.default_rng(0).random((3, 16, 12))
    out = plot_snapshots({"truth": a, "error": a - 0.5}, [0.0, 0.5, 1.0], tmp_path / "sn.png",
                         x=np.linspace(0, 1, 16), y=np.linspace(0, 2, 12))
    w, h = png_size(out)
    assert w > h and out.stat().st_size > 10_000
    with pytest.raises(DataError, match="2 times for 3 snapshots"):
        plot_snapshots({"u": a}, [0.0, 1.0], tmp_path / "bad.png")


def test_profiles_and_error_curves(tmp_path):
    x = np.linspace(0, 1, 100)
    truth = np.exp(-(x[None] - np.array([[0.3], [0.5]])) ** 2 / 0.01)
    out = plot_profiles(x, truth, truth + 0.01, np.full_like(truth, 0.02), [0.0, 1.0], tmp_path / "pr.png")
    assert png_size(out)[0] > 0 and out.stat().st_size > 10_000
    out = plot_profiles(x, truth, truth, None, [0.0, 1.0], tmp_path / "pr2.png")
    assert out.stat().st_size > 5_000
    with pytest.raises(DataError, match=r"std has shape \(2, 99\)"):
        plot_profiles(x, truth, truth, truth[:, 1:], [0.0, 1.0], tmp_path / "bad.png")
    t = np.linspace(0, 1, 50)
    out = plot_error_curves(t, {"multiscale": 1 + t, "closure": 10 * (1 + t)}, tmp_path / "ec.png",
                            "nRMSE (%)", logy=True)
    assert out.stat().st_size > 5_000
    with pytest.raises(DataError, match="curve 'x' has 49 values"):
        plot_error_curves(t, {"x": t[1:]}, tmp_path / "bad.png", "e")


def test_colour_scales_shared_by_fields_and_by_errors():
    from pymsde.evaluate.plots import _limits

    a = np.linspace(-1.0, 2.0, 10)
    lim = _limits({"truth": a, "forecast": 2 * a, "error A": 0.1 * a, "error B": -0.3 * a},
                  {"error A", "error B"})
    assert lim["truth"] == lim["forecast"] == (-2.0, 4.0, "viridis")
    assert lim["error A"] == lim["error B"] == (-0.6, 0.6, "RdBu_r")     # one symmetric error scale


def test_error_curves_with_levels_and_a_diverged_curve(tmp_path):
    t = np.linspace(0, 1, 50)
    diverged = 5 + 100 * t
    diverged[30:] = np.inf                                                # a forecast that blew up
    out = plot_error_curves(t, {"multiscale": 1 + t, "sindy": diverged}, tmp_path / "ec.png",
                            "relative error (%)", logy=True, levels={"multiscale": 1.5, "sindy": np.inf})
    assert png_size(out)[0] > 0 and out.stat().st_size > 5_000
    with pytest.raises(DataError, match="level 'dmd' has no curve"):
        plot_error_curves(t, {"multiscale": t}, tmp_path / "bad.png", "e", levels={"dmd": 1.0})


def test_colour_scales_ignore_non_finite_values():
    from pymsde.evaluate.plots import _limits

    a = np.linspace(0.0, 1.0, 10)
    bad = a.copy()
    bad[3], bad[4] = np.inf, np.nan
    lim = _limits({"truth": a, "dmd": bad, "error dmd": bad - a, "error all-nan": np.full(10, np.nan)},
                  {"error dmd", "error all-nan"})
    assert lim["truth"] == lim["dmd"] == (0.0, 1.0, "viridis")
    assert lim["error dmd"] == (-1.0, 1.0, "RdBu_r")                     # |bad - a| is 0 where finite: fallback 1
    only_nan = _limits({"sindy": np.full(4, np.nan)}, set())
    assert only_nan["sindy"] == (0.0, 1.0, "viridis")


def _n_colourbars(fig, n_panels):
    """Colourbars are the figure's axes beyond its panels."""
    return len(fig.axes) - n_panels


def test_one_shared_colourbar_per_scale():
    from pymsde.evaluate.plots import snapshots_figure, spacetime_figure

    x = np.linspace(0, 1, 32, endpoint=False)
    t = np.linspace(0, 1, 11)
    truth = np.sin(2 * np.pi * (x[None] - t[:, None]))
    fields = {"truth": truth, "multiscale": 1.1 * truth, "closure": 0.9 * truth, "coarse DNS": truth + 0.1}
    assert _n_colourbars(spacetime_figure(fields, x, t), 4) == 1            # four panels, one scale: one bar
    mixed = spacetime_figure({**fields, "error a": 0.1 * truth, "error b": -0.1 * truth}, x, t)
    assert _n_colourbars(mixed, 6) == 2                                     # one for fields, one for errors
    assert [a.get_ylabel() for a in mixed.axes[6:]] == ["u", "error in u"]
    a = np.random.default_rng(0).random((3, 8, 6))
    snaps = snapshots_figure({"truth": a, "multiscale": a, "coarse DNS": a}, [0.0, 0.5, 1.0])
    assert _n_colourbars(snaps, 9) == 1
    assert _n_colourbars(snapshots_figure({"truth": a, "error": a - 0.5}, [0.0, 0.5, 1.0]), 6) == 2


def test_axis_labels_carry_units_or_say_nondimensional():
    from pymsde.evaluate.plots import axis_labels, profiles_figure

    assert axis_labels({}) == {"u": "u (nondimensional)", "x": "x (nondimensional)", "y": "y (nondimensional)",
                               "t": "t (nondimensional)"}
    labels = axis_labels({"units": "m/s", "x_units": "m", "t_units": "s"})
    assert labels == {"u": "u (m/s)", "x": "x (m)", "y": "y (m)", "t": "t (s)"}
    x = np.linspace(0, 1, 20)
    fig = profiles_figure(x, np.ones((2, 20)), np.ones((2, 20)), None, [0.0, 1.0], mean_label="coarse DNS")
    assert [tx.get_text() for tx in fig.axes[0].get_legend().get_texts()] == ["truth", "coarse DNS"]
    fig = profiles_figure(x, np.ones((2, 20)), np.ones((2, 20)), None, [0.0, 1.0])
    assert "forecast mean" not in [tx.get_text() for tx in fig.axes[0].get_legend().get_texts()]
