"""Verification and timing of the shallow-water generator (pymsde.systems.swe); prints one JSON.

Checks (docs/swe_cylinder.md reports the numbers):

- ``stoker``: a quasi-1-D dam break (h = 2 | 1 at x = 0, 4 cells in y) in the 2-D solver at
  t = 0.5 against the exact wet-bed (Stoker) solution: L1 errors of h and u and observed orders.
- ``mass``: relative change of the total depth on closed (reflective) walls to t = 5, waves
  reflected several times; with the data's outflow boundaries to t = 1 (the front has not
  reached the boundary yet) and to t = 4 (it has: mass leaves).
- ``symmetry``: a centred dam (r = 0.5, 128 x 128, t in [0, 1]): max |h - h^T|, |h - rot90 h|.
- ``refinement``: the radial dam break (r = 0.5, t = 1) and a smooth hump (h = 1 + 0.1
  exp(-r^2 / 0.1), t = 0.5, no shock yet) on 32/64/128/256 cells against 512, the reference
  block-averaged to each grid: L1 errors (integral of |h - h_ref|) and observed orders.
- ``timing``: cost per cell-stage at several batch sizes and the time of one 101-frame
  trajectory in a chunk, projected to the paper's 1000 trajectories.

Usage::

    python benchmarks/verify_swe.py [--quick] [--figures docs/figures] [--out result.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("PYMSDE_NO_PROGRESS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pymsde.systems import swe  # noqa: E402
from pymsde.util.atomic import atomic_write_text  # noqa: E402


def _orders(sizes, errors):
    return [float(np.log2(errors[i] / errors[i + 1]) / np.log2(sizes[i + 1] / sizes[i]))
            for i in range(len(errors) - 1)]


def stoker(sizes):
    rows = []
    for nx in sizes:
        x = swe.cell_centres(nx, -2.5, 2.5)
        q0 = np.zeros((1, 3, nx, 4))
        q0[:, 0] = np.where(x < 0, 2.0, 1.0)[None, :, None]
        out, _ = swe.integrate_swe(q0, [0.0, 0.5], (5.0 / nx, 0.1), 1.0, ("outflow", "reflective"), channels="all")
        h_ex, u_ex = swe.stoker_solution(x, 0.5, 2.0, 1.0)
        h = out[0, -1, 0, :, 0]
        rows.append({"nx": nx, "l1_h": float(np.abs(h - h_ex).sum() * 5 / nx),
                     "l1_u": float(np.abs(out[0, -1, 1, :, 0] / h - u_ex).sum() * 5 / nx)})
    h_m, u_m = swe.stoker_middle_state(2.0, 1.0)
    return {"t": 0.5, "h_m": h_m, "u_m": u_m, "rows": rows,
            "order_h": _orders(sizes, [r["l1_h"] for r in rows]), "order_u": _orders(sizes, [r["l1_u"] for r in rows])}


def mass(n):
    dx = 5.0 / n
    out, _ = swe.integrate_swe(swe.dam_break_state([0.7], n), np.linspace(0, 5, 11), (dx, dx), boundary="reflective")
    m = out[0, :, 0].sum(axis=(1, 2))
    h1, _ = swe.radial_dam_break([0.7], n_grid=n, n_steps=11)
    m1 = h1[0, :, 0].sum(axis=(1, 2))
    h4, _ = swe.radial_dam_break([0.7], n_grid=n, n_steps=41, t_end=4.0)
    m4 = h4[0, :, 0].sum(axis=(1, 2))
    moved = np.nonzero(np.abs(m4 / m4[0] - 1) > 1e-13)[0]
    return {"n": n, "reflective_t5_max_rel_change": float(np.abs(m / m[0] - 1).max()),
            "outflow_t1_max_rel_change": float(np.abs(m1 / m1[0] - 1).max()),
            "outflow_t4_rel_change": float(m4[-1] / m4[0] - 1),
            "outflow_first_loss_t": float(0.1 * moved[0]) if moved.size else None}


def symmetry(n):
    h, _ = swe.radial_dam_break([0.5], n_grid=n, n_steps=11)
    f = h[0, :, 0]
    return {"n": n, "max_transpose": float(np.abs(f - f.transpose(0, 2, 1)).max()),
            "max_rot90": float(np.abs(f - np.rot90(f, axes=(1, 2))).max()),
            "max_flip": float(np.abs(f - f[:, ::-1]).max())}


def _block(a, f):
    n = a.shape[-1] // f
    return a.reshape(n, f, n, f).mean(axis=(1, 3))


def refinement(sizes, ref, kind):
    t_end = 1.0 if kind == "dam" else 0.5
    finals = {}
    for n in (*sizes, ref):
        if kind == "dam":
            h, _ = swe.radial_dam_break([0.5], n_grid=n, n_steps=2, t_end=t_end)
        else:
            x = swe.cell_centres(n, -2.5, 2.5)
            q0 = np.zeros((1, 3, n, n))
            q0[0, 0] = 1 + 0.1 * np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / 0.1)
            h, _ = swe.integrate_swe(q0, [0.0, t_end], (5 / n, 5 / n))
        finals[n] = h[0, -1, 0]
    errors = [float(np.abs(finals[n] - _block(finals[ref], ref // n)).sum() * (5 / n) ** 2) for n in sizes]
    return {"kind": kind, "t": t_end, "reference": ref, "sizes": list(sizes), "l1": errors,
            "order": _orders(sizes, errors)}


def timing(n, batches, chunk):
    per = {}
    torch.set_num_threads(1)
    for b in batches:
        q = torch.as_tensor(swe.dam_break_state(np.full(b, 0.5), n))
        dt = torch.full((b, 1, 1, 1), 0.004, dtype=torch.float64)
        swe.ssp_step(q, dt, (5 / n, 5 / n), ("outflow", "outflow"), 1.0, "mc", 2)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(5):
                q = swe.ssp_step(q, dt, (5 / n, 5 / n), ("outflow", "outflow"), 1.0, "mc", 2)
            best = min(best, (time.perf_counter() - start) / 5)
        per[b] = best / (b * n * n * 2) * 1e9
    start = time.perf_counter()
    part = next(swe.iter_swe_chunks(chunk, seed=0, chunk=chunk, batch=1, show_progress=False, n_grid=n))
    wall = time.perf_counter() - start
    steps = part["info"]["steps"]
    return {"n": n, "ns_per_cell_stage": per, "chunk": chunk, "chunk_wall_s": wall, "steps_per_traj": steps,
            "s_per_traj": wall / chunk, "ns_per_cell_stage_in_run": wall / (n * n * 2 * sum(steps)) * 1e9,
            "projected_1000_traj_min": wall / chunk * 1000 / 60}


def figures(folder):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    h, _ = swe.radial_dam_break([0.5], n_grid=128, n_steps=101)
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2), constrained_layout=True)
    for ax, k in zip(axes, (0, 25, 50, 100)):
        im = ax.imshow(h[0, k, 0].T - 1, origin="lower", extent=(-2.5, 2.5, -2.5, 2.5), cmap="viridis",
                       vmin=-0.75, vmax=1.0)
        ax.set_title(f"h - 1, t = {k / 100:.2f}")
    fig.colorbar(im, ax=axes, shrink=0.8)
    fig.savefig(os.path.join(folder, "swe_dam_break.png"), dpi=110)
    fig, ax = plt.subplots(figsize=(6, 3.5), constrained_layout=True)
    for nx in (100, 400):
        x = swe.cell_centres(nx, -2.5, 2.5)
        q0 = np.zeros((1, 3, nx, 4))
        q0[:, 0] = np.where(x < 0, 2.0, 1.0)[None, :, None]
        out, _ = swe.integrate_swe(q0, [0.0, 0.5], (5.0 / nx, 0.1), 1.0, ("outflow", "reflective"))
        ax.plot(x, out[0, -1, 0, :, 0], ".", ms=3, label=f"{nx} cells")
    xf = np.linspace(-2.5, 2.5, 4001)
    ax.plot(xf, swe.stoker_solution(xf, 0.5, 2.0, 1.0)[0], "k-", lw=1, label="exact (Stoker)")
    ax.set_xlim(-1.5, 1.5)
    ax.set_xlabel("x")
    ax.set_ylabel("h at t = 0.5")
    ax.legend()
    fig.savefig(os.path.join(folder, "swe_stoker.png"), dpi=110)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller grids (smoke test)")
    p.add_argument("--figures", default=None, help="folder for swe_dam_break.png and swe_stoker.png")
    p.add_argument("--out", default=None, help="also write the JSON here")
    a = p.parse_args()
    start = time.perf_counter()
    sizes, ref = ((16, 32, 64), 128) if a.quick else ((32, 64, 128, 256), 512)
    result = {"machine": {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
                          "load_avg_start": list(os.getloadavg())},
              "stoker": stoker((100, 200, 400) if a.quick else (100, 200, 400, 800, 1600)),
              "mass": mass(64 if a.quick else 128), "symmetry": symmetry(64 if a.quick else 128),
              "refinement_dam": refinement(sizes, ref, "dam"), "refinement_smooth": refinement(sizes, ref, "smooth"),
              "timing": timing(64 if a.quick else 128, (1, 2, 4, 8), 2 if a.quick else 16)}
    if a.figures:
        figures(a.figures)
    result["machine"]["load_avg_end"] = list(os.getloadavg())
    result["wall_s"] = time.perf_counter() - start
    text = json.dumps(result, indent=1)
    print(text)
    if a.out:
        atomic_write_text(a.out, text)          # a killed run leaves no half-written JSON


if __name__ == "__main__":
    main()
