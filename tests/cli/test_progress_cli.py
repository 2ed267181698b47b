"""Progress on the command line: `genzoo evaluate` with AIS, `sample`, `chain`, `inpaint` and
`train --pretrain` show what runs on stderr (off a terminal: one line per phase, with its
count and seconds); `--quiet` silences it; the results still go to stdout."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from genzoo.cli import main

TRAIN = [
    "--data", "digits", "--set", "data.binarize=threshold", "--set", "data.n_train=100",
    "--set", "data.n_eval=20", "--set", "train.max_steps=5", "--set", "train.grid_samples=0",
]  # fmt: skip
# AIS forced (no exact enumeration), forward and reverse, small enough for a test.
AIS = [
    "--set", "eval.exact_max_units=0", "--set", "eval.ais_runs=4", "--set", "eval.ais_betas=60",
    "--set", "eval.schedule=linear", "--set", "eval.reverse_burn_in=2",
]  # fmt: skip
# One summary line per finished phase: "genzoo: WHAT: DONE/TOTAL UNIT in SECONDS s".
PHASE = re.compile(r"^genzoo: (.+): (\d+)/(\d+) (\w+) in (\d+\.\d) s$")


@pytest.fixture(scope="module")
def rbm_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("progress") / "rbm"
    assert main(["train", "rbm", *TRAIN, "--set", "model.n_hidden=8", "--quiet",
                 "--out", str(run)]) == 0
    return run


def _phases(err: str) -> list[tuple[str, int, int, str]]:
    found = [PHASE.match(line) for line in err.splitlines()]
    return [(m[1], int(m[2]), int(m[3]), m[4]) for m in found if m]


def test_evaluate_shows_one_line_per_ais_phase_on_stderr(rbm_run, capsys):
    assert main(["evaluate", str(rbm_run), *AIS]) == 0
    out, err = capsys.readouterr()
    phases = _phases(err)
    # Two shards of two runs (eval.ais_shard): the stage counts the temperatures of both.
    assert ("forward AIS, 4 runs", 118, 118, "temperatures") in phases
    assert ("reverse AIS, 4 runs", 118, 118, "temperatures") in phases
    assert len([p for p in phases if "AIS" in p[0]]) == 2  # one line per phase, no more
    # reverse AIS's start, one burn-in a shard
    assert phases.count(("Gibbs burn-in of 2 chains", 2, 2, "steps")) == 2
    assert _phases(out) == [] and "nats" in out  # the report on stdout, the progress apart


def test_evaluate_quiet_shows_no_progress(rbm_run, capsys):
    assert main(["evaluate", str(rbm_run), *AIS, "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert _phases(err) == [] and "AIS" not in err
    assert "nats" in out


def test_evaluate_in_a_subprocess_writes_progress_to_its_stderr(rbm_run):
    cmd = [sys.executable, "-m", "genzoo", "evaluate", str(rbm_run), *AIS, "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    assert any(p[0].startswith("forward AIS") for p in _phases(done.stderr)), done.stderr
    assert done.stdout.lstrip().startswith("{")  # stdout stays one JSON object
    quiet = subprocess.run([*cmd, "--quiet"], capture_output=True, text=True, timeout=600,
                           check=True)
    assert "AIS" not in quiet.stderr


def test_sample_chain_and_inpaint_report_their_phase_unless_quiet(rbm_run, tmp_path, capsys):
    assert main(["sample", str(rbm_run), "-n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert _phases(capsys.readouterr().err) == [("sampling rbm", 4, 4, "samples")]
    assert main(["chain", str(rbm_run), "-n", "2", "--steps", "6", "--every", "2",
                 "--out", str(tmp_path / "c.png")]) == 0
    assert _phases(capsys.readouterr().err) == [("2 chains of rbm", 6, 6, "steps")]
    for command in (["sample", str(rbm_run), "-n", "4", "--out", str(tmp_path / "q.png")],
                    ["chain", str(rbm_run), "-n", "2", "--steps", "6",
                     "--out", str(tmp_path / "q.gif")]):
        assert main([*command, "--quiet"]) == 0
        out, err = capsys.readouterr()
        assert err == "" and out.startswith("wrote ")


def test_inpaint_reports_its_phase_unless_quiet(tmp_path, capsys):
    run = tmp_path / "dae"
    assert main(["train", "dae", *TRAIN, "--set", "model.n_hidden=8", "--quiet",
                 "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["inpaint", str(run), "-n", "3", "--out", str(tmp_path / "i.png")]) == 0
    assert _phases(capsys.readouterr().err) == [("inpainting with dae", 3, 3, "images")]
    assert main(["inpaint", str(run), "-n", "3", "--out", str(tmp_path / "j.png"),
                 "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_train_quiet_hides_the_progress_bar_and_pretraining_phases(tmp_path, capsys):
    dbm = ["--set", "model.hidden=[8,6]", "--set", "model.n_chains=10", "--pretrain", "1"]
    assert main(["train", "dbm", *TRAIN, *dbm, "--out", str(tmp_path / "loud")]) == 0
    err = capsys.readouterr().err
    assert ("DBM pretraining, 2 RBMs", 2, 2, "RBMs") in _phases(err)
    assert main(["train", "dbm", *TRAIN, *dbm, "--quiet", "--out", str(tmp_path / "q")]) == 0
    out, err = capsys.readouterr()
    assert _phases(err) == [] and "step/s" not in err and "it/s" not in err
    assert out.startswith("trained dbm")


def test_only_rank_0_of_a_torchrun_group_shows_progress(rbm_run, capsys, monkeypatch):
    from genzoo import distributed as gz_dist

    # Rank 1 (of a group of one here, so that it computes alone): it neither prints the report
    # nor shows progress; rank 0 does both (the tests above).
    monkeypatch.setattr(gz_dist, "init_from_env", lambda device: gz_dist.DistContext(rank=1))
    assert main(["evaluate", str(rbm_run), *AIS]) == 0
    assert capsys.readouterr() == ("", "")
