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


def test_vorticity_of_a_solid_body_rotation_is_two():
    from pymsde.evaluate.vorticity import vorticity

    x = np.linspace(-1.0, 1.0, 33)
    y = np.linspace(-0.5, 0.5, 17)
    X, Y = np.meshgrid(x, y, indexing="ij")                  # axis 0 = x, axis 1 = y (the field layout)
    w = vorticity(-Y, X, x, y)
    np.testing.assert_allclose(w, 2.0, atol=1e-12)           # linear fields: exact up to round-off
    # a smooth field: second order, edges included; dv/dx - du/dy of (-sin y, sin x) = cos x + cos y
    xs = np.linspace(0.0, 2.0, 41)
    Xs, Ys = np.meshgrid(xs, xs, indexing="ij")
    errs = []
    for n in (41, 81):
        g = np.linspace(0.0, 2.0, n)
        Gx, Gy = np.meshgrid(g, g, indexing="ij")
        errs.append(np.abs(vorticity(-np.sin(Gy), np.sin(Gx), g, g) - (np.cos(Gx) + np.cos(Gy))).max())
    assert errs[0] < 5e-3 and 3.5 < errs[0] / errs[1] < 4.5
    # periodic axes wrap: (-sin(2 pi y), sin(2 pi x)) on [0, 1)^2
    p = np.arange(64) / 64
    Px, Py = np.meshgrid(p, p, indexing="ij")
    wp = vorticity(-np.sin(2 * np.pi * Py), np.sin(2 * np.pi * Px), p, p, periodic=(True, True))
    exact = 2 * np.pi * (np.cos(2 * np.pi * Px) + np.cos(2 * np.pi * Py))
    assert np.abs(wp - exact).max() < 2 * np.pi * (2 * np.pi / 64) ** 2 / 6 * 2 * 1.01
    with pytest.raises(DataError, match="expected one shape"):
        vorticity(X, X[:, :-1], x, y)


def test_vorticity_plot_of_a_two_channel_field(tmp_path):
    from pymsde.evaluate.plots import plot_vorticity, vorticity_figure, vorticity_label

    x = np.linspace(0.0, 4.0, 40)
    y = np.linspace(0.0, 1.0, 10)
    X, Y = np.meshgrid(x, y, indexing="ij")
    frames = np.stack([np.stack([-(Y - 0.5) * (1 + k), (X - 2.0) * (1 + k)]) for k in range(3)])   # (3, 2, 40, 10)
    panels = {"truth": frames, "forecast": 1.1 * frames, "error": 0.1 * frames}
    out = plot_vorticity(panels, [0.0, 0.5, 1.0], tmp_path / "vort.png", x=x, y=y,
                         label=vorticity_label({}), xlabel="x", ylabel="y")
    w, h = png_size(out)
    assert w > h and out.stat().st_size > 10_000
    fig = vorticity_figure(panels, [0.0, 0.5, 1.0], x=x, y=y, label=vorticity_label({}))
    assert _n_colourbars(fig, 9) == 2                                  # fields, errors
    assert [a.get_ylabel() for a in fig.axes[9:]] == ["vorticity ω (nondimensional)",
                                                       "error in vorticity ω (nondimensional)"]
    img = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(np.asarray(img), 2.0, atol=1e-12)       # drawn: the truth's vorticity at t = 0
    assert len(fig.axes[0].collections) == 1                           # the quiver overlay
    assert vorticity_label({"vorticity_units": "1/s"}).endswith("(1/s)")
    with pytest.raises(DataError, match="expected 2"):
        plot_vorticity({"u": frames[:, :1]}, [0.0, 0.5, 1.0], tmp_path / "bad.png")
    with pytest.raises(DataError, match="one channel at a time"):
        plot_snapshots({"u": frames}, [0.0, 0.5, 1.0], tmp_path / "bad.png")
