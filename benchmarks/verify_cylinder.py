"""Verification and timing of the cylinder-flow generator (pymsde.systems.cylinder); prints one JSON.

Runs the paper's set-up (Re = 160, output 320 x 80 on [0, 4] x [0, 1], 1501 frames to t = 15;
computed on [0, 8] x [0, 1] with ``refine`` internal cells per output cell) or a shorter one,
and reports:

- ``inflow``: the mean of u over the first output column (x = 1/160) per frame, minus 1;
- ``divergence``: max |div u| of the internal MAC field, and central-difference divergence of
  the saved (cell-centred) field relative to the rms velocity gradient, over the whole field
  and over the fluid (cells farther than 3 output cells from the cylinder);
- ``wake``: over the statistics window (default t >= 8): Strouhal numbers f D / U from the
  probe v (internal grid and saved field, at x = centre + 4 D on the axis) and from C_L (FFT,
  Hann window, zero padding, parabolic peak); mean and amplitude of C_D, amplitude of C_L;
- ``literature``: unconfined values at Re = 160 (St from Williamson 1988's fit for parallel
  shedding, C_D from Henderson 1995's 2-D computations) and the wall (blockage) correction of
  Allen & Vincenti 1944 for inviscid (slip) walls: solid blockage (pi^2 / 3) (R / H)^2 from the
  image doublets, wake blockage (D / H) C_D / 4, so U_eff = U (1 + eps): St and C_D expected in
  the channel are St_inf (1 + eps) and C_D,inf (1 + eps)^2, and ours corrected back to free
  stream St / (1 + eps), C_D / (1 + eps)^2;
- ``timing``: wall time, internal steps, cost per cell-step and per cell-stage, projected to
  1501 frames.

Usage::

    python benchmarks/verify_cylinder.py                          # the paper's run (t = 15)
    python benchmarks/verify_cylinder.py --t-end 6 --refine 1      # shorter / coarser
    python benchmarks/verify_cylinder.py --figures docs/figures --out cyl.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

os.environ.setdefault("PYMSDE_NO_PROGRESS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pymsde.systems import cylinder as cyl  # noqa: E402
from pymsde.util.atomic import atomic_write_text  # noqa: E402

ST_WILLIAMSON = lambda re: -3.3265 / re + 0.1816 + 1.6e-4 * re   # noqa: E731  (Williamson 1988, 49 < Re < 178)
CD_HENDERSON_160 = 1.33                                          # Henderson 1995, 2-D, Re = 160 (read off the fit)


def divergence_stats(field, h, centre, radius):
    div = cyl.centred_divergence(field, h)
    grad = np.gradient(field, h, axis=(-2, -1))
    scale = math.sqrt(sum(float(np.mean(g ** 2)) for g in grad))
    nx, ny = field.shape[-2:]
    xc, yc = (np.arange(1, nx - 1) + 0.5) * h, (np.arange(1, ny - 1) + 0.5) * h
    fluid = np.hypot(xc[:, None] - centre[0], yc[None, :] - centre[1]) > radius + 3 * h
    return {"rms_div_over_rms_grad": math.sqrt(float(np.mean(div ** 2))) / scale,
            "rms_div_over_rms_grad_fluid": math.sqrt(float(np.mean(div[fluid] ** 2))) / scale,
            "max_abs_div_times_D_over_U": float(np.abs(div).max()) * 2 * radius,
            "max_abs_div_fluid_times_D_over_U": float(np.abs(div[fluid]).max()) * 2 * radius}


def wake_stats(r, t_stats, setup):
    d, dt = 2 * setup["radius"], setup["dt_out"]
    t = r["t"]
    k = int(np.searchsorted(t, t_stats - 1e-9))
    cpu = setup["cells_per_unit"]
    i, j = int(round((setup["centre"][0] + 2 * d) * cpu)), int(round(setup["centre"][1] * cpu))
    probe_out = r["u"][:, 1, i - 1:i + 1, j - 1:j + 1].mean(axis=(1, 2))
    cd, cl = r["cd"][max(k - 1, 0):], r["cl"][max(k - 1, 0):]
    return {"window": [float(t[k]), float(t[-1])],
            "st_probe_internal": cyl.strouhal(r["probe_v"][k:], dt, d, setup["u_in"]),
            "st_probe_output": cyl.strouhal(probe_out[k:], dt, d, setup["u_in"]),
            "st_lift": cyl.strouhal(cl, dt, d, setup["u_in"]),
            "cd_mean": float(cd.mean()), "cd_amplitude": float(0.5 * (cd.max() - cd.min())),
            "cl_amplitude": float(0.5 * (cl.max() - cl.min())), "cl_rms": float(np.sqrt(np.mean(cl ** 2))),
            "probe_v_amplitude": float(0.5 * (r["probe_v"][k:].max() - r["probe_v"][k:].min()))}


def literature(wake, setup):
    re = setup["reynolds"]
    ratio_r, ratio_d = setup["radius"] / setup["height"], 2 * setup["radius"] / setup["height"]
    eps_sb = math.pi ** 2 / 3 * ratio_r ** 2
    st_inf, cd_inf = ST_WILLIAMSON(re), CD_HENDERSON_160
    eps_expected = eps_sb + ratio_d * cd_inf / 4
    eps_ours = eps_sb + ratio_d * wake["cd_mean"] / 4
    return {"reynolds": re, "blockage_D_over_H": ratio_d, "st_unconfined_williamson": st_inf,
            "cd_unconfined_henderson": cd_inf, "eps_solid": eps_sb, "eps_total_expected": eps_expected,
            "st_expected_in_channel": st_inf * (1 + eps_expected),
            "cd_expected_in_channel": cd_inf * (1 + eps_expected) ** 2,
            "eps_total_ours": eps_ours, "st_ours_corrected_to_free_stream": wake["st_lift"] / (1 + eps_ours),
            "cd_ours_corrected_to_free_stream": wake["cd_mean"] / (1 + eps_ours) ** 2}


def figures(r, folder, setup):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ext = (0, setup["out_length"], 0, setup["height"])
    fig, axes = plt.subplots(2, 1, figsize=(10, 5.2), constrained_layout=True)
    for ax, c, name in zip(axes, (0, 1), ("u", "v")):
        im = ax.imshow(r["u"][-1, c].T, origin="lower", extent=ext, cmap="RdBu_r" if c else "viridis")
        ax.set_title(f"{name} at t = {r['t'][-1]:.2f}")
        fig.colorbar(im, ax=ax, shrink=0.9)
    fig.savefig(os.path.join(folder, "cylinder_velocity.png"), dpi=110)
    fig, axes = plt.subplots(3, 1, figsize=(9, 6), sharex=True, constrained_layout=True)
    for ax, y, name in zip(axes, (r["cd"], r["cl"], r["probe_v"][1:]), ("C_D", "C_L", "probe v")):
        ax.plot(r["t"][1:], y, lw=0.8)
        ax.set_ylabel(name)
    axes[0].set_ylim(0.0, 2.5)          # the impulsive start (C_D ~ 23 over the first interval) is off the axis
    axes[-1].set_xlabel("t")
    fig.savefig(os.path.join(folder, "cylinder_signals.png"), dpi=110)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--t-end", type=float, default=15.0)
    p.add_argument("--refine", type=int, default=2, help="internal cells per output cell")
    p.add_argument("--length", type=float, default=8.0, help="computational channel length")
    p.add_argument("--t-stats", type=float, default=None, help="start of the statistics window (default t_end - 7)")
    p.add_argument("--figures", default=None)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    torch.set_num_threads(1)
    load0 = list(os.getloadavg())
    start = time.perf_counter()
    r = cyl.run_cylinder(t_end=a.t_end, refine=a.refine, length=a.length, show_progress=False)
    wall = time.perf_counter() - start
    s = r["setup"]
    nx, ny = s["internal_cells"]
    n_t = r["t"].size
    h_out = 1.0 / s["cells_per_unit"]
    wake = wake_stats(r, a.t_stats if a.t_stats is not None else max(0.0, a.t_end - 7.0), s)
    result = {"machine": {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
                          "load_avg_start": load0, "load_avg_end": list(os.getloadavg())},
              "setup": s, "frames": n_t,
              "inflow": {"max_abs_mean_u_first_column_minus_1": float(np.abs(r["u"][:, 0, 0].mean(axis=1) - 1).max())},
              "divergence": {"max_abs_div_internal_mac": float(r["max_div"].max()),
                             **divergence_stats(r["u"][-1], h_out, s["centre"], s["radius"])},
              "wake": wake, "literature": literature(wake, s),
              "timing": {"wall_s": wall, "steps": r["steps"], "internal_cells": nx * ny,
                         "ns_per_cell_step": wall / (r["steps"] * nx * ny) * 1e9,
                         "ns_per_cell_stage": wall / (3 * r["steps"] * nx * ny) * 1e9,
                         "projected_1501_frames_min": wall * 1500 / (n_t - 1) / 60}}
    if a.figures:
        figures(r, a.figures, s)
    text = json.dumps(result, indent=1)
    print(text)
    if a.out:
        atomic_write_text(a.out, text)          # a killed run leaves no half-written JSON


if __name__ == "__main__":
    main()
