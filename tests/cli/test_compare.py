"""``genzoo compare``: several models at one budget on the digits, one leaderboard; resumed,
refusals listed, errors in one line, the models spread over torchrun's processes."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch

from genzoo import compare
from genzoo.cli import main

MODELS = "rbm,nade,vae,made"
# Tiny models and cheap estimators; the RBM has more hidden units than eval.exact_max_units
# (20) can enumerate, so its log Z comes from forward and reverse AIS: the bracket.
SMALL = [
    "--set", "data.n_train=300", "--set", "data.n_eval=100", "--set", "train.batch_size=100",
    "--set", "train.grid_samples=16",
    "--set", "eval.ais_runs=8", "--set", "eval.ais_betas=100", "--set", "eval.reverse_burn_in=5",
    "--set", "eval.is_samples=20",
    "--set", "rbm:model.n_hidden=21", "--set", "rbm:model.sample_burn_in=20",
    "--set", "nade:model.n_hidden=8", "--set", "vae:model.hidden=16",
    "--set", "vae:model.n_latent=4", "--set", "made:model.hidden=16",
]  # fmt: skip


def _compare(out: Path, models: str = MODELS, *extra: str) -> int:
    return main(["compare", "--data", "digits", "--models", models, "--epochs", "2",
                 "--curve-points", "2", "--out", str(out), *SMALL, *extra])


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("compare") / "out"
    assert _compare(out) == 0
    return out


def test_the_leaderboard_has_every_figure(compared):
    board = json.loads((compared / "leaderboard.json").read_text())
    assert board["budget"]["epochs"] == 2 and "2 epochs per model" in board["budget"]["text"]
    assert board["data"]["name"] == "digits" and board["data"]["split"] == "test"
    rows = {r["model"]: r for r in board["likelihood"]}
    assert set(rows) == set(MODELS.split(","))
    assert [r["rank"] for r in board["likelihood"]] == [1, 2, 3, 4]
    nlls = [r["nll_nats"] for r in board["likelihood"]]
    assert nlls == sorted(nlls)
    for name, r in rows.items():
        assert 0 < r["nll_nats"] < 64 * math.log(2) and r["stderr"] > 0, name
        assert math.isclose(r["bits_per_dim"], r["nll_nats"] / (64 * math.log(2)))
        assert r["bits_per_dim_stderr"] > 0 and r["train_s"] > 0 and r["steps"] == 6
        assert r["n_examples"] == 100 and r["split"] == "test"
        assert (compared / r["samples"]).stat().st_size > 0  # the sample grid
        assert [p["step"] for p in r["curve"]] == [3, 6]  # held-out NLL during training
        assert all(p["nll"] > 0 and p["train_s"] > 0 for p in r["curve"])
        assert (compared / name / "checkpoint.json").is_file()  # a normal genzoo run
    assert "exact" in rows["nade"]["estimator"] and "importance" in rows["vae"]["estimator"]
    ais = rows["rbm"]["ais"]
    assert "AIS" in rows["rbm"]["estimator"]
    assert ais["bracket"] == sorted([ais["nll_forward"], ais["nll_reverse"]])
    assert math.isfinite(ais["log_z"]) and math.isfinite(ais["log_z_reverse"])
    assert (compared / "nll_vs_time.png").stat().st_size > 0
    md = (compared / "leaderboard.md").read_text()
    for text in ("bits/dim", "AIS bracket", "2 epochs per model", "nll_vs_time.png",
                 "rbm/samples.png", "training time", *MODELS.split(",")):
        assert text in md, text


def test_a_rerun_skips_finished_models_and_lists_a_refused_one(compared, capsys):
    before = {m: (compared / "results" / f"{m}.json").read_text() for m in MODELS.split(",")}
    assert _compare(compared, MODELS + ",grbm") == 0
    err = capsys.readouterr().err
    for m in MODELS.split(","):
        assert f"{m}: done earlier, skipped" in err
        assert (compared / "results" / f"{m}.json").read_text() == before[m]
    board = json.loads((compared / "leaderboard.json").read_text())
    [refused] = board["not_compared"]
    assert refused["model"] == "grbm" and refused["status"] == "refused"
    assert "continuous density on binary data" in refused["reason"]
    assert "grbm" in (compared / "leaderboard.md").read_text().split("## Not compared")[1]
    assert not (compared / "grbm").exists()


def test_an_unfinished_run_is_resumed(compared):
    """A model whose entry is not finished (the process stopped) continues its run from the
    checkpoint: nothing is trained again and the figure is the same."""
    entry = json.loads((compared / "results" / "nade.json").read_text())
    interrupted = {**entry, "status": "training"}
    (compared / "results" / "nade.json").write_text(json.dumps(interrupted))
    assert _compare(compared) == 0
    again = json.loads((compared / "results" / "nade.json").read_text())
    assert again["status"] == "done" and again["steps"] == 6
    assert again["report"]["nll_nats"] == entry["report"]["nll_nats"]
    assert again["curve"] == entry["curve"]


def test_torchrun_ranks_share_out_the_models_and_rank_0_writes_the_leaderboard(tmp_path):
    assert compare.partition(["a", "b", "c", "d", "e"], 0, 2) == ["a", "c", "e"]
    assert compare.partition(["a", "b", "c", "d", "e"], 1, 2) == ["b", "d"]
    assert compare.partition(["a"], 1, 2) == []
    settings = compare.CompareSettings(
        data="digits", models=("nade", "made", "grbm"), budget=compare.Budget(epochs=1),
        common=("data.n_train=100", "data.n_eval=50", "train.grid_samples=4"),
        per_model={"nade": ("model.n_hidden=4",), "made": ("model.hidden=8",)},
        curve_points=1)
    # Rank 1 first (rank 0 created the directory): it trains "made" only and writes no board.
    compare.prepare_out(tmp_path / "out", settings, writes=True)
    assert compare.run_compare(settings, tmp_path / "out", rank=1, world_size=2) is None
    assert sorted(p.name for p in (tmp_path / "out" / "results").glob("*.json")) == ["made.json"]
    assert not (tmp_path / "out" / "leaderboard.json").exists()
    board = compare.run_compare(settings, tmp_path / "out", rank=0, world_size=2)
    assert {r["model"] for r in board["likelihood"]} == {"nade", "made"}
    assert [r["model"] for r in board["not_compared"]] == ["grbm"]


@pytest.mark.parametrize(("env", "expected"), [
    # Four processes on this machine of 16 cores: 4 threads each (cores / processes).
    ({"RANK": "1", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4"}, 4),
    # No LOCAL_WORLD_SIZE: all WORLD_SIZE processes share the machine.
    ({"RANK": "1", "WORLD_SIZE": "2"}, 8),
    # OMP_NUM_THREADS chooses: unchanged (None), as for training.
    ({"RANK": "1", "WORLD_SIZE": "2", "OMP_NUM_THREADS": "3"}, None),
    # Not under torchrun: torch's own choice, unchanged.
    ({}, None),
])  # fmt: skip
def test_torchrun_processes_share_the_cores(tmp_path, monkeypatch, env, expected):
    """Each compare process under torchrun takes genzoo.distributed.threads_per_process of
    the cores (the one rule training follows too), unless OMP_NUM_THREADS is set."""
    for key in ("RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "LOCAL_RANK", "OMP_NUM_THREADS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {**env, "MASTER_ADDR": "localhost", "MASTER_PORT": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    seen = []

    def run_compare(settings, out, rank, world, note):  # the threads the models would train on
        seen.append((rank, world, torch.get_num_threads()))

    monkeypatch.setattr(compare, "run_compare", run_compare)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(5)  # what the process had before: kept unless compare sets it
        assert main(["compare", "--data", "digits", "--models", "nade", "--epochs", "1",
                     "--out", str(tmp_path / "o")]) == 0
    finally:
        torch.set_num_threads(before)
    rank, world = (1, int(env["WORLD_SIZE"])) if env else (0, 1)
    assert seen == [(rank, world, 5 if expected is None else expected)]


@pytest.mark.parametrize(("args", "says"), [
    (["--models", "rbm,nosuch", "--epochs", "1"], "unknown model 'nosuch'; available models:"),
    (["--models", "rbm", "--budget", "10x"], "--budget '10x' is not a time"),
    (["--models", "rbm", "--budget", "10m", "--epochs", "2"], "not both"),
    (["--models", "rbm"], "--epochs N or as --budget TIME"),
    (["--models", "rbm", "--epochs", "1", "--set", "vae:model.n_latent=2"], "not compared"),
    (["--models", "rbm", "--epochs", "1", "--set", "model.nosuch=1"], "nosuch"),
])  # fmt: skip
def test_user_errors_are_one_line(tmp_path, capsys, args, says):
    assert main(["compare", "--data", "digits", "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # refused before anything is written


def test_a_folder_that_is_not_a_comparison_is_refused(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("a user's file")
    assert main(["compare", "--data", "digits", "--models", "nade", "--epochs", "1",
                 "--out", str(tmp_path)]) == 2
    assert "not empty and holds no comparison" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_a_comparison_with_other_settings_is_refused(compared, capsys):
    assert main(["compare", "--data", "digits", "--models", MODELS, "--epochs", "3",
                 "--curve-points", "2", "--out", str(compared), *SMALL]) == 2
    assert "other settings (budget)" in capsys.readouterr().err


def test_a_wall_clock_budget_is_turned_into_steps_by_a_timed_probe(tmp_path):
    assert [compare.Budget.parse(t, None).seconds for t in ("90s", "10m", "1.5h", "600")] == [
        90.0, 600.0, 5400.0, 600.0]
    assert compare.Budget.parse("10m", None).describe().startswith("10 min of wall clock")
    assert compare.Budget.parse(None, 3).describe() == "3 epochs per model"
    assert main(["compare", "--data", "digits", "--models", "made", "--budget", "2s",
                 "--curve-points", "1", "--out", str(tmp_path / "o"), "--set",
                 "data.n_train=100", "--set", "data.n_eval=50", "--set",
                 "made:model.hidden=8"]) == 0
    entry = json.loads((tmp_path / "o" / "results" / "made.json").read_text())
    assert entry["status"] == "done" and entry["steps"] == entry["planned_steps"] >= 1
    assert entry["probe_s_per_step"] > 0
    assert not list((tmp_path / "o" / "results").glob(".probe-*"))  # the probe run is gone
    board = json.loads((tmp_path / "o" / "leaderboard.json").read_text())
    assert board["budget"]["seconds"] == 2.0 and "wall clock" in board["budget"]["text"]


def test_a_binary_model_on_grey_levels_is_listed_with_the_fix(tmp_path):
    settings = compare.CompareSettings(
        data="digits", models=("nade",), budget=compare.Budget(epochs=1),
        common=("data.binarize=none", "data.n_train=100", "data.n_eval=50"))
    board = compare.run_compare(settings, tmp_path / "out")
    [refused] = board["not_compared"]
    assert refused["status"] == "refused" and "cannot model these data" in refused["reason"]
    assert "data.binarize" in refused["reason"]  # the model's own check names the fix
    assert board["likelihood"] == [] and not (tmp_path / "out" / "nade").exists()
    assert "| nade | refused |" in (tmp_path / "out" / "leaderboard.md").read_text()
