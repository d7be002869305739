"""Training windows: runs of M consecutive observations of one trajectory.

The amortized variational method (docs/method.md section 5) trains on windows of ``M`` consecutive
observations ``t_s .. t_{s+M-1}`` of one trajectory. Consecutive windows of a trajectory share
``overlap`` points (one by default), so window starts are ``0, M-1, 2(M-1), ...``; every
interval ``[t_k, t_{k+1}]`` then lies in exactly one window and the residual integral of the
ELBO covers the whole trajectory once.

The end of a trajectory: when ``(n_t - 1)`` is not a multiple of the stride ``M - overlap``,
the last full window would stop short of the final step. With ``last="shift"`` (default) one
more window is added that ends exactly at the final step (start ``n_t - M``; it overlaps its
predecessor by more than ``overlap`` points), so every step is covered and every window has
``M`` points. ``last="drop"`` leaves those final steps out.

The order of an epoch is a pure function of ``(seed, epoch)`` (:meth:`WindowSampler.epoch_order`),
so a training run resumed at epoch ``e``, position ``p`` sees exactly the windows it would have
seen without the interruption.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from pymsde.data.trajectories import Trajectories
from pymsde.util.errors import ConfigError


def window_starts(n_t: int, window: int, overlap: int = 1, last: str = "shift") -> np.ndarray:
    """Start indices of the windows of one trajectory of ``n_t`` steps (see the module docstring).

    >>> window_starts(10, 4).tolist()      # stride 3: [0..3], [3..6], [6..9]
    [0, 3, 6]
    >>> window_starts(11, 4).tolist()      # the last window is shifted to end at step 10
    [0, 3, 6, 7]
    """
    _check_window(n_t, window, overlap, last)
    stride = window - overlap
    starts = np.arange(0, n_t - window + 1, stride, dtype=np.int64)
    if last == "shift" and starts[-1] + window < n_t:
        starts = np.append(starts, n_t - window)
    return starts


def _check_window(n_t: int, window: int, overlap: int, last: str) -> None:
    if int(window) != window or window < 2:
        raise ConfigError(f"window: {window} observations; expected an integer >= 2")
    if window > n_t:
        raise ConfigError(f"window: {window} observations is longer than the trajectories ({n_t} times); "
                          f"expected window <= {n_t}")
    if int(overlap) != overlap or not 0 <= overlap < window:
        raise ConfigError(f"overlap: {overlap}; expected an integer in [0, window - 1] = [0, {window - 1}]")
    if last not in ("shift", "drop"):
        raise ConfigError(f"last: {last!r}; expected 'shift' or 'drop'")


class WindowSampler:
    """Shuffled epochs of windows ``(trajectory index, start index)`` of ``window`` consecutive steps.

    Args:
        traj: the training trajectories.
        window: ``M``, observations per window (>= 2, <= ``traj.n_t``).
        seed: seed of the shuffling; the order of epoch ``e`` depends only on ``(seed, e)``.
        overlap: points shared by consecutive windows of a trajectory (default 1).
        last: ``"shift"`` (default: a final window ending at the last step) or ``"drop"``.

    ``len(sampler)`` is the number of windows per epoch. Iterating the sampler yields the
    ``(traj_index, start)`` pairs of the current epoch (``sampler.epoch``, then advanced by
    one); :meth:`batches` yields ``(B, 2)`` int64 arrays and can start mid-epoch.
    """

    def __init__(self, traj: Trajectories, window: int, seed: int = 0, overlap: int = 1, last: str = "shift"):
        self.traj = traj
        self.window = int(window)
        self.overlap = int(overlap)
        self.seed = int(seed)
        self.last = last
        self.starts = window_starts(traj.n_t, window, overlap, last)
        # All (trajectory, start) pairs in natural order; an epoch is a permutation of these rows.
        self.pairs = np.stack(np.meshgrid(np.arange(traj.n_traj, dtype=np.int64), self.starts,
                                          indexing="ij"), axis=-1).reshape(-1, 2)
        self.epoch = 0

    def __len__(self) -> int:
        return int(self.pairs.shape[0])

    @property
    def windows_per_trajectory(self) -> int:
        return int(self.starts.size)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The ``(len(self), 2)`` int64 array of ``(traj_index, start)`` rows of ``epoch``, shuffled.

        A pure function of ``(seed, epoch)``: resuming training needs only those two numbers.
        """
        if epoch < 0:
            raise ConfigError(f"epoch: {epoch}; expected >= 0")
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(epoch)]))
        return self.pairs[rng.permutation(len(self))]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self.epoch_order(self.epoch)
        self.epoch += 1
        for i, s in order.tolist():
            yield i, s

    def batches(self, batch_size: int, epoch: int | None = None, start_at: int = 0,
                drop_last: bool = False) -> Iterator[np.ndarray]:
        """Yield ``(B, 2)`` int64 arrays of ``(traj_index, start)`` over one epoch.

        Args:
            batch_size: windows per batch (the last batch may be smaller unless ``drop_last``).
            epoch: which epoch (default: ``self.epoch``, which is then advanced by one).
            start_at: position in the epoch's order to resume from (a multiple of
                ``batch_size`` when resuming after whole batches).
        """
        if batch_size < 1:
            raise ConfigError(f"batch_size: {batch_size}; expected >= 1")
        if epoch is None:
            epoch = self.epoch
            self.epoch += 1
        order = self.epoch_order(epoch)
        if not 0 <= start_at <= len(order):
            raise ConfigError(f"start_at: {start_at}; expected 0 <= start_at <= {len(order)}")
        for b in range(start_at, len(order), batch_size):
            chunk = order[b:b + batch_size]
            if drop_last and len(chunk) < batch_size:
                return
            yield chunk
