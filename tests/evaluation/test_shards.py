"""Shards side by side: a process runs its shards on its CPU threads, one op-thread each, and
the numbers are those of a sequential one-thread run (each shard owns its generator); the
caller's grad mode and thread count survive; an error in a shard reaches the caller at once,
the other shards stopping at their next progress step."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest
import torch
from support import random_rbm

from genzoo.evaluation import EvalConfig, ais_log_partition, energy_nll, linear_schedule
from genzoo.evaluation.importance import importance_log_px
from genzoo.evaluation.progress import Stage
from genzoo.evaluation.shards import map_shards
from genzoo.models.directed.vae import VAE, VAEConfig


@contextmanager
def threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _estimates() -> list[float]:
    x_train = (torch.rand(60, 10, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    rbm = random_rbm(10, 6, 1.0, 3)
    ais = ais_log_partition(rbm, rbm.ais_base(x_train), linear_schedule(40), 30,
                            torch.Generator().manual_seed(5), torch.float32, batch_size=7)
    nll = energy_nll(rbm, x_train[:20], x_train, EvalConfig(exact_max_units=0, ais_runs=30,
                                                              ais_betas=40, reverse_burn_in=5))
    vae = VAE(VAEConfig(n_visible=10, hidden=(8,), n_latent=3, init_std=0.3),
              generator=torch.Generator().manual_seed(6))
    est = importance_log_px(vae, x_train[:23], 20, torch.Generator().manual_seed(7),
                            batch_size=5, max_draws=40)
    return [*ais.diagnostics["log_w"], nll["nll_nats"], nll["log_z_reverse"],
            *est.log_px.tolist()]


def test_two_threads_give_the_numbers_of_one():
    with threads(1):
        one = _estimates()
    with threads(2):
        two = _estimates()
    assert one == two  # bit for bit: the same shards, the same one-thread ops


def test_the_shards_run_on_several_threads_one_op_thread_each():
    seen: list[tuple[str, int, bool]] = []
    lock = threading.Lock()
    both = threading.Barrier(2, timeout=30)  # the first two shards wait for each other

    def work(lo, hi, g):
        with lock:
            seen.append((threading.current_thread().name, torch.get_num_threads(),
                         torch.is_grad_enabled()))
        if lo < 10 and threading.current_thread().name.startswith("genzoo-shard"):
            both.wait()  # two shards at once, or a BrokenBarrierError after the timeout
        return torch.rand(hi - lo, 1, generator=g, dtype=torch.float64)

    with threads(2), torch.no_grad():
        out = map_shards(40, 5, work, 1, torch.Generator().manual_seed(0))
        assert torch.get_num_threads() == 2  # restored
    with threads(1):
        assert torch.equal(out, map_shards(40, 5, work, 1, torch.Generator().manual_seed(0)))
    side = seen[:8]
    assert {name.startswith("genzoo-shard") for name, _, _ in side} == {True}
    assert len({name for name, _, _ in side}) == 2
    assert {(n, grad) for _, n, grad in side} == {(1, False)}  # one op-thread, no grad


def test_an_error_in_a_shard_reaches_the_caller_and_the_threads_are_restored():
    def work(lo, hi, g):
        if lo == 10:
            raise ValueError("shard 2 failed")
        return torch.zeros(hi - lo, 1, dtype=torch.float64)

    with threads(2):
        with pytest.raises(ValueError, match="shard 2 failed"):
            map_shards(20, 5, work, 1, None)
        assert torch.get_num_threads() == 2


def test_a_stage_advanced_from_several_threads_counts_every_step():
    stage = Stage("test", 8000)

    def advance():
        for _ in range(1000):
            stage.advance()

    workers = [threading.Thread(target=advance) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert stage.done == 8000


def test_ais_runs_in_at_least_two_shards():
    assert EvalConfig().ais_shard == 50  # 100 runs: two shards of 50
    assert EvalConfig(ais_runs=7).ais_shard == 4
    assert EvalConfig(ais_runs=100, batch_size=30).ais_shard == 30


def test_a_failing_shard_stops_the_others_at_their_next_progress_step():
    """Shard 0 fails at once; shard 1 would run 10,000 progress steps of 1 ms. It stops at its
    next step, so the error reaches the caller in well under the 10 s of a full run."""
    steps: list[int] = []

    def work(lo, hi, g):
        if lo == 0:
            raise ValueError("shard 0 failed")
        with Stage("long", 10_000) as st:
            for _ in range(10_000):
                time.sleep(0.001)
                st.advance()
                steps.append(1)
        return torch.zeros(hi - lo, 1, dtype=torch.float64)

    start = time.monotonic()
    with threads(2), pytest.raises(ValueError, match="shard 0 failed"):
        map_shards(10, 5, work, 1, None)
    assert time.monotonic() - start < 5.0 and len(steps) < 5000
