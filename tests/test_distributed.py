"""genzoo.distributed: a no-op single process outside torchrun, real collectives in 1- and
2-process groups on the device under test, gloo on the CPU and NCCL on CUDA (spawned here with
torch.multiprocessing, torchrun's environment variables set by hand)."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from genzoo import distributed as gz_dist
from genzoo.core.errors import GenzooError

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(fn, world: int, *args) -> None:
    """Run ``fn(rank, world, port, *args)`` in ``world`` fresh processes; a failure in any
    re-raises here."""
    os.environ["OMP_NUM_THREADS"] = "1"
    mp.spawn(fn, args=(world, free_port(), *args), nprocs=world, join=True)


def as_torchrun_rank(rank: int, world: int, port: int) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))


def test_single_process_outside_torchrun(monkeypatch, device):
    for var in TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)
    ctx = gz_dist.init_from_env(device)
    assert ctx == gz_dist.DistContext(0, 1, 0, device, None)
    assert ctx.is_main and not ctx.is_distributed and not gz_dist.is_initialized()
    assert gz_dist.is_main() and gz_dist.rank() == 0 and gz_dist.world_size() == 1
    t = torch.arange(6.0).reshape(3, 2)
    assert gz_dist.all_gather_cat(t) is t
    gz_dist.barrier()
    gz_dist.destroy()


def test_incomplete_torchrun_environment_is_refused(monkeypatch):
    for var in TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(GenzooError, match="MASTER_ADDR.*torchrun"):
        gz_dist.init_from_env("cpu")


def _collectives(rank: int, world: int, port: int, out_dir: str, device: str) -> None:
    as_torchrun_rank(rank, world, port)
    ctx = gz_dist.init_from_env(device)
    backend = "nccl" if ctx.device.type == "cuda" else "gloo"
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.backend) == (rank, world, rank, backend)
    assert ctx.is_distributed == (world > 1) and ctx.is_main == (rank == 0) == gz_dist.is_main()
    assert gz_dist.init_from_env(device) == ctx  # joining again returns the same group
    # Variable first dimensions, one rank with none; float64 stays exact.
    rows = [torch.tensor([[0.1, 1e-300]]).double().repeat(3, 1), torch.zeros(0, 2).double()]
    rows = [r.to(ctx.device) for r in rows]
    got = gz_dist.all_gather_cat(rows[rank])
    assert got.dtype == torch.float64 and got.device == ctx.device and torch.equal(got, rows[0])
    ints = torch.full((rank + 1, 2, 2), rank, dtype=torch.int64, device=ctx.device)
    got = gz_dist.all_gather_cat(ints)
    expected = [r for r in range(world) for _ in range(r + 1)]  # world 2: [0, 1, 1]
    assert got.shape == (len(expected), 2, 2) and got[:, 0, 0].tolist() == expected
    gz_dist.barrier()
    with open(os.path.join(out_dir, f"rank{rank}"), "w") as f:
        f.write(f"{gz_dist.rank()}/{gz_dist.world_size()}")
    gz_dist.destroy()
    gz_dist.destroy()  # a second call is a no-op
    assert not gz_dist.is_initialized() and gz_dist.world_size() == 1


@pytest.mark.parametrize("rank", [0, 1])
def test_a_missing_peer_stops_the_start_with_a_one_line_fix(monkeypatch, rank):
    # WORLD_SIZE=2 with the other process never launched: rank 0 waits for it, rank 1 for
    # rank 0's store; either gives up after the start-up timeout instead of the group's 30 min.
    env = {"RANK": rank, "WORLD_SIZE": 2, "LOCAL_RANK": rank, "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": free_port()}  # fmt: skip
    for var, value in env.items():
        monkeypatch.setenv(var, str(value))
    with pytest.raises(GenzooError, match=r"of 2 found no complete group .* within 1 s.*start all 2"):
        gz_dist.init_from_env("cpu", startup_timeout_s=1.0)
    assert not gz_dist.is_initialized()


def test_one_process_group(tmp_path, device):
    spawn(_collectives, 1, str(tmp_path), str(device))
    assert (tmp_path / "rank0").read_text() == "0/1"


def test_two_processes(tmp_path, device):
    if device.type == "cuda" and torch.cuda.device_count() < 2:
        pytest.skip(f"NCCL needs one GPU per process: 2 processes, "
                    f"{torch.cuda.device_count()} GPU here")
    spawn(_collectives, 2, str(tmp_path), str(device))
    assert (tmp_path / "rank0").read_text() == "0/2" and (tmp_path / "rank1").read_text() == "1/2"


def test_threads_per_process_keep_processes_times_threads_within_the_cores():
    for cores in (1, 2, 3, 16):
        for n in (1, 2, 3, 8, 32):
            t = gz_dist.threads_per_process(n, cores)
            assert t >= 1 and (n * t <= cores or t == 1)
    assert gz_dist.threads_per_process(2, 16) == 8 and gz_dist.threads_per_process(1, 2) == 2


def test_balance_threads_respects_omp_num_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert gz_dist.balance_threads(2) is None and torch.get_num_threads() == before
        monkeypatch.delenv("OMP_NUM_THREADS")
        n = gz_dist.balance_threads(64)  # more processes than cores: one thread each
        assert n == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def _threads_of_a_worker(rank: int, world: int, port: int, out: str) -> None:
    as_torchrun_rank(rank, world, port)
    os.environ["LOCAL_WORLD_SIZE"] = str(world)
    os.environ.pop("OMP_NUM_THREADS", None)
    torch.set_num_threads(4)  # what the worker had before joining
    gz_dist.init_from_env("cpu")
    with open(os.path.join(out, f"threads{rank}"), "w") as f:
        f.write(str(torch.get_num_threads()))
    gz_dist.destroy()


def test_torchrun_workers_share_the_cores(tmp_path):
    spawn(_threads_of_a_worker, 2, str(tmp_path))
    expected = gz_dist.threads_per_process(2)
    assert all((tmp_path / f"threads{r}").read_text() == str(expected) for r in (0, 1))
