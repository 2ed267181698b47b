"""The DBM's NLL bound under distributed evaluation: forward and reverse AIS runs and the test
examples shared out over 2 gloo processes give the report of one process with the same seeds
and run count (float64 round-off), and the result does not depend on how runs are sharded."""

from __future__ import annotations

import json
import os
import socket
from types import SimpleNamespace

import pytest
import torch
import torch.multiprocessing as mp

from genzoo import distributed as gz_dist
from genzoo.data.datasets import Split
from genzoo.evaluation import EvalConfig, evaluate
from genzoo.evaluation.variational import variational_free_energies, variational_nll
from genzoo.models.boltzmann.dbm import DBM, DBMConfig

D = 10
# 30 runs in shards of 7 (the last short); 23 test examples in 4 batches of 7 (the last short).
CFG = EvalConfig(exact_max_units=0, ais_runs=30, ais_betas=40, schedule="linear",
                 reverse_burn_in=5, batch_size=7)
KEYS = ("nll_nats", "nll_nats_reverse", "log_z", "log_z_reverse", "stderr", "stderr_log_z",
        "stderr_log_z_reverse", "stderr_examples", "ais_ess", "ais_ess_reverse",
        "variational_free_energy", "n_examples", "n_samples")


def _data(n: int, seed: int) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, D), 0.4), generator=torch.Generator().manual_seed(seed))


def _dbm() -> DBM:
    g = torch.Generator().manual_seed(0)
    m = DBM(DBMConfig(n_visible=D, hidden=(8, 6), init_std=0.8, n_chains=4), generator=g)
    with torch.no_grad():
        for b in m.b:
            b.normal_(0.0, 0.5, generator=g)
    m.start_chains(_data(50, 1), torch.Generator().manual_seed(2))
    return m


def compute(distributed: bool, cfg: EvalConfig = CFG) -> dict:
    report = variational_nll(_dbm(), _data(23, 3), _data(50, 1), cfg, distributed=distributed)
    return {k: report[k] for k in KEYS}


def through_evaluate(distributed: bool) -> dict:
    """The same evaluation dispatched by evaluate() (test split = the 23 examples)."""
    test = Split(_data(23, 3))
    train = Split(_data(50, 1))
    bundle = SimpleNamespace(
        train=train, train_x=lambda epoch: train.x, split=lambda name: {"test": test}[name]
    )
    report = evaluate(_dbm(), bundle, CFG, distributed=distributed)
    return {k: report[k] for k in KEYS}


def _rank(rank: int, world: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    gz_dist.init_from_env("cpu")
    import genzoo.evaluation.ais as ais_module

    anneal, calls = ais_module._anneal, []

    def counting(*args):
        calls.append(args[3].shape[0])  # the runs of one shard
        return anneal(*args)

    ais_module._anneal = counting
    result = {"direct": compute(distributed=True), "calls": list(calls),
              "evaluate": through_evaluate(True)}
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)
    gz_dist.destroy()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_give_the_one_process_bound(tmp_path):
    os.environ["OMP_NUM_THREADS"] = "1"
    mp.spawn(_rank, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    # 30 runs in shards of 7, 7, 7, 7, 2: rank 0 anneals shards 0, 2, 4 and rank 1 shards 1, 3,
    # forward and reverse.
    assert r0.pop("calls") == [7, 7, 2] * 2 and r1.pop("calls") == [7, 7] * 2
    assert r0 == r1  # every rank holds the whole report
    single = compute(distributed=False)
    assert single["n_samples"] == 30 and single["n_examples"] == 23
    assert single["nll_nats_reverse"] is not None and single["ais_ess_reverse"] > 1
    assert through_evaluate(False) == single
    for way in ("direct", "evaluate"):
        for key in KEYS:
            assert r0[way][key] == pytest.approx(single[key], rel=1e-12, abs=1e-12), (way, key)


def test_free_energies_do_not_depend_on_the_batching():
    m, x = _dbm().double(), _data(23, 3).double()
    whole = variational_free_energies(m, x, batch_size=23)
    batched = variational_free_energies(m, x, batch_size=7)
    assert whole.shape == (23,) and whole.dtype == torch.float64
    # Mean field converges per batch to the same fixed point (tolerance 1e-6 on q).
    assert torch.allclose(whole, batched, atol=1e-5)


def test_shards_of_runs_are_independent_of_each_other():
    """The first 14 runs of a 30-run evaluation are the runs of a 14-run one (shards of 7
    draw from their own seeds), which is what makes the split over ranks exact."""
    import dataclasses

    def log_w(n_runs):
        from genzoo.evaluation.ais import ais_log_partition, linear_schedule

        m = _dbm().double()
        base = m.ais_base(_data(50, 1).double())
        est = ais_log_partition(m, base, linear_schedule(40), n_runs,
                                torch.Generator().manual_seed(CFG.seed), batch_size=7)
        return est.diagnostics["log_w"]

    assert log_w(30)[:14] == log_w(14)
    short = compute(False, dataclasses.replace(CFG, ais_runs=14))
    assert short["n_samples"] == 14 and short["log_z"] != compute(False)["log_z"]
