"""Data-parallel training on ``torch.distributed``: one model, ``N`` processes (docs/distributed.md).

``torchrun --standalone --nproc-per-node N -m pymsde train DATA ...`` (or any launcher that sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``) starts ``N``
copies of the command. :func:`session` joins them into one process group (gloo for CPU
tensors, NCCL for CUDA tensors: ``"cpu:gloo,cuda:nccl"`` when CUDA is there) and
:func:`pymsde.training.fit` then trains one model:

- every rank builds the same model (same seed) and walks the same global batches of
  ``batch_windows`` windows; rank ``r`` takes the slice :func:`rank_slice` of each batch
  (``batch_windows`` must be a multiple of the world size, :func:`check_batch`);
- the objective is wrapped in ``torch.nn.parallel.DistributedDataParallel``, which averages the
  gradients over the ranks during backward; each rank scales its loss by
  ``world_size * n_rank / n_batch`` (:meth:`Dist.loss_scale`), so the averaged gradient is the
  gradient of the global batch's mean loss, as one process computes it (a rank without a window,
  in a short last batch, evaluates a window with weight 0 so that every rank joins the
  all-reduce);
- the random numbers of a window are keyed by (seed, step, its position in the global batch)
  (:mod:`pymsde.util.rng`), so they are the same whatever the world size;
- rank 0 alone writes the run directory and holds its lock; it alone validates, and broadcasts
  the record, so every rank takes the same best-model and stopping decisions; the logged terms
  are summed over the ranks (weighted by their share of the batch) every ``log_every`` steps;
- a stop (SIGINT / SIGTERM on any rank, the time budget of rank 0) is agreed on at every step.

Errors: a check that fails on one rank only (the run directory's lock, rank 0's writes) is
agreed on (:meth:`Dist.agree`): every rank raises it, as one line. A rank that dies makes
``torchrun`` stop the others.
"""
from __future__ import annotations

import contextlib
import datetime
import gc
import inspect
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

from pymsde.util import errors as errmod
from pymsde.util.errors import BackendUnavailableError, ConfigError, PymsdeError

#: the environment a launcher sets for each process
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def rank_slice(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rank ``rank``'s part ``[lo, hi)`` of ``n`` items split over ``world_size`` ranks: contiguous,
    disjoint, covering ``range(n)``, sizes differing by at most one (the first ranks larger)."""
    q, r = divmod(int(n), int(world_size))
    lo = rank * q + min(rank, r)
    return lo, lo + q + (1 if rank < r else 0)


def check_batch(batch_windows: int, world_size: int) -> None:
    """ConfigError unless every rank gets the same number of windows of a full batch."""
    if world_size > 1 and batch_windows % world_size:
        raise ConfigError(f"train.batch_windows = {batch_windows} is not a multiple of the world size {world_size}; "
                          f"expected e.g. --batch-windows {world_size * max(1, batch_windows // world_size)}")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} = {raw!r}; expected an integer (set by torchrun)") from None


@dataclass(frozen=True)
class Dist:
    """This process's place in a data-parallel run (the default: one process alone).

    Every collective method is a no-op (or the identity) when ``world_size == 1``.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes, validates and holds the lock."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def slice(self, n: int) -> tuple[int, int]:
        return rank_slice(n, self.rank, self.world_size)

    def loss_scale(self, n_rank: int, n_batch: int) -> float:
        """The factor of this rank's mean loss over its ``n_rank`` windows such that the gradients,
        averaged over the ranks, are those of the mean over the ``n_batch`` windows (1.0 alone)."""
        return 1.0 if not self.active else self.world_size * n_rank / n_batch

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (picklable objects)."""
        if not self.active:
            return obj
        box = [obj if self.main else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def max(self, values: list[int]) -> list[int]:
        """The elementwise maximum over the ranks of small integers (one all-reduce of a CPU
        tensor, over gloo): e.g. a stop flag that any rank may raise."""
        if not self.active:
            return [int(v) for v in values]
        x = torch.tensor([int(v) for v in values], dtype=torch.int64)
        torch.distributed.all_reduce(x, op=torch.distributed.ReduceOp.MAX)
        return x.tolist()

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` summed over the ranks (in place; NCCL for CUDA tensors, gloo for CPU ones)."""
        if self.active:
            torch.distributed.all_reduce(x, op=torch.distributed.ReduceOp.SUM)
        return x

    def agree(self, err: BaseException | None) -> None:
        """Raise on every rank when any rank failed: its own error where it failed, elsewhere the
        first failure's class (a pymsde error; else PymsdeError) and message, naming the rank."""
        if not self.active:
            if err is not None:
                raise err
            return
        mine = None if err is None else (type(err).__name__, " ".join(str(err).split()) or type(err).__name__)
        everyone: list = [None] * self.world_size
        torch.distributed.all_gather_object(everyone, mine)
        if err is not None:
            raise err
        failed = [(r, f) for r, f in enumerate(everyone) if f is not None]
        if failed:
            r, (name, msg) = failed[0]
            cls = getattr(errmod, name, None)
            text = f"{msg} (on rank {r} of {self.world_size})"
            try:
                exc = cls(text) if isinstance(cls, type) and issubclass(cls, PymsdeError) else None
            except TypeError:
                exc = None
            raise exc if exc is not None else PymsdeError(f"{name}: {text}")

    def run_agreed(self, fn: Callable[..., Any], *args, main_only: bool = False, **kwargs) -> Any:
        """``fn(*args, **kwargs)`` (on rank 0 only with ``main_only``), then :meth:`agree` on the outcome."""
        result, err = None, None
        try:
            if self.main or not main_only:
                result = fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - every failure is agreed on, then re-raised
            err = e
        self.agree(err)
        return result

    def wrap(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``module`` in ``DistributedDataParallel`` (alone: ``module`` itself). Every parameter takes
        part in every step's loss, buffers are constants (not broadcast)."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = None
        if device.type == "cuda":
            ids = [device.index if device.index is not None else torch.cuda.current_device()]
        # the buffers (the coarse-graining kernels' constants) are equal on every rank: no sync per
        # forward (``forward_sync_buffers`` replaces ``broadcast_buffers`` in newer torch)
        newer = "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
        quiet = {"forward_sync_buffers": False} if newer else {"broadcast_buffers": False}
        return DistributedDataParallel(module, device_ids=ids, **quiet)


def from_environment() -> Dist:
    """The place the launcher's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) gives
    this process; ``Dist()`` without one. ConfigError for inconsistent values."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ConfigError(f"torch.distributed environment: RANK = {rank}, WORLD_SIZE = {world}, LOCAL_RANK = "
                          f"{local}; expected 0 <= RANK < WORLD_SIZE and LOCAL_RANK >= 0")
    return Dist(rank, world, local)


def current() -> Dist:
    """This process's place in the initialised default process group (``Dist()`` without one)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return Dist()
    return Dist(torch.distributed.get_rank(), torch.distributed.get_world_size(), _env_int("LOCAL_RANK", 0))


@contextlib.contextmanager
def session(timeout_s: float = 1800.0) -> Iterator[Dist]:
    """Join the process group the environment describes (nothing when ``WORLD_SIZE`` is 1 or a
    group is already initialised: then that group is used and left as it is); leave it at the end.

    On a machine with CUDA the group serves CUDA tensors over NCCL (each process on the GPU
    ``LOCAL_RANK``) and CPU tensors over gloo; without CUDA, gloo only.

    Raises:
        BackendUnavailableError: torch.distributed is missing or the group cannot be formed.
    """
    env = from_environment()
    if env.world_size == 1 or (torch.distributed.is_available() and torch.distributed.is_initialized()):
        yield current()
        return
    if not torch.distributed.is_available():
        raise BackendUnavailableError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(env.local_rank % torch.cuda.device_count())
        backend = "cpu:gloo,cuda:nccl"
    try:
        torch.distributed.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError) as err:
        first = (str(err).strip().splitlines() or [""])[0][:300]
        raise BackendUnavailableError(f"torch.distributed: cannot form the {backend} process group of rank "
                                      f"{env.rank} of {env.world_size} ({type(err).__name__}: {first})") from None
    try:
        yield current()
        # a normal end: every rank is here before any leaves. Without it a rank that tears its
        # gloo pairs down while a peer's are still live can abort the peer ("terminate called
        # without an active exception", 1 run in 3 on 2 cores); the DDP wrapper's cycles go first.
        gc.collect()
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


__all__ = ["Dist", "rank_slice", "check_batch", "from_environment", "current", "session", "ENV_VARS"]
