"""Small helpers over :mod:`torch.distributed` for runs launched with ``torchrun``.

genzoo has no engine of its own: processes are started by ``torchrun`` (which sets RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT), the default process group is PyTorch's,
gloo on CPU and NCCL on CUDA. Outside ``torchrun`` every helper is a no-op for one process, so
the same code runs in both settings. All collectives are on the default group and must be
called by every rank in the same order.
"""

from __future__ import annotations

import dataclasses
import datetime
import os

import torch
import torch.distributed as dist

from genzoo.core.errors import GenzooError

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
STARTUP_TIMEOUT_ENV = "GENZOO_DIST_STARTUP_TIMEOUT"


@dataclasses.dataclass(frozen=True)
class DistContext:
    """Where this process stands: its ``rank`` among ``world_size`` processes, its
    ``local_rank`` on this machine, the ``device`` it should compute on, and the ``backend``
    of the default group (None for a single process not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when the environment holds torchrun's RANK and WORLD_SIZE."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def threads_per_process(n_processes: int, cores: int | None = None) -> int:
    """torch threads for each of ``n_processes`` processes sharing ``cores`` CPU cores (None:
    the cores this process may run on): cores // n_processes, at least 1, so that processes x
    threads <= cores. An OpenMP thread that waits for a busy core stalls the whole product (a
    784 x 500 float32 product ran 7x slower with two threads beside one busy process than with
    one thread)."""
    if cores is None:
        affinity = getattr(os, "sched_getaffinity", None)
        cores = len(affinity(0)) if affinity is not None else os.cpu_count()
    return max(1, (cores or 1) // max(1, n_processes))


def balance_threads(n_processes: int) -> int | None:
    """Set torch's intra-op threads to :func:`threads_per_process` for ``n_processes``
    processes on this machine and return that number, unless the user chose the threads
    (OMP_NUM_THREADS set, as torchrun does unless told otherwise): then change nothing and
    return None."""
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    n = threads_per_process(n_processes)
    torch.set_num_threads(n)
    return n


def init_from_env(
    device: str | torch.device | None = None,
    timeout_s: float = 1800.0,
    startup_timeout_s: float | None = None,
) -> DistContext:
    """Join the default process group that ``torchrun`` describes in the environment.

    ``device``: ``"cpu"`` (gloo), ``"cuda"`` (NCCL; each process takes ``cuda:LOCAL_RANK``) or
    None (CUDA when available, else CPU). Without torchrun's variables this is a single-process
    context (rank 0 of 1, no group). On the CPU each process takes cores / LOCAL_WORLD_SIZE
    torch threads unless OMP_NUM_THREADS is set (:func:`balance_threads`). Calling it again once the group exists returns the context
    of that group. ``timeout_s`` bounds how long a collective waits for a lost peer;
    ``startup_timeout_s`` (None: ``$GENZOO_DIST_STARTUP_TIMEOUT``, else 300 s) how long the
    processes wait for each other to start, after which the run stops with a GenzooError
    instead of hanging (a WORLD_SIZE whose other processes were never launched).
    """
    want = torch.device(device) if device is not None else None
    if want is None:
        want = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not launched_by_torchrun():
        return DistContext(device=want)
    missing = [k for k in _TORCHRUN_VARS if k not in os.environ]
    if missing:
        raise GenzooError(
            f"the environment names a distributed run but lacks {', '.join(missing)}; "
            "launch with torchrun (e.g. torchrun --nproc-per-node 2 -m genzoo ...)"
        )
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    if want.type == "cpu":  # the processes on this machine share its cores
        balance_threads(int(os.environ.get("LOCAL_WORLD_SIZE", world)))
    if want.type == "cuda":
        if not torch.cuda.is_available():
            raise GenzooError("device cuda was asked for but CUDA is not available; use cpu")
        want = torch.device("cuda", local_rank if want.index is None else want.index)
        torch.cuda.set_device(want)
        backend = "nccl"
    elif want.type == "cpu":
        backend = "gloo"
    else:
        raise GenzooError(f"device {want}: distributed runs support cpu (gloo) and cuda (nccl)")
    if not dist.is_initialized():
        if startup_timeout_s is None:
            startup_timeout_s = float(os.environ.get(STARTUP_TIMEOUT_ENV, "300"))
        startup = datetime.timedelta(seconds=startup_timeout_s)
        where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
        try:
            # Rank 0's store waits for all WORLD_SIZE processes to connect, the others retry
            # connecting, each for ``startup`` at most; then the group's own timeout applies.
            store = _rendezvous_store(rank, world, startup)
            dist.init_process_group(
                backend=backend,
                rank=rank,
                world_size=world,
                timeout=datetime.timedelta(seconds=timeout_s),
                store=store,
            )
        except RuntimeError as exc:  # torch's DistStoreError / DistNetworkError
            raise GenzooError(
                f"process {rank} of {world} found no complete group at {where} within "
                f"{startup_timeout_s:g} s ({type(exc).__name__}); start all {world} processes "
                "(torchrun on every machine, the same MASTER_ADDR/MASTER_PORT), or unset "
                f"RANK and WORLD_SIZE for a one-process run ({STARTUP_TIMEOUT_ENV} sets the wait)"
            ) from exc
        store.set_timeout(datetime.timedelta(seconds=timeout_s))
    return DistContext(rank, world, local_rank, want, dist.get_backend())


def _rendezvous_store(rank: int, world: int, timeout: datetime.timedelta):
    """The TCP store the processes meet at (MASTER_ADDR:MASTER_PORT, hosted by rank 0 unless
    torchrun's agent hosts it), waiting ``timeout`` at most for the others; under torchrun
    with restarts, its keys prefixed by the restart count.

    torchrun keeps one store for the whole job, so after ``--max-restarts`` restarts the group
    the previous attempt's keys (gloo's peer addresses) are still there, and a new rank can
    read a dead peer's address before the new peer overwrites it ("connectFullMesh failed ...
    Connection refused"). A prefix per attempt gives every attempt keys of its own.
    """
    # The agent hosts the store when it says so; otherwise rank 0 does (as torch's env://).
    agent_hosts = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        world,
        is_master=not agent_hosts and rank == 0,
        timeout=timeout,
    )
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    return store if restart is None else dist.PrefixStore(f"genzoo/attempt_{restart}", store)


def is_initialized() -> bool:
    """True inside an initialised default process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    """Number of processes in the default group (1 outside a process group)."""
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    """True on rank 0 and in a single process: the process that prints and writes files."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_initialized() and world_size() > 1:
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def destroy() -> None:
    """Leave the default process group, if any (safe to call more than once)."""
    if is_initialized():
        dist.destroy_process_group()


def _comm_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` (n_r, *rest) of every rank along dim 0, in rank order.

    The first dimension may differ between ranks (0 included); ``rest`` and the dtype must
    be the same on every rank. Returns (sum_r n_r, *rest) on ``tensor``'s device, identical on
    every rank; in a single process, ``tensor`` itself.
    """
    if not is_initialized() or world_size() == 1:
        return tensor
    world, device = world_size(), _comm_device()
    local = tensor.detach().to(device).contiguous()
    n = torch.tensor([local.shape[0]], dtype=torch.int64, device=device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    counts = [int(s) for s in sizes]
    longest = max(counts)
    # all_gather needs equal shapes: pad to the longest, then cut each part to its own length.
    padded = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype, device=device)
    padded[: local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:c] for p, c in zip(parts, counts)]).to(tensor.device)


__all__ = [
    "DistContext",
    "all_gather_cat",
    "balance_threads",
    "barrier",
    "destroy",
    "init_from_env",
    "is_initialized",
    "is_main",
    "launched_by_torchrun",
    "rank",
    "threads_per_process",
    "world_size",
]
