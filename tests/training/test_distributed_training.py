"""Data-parallel training: a 2-process gloo run equals a 1-process run with the same global
batch and shards; persistent chains are per shard and all checkpointed; a worker killed under
``torchrun --max-restarts 1`` is restarted and the run resumes from its last checkpoint.

The 2-process runs are real: torch.multiprocessing with torchrun's environment set by hand,
and, for the restart, a subprocess ``python -m torch.distributed.run``.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from genzoo.core.errors import ConfigError
from genzoo.data import load_data
from genzoo.run_config import RunConfig
from genzoo.training import Trainer
from genzoo.training.checkpoint import (
    checkpoint_step,
    has_checkpoint,
    load_model,
    load_trainer_state,
    read_run_config,
)

COMMON = ["data.name=digits", "data.binarize=threshold", "data.n_train=120", "data.n_eval=30",
          "train.batch_size=20", "train.max_steps=10", "train.lr_schedule=constant",
          "train.progress=false",
          "train.grid_samples=0", "train.log_every=5", "train.checkpoint_every=5",
          "train.shards=2"]
# name -> (model, overrides): a CD-1 RBM and a VAE (the criterion), an RBM with
# persistent chains (a buffer per shard) and a GAN (two parameter groups stepped in turn).
CASES = {
    "rbm-cd": ("rbm", ["model.n_hidden=12"]),
    "vae": ("vae", ["model.hidden=[16]", "model.n_latent=4", "train.optimizer=adam",
                    "train.lr=1e-3"]),
    "rbm-pcd": ("rbm", ["model.n_hidden=12", "model.persistent=true", "model.n_chains=6"]),
    "gan": ("gan", ["model.g_hidden=[16]", "model.d_hidden=[16]", "model.n_latent=4",
                    "model.d_steps=2", "train.optimizer=adam", "train.lr=1e-3"]),
}


def run_config(case: str, *extra: str) -> RunConfig:
    name, overrides = CASES[case]
    return RunConfig.default(name).with_overrides([*COMMON, *overrides, *extra])


def train(case: str, run_dir: Path, *extra: str, distributed: bool = False,
          resume: bool = False) -> None:
    from genzoo.core.registry import get_model_spec

    cfg = run_config(case, *extra)
    bundle = load_data(cfg.data)
    cfg = dataclasses.replace(cfg, model=cfg.model.replace(n_visible=bundle.n_features))
    torch.manual_seed(cfg.train.seed)
    model = get_model_spec(cfg.model_name).build(cfg.model)
    Trainer(model, cfg, bundle, run_dir, distributed=distributed).fit(resume=resume)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Drifting(torch.nn.Module):
    """A gradient loss plus a non-gradient update of its parameter (from its own rows), which
    no all-reduce averages: the ranks' parameters drift apart."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(d))

    def loss(self, x, generator=None):
        with torch.no_grad():
            self.w.add_(x.mean(0))
        return {"loss": ((x - self.w) ** 2).mean()}


def _refused_non_gradient_rule(root: Path) -> None:
    cfg = run_config("rbm-cd")
    bundle = load_data(cfg.data)
    try:
        Trainer(Drifting(bundle.n_features), cfg, bundle, root / "drift", distributed=True).fit()
    except ConfigError as exc:
        (root / f"drift-{os.environ['RANK']}.txt").write_text(str(exc))


def _worker(rank: int, world: int, port: int, root: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    from genzoo import distributed as gz_dist

    gz_dist.init_from_env("cpu")
    try:
        for case in CASES:
            train(case, Path(root) / f"{case}-2p", distributed=True)
        if rank == 0:  # the 2-process checkpoint at step 10, for one process to take over
            shutil.copytree(Path(root) / "rbm-pcd-2p", Path(root) / "rbm-pcd-2p-at10")
        gz_dist.barrier()
        # Resume the PCD run for 6 more steps with both processes: every chain continues.
        train("rbm-pcd", Path(root) / "rbm-pcd-2p", "train.max_steps=16", distributed=True,
              resume=True)
        _refused_non_gradient_rule(Path(root))
        train("rbm-cd", Path(root) / "linear-2p", "train.lr_scaling=linear", "train.lr=0.05",
              distributed=True)
    finally:
        gz_dist.destroy()


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dp")
    os.environ["OMP_NUM_THREADS"] = "1"
    mp.spawn(_worker, args=(2, free_port(), str(root)), nprocs=2, join=True)
    return root


def _params(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "model.safetensors")


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k, v in a.items():
        torch.testing.assert_close(v, b[k], rtol=1e-6, atol=1e-7, msg=k)


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_equal_one_process_with_the_same_shards(two_process_runs, tmp_path, case):
    # The PCD run was resumed to step 16 by both processes (below).
    steps = 16 if case == "rbm-pcd" else 10
    one = tmp_path / case
    train(case, one, f"train.max_steps={steps}")
    two = two_process_runs / f"{case}-2p"
    _assert_same(_params(one), _params(two))
    assert read_run_config(two).train.shards == 2
    # Only rank 0 wrote metrics.csv: every logged step once, and the logged figures (global
    # averages on both ranks) equal the one-process run's.
    rows = {}
    for run in (one, two):
        with open(run / "metrics.csv") as f:
            rows[run] = [{k: v for k, v in r.items() if k not in ("wall_s", "examples_per_s")}
                         for r in csv.DictReader(f)]
    logged = [int(r["step"]) for r in rows[two]]
    assert logged == sorted(set(logged)) and logged[-1] == steps
    for r1, r2 in zip(rows[one], rows[two], strict=True):
        for k in r1:
            if case == "rbm-pcd" and k.startswith("valid_"):
                continue  # the 2-process run also validated at step 10, where it stopped
            if r1[k] != r2[k]:
                # float32 figures: a KL near zero is a difference of O(1) terms, so its
                # absolute rounding is about float32 epsilon times their number, whatever
                # its size (1.8e-9 apart at 2.7e-6 seen on an AMD EPYC).
                assert float(r1[k]) == pytest.approx(float(r2[k]), rel=1e-6, abs=1e-6), k


def test_sharding_changes_the_run_only_through_its_random_streams(tmp_path):
    # A deterministic-given-the-stream model, 1 vs 2 shards of the same global batch: the
    # draws differ, so the parameters differ, but both train (finite, same shapes).
    train("rbm-cd", tmp_path / "s1", "train.shards=1")
    train("rbm-cd", tmp_path / "s2")
    a, b = _params(tmp_path / "s1"), _params(tmp_path / "s2")
    assert not torch.equal(a["W"], b["W"])
    assert load_trainer_state(tmp_path / "s2")["shard_buffers"] == {}


def test_persistent_chains_are_per_shard_and_all_checkpointed(two_process_runs, tmp_path):
    two = two_process_runs / "rbm-pcd-2p"
    state = load_trainer_state(two)
    chains = state["shard_buffers"]["chains"]
    assert chains.shape == (2, 6, 64) and not torch.equal(chains[0], chains[1])
    assert state["world_size"] == 2 and state["step"] == 16
    # The model file holds shard 0's chains, so load_model gives a consistent model.
    assert torch.equal(_params(two)["chains"], chains[0])
    # The 2-process run resumed at step 10 with every chain continued: it equals one
    # uninterrupted 1-process run of 16 steps (which runs both shards in turn).
    one = tmp_path / "pcd16"
    train("rbm-pcd", one, "train.max_steps=16")
    _assert_same(_params(one), _params(two))
    torch.testing.assert_close(load_trainer_state(one)["shard_buffers"]["chains"], chains)
    # And one process can take over the 2-process checkpoint of step 10 (world size 1
    # divides 2 shards): it continues both shards' chains to the same end.
    taken = tmp_path / "taken"
    shutil.copytree(two_process_runs / "rbm-pcd-2p-at10", taken)
    assert load_trainer_state(taken)["step"] == 10
    train("rbm-pcd", taken, "train.max_steps=16", resume=True)
    _assert_same(_params(one), _params(taken))


def test_a_non_gradient_learning_rule_is_refused_on_every_rank(two_process_runs):
    for rank in (0, 1):
        message = (two_process_runs / f"drift-{rank}.txt").read_text()
        assert "differ between the processes after step 5" in message
        assert "non-gradient learning rule" in message and "one process" in message
    assert not (two_process_runs / "drift" / "checkpoint.json").exists()


def test_shards_must_be_a_multiple_of_the_processes_and_fit_every_batch(tmp_path):
    from genzoo.training.data_parallel import ShardPlan

    with pytest.raises(ConfigError, match="train.shards=3 is not a multiple of the 2"):
        ShardPlan(3, world_size=2)
    with pytest.raises(ConfigError, match="exceeds train.batch_size"):
        run_config("rbm-cd", "train.shards=30")
    # 120 examples in batches of 50: the last batch has 20 < 25 shards.
    with pytest.raises(ConfigError, match="last batch of each epoch has 20"):
        train("rbm-cd", tmp_path / "x", "train.batch_size=50", "train.shards=25")
    with pytest.raises(ConfigError, match="init_from_env"):
        train("rbm-cd", tmp_path / "y", distributed=True)


def test_linear_lr_scaling_is_explicit(two_process_runs, tmp_path):
    # Two processes: lr times 2, in the logged lr column and the checkpoint.
    with open(two_process_runs / "linear-2p" / "metrics.csv") as f:
        assert {float(r["lr"]) for r in csv.DictReader(f)} == {0.1}
    assert load_trainer_state(two_process_runs / "linear-2p")["lr_scaling"] == {
        "kind": "linear", "factor": 2.0}
    # One process: the factor is the world size, 1; the logged lr is the configured one.
    train("rbm-cd", tmp_path / "lin", "train.lr_scaling=linear", "train.lr=0.05")
    with open(tmp_path / "lin" / "metrics.csv") as f:
        assert {float(r["lr"]) for r in csv.DictReader(f)} == {0.05}
    assert load_trainer_state(tmp_path / "lin")["lr_scaling"] == {"kind": "linear",
                                                                  "factor": 1.0}


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def test_torchrun_restarts_a_killed_worker_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    steps, every = 120, 10
    args = ["train.lr=0.01", "train.epochs=100", f"train.max_steps={steps}",
            f"train.checkpoint_every={every}", "train.log_every=20"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--max-restarts", "1", "--master-port", str(free_port()),
           "-m", "genzoo", "train", "rbm", "--out", str(out), "--resume-if-exists",
           *[f"--set={o}" for o in [*COMMON, *CASES["rbm-cd"][1], *args]]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = tmp_path / "torchrun.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        killed_after = None
        while time.monotonic() < deadline and proc.poll() is None:
            step = checkpoint_step(out) if has_checkpoint(out) else None
            if step is not None and step >= every:
                workers = _children(proc.pid)  # the agent's worker processes
                if workers:
                    os.kill(max(workers), signal.SIGKILL)
                    killed_after = step
                    break
            time.sleep(0.05)
        assert killed_after is not None, log.read_text()[-3000:]
        assert proc.wait(timeout=90) == 0, log.read_text()[-6000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    resumed_at = int(text.split("from step ")[1].split()[0])
    # The restarted group took up the last checkpoint (written no earlier than the kill was
    # decided) and finished the run.
    assert every <= killed_after <= resumed_at < steps, text[-3000:]
    assert load_trainer_state(out)["step"] == steps
    # Nothing lost, nothing repeated: the final parameters are those of one uninterrupted run.
    ref = tmp_path / "ref"
    train("rbm-cd", ref, *args)
    _assert_same(_params(ref), _params(out))
    # The final checkpoint loads and evaluates.
    from genzoo.evaluation import evaluate

    model, cfg = load_model(out)  # 12 hidden units: the exact log-likelihood
    report = evaluate(model, load_data(cfg.data), cfg.eval)
    assert torch.isfinite(torch.tensor(report["nll_nats"]))


def test_two_torchrun_nodes_equal_one_process(tmp_path):
    # Multi-node through torchrun's own rendezvous flags: two launchers (--nnodes 2, one
    # process each, node ranks 0 and 1) meeting at a master address, as on two machines; here
    # both run on this one, so the run directory is shared as a shared file system would be.
    out = tmp_path / "run"
    port = free_port()
    steps = ["train.epochs=100", "train.max_steps=12"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = []
    for node in (0, 1):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
               "--node-rank", str(node), "--nproc-per-node", "1", "--master-addr",
               "127.0.0.1", "--master-port", str(port), "-m", "genzoo", "train", "rbm",
               "--out", str(out),
               *[f"--set={o}" for o in [*COMMON, *CASES["rbm-cd"][1], *steps]]]
        log = open(tmp_path / f"node{node}.log", "w")  # noqa: SIM115 (closed after wait)
        procs.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log))
    try:
        for node, (proc, log) in enumerate(procs):
            rc = proc.wait(timeout=120)
            log.close()
            assert rc == 0, (tmp_path / f"node{node}.log").read_text()[-3000:]
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
    ref = tmp_path / "ref"
    train("rbm-cd", ref, *steps, "train.shards=2")
    _assert_same(_params(ref), _params(out))
