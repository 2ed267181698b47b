"""Distributed evaluation is exact: AIS runs and importance-sampling chunks shared out over 2
gloo processes give the numbers of one process with the same seeds (float64 round-off), and
`genzoo evaluate` under torchrun prints the one-process report once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
from support import random_rbm

from genzoo import distributed as gz_dist
from genzoo.evaluation import EvalConfig, ais_log_partition, energy_nll, linear_schedule
from genzoo.evaluation.importance import importance_log_px
from genzoo.evaluation.shards import map_shards, shard_bounds
from genzoo.models.directed.vae import VAE, VAEConfig

D = 10
AIS_CFG = EvalConfig(exact_max_units=0, ais_runs=30, ais_betas=40, reverse_burn_in=5,
                     batch_size=7)  # 5 shards of AIS runs, the last one short


def data(n, seed):
    return (torch.rand(n, D, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


def compute(distributed: bool) -> dict:
    """Every randomised estimator once, on tiny models; plain floats and lists."""
    rbm = random_rbm(D, 6, 1.0, 3)
    pcd = random_rbm(D, 6, 1.0, 4, persistent=True, n_chains=4)
    x_train, x = data(60, 1), data(23, 2)
    pcd.init_from_data(x_train)
    ais = ais_log_partition(rbm, rbm.ais_base(x_train), linear_schedule(40), 30,
                            torch.Generator().manual_seed(5), batch_size=7,
                            distributed=distributed)
    nll = energy_nll(pcd, x, x_train, AIS_CFG, distributed=distributed)
    vae = VAE(VAEConfig(n_visible=D, hidden=(8,), n_latent=3, init_std=0.3),
              generator=torch.Generator().manual_seed(6))
    est = importance_log_px(vae, x, 20, torch.Generator().manual_seed(7),
                            batch_size=5, max_draws=40, distributed=distributed)
    imp = {**est.report(), "per_example_log_px": est.log_px}
    return {
        "ais": [ais.value, ais.stderr, *ais.diagnostics["log_w"]],
        "nll": [nll[k] for k in ("nll_nats", "log_z", "log_z_reverse", "stderr",
                                 "stderr_log_z_reverse", "ais_ess", "ais_ess_reverse")],
        "is": [imp["nll_nats"], imp["elbo_nats"], imp["is_ess"], imp["stderr_mc"],
               *imp["per_example_log_px"].tolist()],
    }


def _rank(rank: int, world: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    gz_dist.init_from_env("cpu")
    result = compute(distributed=True)
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)
    gz_dist.destroy()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_give_the_one_process_estimates(tmp_path):
    os.environ["OMP_NUM_THREADS"] = "1"
    mp.spawn(_rank, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0 == r1  # every rank holds the full result
    single = compute(distributed=False)
    assert len(single["ais"]) == 2 + 30 and len(single["is"]) == 4 + 23
    for key in ("ais", "nll", "is"):
        assert r0[key] == pytest.approx(single[key], rel=1e-12, abs=1e-12), key


def test_a_shard_does_not_depend_on_the_others():
    """Shard s draws only from its own seed: the first shards of a longer computation are the
    shards of a shorter one, which is what makes the result independent of the world size."""
    def work(lo, hi, g):
        return torch.rand(hi - lo, 2, generator=g, dtype=torch.float64)

    long = map_shards(30, 7, work, 2, torch.Generator().manual_seed(0))
    short = map_shards(14, 7, work, 2, torch.Generator().manual_seed(0))
    assert long.shape == (30, 2) and torch.equal(long[:14], short)
    assert not torch.equal(long[:7], long[7:14])
    assert shard_bounds(30, 7) == [(0, 7), (7, 14), (14, 21), (21, 28), (28, 30)]
    again = map_shards(30, 7, work, 2, torch.Generator().manual_seed(0))
    other = map_shards(30, 7, work, 2, torch.Generator().manual_seed(1))
    assert torch.equal(long, again) and not torch.equal(long, other)


def test_cli_evaluate_under_torchrun_matches_one_process(tmp_path, capsys):
    from genzoo.cli import main

    run = tmp_path / "vae"
    assert main(["train", "vae", "--data", "digits", "--set", "data.binarize=threshold",
                 "--set", "model.hidden=8", "--set", "model.n_latent=3",
                 "--set", "train.max_steps=3", "--set", "train.progress=false",
                 "--out", str(run)]) == 0
    sets = ["--set", "eval.is_samples=8", "--set", "eval.batch_size=90"]  # 300 digits: 4 chunks
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json", *sets]) == 0
    single = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--master-port", str(free_port()), "-m", "genzoo", "evaluate", str(run), "--json",
         "--out", str(out), *sets],
        check=False, capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1  # only rank 0 prints
    report = json.loads(lines[0])
    assert report == json.loads(out.read_text())
    assert report["world_size"] == 2 and single["world_size"] == 1
    for key in ("nll_nats", "elbo_nats", "stderr", "stderr_mc", "is_ess"):
        assert report[key] == pytest.approx(single[key], rel=1e-12), key
