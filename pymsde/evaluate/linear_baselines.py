"""The paper's two data-driven linear-algebra baselines: DMD and POD-SINDy.

Set up as in Ilersich & Nair's code (repository ``ailersic/multiscale-visde`` at commit
c45b02b, folder ``experiments_refac/``; FINAL_PAPER.md sections 1.6, 2.5, 3.5, 4.5, 5.5, 6.5).
Score the forecasts with :func:`pymsde.evaluate.metrics.relative_error_summary`.

**Size.** Both baselines use ``r = n_coarse + 5`` (the total latent size of the paper's
multiscale model with 5 micro variables: 25, 25, 69, 517, 69 for kdv, wave, burgers_2d,
cylinder_2d, shallow_water_2d); see :func:`baseline_rank`.

**DMD** (:func:`fit_dmd`, ``*/dmd/run_dmd.py``): ``pydmd.DMD(svd_rank=r,
tikhonov_regularization=0.01)`` fitted on the snapshot matrix (features x time) of **one**
training trajectory (the paper uses trajectory 0). The forecast is autoregressive from a
test trajectory's first frame: ``x_{j+1} = Re(dmd.predict(x_j))`` with
``dmd.predict(x) = modes diag(eigs) pinv(modes) x``; :class:`DMDModel` stores the two factors
``modes diag(eigs)`` and ``pinv(modes)`` so that pydmd is not needed to forecast. Frame 0 of
the forecast is the given initial frame itself. DMD is a discrete map: a forecast is only
meaningful on the training trajectory's time step.

**POD-SINDy** (:func:`fit_pod_sindy`, ``*/sindy_2step/train_psindy.py``, ``def_model.py``,
``postproc_psindy.py``):

- POD: ``sklearn.utils.extmath.randomized_svd(S.T, n_components=r, n_iter=5,
  random_state=42)`` of all training snapshots ``S`` (``(n_traj n_t, n_features)``), no mean
  subtracted; the modes are the left singular vectors, ``z = S @ modes``.
- Derivatives: forward differences ``(z_{k+1} - z_k) / dt`` paired with ``z_k``.
- Model: ``pysindy.SINDy(PolynomialLibrary(degree, include_bias=False),
  STLSQ(threshold, max_iter=10))``, continuous time, fitted on all training trajectories.
- Forecast: ``z0 = modes.T u0``, ``scipy.integrate.solve_ivp`` with its defaults (RK45,
  rtol 1e-3, atol 1e-6) on the requested times, lifted with ``modes``. Frame 0 of the
  forecast is therefore the POD projection of ``u0``, as in the paper.
- Selection: every (threshold, degree) of the grid is fitted and scored on the validation
  split (pooled mean relative error); the lowest wins, ties going to the first in grid
  order (degrees outer, thresholds inner). The grid is :data:`PAPER_SINDY_THRESHOLDS` x
  :data:`PAPER_SINDY_DEGREES`.

**Parameters mu and forcing.** Neither baseline uses them. ``train_psindy.py`` builds
``u = [mu, f]`` and passes it to ``create_sindy_model``, but ``def_model.py`` never passes
``u`` to ``model.fit`` (its ``ParameterizedLibrary`` block is commented out) and the forecast
right-hand side calls ``model.predict(z)`` without it; the DMD scripts load ``mu`` and never
use it.

**Diverging SINDy forecasts.** If the integrator stops before the last requested time
(``solve_ivp`` failing, typically with a step size below machine spacing once the state
overflows), the frames it did not reach are NaN and the forecast's info says so;
:func:`~pymsde.evaluate.metrics.relative_error` scores such frames ``+inf``, so a diverging
setting is never selected and a diverging test forecast reports an infinite mean. The
paper's ``postproc_psindy.py`` instead leaves the error of unreached frames at 0 (its
``rel_err`` starts as ``np.zeros`` and only ``[:n_reached]`` is filled), which counts them
as perfect; that is not reproduced here. The right-hand side returns NaN for a non-finite
state instead of raising, so the integrator fails cleanly.

The optional packages (pydmd, pysindy, scikit-learn, scipy) are imported inside the
functions; a missing one raises :class:`~pymsde.util.errors.ConfigError`.
"""
from __future__ import annotations

import importlib
import inspect
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from pymsde.util.errors import ConfigError, DataError, ResourceError, available_memory, format_bytes

log = logging.getLogger(__name__)

#: Extra dimensions over the coarse-grid size: r = n_coarse + 5 for the DMD rank and the
#: POD size (FINAL_PAPER.md section 1.6: 25, 25, 69, 517, 69 with n_coarse 20, 20, 64, 512, 64).
PAPER_EXTRA_RANK = 5
#: ``DMD(..., tikhonov_regularization=0.01)`` [experiments_refac/*/dmd/run_dmd.py].
PAPER_DMD_TIKHONOV = 0.01
#: STLSQ thresholds swept on the validation split: the result folders
#: experiments_refac/{kdv_1d,wave_1d,burgers_2d}/sindy_2step/postproc_psindy/*_{thr}_{deg}/val_error.txt.
PAPER_SINDY_THRESHOLDS: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1)
#: Polynomial library degrees swept (kdv_1d and wave_1d folders hold degrees 1 and 2;
#: burgers_2d only degree 1).
PAPER_SINDY_DEGREES: tuple[int, ...] = (1, 2)
#: ``STLSQ(threshold=threshold, max_iter=10)`` [experiments_refac/kdv_1d/sindy_2step/def_model.py].
PAPER_STLSQ_MAX_ITER = 10
#: ``randomized_svd(..., n_iter=5, random_state=42)`` [experiments_refac/*/sindy_2step/train_psindy.py].
PAPER_RSVD_N_ITER = 5
PAPER_RSVD_SEED = 42

_HINT = "pip install pymsde[baselines]"


def _require(module: str, what: str) -> Any:
    """Import an optional dependency or raise ConfigError with the install hint."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"linear_baselines: {what} needs the optional package '{module.split('.')[0]}' "
                          f"({exc}); {_HINT}") from None


#: The optional modules each library baseline imports (``pymsde[baselines]``).
BASELINE_MODULES: dict[str, tuple[str, ...]] = {
    "dmd": ("pydmd",),
    "sindy": ("sklearn.utils.extmath", "pysindy", "scipy.integrate"),
}


def require_baseline_packages(names: Sequence[str]) -> None:
    """Import the optional packages of the library baselines among ``names`` (``"dmd"``,
    ``"sindy"``; other names are ignored), so that a missing one is reported before any work.

    Raises:
        ConfigError: one line naming the baseline and the missing package, with the hint
            ``pip install pymsde[baselines]``.
    """
    what = {"dmd": "the DMD baseline (dmd)", "sindy": "the POD-SINDy baseline (sindy)"}
    for name in names:
        for module in BASELINE_MODULES.get(name, ()):
            _require(module, what[name])


def _as_float64(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise DataError(f"linear_baselines: {name} contains NaN or infinity")
    return a


def baseline_rank(n_coarse: int, extra: int = PAPER_EXTRA_RANK) -> int:
    """The paper's DMD rank / POD size ``n_coarse + 5`` (``n_coarse``: number of coarse-grid
    values, e.g. 64 for an 8 x 8 coarse mesh with one channel)."""
    if n_coarse < 1 or extra < 0:
        raise ConfigError(f"linear_baselines: n_coarse must be >= 1 and extra >= 0, "
                          f"found {n_coarse}, {extra}")
    return int(n_coarse) + int(extra)


# ----------------------------------------------------------------------------------- DMD

@dataclass(frozen=True)
class DMDModel:
    """A fitted DMD one-step map ``x -> Re(left @ (right @ x))`` on flattened frames.

    Attributes:
        left: ``(n_features, r)`` complex, ``modes * eigs`` (pydmd's modes scaled by the
            eigenvalues).
        right: ``(r, n_features)`` complex, ``pinv(modes)``.
        eigs: ``(r,)`` complex discrete-time eigenvalues.
        field_shape: ``(C, *grid)`` of one frame.
        rank: number of modes actually kept (pydmd truncates to the data's rank).
        dt: the training time step, or None if not given (kept for reference).
    """

    left: np.ndarray
    right: np.ndarray
    eigs: np.ndarray
    field_shape: tuple[int, ...]
    rank: int
    dt: float | None = None

    def step(self, x: np.ndarray) -> np.ndarray:
        """One step on flattened frames: ``(n_features,)`` or ``(n_features, k)``."""
        return (self.left @ (self.right @ x)).real

    def forecast(self, u0: Any, n_steps: int) -> np.ndarray:
        """Autoregressive forecast from one frame.

        Args:
            u0: ``(C, *grid)`` initial frame.
            n_steps: number of steps after ``u0``.

        Returns:
            ``(n_steps + 1, C, *grid)`` float64; frame 0 is ``u0``. An unstable map may
            overflow to inf/NaN (scored ``+inf`` by ``relative_error``).
        """
        x0 = _as_float64(u0, "u0")
        if tuple(x0.shape) != self.field_shape:
            raise DataError(f"DMDModel.forecast: u0 has shape {x0.shape}, expected {self.field_shape}")
        if n_steps < 0:
            raise ConfigError(f"DMDModel.forecast: n_steps must be >= 0, found {n_steps}")
        out = np.empty((n_steps + 1, x0.size))
        out[0] = x0.ravel()
        with np.errstate(over="ignore", invalid="ignore"):
            for j in range(1, n_steps + 1):
                out[j] = self.step(out[j - 1])
        return out.reshape((n_steps + 1,) + self.field_shape)

    def forecast_trajectories(self, u: Any) -> np.ndarray:
        """Forecast every trajectory of ``u`` ``(n_traj, n_t, C, *grid)`` from its first frame
        over its ``n_t - 1`` steps; returns the same shape (as the paper scores its test set)."""
        a = _as_float64(u, "u")
        if a.ndim < 3:
            raise DataError(f"DMDModel.forecast_trajectories: expected (n_traj, n_t, C, *grid), "
                            f"found {a.shape}")
        return np.stack([self.forecast(a[i, 0], a.shape[1] - 1) for i in range(a.shape[0])])


def fit_dmd(u_train: Any, rank: int, dt: float | None = None,
            tikhonov: float | None = PAPER_DMD_TIKHONOV) -> DMDModel:
    """Fit the paper's DMD baseline on one trajectory.

    Args:
        u_train: ``(n_t, C, *grid)`` one training trajectory (the paper: training trajectory 0).
        rank: ``svd_rank`` (the paper: :func:`baseline_rank` of the coarse-grid size).
        dt: the trajectory's time step, stored on the model for reference only.
        tikhonov: pydmd's ``tikhonov_regularization`` (paper 0.01; None for plain DMD).
            pydmd divides by ``(s^2 + tikhonov ||X||_F) / s`` instead of ``s``, so the
            regularisation is not scale invariant.

    Returns:
        :class:`DMDModel`.
    """
    pydmd = _require("pydmd", "the DMD baseline")
    x = _as_float64(u_train, "u_train")
    if x.ndim < 2 or x.shape[0] < 2:
        raise DataError(f"fit_dmd: expected one trajectory (n_t >= 2, C, *grid), found shape {x.shape}")
    if int(rank) < 1:
        raise ConfigError(f"fit_dmd: rank must be >= 1, found {rank}")
    snapshots = x.reshape(x.shape[0], -1).T  # (n_features, n_t), as run_dmd.py
    dmd = pydmd.DMD(svd_rank=int(rank), tikhonov_regularization=tikhonov)
    dmd.fit(snapshots)
    modes, eigs = np.asarray(dmd.modes), np.asarray(dmd.eigs)
    if modes.shape[1] < int(rank):
        log.warning("fit_dmd: asked for rank %d, the data support only %d modes", rank, modes.shape[1])
    return DMDModel(left=modes * eigs[None, :], right=np.linalg.pinv(modes), eigs=eigs,
                    field_shape=tuple(x.shape[1:]), rank=int(modes.shape[1]),
                    dt=None if dt is None else float(dt))


# ----------------------------------------------------------------------------- POD-SINDy

def pod_modes(u: Any, n_pod: int) -> np.ndarray:
    """POD modes of all snapshots as the paper computes them (no mean subtracted).

    Args:
        u: ``(n_traj, n_t, C, *grid)`` training trajectories.
        n_pod: number of modes.

    Returns:
        ``(n_features, n_pod)`` float64 orthonormal columns (left singular vectors of the
        ``(n_features, n_traj n_t)`` snapshot matrix, from ``randomized_svd``).
    """
    extmath = _require("sklearn.utils.extmath", "the POD of POD-SINDy")
    a = _as_float64(u, "u")
    if a.ndim < 3:
        raise DataError(f"pod_modes: expected (n_traj, n_t, C, *grid), found shape {a.shape}")
    snapshots = a.reshape(a.shape[0] * a.shape[1], -1)
    if not 1 <= int(n_pod) <= min(snapshots.shape):
        raise ConfigError(f"pod_modes: n_pod must be in [1, {min(snapshots.shape)}], found {n_pod}")
    U, _, _ = extmath.randomized_svd(snapshots.T, n_components=int(n_pod), n_iter=PAPER_RSVD_N_ITER,
                                     random_state=PAPER_RSVD_SEED)
    return np.ascontiguousarray(U[:, :int(n_pod)], dtype=np.float64)


def _make_sindy(threshold: float, degree: int) -> Any:
    """The paper's create_sindy_model set-up, for pysindy 1.x or 2.x."""
    ps = _require("pysindy", "the SINDy baseline")
    kw: dict[str, Any] = dict(feature_library=ps.PolynomialLibrary(degree=int(degree), include_bias=False),
                              optimizer=ps.STLSQ(threshold=float(threshold), max_iter=PAPER_STLSQ_MAX_ITER))
    if "discrete_time" in inspect.signature(ps.SINDy.__init__).parameters:  # pysindy < 2
        kw["discrete_time"] = False
    return ps.SINDy(**kw)


def _fit_sindy(model: Any, z: list[np.ndarray], dz: list[np.ndarray], dt: float) -> Any:
    names = [f"x{i}" for i in range(z[0].shape[1])]
    params = inspect.signature(model.fit).parameters
    kw: dict[str, Any] = {"t": dt, "x_dot": dz, "feature_names": names}
    if "multiple_trajectories" in params:  # pysindy < 2
        kw["multiple_trajectories"] = True
    return model.fit(z, **kw)


@dataclass
class PODSINDyModel:
    """A POD basis and a polynomial SINDy ODE ``dz/dt = coefficients @ theta(z)`` on it.

    Attributes:
        modes: ``(n_features, n_pod)`` POD modes (``z = modes.T u``, ``u = modes z``).
        coefficients: ``(n_pod, n_library)`` SINDy coefficients.
        powers: ``(n_library, n_pod)`` int exponents of the library terms (pysindy's
            ``PolynomialLibrary.powers_``), or None (then ``sindy.predict`` is used).
        feature_names: the library terms, e.g. ``["x0", "x1", "x0^2", ...]``.
        threshold, degree: the selected STLSQ threshold and library degree.
        field_shape: ``(C, *grid)``.
        dt: the training time step.
        val_scores: ``{(threshold, degree): pooled mean validation error in percent}``.
        sindy: the fitted ``pysindy.SINDy`` object.
    """

    modes: np.ndarray
    coefficients: np.ndarray
    powers: np.ndarray | None
    feature_names: list[str]
    threshold: float
    degree: int
    field_shape: tuple[int, ...]
    dt: float
    val_scores: dict[tuple[float, int], float] = field(default_factory=dict)
    sindy: Any = None

    @property
    def n_pod(self) -> int:
        return int(self.modes.shape[1])

    def encode(self, u: Any) -> np.ndarray:
        """``(..., C, *grid)`` -> ``(..., n_pod)``."""
        a = _as_float64(u, "u")
        lead = a.shape[:a.ndim - len(self.field_shape)]
        return a.reshape(lead + (-1,)) @ self.modes

    def decode(self, z: np.ndarray) -> np.ndarray:
        """``(..., n_pod)`` -> ``(..., C, *grid)``."""
        z = np.asarray(z, dtype=np.float64)
        return (z @ self.modes.T).reshape(z.shape[:-1] + self.field_shape)

    def rhs(self, z: np.ndarray) -> np.ndarray:
        """SINDy right-hand side for one state ``(n_pod,)``; NaN for a non-finite state."""
        z = np.asarray(z, dtype=np.float64)
        if not np.all(np.isfinite(z)):
            return np.full(z.shape, np.nan)
        with np.errstate(over="ignore", invalid="ignore"):
            if self.powers is not None:
                theta = np.prod(z[None, :] ** self.powers, axis=1)
                return self.coefficients @ theta
            return np.asarray(self.sindy.predict(z.reshape(1, -1))).ravel()

    def forecast(self, u0: Any, t: Any, return_info: bool = False, warn: bool = True) -> Any:
        """Integrate the SINDy ODE from ``z0 = modes.T u0`` and lift with the modes.

        Args:
            u0: ``(C, *grid)`` initial frame.
            t: ``(n_t,)`` strictly increasing output times, ``t[0]`` the time of ``u0``.
            return_info: also return ``{"success", "n_reached", "message", "nfev"}``.
            warn: log a warning when the integrator stops early (else an INFO line; the
                validation sweep tries settings that are expected to diverge).

        Returns:
            ``(n_t, C, *grid)`` float64 (frame 0 is the projection of ``u0``); frames the
            integrator did not reach are NaN. With ``return_info``: ``(forecast, info)``.
        """
        integrate = _require("scipy.integrate", "the SINDy forecast")
        tt = _as_float64(t, "t").ravel()
        if tt.size < 1 or np.any(np.diff(tt) <= 0):
            raise DataError(f"PODSINDyModel.forecast: t must hold >= 1 strictly increasing values, "
                            f"found {tt.size} values")
        z0 = self.encode(u0)
        if z0.shape != (self.n_pod,):
            raise DataError(f"PODSINDyModel.forecast: u0 must be one frame {self.field_shape}, "
                            f"found {np.shape(u0)}")
        z = np.full((tt.size, self.n_pod), np.nan)
        z[0] = z0
        info = {"success": True, "n_reached": 1, "message": "", "nfev": 0}
        if tt.size > 1:
            with np.errstate(over="ignore", invalid="ignore"):
                sol = integrate.solve_ivp(lambda _s, y: self.rhs(y), (tt[0], tt[-1]), z0, t_eval=tt)
            n = sol.y.shape[1]
            z[:n] = sol.y.T
            ok = bool(sol.success) and n == tt.size and bool(np.all(np.isfinite(sol.y)))
            info = {"success": ok, "n_reached": int(n), "message": str(sol.message), "nfev": int(sol.nfev)}
            if not ok:
                log.log(logging.WARNING if warn else logging.INFO, "POD-SINDy forecast stopped at t = %g of %g (%s)",
                        tt[max(n - 1, 0)], tt[-1], sol.message)
        out = self.decode(z)
        return (out, info) if return_info else out

    def forecast_trajectories(self, u: Any, t: Any, warn: bool = True) -> np.ndarray:
        """Forecast every trajectory of ``u`` ``(n_traj, n_t, C, *grid)`` from its first frame at
        times ``t`` (``(n_t,)`` shared, or ``(n_traj, n_t)``); returns ``(n_traj, n_t, C, *grid)``
        (``warn``: see :meth:`forecast`)."""
        a = _as_float64(u, "u")
        tt = _as_float64(t, "t")
        if tt.ndim == 1:
            tt = np.broadcast_to(tt, (a.shape[0], tt.size))
        if tt.shape != a.shape[:2]:
            raise DataError(f"forecast_trajectories: t has shape {tt.shape}, "
                            f"expected {a.shape[:2]} or ({a.shape[1]},)")
        return np.stack([self.forecast(a[i, 0], tt[i], warn=warn) for i in range(a.shape[0])])


def _sindy_model(modes: np.ndarray, z: list[np.ndarray], dz: list[np.ndarray], dt: float,
                 threshold: float, degree: int, field_shape: tuple[int, ...]) -> PODSINDyModel:
    sindy = _fit_sindy(_make_sindy(threshold, degree), z, dz, dt)
    coef = np.asarray(sindy.coefficients(), dtype=np.float64)
    powers = getattr(sindy.feature_library, "powers_", None)  # exponents; else rhs uses predict
    powers = None if powers is None else np.asarray(powers)
    if powers is not None and powers.shape != (coef.shape[1], modes.shape[1]):
        powers = None
    return PODSINDyModel(modes=modes, coefficients=coef, powers=powers,
                         feature_names=list(sindy.get_feature_names()), threshold=float(threshold),
                         degree=int(degree), field_shape=field_shape, dt=float(dt), sindy=sindy)


#: Copies of the float64 polynomial library held while pysindy fits it: the cylinder wake's
#: degree-2 fit (517 POD coefficients, a 1.4 GB library) held 13.7 GB when it was killed for
#: memory (2026-12-02); a lower bound.
SINDY_LIBRARY_COPIES = 10
#: Largest sweep of one library degree attempted, in multiply-adds of its ridge regressions
#: (:func:`sindy_sweep_cost`): 2.4e13 is about 10 minutes at the 4e10 per second that sklearn's
#: ``ridge_regression`` reached on one core of the 2-core CPU machine (20000 x 600 library,
#: 2026-12-02). Burgers 2-D's degree 2 (69 POD coefficients, 2484 terms, 20000 samples) would
#: need about 4e14 (3 hours); the paper swept only degree 1 there.
SINDY_MAX_MULTIPLY_ADDS = 2.4e13


def sindy_sweep_cost(n_pod: int, degree: int, n_samples: int, n_thresholds: int,
                     max_iter: int = PAPER_STLSQ_MAX_ITER) -> float:
    """Upper bound on the multiply-adds of sweeping ``n_thresholds`` STLSQ fits of one library
    degree: pysindy's STLSQ solves one ridge regression per target (``n_pod``) and iteration
    (``max_iter``), each forming ``X^T X`` of the ``n_samples x n_library`` library
    (``n_library = C(n_pod + degree, degree) - 1`` terms without the bias) at its first iteration;
    later iterations see fewer terms, hence an upper bound."""
    n_lib = math.comb(int(n_pod) + int(degree), int(degree)) - 1
    return float(n_thresholds) * max_iter * int(n_pod) * float(n_samples) * float(n_lib) ** 2


def _affordable_degrees(degrees: Sequence[int], n_pod: int, n_samples: int, n_thresholds: int) -> list[int]:
    """The library degrees whose sweep fits in memory (``C(n_pod + degree, degree)`` terms per
    sample, :data:`SINDY_LIBRARY_COPIES` copies) and in time (:func:`sindy_sweep_cost` at most
    :data:`SINDY_MAX_MULTIPLY_ADDS`); a degree that does not is left out with a warning, and none
    left is a one-line ResourceError, both before any fit."""
    room, desc = available_memory()
    kept = []
    for deg in degrees:
        need = 8.0 * SINDY_LIBRARY_COPIES * math.comb(int(n_pod) + int(deg), int(deg)) * n_samples
        cost = sindy_sweep_cost(n_pod, deg, n_samples, n_thresholds)
        if need > room:
            log.warning("POD-SINDy: degree %d left out of the sweep: its library of %d POD coefficients "
                        "would need about %s (this machine has %s)", deg, n_pod, format_bytes(need), desc)
        elif cost > SINDY_MAX_MULTIPLY_ADDS:
            log.warning("POD-SINDy: degree %d left out of the sweep: %d POD coefficients x %d samples would "
                        "cost about %.2g multiply-adds (limit %.2g, about 10 minutes on one core)",
                        deg, n_pod, n_samples, cost, SINDY_MAX_MULTIPLY_ADDS)
        else:
            kept.append(int(deg))
    if not kept:
        raise ResourceError(f"POD-SINDy: no library degree of {list(degrees)} fits in memory and time for {n_pod} "
                            f"POD coefficients x {n_samples} samples (this machine has {desc}); evaluate without "
                            f"sindy (--baselines closure,dns,dmd)")
    return kept


def fit_pod_sindy(train: Any, val: Any, dt: float, n_pod: int, *,
                  thresholds: Sequence[float] = PAPER_SINDY_THRESHOLDS,
                  degrees: Sequence[int] = PAPER_SINDY_DEGREES,
                  t_val: Any = None, val_steps: int | None = None) -> PODSINDyModel:
    """Fit the paper's POD-SINDy baseline, choosing (threshold, degree) on the validation split.

    Args:
        train: ``(n_traj, n_t, C, *grid)`` training trajectories (uniform step ``dt``).
        val: ``(n_val, n_t_val, C, *grid)`` validation trajectories.
        dt: the time step of ``train`` (forward differences use it).
        n_pod: POD size (the paper: :func:`baseline_rank` of the coarse-grid size).
        thresholds, degrees: the grid (default: the paper's sweep).
        t_val: validation output times, ``(n_t_val,)`` or ``(n_val, n_t_val)``; default
            ``dt * arange(n_t_val)``.
        val_steps: score only the first ``val_steps`` validation frames (the paper's wave_1d
            scores 201); default all.

    Returns:
        The selected :class:`PODSINDyModel`, with ``val_scores`` for the grid (``inf`` for a
        setting whose validation forecast diverged; a degree whose library does not fit in
        memory is left out, with a warning).
    """
    from pymsde.evaluate.metrics import relative_error_summary

    for module in ("sklearn.utils.extmath", "pysindy", "scipy.integrate"):  # fail before the POD
        _require(module, "the POD-SINDy baseline")
    a, v = _as_float64(train, "train"), _as_float64(val, "val")
    if a.ndim < 3 or a.shape[1] < 2 or v.ndim != a.ndim or v.shape[2:] != a.shape[2:]:
        raise DataError(f"fit_pod_sindy: train {a.shape} and val {v.shape} must be "
                        f"(n_traj, n_t >= 2, C, *grid) with the same frame shape")
    if not dt > 0 or not thresholds or not degrees:
        raise ConfigError(f"fit_pod_sindy: need dt > 0 and a non-empty grid, found dt={dt}, "
                          f"thresholds={list(thresholds)}, degrees={list(degrees)}")
    if val_steps is not None:
        v = v[:, :int(val_steps)]
    tv = dt * np.arange(v.shape[1]) if t_val is None else _as_float64(t_val, "t_val")[..., :v.shape[1]]
    modes = pod_modes(a, n_pod)
    zt = a.reshape(a.shape[0], a.shape[1], -1) @ modes                # (n_traj, n_t, n_pod)
    z = [zi[:-1].copy() for zi in zt]
    dz = [np.diff(zi, axis=0) / dt for zi in zt]
    best, scores = None, {}
    for deg in _affordable_degrees(degrees, n_pod, sum(len(zi) for zi in z), len(thresholds)):
        for thr in thresholds:
            m = _sindy_model(modes, z, dz, dt, thr, deg, tuple(a.shape[2:]))
            score = relative_error_summary(m.forecast_trajectories(v, tv, warn=False), v)["mean"]
            scores[(float(thr), int(deg))] = score
            log.info("POD-SINDy threshold %g degree %d: validation error %.4g %%", thr, deg, score)
            if best is None or score < best[0]:
                best = (score, m)
    if not np.isfinite(best[0]):
        log.warning("fit_pod_sindy: every setting diverged on the validation split; keeping the first")
    best[1].val_scores = scores
    return best[1]
