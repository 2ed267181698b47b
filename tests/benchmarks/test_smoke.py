"""The speed comparisons in their smoke modes, the result format and provenance, and the
RESULTS.md generator. The smoke runs check the machinery (the comparisons run end to end and
write well-formed results outside benchmarks/results), not the numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from smoke_support import BENCH, run_script
from support import load_benchmark

from genzoo.utils import provenance

make_results = load_benchmark("make_results")
run = load_benchmark("run")
common = make_results.common  # the very module make_results raises its errors from


def test_speed_smoke_writes_a_complete_result(tmp_path):
    try:
        import learnergy  # noqa: F401

        impls = ["genzoo", "sklearn", "bare", "bare+draws", "learnergy-fit", "learnergy-step"]
    except ImportError:
        # CI has no learnergy: its part is skipped
        impls = ["genzoo", "sklearn", "bare", "bare+draws"]
    run_script(["benchmarks/run.py", "rbm_cd1_speed", "--smoke", "--", "--threads", "1",
                "--impls", ",".join(impls), "--out", str(tmp_path)])

    result = json.loads((tmp_path / "rbm_cd1_speed_threads1.json").read_text())
    common.validate_result(result)
    assert result["smoke"] is True and result["kind"] == "speed"
    assert result["config"]["n_hidden"] == 500 and result["config"]["batch_size"] == 100
    for name in impls:
        t = result["timings"][name]
        assert t["status"] == "ok", (name, t)
        assert len(t["times_s"]) == result["config"]["repetitions"] == 2
        assert t["median_s"] > 0 and all(s > 0 for s in t["times_s"])
    # scikit-learn was handed float32 and keeps it; the dtype recorded is the one it used.
    assert result["timings"]["sklearn"]["dtype"] == "float32"
    for name in impls[1:]:
        expected = result["timings"]["genzoo"]["median_s"] / result["timings"][name]["median_s"]
        assert math.isclose(result["ratios"][f"genzoo / {name}"], expected, rel_tol=1e-9)
    assert set(result["acceptance"]) >= {"criterion", "passed", "why"}
    # The criterion's floor is bare+draws (the decision); genzoo / bare rides along.
    assert "genzoo / bare+draws <= 1.5" in result["acceptance"]["criterion"]
    assert math.isclose(result["acceptance"]["genzoo_over_bare"],
                        result["ratios"]["genzoo / bare"], rel_tol=1e-12)
    assert result["git"]["commit"] and isinstance(result["git"]["dirty"], bool)
    assert result["machine"]["torch"] and result["machine"]["cores"] >= 1


def test_speed_smoke_reports_a_missing_peer_instead_of_failing(tmp_path):
    pytest.importorskip("sklearn")
    try:
        import learnergy  # noqa: F401

        pytest.skip("learnergy is installed here; the missing-peer path cannot be exercised")
    except ImportError:
        pass
    run_script(["benchmarks/run.py", "rbm_cd1_speed", "--smoke", "--", "--threads", "1",
                "--impls", "genzoo,learnergy-step,bare", "--out", str(tmp_path)])
    result = json.loads((tmp_path / "rbm_cd1_speed_threads1.json").read_text())
    entry = result["timings"]["learnergy-step"]
    assert entry["status"] == "unavailable" and "learnergy" in entry["reason"]
    assert "learnergy-step" in result["acceptance"]["peers_not_measured"]


def test_nade_throughput_smoke_compares_the_two_computations(tmp_path):
    run_script(["benchmarks/run.py", "nade_throughput", "--smoke", "--", "--out", str(tmp_path)])
    for kind in ("train", "eval"):
        result = json.loads((tmp_path / f"nade_throughput_{kind}.json").read_text())
        common.validate_result(result)
        assert result["kind"] == "speed" and result["smoke"] is True
        assert set(result["timings"]) == {"genzoo", "per-conditional"}
        ratio = result["ratios"]["genzoo / per-conditional"]
        assert math.isclose(ratio, result["timings"]["genzoo"]["median_s"]
                            / result["timings"]["per-conditional"]["median_s"])


def test_estimator_floors_smoke_times_each_estimator_against_its_floor(tmp_path):
    run_script(["benchmarks/run.py", "estimator_floors", "--smoke", "--", "--out", str(tmp_path)])
    peers = {"ais": {"genzoo-float64", "bare products"}, "is": {"genzoo-float64", "bare products"},
             "step": {"plain loop", "pyro"}, "step_iwae": {"plain loop", "pyro"}}
    for kind, others in peers.items():
        result = json.loads((tmp_path / f"estimator_floors_{kind}.json").read_text())
        common.validate_result(result)
        assert result["kind"] == "speed" and result["smoke"] is True
        assert set(result["timings"]) == {"genzoo", *others}
        for name, t in result["timings"].items():
            # Pyro is an optional peer: without it the result says how to install it
            assert t["status"] == "ok" or (name == "pyro" and "pip install" in t["reason"]
                                           and "pip install" in result["acceptance"]["why"])
        assert isinstance(result["acceptance"]["passed"], bool)
        assert all(f"genzoo / {n}" in result["acceptance"]["criterion"] for n in others
                   if n != "genzoo-float64")
    ais = json.loads((tmp_path / "estimator_floors_ais.json").read_text())["extra"]
    assert set(ais) == {"log_z_float32", "log_z_float64"}  # forward and reverse, with stderr


# ----------------------------------------------------------------------- make_results


def _result(name: str, title: str, kind: str, **keys) -> dict:
    """A result of the schema on a test machine, with ``keys``."""
    return {"schema_version": 2, "benchmark": name, "row": name, "title": title, "kind": kind,
            "date": "2026-01-01T00:00:00+00:00",
            "machine": {"cpu": "test cpu", "cores": 2, "torch": "2.x"}, "smoke": False, **keys}


def _likelihood(value: float, refs: list[tuple[str, float]], **over) -> dict:
    return _result(
        "toy_nll", "Toy NLL", "likelihood",
        command="python benchmarks/toy.py",
        git={"commit": "uncommitted", "dirty": True},
        data={"name": "binarized-mnist", "binarization": "fixed", "split": "test"},
        metric={"name": "test NLL", "unit": "nats", "lower_is_better": True},
        estimator={"name": "ais", "ais_runs": 100, "ais_betas": 14500},
        value=value,
        stderr=0.1,
        references=[{"label": lab, "value": v, "source": "Paper (2008), Table 2"}
                    for lab, v in refs],
        wall_s={"train": 1.0, "evaluate": 2.0},
        notes=[],
    ) | over


def _speed() -> dict:
    return _result(
        "toy_speed", "Toy speed", "speed",
        command="python benchmarks/toy_speed.py",
        git={"commit": "abc123", "dirty": False},
        data={"name": "binarized-mnist", "binarization": "fixed", "split": "train"},
        config={"n_visible": 784, "n_hidden": 500, "batch_size": 100, "n_batches": 500,
                "repetitions": 3, "dtype": "float32"},
        timings={
            "genzoo": {"status": "ok", "times_s": [2.0, 2.1, 1.9], "median_s": 2.0,
                       "per_batch_ms": 4.0, "dtype": "float32"},
            "sklearn": {"status": "ok", "times_s": [4.0, 4.0, 4.0], "median_s": 4.0,
                        "per_batch_ms": 8.0, "dtype": "float32"},
            "learnergy-step": {"status": "unavailable", "reason": "learnergy not installed"},
        },
        ratios={"genzoo / sklearn": 0.5},
        acceptance={"criterion": "fastest", "passed": False, "why": "bare not measured"},
        wall_s={"timed_loop": 20.0},
        notes=["a note"],
    )


def _write(d: Path, *results: dict) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for r in results:
        (d / f"{r['benchmark']}.json").write_text(json.dumps(r))


def test_a_result_records_the_commit_its_process_started_from(monkeypatch):
    # A run that takes hours publishes after later commits; the code it ran is the code it
    # imported, so HEAD at publication must not be recorded.
    started = common.run_git()
    later = {"commit": "later", "dirty": True}
    monkeypatch.setattr(common, "source_commit", lambda repo=None: later)
    monkeypatch.setattr(provenance, "source_commit", lambda repo=None: later)
    result = common.header("b", "b", "t", "likelihood", smoke=True)
    assert result["git"] == started != later


def test_a_result_records_the_config_its_run_was_trained_with(tmp_path):
    # A run resumed after its recipe changed keeps the config it started with: the result must
    # carry that config and say where the recipe it prints differs from it.
    run_dir = tmp_path / "run"
    run_script(["-m", "genzoo", "train", "fvsbn", "--data", "digits",
                "--set", "data.binarize=threshold", "--set", "train.epochs=1",
                "--set", "train.lr=0.01", "--set", "train.progress=false", "--out", str(run_dir)])
    settings = {"train.lr": 0.02, "train.epochs": 1, "data.binarize": "threshold",
                "eval.dtype": "float32", "model.no_such_field": 3}
    result = {"notes": ["a note"], "training": {"epochs": 1, "settings": settings}}
    out = run.with_run_config(result, run_dir)
    assert out["training"]["run_config"]["train"]["lr"] == 0.01
    assert out["training"]["run_config"]["model_name"] == "fvsbn"
    assert out["notes"][0] == "a note" and len(out["notes"]) == 2
    mismatch = out["notes"][1]
    assert "train.lr: recipe 0.02, run 0.01" in mismatch
    assert "model.no_such_field: recipe 3, not a setting of this run" in mismatch
    # Held settings, and evaluation-time ones (not the run's to hold), are not named.
    assert "train.epochs" not in mismatch and "data.binarize" not in mismatch
    assert "eval.dtype" not in mismatch
    assert result["notes"] == ["a note"] and "run_config" not in result["training"]
    held = {"training": {"settings": {"train.lr": 0.01}}, "notes": []}
    assert run.with_run_config(held, run_dir)["notes"] == []
    # No checkpoint (a script run with nothing trained): the result is left as it is.
    assert run.with_run_config(result, tmp_path / "nothing") is result


def test_gap_words_never_hide_a_shortfall():
    assert common.gap(90.0, 86.34) == pytest.approx(3.66)
    assert common.describe_gap(90.0, 86.34, "nats", lower_is_better=True) == "short by 3.66 nats"
    assert common.describe_gap(85.0, 86.34, "nats", lower_is_better=True) == "ahead by 1.34 nats"
    # For a higher-is-better metric the same sign means the opposite.
    assert common.describe_gap(85.0, 86.34, "%", lower_is_better=False) == "short by 1.34 %"


def test_make_results_tables_show_every_reference_and_the_gap(tmp_path):
    _write(tmp_path / "results",
           _likelihood(90.0, [("SM08 CD25(500)", 86.34), ("SM08 CD1(500)", 125.53)]), _speed())
    out = tmp_path / "RESULTS.md"
    assert make_results.main(["--results-dir", str(tmp_path / "results"),
                               "--out", str(out)]) == 0
    text = out.read_text()
    assert "do not edit by hand" in text
    # Ours and every reference, each with its gap; the shortfall is worded as one.
    assert "| **genzoo (ours)** | **90.00** | 0.10 |" in text
    assert "| SM08 CD25(500) | 86.34 |" in text and "+3.66 nats: short by 3.66 nats" in text
    assert "| SM08 CD1(500) | 125.53 |" in text and "-35.53 nats: ahead by 35.53 nats" in text
    assert "Paper (2008), Table 2" in text
    assert "`python benchmarks/toy.py`" in text and "uncommitted (dirty working tree)" in text
    # Speed: per-implementation medians, the ratio, a peer that could not run and why.
    assert "| genzoo | ok | float32 | 2.000 |" in text
    assert "| sklearn | ok | float32 | 4.000 |" in text and "| 0.50 |" in text
    assert "unavailable: learnergy not installed" in text
    assert "**NOT MET**" in text
    assert text.index("Toy NLL") < text.index("Toy speed")  # ordered by benchmark name


def test_make_results_footnote_follows_each_results_own_estimator():
    def footnote(**over) -> str:
        text = "\n".join(make_results.likelihood_section(_likelihood(90.0, [("ref", 86.34)],
                                                                      **over)))
        return next(line for line in text.splitlines() if line.startswith("Std. error"))

    evaluated = {"steps": ["genzoo train rbm", "genzoo evaluate RUN --json"]}
    ais = footnote(**evaluated, extra={"stderr_log_z": 0.25})
    assert "`genzoo evaluate`" in ais and "AIS error of log Z" in ais and "0.250" in ais
    assert "lower is better" in ais
    # A classification error is binomial and computed by the script, not by genzoo evaluate.
    error = footnote(steps=["genzoo train disc-rbm"],
                     metric={"name": "test classification error", "unit": "%",
                             "lower_is_better": True})
    assert "binomial" in error and "genzoo evaluate" not in error
    # A Parzen log-likelihood: higher is better, and the published errors are in the table.
    parzen = footnote(**evaluated,
                      metric={"name": "test Parzen log-likelihood", "unit": "nats",
                              "lower_is_better": False},
                      references=[{"label": "GAN", "value": 225.0, "stderr": 2.0,
                                   "source": "Goodfellow et al. (2014)"}])
    assert "Parzen" in parzen and "higher is better" in parzen
    assert "where published, are in the std. error column" in parzen
    assert "genzoo evaluate" not in footnote(steps=None)


def test_make_results_shows_mmd_frechet_and_coverage_beside_parzen():
    parzen = {"name": "test Parzen log-likelihood", "unit": "nats", "lower_is_better": False}
    text = "\n".join(make_results.likelihood_section(_likelihood(
        210.0, [], metric=parzen,
        extra={"mmd2": 0.1529, "mmd_p_value": 0.005, "frechet_distance": 119.55,
               "classes_covered": 9, "reference_classes_covered": 10})))
    line = next(x for x in text.splitlines() if x.startswith("Beside the Parzen score"))
    assert "MMD² to the test set 0.1529 (permutation-test p = 0.005)" in line
    assert "119.55" in line and "classes covered 9 of 10 (the test images: 10)" in line
    # fewer classes than the test images cover is flagged, whichever benchmark wrote it
    assert "**MODE COLLAPSE**: the samples cover 9 of the 10 digit classes" in text
    full = "\n".join(make_results.likelihood_section(_likelihood(
        210.0, [], metric=parzen, extra={"mmd2": 0.15, "classes_covered": 10,
                                         "reference_classes_covered": 10})))
    assert "MODE COLLAPSE" not in full
    # a likelihood without sample-based figures gets no such line
    plain = "\n".join(make_results.likelihood_section(_likelihood(90.0, [("ref", 86.34)])))
    assert "Beside the Parzen score" not in plain


def test_make_results_puts_a_comparisons_members_in_one_table(monkeypatch):
    comparison = {"title": "Toy at one budget", "why": "An issue asks for it.",
                  "members": [("toy_a", "model A"), ("toy_b", "model B"), ("toy_c", "model C")]}
    monkeypatch.setattr(make_results, "COMPARISONS", [comparison])
    a = _likelihood(90.0, [], benchmark="toy_a", training={"epochs": 10},
                    wall_s={"pretrain": 3.0, "pretrain_logged": 500.0, "train": 100.0,
                            "evaluate": 9.0},
                    extra={"value_reverse": 90.5})
    b = _likelihood(95.25, [], benchmark="toy_b", training={"epochs": 10})
    text = make_results.render([a, b])
    # first, before the members' own sections; c is not run and says so
    assert text.index("## Toy at one budget") < text.index("## Toy NLL")
    assert ("| model A | 90.00 | 0.10 | — | 90.50 | pretrain 500 + train 100 = 600 | "
            "toy_a.json |") in text
    assert "| model B | 95.25 | 0.10 | +5.25 | — | train 1 | toy_b.json |" in text
    assert "| model C | not run yet |" in text
    assert "Not at one budget" not in text
    # a member trained longer (or evaluated otherwise) is flagged, naming what differs
    c = _likelihood(93.0, [], benchmark="toy_c", training={"epochs": 300})
    flagged = make_results.render([a, b, c])
    assert "**Not at one budget**" in flagged and "training epochs" in flagged
    assert "toy_c 300" in flagged
    # no member present: no section
    assert "Toy at one budget" not in make_results.render([_speed()])


def test_make_results_check_detects_a_stale_file(tmp_path):
    results = tmp_path / "results"
    _write(results, _likelihood(86.0, [("ref", 86.34)]))
    out = tmp_path / "RESULTS.md"
    args = ["--results-dir", str(results), "--out", str(out)]
    assert make_results.main(args) == 0
    assert make_results.main([*args, "--check"]) == 0
    out.write_text(out.read_text() + "hand edit\n")
    assert make_results.main([*args, "--check"]) == 1


def test_make_results_rejects_smoke_and_incomplete_results(tmp_path):
    _write(tmp_path / "smoke", _likelihood(90.0, [("ref", 86.34)], smoke=True))
    with pytest.raises(common.ResultFormatError, match="smoke"):
        make_results.load_results(tmp_path / "smoke")
    broken = _likelihood(90.0, [("ref", 86.34)])
    del broken["command"], broken["references"][0]["source"]
    _write(tmp_path / "broken", broken)
    with pytest.raises(common.ResultFormatError, match="command.*source|source.*command"):
        make_results.load_results(tmp_path / "broken")


def test_committed_results_md_is_generated_from_the_json_files(tmp_path):
    committed = BENCH / "RESULTS.md"
    if not committed.exists():
        pytest.skip("no RESULTS.md yet")
    assert make_results.main(["--check"]) == 0, (
        "benchmarks/RESULTS.md differs from what make_results.py generates from "
        "benchmarks/results/: regenerate it with python benchmarks/make_results.py"
    )
