"""Monte Carlo work in fixed shards, so an estimate does not depend on how many processes ran it.

The n items of an estimator (AIS runs, or examples for importance sampling) are cut into
shards of ``size`` consecutive items. Shard s draws its random numbers from its own generator,
seeded by ``mc_shard_seed(root, s)``, where ``root`` is one number drawn from the caller's
generator. In one process the shards run on its threads (below); under W ranks of a process
group shard s runs on rank s % W, and the per-item results are all-gathered and put back in
shard order. Every rank then holds exactly the tensor one process would have computed, and
combines it (e.g. a logsumexp of all weights) itself: the combination is never an average of
per-rank estimates.

On the CPU, a process's shards run side by side on its intra-op threads (one
shard a thread, each op of a shard on that thread): torch's CPU generator draws on one thread,
so a single shard cannot spread its draws over the cores, while shards side by side do. A
shard run this way gives the numbers of a one-thread run bit for bit; a process with one shard
(or one thread) runs it with torch's intra-op threads, equal to float round-off.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import numpy as np
import torch

from genzoo import distributed as gz_dist
from genzoo.evaluation import progress
from genzoo.utils import denormals

# A shard's work: (lo, hi, generator) -> float64 results (hi - lo, width) of items lo..hi-1.
ShardWork = Callable[[int, int, torch.Generator], torch.Tensor]


def shard_bounds(n: int, size: int) -> list[tuple[int, int]]:
    """[(lo, hi), ...] cutting range(n) into consecutive shards of ``size`` (the last shorter)."""
    size = max(1, int(size))
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


def local_shards(n: int, size: int, distributed: bool = False) -> list[tuple[int, int]]:
    """The (lo, hi) of the shards of :func:`map_shards` (``n`` items, ``size`` a shard) that
    this process runs: all of them in one process, shard s on rank s % W under W ranks."""
    bounds = shard_bounds(n, size)
    if not distributed:
        return bounds
    return bounds[gz_dist.rank() :: gz_dist.world_size()]


def local_items(n: int, size: int, distributed: bool = False) -> int:
    """How many of the ``n`` items this process runs (the items of its :func:`local_shards`)."""
    return sum(hi - lo for lo, hi in local_shards(n, size, distributed))


def mc_shard_seed(root: int, index: int) -> int:
    """The 63-bit seed of shard ``index`` of Monte Carlo work (AIS runs, importance-sampling
    chunks) whose root seed is ``root`` (numpy's SeedSequence hash, so nearby roots and indices
    give unrelated streams). Training's data-parallel seed of a (step, shard) is another
    thing: genzoo.training.data_parallel.shard_seed."""
    words = np.random.SeedSequence([root, index]).generate_state(2, dtype=np.uint32)
    return ((int(words[0]) << 32) | int(words[1])) & ((1 << 63) - 1)


def root_seed(generator: torch.Generator | None, distributed: bool = False) -> int:
    """One number drawn from ``generator`` (the global generator when None); when
    ``distributed``, rank 0's draw, so every rank uses the same root."""
    device = generator.device if generator is not None else torch.device("cpu")
    draw = torch.randint(0, 2**62, (1,), generator=generator, device=device).cpu()
    if distributed:
        draw = gz_dist.all_gather_cat(draw)[:1]
    return int(draw[0])


def map_shards(
    n: int,
    size: int,
    work: ShardWork,
    width: int,
    generator: torch.Generator | None,
    distributed: bool = False,
) -> torch.Tensor:
    """Run ``work`` over the shards of ``size`` of ``n`` items; return the float64 CPU tensor
    (n, width) of all items in order, the same in every process and for any world size.

    ``work(lo, hi, g)`` returns (hi - lo, width) results of items lo..hi-1 drawing only from
    ``g`` (a generator on ``generator``'s device). With ``distributed`` (every rank of the
    default process group calling with the same arguments), shard s runs on rank s % W.
    """
    root = root_seed(generator, distributed)
    bounds = shard_bounds(n, size)
    rank, world = (gz_dist.rank(), gz_dist.world_size()) if distributed else (0, 1)
    device = generator.device if generator is not None else torch.device("cpu")

    def run(s: int) -> torch.Tensor:
        lo, hi = bounds[s]
        g = torch.Generator(device=device).manual_seed(mc_shard_seed(root, s))
        return work(lo, hi, g).detach().to("cpu", torch.float64).reshape(hi - lo, width)

    mine = run_side_by_side(run, list(range(rank, len(bounds), world)), device)
    local = torch.cat(mine) if mine else torch.zeros((0, width), dtype=torch.float64)
    if world == 1:
        return local
    gathered = gz_dist.all_gather_cat(local)
    if len(gathered) != n:  # a rank ran with other arguments
        raise RuntimeError(f"the ranks returned {len(gathered)} results for {n} items")
    # gathered holds rank 0's shards (0, W, 2W, ...), then rank 1's (1, W+1, ...), ...
    order = [s for r in range(world) for s in range(r, len(bounds), world)]
    parts = torch.split(gathered, [bounds[s][1] - bounds[s][0] for s in order])
    by_shard = dict(zip(order, parts))
    return torch.cat([by_shard[s] for s in range(len(bounds))])


def run_side_by_side(run: Callable[[int], torch.Tensor], shards: list[int],
                     device: torch.device) -> list[torch.Tensor]:
    """[run(s) for s in shards], on min(intra-op threads, shards) threads when the work is on
    the CPU (module docstring): torch runs every op on one thread meanwhile (the thread count
    is restored after), and each shard runs in a copy of the caller's context variables (the
    progress reporter) with its grad mode and subnormal mode, which are per thread. One
    thread, or a GPU: in sequence."""
    workers = min(torch.get_num_threads(), len(shards)) if device.type == "cpu" else 1
    if workers <= 1:
        return [run(s) for s in shards]
    grad, flush, stop = torch.is_grad_enabled(), denormals.flushing(), threading.Event()

    def one(s: int) -> torch.Tensor:
        torch.set_flush_denormal(flush)
        with torch.set_grad_enabled(grad), progress.stopping(stop):
            return run(s)

    contexts = [contextvars.copy_context() for _ in shards]  # one each: a context runs once
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="genzoo-shard") as pool:
            futures = [pool.submit(c.run, one, s) for c, s in zip(contexts, shards)]
            try:
                wait(futures, return_when=FIRST_EXCEPTION)
                for f in futures:
                    if f.done() and f.exception() is not None:
                        raise f.exception()
                return [f.result() for f in futures]
            except BaseException:  # an error or Ctrl-C: the other shards stop at their next
                stop.set()  # progress step instead of running to their end
                for f in futures:
                    f.cancel()
                raise
    finally:
        torch.set_num_threads(threads)
