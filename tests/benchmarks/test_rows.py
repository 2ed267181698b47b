"""Every benchmark row, run once in its smoke mode in this process on the bundled digits, and
the shape of benchmarks/ itself (rows that name what exists, no import cycle)."""

from __future__ import annotations

import ast
import json
import math

import pytest
from smoke_support import BENCH, results_snapshot
from support import load_benchmark

from genzoo.core.registry import get_model_spec
from genzoo.models.chains import chain_kind

run = load_benchmark("run")
common = load_benchmark("common")
tasks = load_benchmark("tasks")

ROWS = run.row_names()
TRAINED = [n for n in ROWS if "speed" not in run.load_row(n)]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("GENZOO_OFFLINE", "1")


def smoke(name, tmp_path, *extra):
    """Run ``name`` in smoke mode; the result it wrote, validated, with what it printed."""
    before = results_snapshot()
    assert run.main([name, "--smoke", "--in-process", "--results", str(tmp_path),
                     "--out", str(tmp_path / "run"), *extra]) == 0
    assert results_snapshot() == before, "a smoke run touched benchmarks/results"
    row = run.load_row(name)
    result = json.loads((tmp_path / f"{row.get('result', name)}.json").read_text())
    common.validate_result(result)
    return result


@pytest.mark.parametrize("name", TRAINED)
def test_row_smoke_writes_a_complete_result(name, tmp_path):
    row = run.load_row(name)
    result = smoke(name, tmp_path)
    assert result["smoke"] is True and result["row"] == name
    assert result["notes"][0] == common.SMOKE_NOTE or "task" in row
    assert result["command"].startswith(f"python benchmarks/run.py {name} --smoke")
    assert result["git"]["commit"] and isinstance(result["git"]["dirty"], bool)
    assert math.isfinite(result["value"]) and math.isfinite(result["stderr"])
    assert result["stderr"] >= 0
    # references carried from the row, each with its gap to our number
    assert [r["label"] for r in result["references"]] == [
        r["label"] for r in row.get("references", [])]
    for ref in result["references"]:
        assert math.isclose(ref["gap"], result["value"] - ref["value"])
        assert ref["gap_text"].split()[0] in ("short", "ahead", "equal")
    if "task" in row:
        return
    assert result["data"]["name"] == "digits" and result["data"]["split"] == "test"
    assert result["data"]["n_examples"] == 100
    assert result["training"]["run_config"]["model_name"] == row["model"]
    assert result["training"]["settings"]["train.epochs"] == 1
    assert result["wall_s"]["evaluate"] > 0
    if row.get("evaluate", {}).get("eval.ais_runs"):
        est = result["estimator"]
        assert "ais" in est["name"].lower() and est["reverse"] is True
        assert (est["ais_runs"], est["ais_betas"]) == (10, 100)
        assert math.isfinite(result["extra"]["log_z"])
    if row.get("metric") == "error":
        assert result["metric"]["unit"] == "%" and 0 <= result["value"] <= 100
    steps = [s.split()[:2] for s in result["steps"]]
    # A Markov-chain sampler's result carries its chain strip beside its grid.
    chained = chain_kind(get_model_spec(row["model"]).cls) is not None
    assert (["genzoo", "chain"] in steps) == chained
    if chained:
        assert (tmp_path / result["extra"]["images"]["chain"]).is_file()
    if not row.get("train_with") and not row.get("evaluate_with"):
        expected = [["genzoo", "train"], *([["genzoo", "chain"]] if chained else []),
                    ["genzoo", "evaluate"]]
        assert steps[-len(expected):] == expected


def test_task_rows_draw_their_figures(tmp_path):
    hop = smoke("hopfield_capacity", tmp_path)
    assert (tmp_path / "hopfield_capacity.png").is_file()
    assert set(hop["extra"]["critical_load_by_n"]) == {"50", "100"}
    conv = smoke("conv_rbm_mnist", tmp_path / "conv")
    for kind in ("filters", "samples"):
        assert (tmp_path / "conv" / conv["extra"]["images"][kind]).is_file()
    assert conv["extra"]["before"]["recon_ce"]["n"] == 100


def test_resume_and_evaluate_only_continue_the_run_in_out(tmp_path):
    """--evaluate-only evaluates the trained run again with other evaluation settings;
    --resume continues it through `genzoo train --resume` (nothing left to train: the same
    number)."""
    name = "autoregressive_mnist_nll_deep-nade"
    two = smoke(name, tmp_path)
    one = smoke(name, tmp_path, "--evaluate-only", "--eval-set", "model.n_eval_orderings=1",
                "--eval-set", "eval.dtype=float32")
    assert [s.split()[:2] for s in one["steps"]] == [["genzoo", "evaluate"]]
    assert "model.n_eval_orderings=1" in one["steps"][0] and one["estimator"]["dtype"] == "float32"
    assert "best" in one["steps"][0].split()[2]  # the model train.keep_best kept
    assert one["value"] != two["value"] and 0 < one["value"] < 64 * math.log(2)
    again = smoke(name, tmp_path, "--resume")
    assert "--resume" in again["steps"][0] and again["value"] == two["value"]


def test_budget_runs_say_so_and_the_command_line_overrides_the_row():
    row = run.load_row("directed_mnist_nll_vae")
    args = run.parser().parse_args(["directed_mnist_nll_vae", "--epochs", "3", "--set",
                                    "train.lr=0.5"])
    p = run.plan(row, args)
    assert p["train"]["train.epochs"] == 3 and p["train"]["train.lr"] == "0.5"
    assert run.run_notes(row, p, smoke=False)[0].startswith("Budget run: 3 epochs")
    assert run.plan(row, run.parser().parse_args(["directed_mnist_nll_vae"]))["epochs"] == 200


def test_a_row_inherits_its_base_and_states_only_the_difference():
    base, scratch = run.load_row("dbm_mnist_nll"), run.load_row("dbm_mnist_nll_scratch")
    assert scratch["settings"] == base["settings"] and scratch["epochs"] == 10
    assert base["train_with"] == "pretrained_dbm" and scratch["train_with"] is None


@pytest.mark.parametrize("name", ROWS)
def test_a_row_names_what_exists(name):
    row = run.load_row(name)
    for hook in ("train_with", "evaluate_with", "baselines", "task"):
        if row.get(hook):
            assert callable(getattr(tasks, row[hook])), (name, hook)
    if "speed" in row:
        assert (BENCH / "speed" / f"{row['speed']}.py").is_file()
    else:
        assert row["title"] and isinstance(row.get("notes", []), list)
    for ref in row.get("references", []):
        assert {"label", "value", "source", "verified"} <= set(ref)


def test_every_result_names_its_row():
    for path in (BENCH / "results").glob("*.json"):
        result = json.loads(path.read_text())
        assert result["row"] in ROWS, path.name


def test_no_import_cycle_in_benchmarks():
    """common imports nothing of benchmarks/; nothing imports make_results; run imports
    tasks and speed only by name at run time; a speed module may import another speed
    module's peer (estimator_floors takes Pyro's trainer from vae_pyro_comparison), never in a
    cycle."""
    speed = {f"speed.{p.stem}" for p in BENCH.glob("speed/*.py")}
    local = {p.stem for p in BENCH.glob("*.py")} | speed
    imports = {}
    for path in [*BENCH.glob("*.py"), *BENCH.glob("speed/*.py")]:
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        name = f"speed.{path.stem}" if path.parent.name == "speed" else path.stem
        imports[name] = {n for n in names if n in local or n.split(".")[0] in local - speed}
        assert "sys.path.insert" not in path.read_text(), path
    assert imports["common"] == set()
    assert all("make_results" not in v for v in imports.values())
    for name, deps in imports.items():
        assert deps <= {"common"} | (speed if name in speed else set()), (name, deps)
    for name in speed:  # acyclic: no speed module reaches itself
        seen, todo = set(), list(imports[name] & speed)
        while todo:
            seen.add(dep := todo.pop())
            todo += [d for d in imports[dep] & speed if d not in seen]
        assert name not in seen, f"import cycle through {name}"
