"""One row of the final paper's table (FINAL_PAPER.md section 0): ``pymsde benchmark CASE --out DIR``.

:func:`run_benchmark`:

1. simulates the case (:func:`pymsde.systems.simulate`, saved as ``OUT/data.npz`` in the case's
   storage dtype) or loads ``data`` (a file with train / val / test splits, by trajectory or,
   cylinder2d, in time);
2. trains the implicit-scale model (``micro_dim = 0``, ``OUT/closure``) from scratch with the
   ``"final-paper"`` recipe (:mod:`pymsde.training.recipes`) and the paper's architecture of
   the case where pymsde has it (:data:`BENCHMARK_CASES`);
3. warm-starts the multiscale model from it (:func:`pymsde.model.warm_start.warm_start`),
   ``n_eta = 5`` directly from 0, or with ``chain`` through 1, 2, 3, 4 (``OUT/micro1`` ..
   ``OUT/micro4``) as the paper does, and trains it (``OUT/multiscale``) at lr 1e-4;
4. evaluates all five methods (multiscale, closure = the implicit-scale model, dns, dmd,
   sindy) with :func:`pymsde.workflows.evaluation.evaluate_run` on the test split, on the
   final checkpoints (the paper evaluates the last Lightning checkpoint), into ``OUT/report``;
   a case scored on its first times only (wave1d: ``attrs["score_steps"]`` = 201) is
   forecast and scored on those times (``evaluate_run(score_steps=...)``; DMD and POD-SINDy
   are still fitted on the whole training trajectories, as the paper);
5. writes ``OUT/benchmark.json`` and ``OUT/benchmark.md``: the measured row next to the
   published one (:data:`PUBLISHED`, fractions as in the paper; pymsde's scores are percent).

Cases: kdv1d, wave1d, burgers2d, cylinder2d, swe2d (:data:`BENCHMARK_CASES`, the simulator's
names). The published rows keep the keys they were written with; the one that differs is
``shallow_water2d`` for ``swe2d`` (:data:`PUBLISHED_KEYS`, :func:`published_key`; the JSON row
records both, ``case`` and ``published_key``, and ``pymsde benchmark shallow_water2d`` runs swe2d).

A wall-clock budget (``minutes``) is shared by the trainings: each gets the minutes left
divided by the trainings left (``max_minutes``), so a stage that finishes its epochs early
hands the rest on; simulation and evaluation are outside it. ``benchmarks/paper_table.py`` collects
the JSON rows into ``benchmarks/paper_table.md``.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pymsde.util.atomic import atomic_write_text
from pymsde.util.errors import ConfigError

log = logging.getLogger(__name__)

#: Source of :data:`PUBLISHED`.
PUBLISHED_SOURCE = ("the README of each case, ER/<case>/README.md of "
                    "ailersic/multiscale-visde at c45b02b (relative error, mean ± std, fractions)")
#: The paper's table, (mean, std) of the pooled relative error as a fraction, per case and method.
PUBLISHED: dict[str, dict[str, tuple[float, float]]] = {
    "kdv1d": {"dns": (0.523, 0.196), "dmd": (0.163, 0.046), "sindy": (0.057, 0.028),
              "closure": (0.324, 0.078), "multiscale": (0.042, 0.017)},
    "wave1d": {"dns": (1.381, 0.382), "dmd": (0.492, 0.066), "sindy": (0.469, 0.054),
               "closure": (0.565, 0.116), "multiscale": (0.079, 0.031)},
    "burgers2d": {"dns": (0.560, 0.273), "dmd": (0.097, 0.039), "sindy": (0.057, 0.045),
                  "closure": (0.141, 0.040), "multiscale": (0.028, 0.019)},
    "cylinder2d": {"dns": (0.130, 0.040), "dmd": (0.016, 0.006), "sindy": (0.051, 0.024),
                   "closure": (0.063, 0.005), "multiscale": (0.009, 0.001)},
    "shallow_water2d": {"dns": (0.861, 0.190), "dmd": (0.531, 0.227), "sindy": (0.535, 0.210),
                        "closure": (0.426, 0.099), "multiscale": (0.152, 0.047)},
}
#: The paper's case names (keys: those of :data:`PUBLISHED`).
PAPER_NAMES = {"kdv1d": "kdv_1d", "wave1d": "wave_1d", "burgers2d": "burgers_2d", "cylinder2d": "cylinder_2d",
               "shallow_water2d": "shallow_water_2d"}
#: The benchmark (simulate) cases whose published row has another key: the rows keep the JSON keys
#: they were written with (``shallow_water2d``), the cases the simulator's names (``swe2d``).
PUBLISHED_KEYS = {"swe2d": "shallow_water2d"}


def published_key(case: str) -> str:
    """The key in :data:`PUBLISHED` / :data:`PAPER_NAMES` of benchmark case ``case`` (``swe2d`` ->
    ``shallow_water2d``; the others are their own)."""
    return PUBLISHED_KEYS.get(case, case)


def benchmark_case(name: str) -> str:
    """The benchmark case of ``name``, a case or a published key (``shallow_water2d`` -> ``swe2d``)."""
    return {v: k for k, v in PUBLISHED_KEYS.items()}.get(name, name)
#: The table's columns: (method, heading), in the paper's order.
COLUMNS = (("dns", "Coarse DNS"), ("dmd", "DMD"), ("sindy", "POD-SINDy"), ("closure", "Implicit-scale (n_η=0)"),
           ("multiscale", "Multiscale (n_η=5)"))
METHODS = tuple(m for m, _ in COLUMNS)
#: The microscale dimension of the table's multiscale model.
TARGET_MICRO = 5

# The paper's 1-D architecture where ModelConfig has it (FINAL_PAPER.md section 2.2): macro drift
# 128-128-128, micro drift 128-512-128, micro encoder 4-16-64 channels with kernel 25, GP warp
# MLP 128-128, diffusion softplus(0) = log 2. LeakyReLU is not in pymsde: relu.
_ARCH_1D = {"coarse_shape": (20,), "stencil_radius": 2, "drift_hidden": (128, 128, 128),
            "micro_hidden": (128, 512, 128), "encoder_channels": (4, 16, 64), "encoder_kernel": 25,
            "gp_hidden": (128, 128), "diffusion_init": math.log(2.0)}

# The paper's 2-D architecture where ModelConfig has it (FINAL_PAPER.md 4.2, 5.2, 6.2): the 5 x 5
# stencil, macro and micro drift 128-256-128, micro encoder Conv(C -> 64 -> 32 -> 16, kernel 9,
# stride 2) mirrored by the decoder, kernel half-width n_sigma = 2, diffusion softplus(0) = log 2.
# LeakyReLU is not in pymsde: relu. GP warp: Identity in burgers_2d and shallow_water_2d, whose
# nearest here is gp_hidden = () (a linear warp, initially the identity: a learnable rescaling of
# the window); an MLP 1-128-128-1 in cylinder_2d (ReLU there, tanh here). Not in pymsde: the
# cylinder's micro drift without a time input and its residual micro activation.
def paper_kernel_sum_2d(s: int, n_sigma: float) -> float:
    """Sum of the paper's initial 2-D kernel ``exp(-r^2 / 2 s^2) / sqrt(K K)``, ``K = 2 n_sigma s + 1``
    taps per axis (one channel; FINAL_PAPER.md 1.2: not sum-normalised): the factor by which its
    latent coarse values ``K * u`` exceed pymsde's, whose kernel sums to 1. 22.70 for s = 16, n_sigma = 2."""
    taps = int(2 * n_sigma * s + 1)
    offsets = torch.arange(taps, dtype=torch.float64) - (taps - 1) / 2
    axis = float(torch.exp(-0.5 * (offsets / s) ** 2).sum())
    return axis * axis / taps


def paper_latent_units(s: int, n_sigma: float) -> dict:
    """``encoder_var_init`` and ``diffusion_init`` of the paper's 2-D models (softplus(-4) and
    softplus(0) in its latent units) in pymsde's: divided by ``L^2`` and ``L``, ``L`` =
    :func:`paper_kernel_sum_2d`."""
    from pymsde.model.config import ModelConfig

    scale = paper_kernel_sum_2d(s, n_sigma)
    return {"encoder_var_init": ModelConfig.encoder_var_init / scale ** 2, "diffusion_init": math.log(2.0) / scale}


_ARCH_2D = {"stencil_radius": 2, "drift_hidden": (128, 256, 128), "micro_hidden": (128, 256, 128),
            "encoder_channels": (64, 32, 16), "encoder_kernel": 9, "kernel_n_sigma": 2.0,
            "diffusion_init": math.log(2.0), "gp_hidden": ()}


@dataclass(frozen=True)
class BenchmarkCase:
    """A runnable row: the paper's architecture (ModelConfig fields) and forecast ensemble size.

    Attributes:
        name: case key of :data:`pymsde.systems.CASES` (and of the recipe's per-case settings,
            :data:`pymsde.training.recipes.FINAL_PAPER_CASES`).
        model: ModelConfig architecture fields (``micro_dim`` is set per stage).
        n_samples: forecast ensemble size (the paper's SDE paths ``N_enc``; at least 2 here).
        sources: where the settings come from.
        train: TrainConfig fields every training of the row gets on top of the final-paper recipe
            (the 2-D step levers of docs/cost_2d.md; the row's JSON records them as ``train_overrides``).

    The published row is ``PUBLISHED[published_key(name)]``.
    """

    name: str
    model: dict
    n_samples: int
    sources: str = ""
    train: dict = field(default_factory=dict)


BENCHMARK_CASES: dict[str, BenchmarkCase] = {
    "kdv1d": BenchmarkCase("kdv1d", {**_ARCH_1D, "kernel_n_sigma": 2.0}, 64,
                           "FINAL_PAPER.md 2.2 (n_sigma 2), 2.4 (64 SDE paths)"),
    # the paper forecasts one SDE path (N_enc = 1); pymsde's ensembles have at least 2 members
    "wave1d": BenchmarkCase("wave1d", {**_ARCH_1D, "kernel_n_sigma": 3.0}, 2,
                            "FINAL_PAPER.md 3.2 (n_sigma 3), 3.4 (1 SDE path; 2 here)"),
    # the 2-D step levers (docs/cost_2d.md): the likelihood on 32 random frames of the 64 (unbiased),
    # the GP conditioned on every 4th frame, channels-last CNNs, and pymsde's 2-D micro CNN (4-16-64
    # channels, kernel 5) instead of the paper's (64-32-16, kernel 9, 16 times the channels at full
    # resolution): a micro-5 step at window 64 on one thread measured 288 ms (pymsde's CNN, no lever)
    # -> 112 ms, and 1.5 s with the paper's CNN and the levers, so the recipe's 2 x 32000 steps fit
    # 90 minutes on the 2-core machine only with pymsde's
    "burgers2d": BenchmarkCase("burgers2d", {**_ARCH_2D, "coarse_shape": (8, 8), "encoder_channels": (4, 16, 64),
                                             "encoder_kernel": 5, "conv_memory_format": "channels_last"},
                               16, "FINAL_PAPER.md 4.2 (8 x 8, sigma 16, n_sigma 2, identity warp; not its micro "
                               "CNN), 4.4 (16 SDE paths); docs/cost_2d.md (the step levers)",
                               train={"loglik_frames": 32, "encode_stride": 4}),
    # the 32 x 8 coarse mesh per channel (fine 320 x 80, x first), the positional inputs of the drift
    "cylinder2d": BenchmarkCase("cylinder2d", {**_ARCH_2D, "coarse_shape": (32, 8), "gp_hidden": (128, 128),
                                               "positional_inputs": True}, 64,
                                "FINAL_PAPER.md 5.2 (2 x 32 x 8, sigma 10, n_sigma 2, cos/sin positional "
                                "inputs, warp MLP 128-128), 5.4 (64 SDE paths)"),
    # the paper's shallow-water model is its Burgers 2-D one: the same 8 x 8 mesh, and here the same CNN and
    # step levers as burgers2d (with the paper's CNN a micro-5 step of that 128 x 128 field measured 1.5 s even
    # with the levers: its 20 epochs of 900 trajectories, 36000 steps, would take 15 h on one core)
    # ... and its latent units: the paper's encoder variance and diffusion act on coarse values
    # paper_kernel_sum_2d(16, 2) = 22.7 times pymsde's (see there). With pymsde's units the encoder's
    # initial noise (std 0.13) exceeds the field h - 1 (rms 0.1): the implicit-scale model shrank its
    # kernel to zero (a constant latent, validation error 100 %; docs/swe_cylinder.md)
    "swe2d": BenchmarkCase("swe2d", {**_ARCH_2D, "coarse_shape": (8, 8), "encoder_channels": (4, 16, 64),
                                     "encoder_kernel": 5, "conv_memory_format": "channels_last",
                                     **paper_latent_units(16, 2.0)},
                           16, "FINAL_PAPER.md 6.2 (as burgers_2d), 6.4 (16 SDE paths, Euler-Maruyama); "
                           "docs/cost_2d.md (the step levers, as burgers2d)",
                           train={"loglik_frames": 32, "encode_stride": 4}),
}


@dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` returns: the row (the JSON's content), its files, the evaluation."""

    row: dict
    json_path: Path
    markdown_path: Path
    evaluation: Any = field(repr=False, default=None)


def get_case(case: str) -> BenchmarkCase:
    """The runnable case (by its name or its published key: ``shallow_water2d`` is ``swe2d``);
    ConfigError (one line listing the cases) for an unknown or a published-only one."""
    if benchmark_case(case) in BENCHMARK_CASES:
        return BENCHMARK_CASES[benchmark_case(case)]
    runnable = ", ".join(BENCHMARK_CASES)
    if case in PUBLISHED:
        raise ConfigError(f"benchmark: case {case!r} has only its published row here (not yet runnable); "
                          f"runnable cases: {runnable}")
    only = [c for c in PUBLISHED if benchmark_case(c) not in BENCHMARK_CASES]
    raise ConfigError(f"benchmark: unknown case {case!r}; expected one of {runnable}"
                      + (f" (published rows only: {', '.join(only)})" if only else ""))


def stage_names(chain: bool) -> list[tuple[int, str]]:
    """``(micro_dim, run folder)`` of the trainings, in order."""
    micro = [0] + (list(range(1, TARGET_MICRO + 1)) if chain else [TARGET_MICRO])
    return [(k, "closure" if k == 0 else "multiscale" if k == TARGET_MICRO else f"micro{k}") for k in micro]


def _prepare(out: Path, stages, overwrite: bool, resume: bool) -> None:
    if overwrite and resume:
        raise ConfigError("benchmark: --overwrite and --resume exclude each other (one replaces the runs in --out, "
                          "the other continues them)")
    for _, name in stages:
        if (out / name / "checkpoint.pt").exists() and not resume:
            if not overwrite:
                raise ConfigError(f"{out / name} already holds a trained run; choose another --out, pass "
                                  f"--resume to keep and continue the runs there, or --overwrite to train again")
            shutil.rmtree(out / name)


def _kept_stage(run: Path, k: int, train, device: str, epochs: int):
    """``(model, record)`` of a stage whose run in ``run`` is done (``--resume``), or None; a done run
    of another ``micro_dim``, data grid or number of ``epochs`` (the stage's) is refused."""
    from pymsde.model.config import check_data_fits
    from pymsde.training.run import load_run, read_json

    meta = read_json(run / "metadata.json") if (run / "metadata.json").is_file() else {}
    if meta.get("status") != "done":
        return None
    model, configs, meta = load_run(run, device="cpu" if device == "auto" else device)
    if model.config.micro_dim != k:
        raise ConfigError(f"benchmark --resume: {run} holds a model of micro_dim {model.config.micro_dim}; "
                          f"expected {k} (another --chain setting?); choose another --out")
    if int(configs["train"].epochs) != int(epochs):
        raise ConfigError(f"benchmark --resume: {run} was trained for {configs['train'].epochs} epochs; this stage "
                          f"trains {epochs} (another --multiscale-epochs?); choose another --out")
    check_data_fits(model.config, train, "the benchmark's data", str(run))
    log.info("benchmark: keeping %s (done: %s steps)", run.name, meta.get("steps"))
    return model, {"steps": int(meta.get("steps", 0)), "epochs": int(meta.get("epochs", 0)),
                   "lr": float(configs["train"].lr), "train_time_s": round(float(meta.get("train_time_s", 0.0)), 3),
                   "kept": True}


def _data(case: str, data, out: Path, seed: int, sizes: dict, backend: str, progress: bool):
    """``(trajectories, data file)``: loaded from ``data``, or simulated and saved to ``OUT/data.npz``
    (``u`` in the case's storage dtype, as ``pymsde simulate`` writes it: float32 for burgers2d)."""
    from pymsde.data.io import load, save
    from pymsde.systems import simulate
    from pymsde.systems.cases import as_stored, storage_dtype

    if data is not None:
        traj = load(data)
        found = traj.attrs.get("case")
        if found is not None and found != case:
            raise ConfigError(f"benchmark {case}: the data file {data} holds case {found!r}; expected {case!r}")
        return traj, Path(data)
    traj = as_stored(simulate(case, seed=seed, backend=backend, progress=progress, **sizes), storage_dtype(case))
    path = out / "data.npz"
    save(traj, path)
    return traj, path


def score_steps(traj, case: str) -> int | None:
    """Leading times the paper scores (``attrs["score_steps"]``, else the case's rule); None: all."""
    from pymsde.systems import CASES

    n = traj.attrs.get("score_steps")
    if n is None and CASES[case].score_t_end is not None:
        t = traj.t[0]
        n = int((t - t[0] <= CASES[case].score_t_end + 1e-9 * (t[1] - t[0])).sum())
    return None if n is None or int(n) >= traj.n_t else int(n)


def _train_stages(traj, data_path: Path, out: Path, spec: BenchmarkCase, stages, base: dict, minutes, seed: int,
                  device: str, model_overrides: dict, from_scratch: bool = False, resume: bool = False,
                  multiscale_epochs: int | None = None) -> list[dict]:
    """Train the implicit-scale model, then each warm-started stage; one record per stage. With
    ``resume``, a stage whose run is done is kept (its training time counts against the budget)
    and an interrupted one continues from its checkpoint. ``multiscale_epochs`` replaces the
    recipe's epochs of the stages with ``micro_dim > 0``."""
    from pymsde.model.warm_start import check_warm_start_compatible, init_from_record, warm_start
    from pymsde.training import fit
    from pymsde.training.recipes import recipe

    train = traj.get_split("train", str(data_path), " (the benchmark trains on it)")
    val = traj.get_split("val") if "val" in traj.splits else None
    t_start = time.perf_counter()
    arch = {**spec.model, **model_overrides}
    records, model, kept_s = [], None, 0.0
    for i, (k, name) in enumerate(stages):
        warm = k > 0 and not from_scratch
        settings = {"seed": seed, "device": device, **base,
                    **({"epochs": int(multiscale_epochs)} if multiscale_epochs is not None and k > 0 else {})}
        kept = (_kept_stage(out / name, k, train, device, recipe("final-paper", case=spec.name, warm=warm,
                                                                 **settings).epochs) if resume else None)
        if kept is not None:
            model, record = kept
            records.append({"run": name, "micro_dim": k, "warm_start_from": records[-1]["run"] if warm else None,
                            **record, "max_minutes": None, "wall_time_s": 0.0})
            kept_s += record["train_time_s"]
            continue
        # the budget left, shared by the stages left: a stage that ends early (its epochs done)
        # hands its unused minutes on
        each = None if minutes is None else max(
            (float(minutes) - (time.perf_counter() - t_start + kept_s) / 60.0) / (len(stages) - i), 0.05)
        cfg = recipe("final-paper", case=spec.name, warm=warm, **{"max_minutes": each, **settings})
        if not warm:
            what = {**arch, "micro_dim": k}
        else:
            check_warm_start_compatible(model.config, train)
            what = warm_start(model, k, generator=torch.Generator().manual_seed(seed + k))
        log.info("benchmark: training %s (micro_dim %d, lr %g)", name, k, cfg.lr)
        t0 = time.perf_counter()
        meta = {"init_from": init_from_record(out / records[-1]["run"], records[-1]["micro_dim"])} if warm else None
        again = resume and (out / name / "checkpoint.pt").exists()
        res = fit(train, what, cfg, val=val, run_dir=out / name, data_path=data_path, metadata=meta, resume=again)
        model = res.model
        records.append({"run": name, "micro_dim": k, "warm_start_from": records[-1]["run"] if warm else None,
                        "steps": int(res.steps), "epochs": int(res.epochs), "lr": cfg.lr,
                        "max_minutes": each, "train_time_s": round(float(res.train_time_s), 3),
                        "wall_time_s": round(time.perf_counter() - t0, 3), "kept": False, "resumed": again})
    return records


def _row(case: str, metrics: dict, stages: list[dict], notes: list[str], extra: dict) -> dict:
    """The JSON row: published and measured (fractions), pymsde's metrics (percent), the settings."""
    rel = metrics.get("relative_error", {})
    measured = {m: (None if m not in rel or rel[m]["mean"] is None else
                    {"mean": rel[m]["mean"] / 100.0, "std": rel[m]["std"] / 100.0}) for m in METHODS}
    key = published_key(case)
    return {"case": case, "paper_case": PAPER_NAMES[key], "published_key": key,
            "published": {m: {"mean": v[0], "std": v[1]} for m, v in PUBLISHED[key].items()},
            "published_source": PUBLISHED_SOURCE, "measured": measured,
            "relative_error": {m: rel.get(m) for m in METHODS}, "units": {"published": "fraction",
                                                                         "measured": "fraction",
                                                                         "relative_error": "percent"},
            "stages": stages, "notes": notes, **extra, "metrics": metrics}


def _cell(v) -> str:
    if v is None:
        return "n/a"
    mean, std = (v["mean"], v["std"]) if isinstance(v, dict) else v
    if mean is None or not math.isfinite(mean):
        return "diverged"
    return f"{mean:.3f} ± {std:.3f}"


def markdown_rows(row: dict, header: bool = True) -> str:
    """The published and the measured line of one JSON row (with the table header)."""
    lines = []
    if header:
        lines += ["| Case | " + " | ".join(h for _, h in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    name = row.get("paper_case", row["case"])
    lines.append(f"| {name} (published) | " + " | ".join(_cell(row["published"].get(m)) for m in METHODS) + " |")
    if row.get("measured") is not None:
        lines.append(f"| {name} (pymsde) | " + " | ".join(_cell(row["measured"].get(m)) for m in METHODS) + " |")
    return "\n".join(lines) + "\n"


def _write(out: Path, row: dict) -> tuple[Path, Path]:
    js, md = out / "benchmark.json", out / "benchmark.md"
    atomic_write_text(js, json.dumps(row, indent=2, allow_nan=False, default=str) + "\n")
    notes = "".join(f"\n- {n}" for n in row["notes"])
    atomic_write_text(md, f"# {row['paper_case']}: pymsde and the published row\n\n"
                          f"Relative error, mean ± std over every (test trajectory, time) pair, as fractions. "
                          f"Published: {row['published_source']}.\n\n{markdown_rows(row)}"
                          + (f"\nNotes:{notes}\n" if notes else ""))
    return js, md


def run_benchmark(case: str, out: str | os.PathLike, *, minutes: float | None = None,
                  data: str | os.PathLike | None = None, chain: bool = False, from_scratch: bool = False,
                  seed: int = 0, device: str = "auto",
                  backend: str = "torch", overwrite: bool = False, resume: bool = False, sizes: dict | None = None,
                  model_overrides: dict | None = None, train_overrides: dict | None = None,
                  n_samples: int | None = None, plots: bool = True, progress: bool = True,
                  multiscale_epochs: int | None = None) -> BenchmarkResult:
    """Run one row of the paper's table into ``out`` (module docstring).

    Args:
        case: a key of :data:`BENCHMARK_CASES` (``"kdv1d"``, ``"wave1d"``, ``"burgers2d"``,
            ``"cylinder2d"``, ``"swe2d"``), or a published key naming one (``"shallow_water2d"``).
        out: output folder (runs, ``data.npz``, ``report/``, ``benchmark.json``, ``benchmark.md``).
        minutes: wall-clock budget of all trainings together (each: the minutes left / the trainings left).
        data: a data file to use instead of simulating (train / val / test splits).
        chain: warm-start through ``micro_dim`` 1..4 (the paper) instead of 0 -> 5 directly.
        from_scratch: train the multiscale model from scratch at the recipe's lr 1e-3 instead of
            warm-starting it (not the paper's rule; on KdV it reached 0.068 where the direct warm
            start reached 0.252, README "The paper's table").
        seed: seeds the data, every training, the warm starts and the forecasts.
        device, backend: training device; backend of simulation, DNS and forecasts.
        overwrite: replace runs already in ``out`` (else ConfigError before any work).
        resume: keep the stages whose runs in ``out`` are done (their training time counts
            against ``minutes``) and continue an interrupted one from its checkpoint.
        sizes: :func:`pymsde.systems.simulate` keywords (``n_traj``, ``n_grid``, ``n_steps``...).
        model_overrides, train_overrides: ModelConfig / TrainConfig fields over the case's and the
            recipe's (every stage), e.g. small sizes for a test.
        n_samples: forecast ensemble size (default: the case's).
        plots, progress: write the report's PNGs; show progress bars.
        multiscale_epochs: epochs of every training with ``micro_dim > 0`` instead of the recipe's
            (the implicit-scale model keeps the recipe's); wave1d from scratch reached 0.065 with 100
            (32000 steps) where the recipe's 50 gave 0.141 (docs/benchmarks.md). None: the recipe's.

    Raises:
        ConfigError: unknown case (one line listing the cases), a bad budget, runs already in
            ``out``, an impossible recipe override; DataError: a data file without the splits.
    """
    from pymsde.evaluate.report import BASELINES
    from pymsde.workflows.evaluation import evaluate_run

    spec = get_case(case)
    case = spec.name                                   # shallow_water2d -> swe2d
    if minutes is not None and not (isinstance(minutes, (int, float)) and math.isfinite(minutes) and minutes > 0):
        raise ConfigError(f"benchmark: --minutes {minutes!r}; expected a positive number")
    out = Path(out)
    if multiscale_epochs is not None and (isinstance(multiscale_epochs, bool) or not isinstance(multiscale_epochs, int)
                                          or multiscale_epochs < 1):
        raise ConfigError(f"benchmark: --multiscale-epochs {multiscale_epochs!r}; expected an integer >= 1")
    if chain and from_scratch:
        raise ConfigError("benchmark: --chain and --from-scratch exclude each other (a chain is a sequence of warm "
                          "starts)")
    stages = stage_names(chain)
    _prepare(out, stages, overwrite, resume)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    traj, data_path = _data(case, data, out, seed, dict(sizes or {}), backend, progress)
    t_data = time.perf_counter() - t0
    train_overrides = {**spec.train, **(train_overrides or {})}
    base = {**({} if progress else {"progress": False}), **train_overrides}
    records = _train_stages(traj, data_path, out, spec, stages, base, minutes, seed, device,
                            dict(model_overrides or {}), from_scratch=from_scratch, resume=resume,
                            multiscale_epochs=multiscale_epochs)
    n = score_steps(traj, case)
    paper_name = PAPER_NAMES[published_key(case)]
    notes = [] if n is None else [f"scored on the first {n} of {traj.n_t} times of each test trajectory (the "
                                  f"paper's rule for {paper_name}); DMD and POD-SINDy are fitted on the "
                                  f"whole training trajectories, as the paper"]
    result = evaluate_run(out / "multiscale", data_path, split="test", baselines=BASELINES, score_steps=n,
                          closure_run=out / "closure", n_samples=n_samples or spec.n_samples, out=out / "report",
                          backend=backend, seed=seed, plots=plots, show_progress=progress, checkpoint="last")
    metrics = result.metrics()
    notes += list(metrics.get("notes") or [])
    extra = {"recipe": "final-paper", "chain": bool(chain), "from_scratch": bool(from_scratch), "minutes": minutes, "seed": int(seed),
             "multiscale_epochs": multiscale_epochs,
             "data": str(data_path), "data_time_s": round(t_data, 3), "score_steps": n, "n_t": int(traj.n_t),
             "model": {k: list(v) if isinstance(v, tuple) else v for k, v in {**spec.model,
                                                                              **(model_overrides or {})}.items()},
             "train_overrides": train_overrides, "case_sources": spec.sources,
             "report": str(result.report_path) if getattr(result, "report_path", None) else None,
             "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    row = _row(case, metrics, records, notes, extra)
    js, md = _write(out, row)
    return BenchmarkResult(row=row, json_path=js, markdown_path=md, evaluation=result)


__all__ = ["run_benchmark", "BenchmarkResult", "BenchmarkCase", "BENCHMARK_CASES", "PUBLISHED", "PUBLISHED_SOURCE",
           "PAPER_NAMES", "PUBLISHED_KEYS", "published_key", "benchmark_case", "COLUMNS", "METHODS", "get_case",
           "markdown_rows", "score_steps", "stage_names"]
