"""Data-parallel training over :mod:`torch.distributed`: shards of each global batch, their
random streams and buffers, and the exact averaging of gradients across processes.

The unit of parallel work is a *shard*, not a process. ``train.shards = S`` cuts every global
minibatch of ``train.batch_size`` rows (in the seeded order of the epoch) into S contiguous
parts (sizes differ by at most one, the first ones larger). Shard s has

* its own random stream, re-seeded at every Trainer step from ``(train.seed, step, s)``, so the
  draws never depend on which process runs the shard, and a resumed run derives them again;
* its own copy of the model's buffers (persistent Gibbs chains, step counters, ...), swapped
  into the model around each of its ``loss`` calls, so with PCD each shard keeps its own chains.

A run on W processes (W must divide S) gives rank r the shards r*S/W ... (r+1)*S/W - 1; a
single process runs all S in sequence. Each shard's loss, a mean over its n_s rows, is scaled
by n_s / n (n: rows of the global batch) before ``backward``, so the gradients summed over the
shards are the gradient of the global batch mean. Gradients accumulate over a rank's shards in
``.grad`` and are then summed across ranks with one ``all_reduce`` (SUM) of one flat buffer.
The same parameters, the same rows, the same random numbers and the same buffers give the same
update for any W dividing S, up to the rounding of the floating-point sums (the cross-rank
sum is taken in float64 and rounded once to the parameters' dtype; the tests find the 2-process
and 1-process parameters equal to 1e-6 relative). With S = 1 (the default) the Trainer runs as
it always has: one generator seeded from ``train.seed`` and checkpointed, the model's own
buffers, no scaling.

Buffers: shard 0's are the model's own between steps (validation, samples and the model file
of a checkpoint see them); every shard's are checkpointed beside the trainer state, so a run
resumed on any W dividing S continues every chain. Running statistics (batch norm) are kept
per shard too, each from its own rows. Non-persistent buffers are shared, not swapped.

Why an explicit all-reduce and not :class:`torch.nn.parallel.DistributedDataParallel`: DDP
reduces every parameter that takes part in a ``forward``, once per backward, and by default
broadcasts rank 0's buffers before each forward. The Trainer instead (a) steps parameter
groups in turn (a GAN's phases: the generator's loss leaves gradients on the discriminator
that must *not* be averaged or applied), (b) accumulates several shards per process, and
(c) keeps per-shard buffers (persistent chains) that a broadcast would overwrite. Reducing
exactly the parameters the current optimizer steps, after all local shards, does all three
with one collective per update and no hooks; a parameter that got no gradient on any rank
keeps ``grad = None`` (so the optimizer skips it, as in one process).

Figures (the entries of ``loss``'s dict) are combined the same way, weighted by n_s / n and
summed over ranks, so every logged figure is the global-batch average.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
import torch.distributed as dist

from genzoo.core.errors import ConfigError
from genzoo.training.seeding import seed_for


@dataclasses.dataclass(frozen=True)
class ShardPlan:
    """Which shards of each global batch this process runs.

    ``shards``: S, shards per global batch; ``world_size``: W processes (W divides S);
    ``rank``: this process. ``local``: the global indices of this rank's shards.
    """

    shards: int
    world_size: int = 1
    rank: int = 0

    def __post_init__(self) -> None:
        if self.shards % self.world_size != 0:
            raise ConfigError(
                f"train.shards={self.shards} is not a multiple of the {self.world_size} "
                f"processes: run on a number of processes that divides {self.shards} (a "
                f"resumed run keeps its shards and their persistent chains), or start a new "
                f"run with train.shards={self.world_size} or a multiple of it"
            )

    @property
    def per_rank(self) -> int:
        return self.shards // self.world_size

    @property
    def local(self) -> range:
        return range(self.rank * self.per_rank, (self.rank + 1) * self.per_rank)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def sharded(self) -> bool:
        """True when batches are cut into shards (S > 1); False is the classic one-stream run."""
        return self.shards > 1

    def split(self, n: int) -> list[tuple[int, int]]:
        """(start, stop) rows of this rank's shards within a global batch of ``n`` rows."""
        bounds = [0]
        base, extra = divmod(n, self.shards)
        for s in range(self.shards):
            bounds.append(bounds[-1] + base + (1 if s < extra else 0))
        return [(bounds[s], bounds[s + 1]) for s in self.local]


def shard_seed(seed: int, step: int, shard: int) -> int:
    """Seed of shard ``shard``'s stream during the Trainer step after ``step`` completed ones."""
    return seed_for("shard", seed, step, shard)


class ShardBuffers:
    """Per-shard copies of a model's buffers, swapped into the model around a shard's work.

    Swapping replaces the tensor objects in each owning module's ``_buffers`` (no copies), so a
    model that updates a buffer in place or assigns a new tensor to it works alike.
    """

    def __init__(self, model: torch.nn.Module, n_local: int) -> None:
        self.model = model
        self.slots: list[tuple[torch.nn.Module, str, str]] = []
        for mod_name, mod in model.named_modules():
            for name, buf in mod._buffers.items():
                if buf is not None and name not in mod._non_persistent_buffers_set:
                    full = f"{mod_name}.{name}" if mod_name else name
                    self.slots.append((mod, name, full))
        current = self._read()
        self.copies: list[list[torch.Tensor]] = [
            [t.clone() for t in current] for _ in range(n_local)
        ]
        self._held: int | None = None
        self.hold(0)

    @property
    def names(self) -> list[str]:
        return [full for _, _, full in self.slots]

    def _read(self) -> list[torch.Tensor]:
        return [mod._buffers[name] for mod, name, _ in self.slots]

    def hold(self, i: int) -> None:
        """Put local shard ``i``'s buffers into the model (saving the ones it holds now)."""
        if self._held == i:
            return
        if self._held is not None:
            self.copies[self._held] = self._read()
        for (mod, name, _), t in zip(self.slots, self.copies[i]):
            mod._buffers[name] = t
        self._held = i

    def local_stacks(self) -> dict[str, torch.Tensor]:
        """Buffer name -> (n_local, *shape) stack of this rank's shards (shard order)."""
        self.hold(0)  # refreshes copies[held] from the model
        self.copies[0] = self._read()
        return {
            full: torch.stack([c[j] for c in self.copies])
            for j, full in enumerate(self.names)
        }

    def load_local(self, stacks: dict[str, torch.Tensor], local: Sequence[int]) -> None:
        """Take this rank's shards ``local`` (global indices) from ``stacks`` (name -> (S, ...))."""
        missing = set(self.names) - set(stacks)
        if missing:
            raise KeyError(f"no saved shard buffers for {sorted(missing)}")
        self._held = None
        for i, s in enumerate(local):
            self.copies[i] = [
                stacks[full][s].to(device=t.device, dtype=t.dtype).clone()
                for full, t in zip(self.names, self.copies[i])
            ]
        self.hold(0)


def gather_shards(local: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Concatenate every rank's (n_local, ...) stacks in rank order: name -> (S, ...)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return local
    from genzoo.distributed import all_gather_cat

    out = {}
    for name, t in local.items():
        if t.dtype == torch.bool:
            out[name] = all_gather_cat(t.to(torch.uint8)).to(torch.bool)
        else:
            out[name] = all_gather_cat(t)
    return out


def all_reduce_update(
    params: Sequence[torch.nn.Parameter], figures: torch.Tensor
) -> torch.Tensor:
    """Sum the gradients of ``params`` and the (k,) float64 ``figures`` over every rank, in one
    collective; returns the summed figures. A parameter whose gradient is None on every rank
    stays None; elsewhere a missing gradient counts as zero."""
    ref = params[0]
    flat_parts = []
    for p in params:
        g = p.grad
        flat_parts.append((g if g is not None else torch.zeros_like(p)).reshape(-1).double())
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float64,
                       device=ref.device)
    flat = torch.cat([*flat_parts, has, figures.to(device=ref.device, dtype=torch.float64)])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).to(p.dtype)
        offset += n
    # The gradient counts and the figures in one device-to-host copy: one sync per step.
    counts_and_figures = flat[offset:].cpu()
    for p, c in zip(params, counts_and_figures[: len(params)].tolist()):
        if c == 0:
            p.grad = None
    return counts_and_figures[len(params):]


def broadcast_state(model: torch.nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers (identical starting points)."""
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.dtype == torch.bool:
                tmp = t.to(torch.uint8)
                dist.broadcast(tmp, src=0)
                t.copy_(tmp.to(torch.bool))
            else:
                dist.broadcast(t.data, src=0)


def parameters_agree(model: torch.nn.Module) -> bool:
    """True when every rank holds the same parameters (compared through per-tensor sums and
    absolute sums in float64). Data-parallel training keeps them equal unless a model changes
    its parameters outside their gradients, which no all-reduce can average."""
    from genzoo.distributed import all_gather_cat

    params = list(model.parameters())
    if not params:
        return True
    sig = torch.stack(
        [torch.stack([p.detach().double().sum(), p.detach().double().abs().sum()])
         for p in params]
    ).reshape(1, -1)
    rows = all_gather_cat(sig)
    return bool((rows == rows[0:1]).all())


def agree(ok: bool) -> bool:
    """True when ``ok`` holds on every rank (one all-reduce; ``ok`` itself in one process)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return ok
    from genzoo.distributed import _comm_device

    flag = torch.tensor([0 if ok else 1], dtype=torch.int64, device=_comm_device())
    dist.all_reduce(flag, op=dist.ReduceOp.SUM)
    return int(flag) == 0


__all__ = [
    "ShardBuffers",
    "ShardPlan",
    "agree",
    "all_reduce_update",
    "broadcast_state",
    "gather_shards",
    "parameters_agree",
    "shard_seed",
]
