"""Run one benchmark row: train and evaluate through genzoo's command line, write the result.

    python benchmarks/run.py ROW                      # the full recipe (see benchmarks/README.md)
    python benchmarks/run.py ROW --smoke              # seconds, on the bundled digits, temp dir
    python benchmarks/run.py ROW --resume             # continue an interrupted run
    python benchmarks/run.py ROW --evaluate-only      # evaluate the run in --out again
    python benchmarks/run.py ROW --epochs 10 --set train.lr=0.01 --eval-set eval.dtype=float32
    python benchmarks/run.py rbm_cd1_speed -- --threads 1   # a speed row: ARGS go to its code
    python benchmarks/run.py --list

A row is ``benchmarks/rows/ROW.json`` (keys documented in benchmarks/README.md). A
train-then-evaluate row runs ``genzoo train MODEL --data DATA --set ... --out RUN`` and ``genzoo
evaluate RUN --split test --json``; a row may name functions of ``tasks.py`` that replace the
training (``train_with``), the evaluation (``evaluate_with``), add figures (``baselines``), or
the whole run (``task``); a ``speed`` row hands its arguments to ``speed/<name>.py``."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common
from common import load_row, row_names

from genzoo.cli import main as genzoo_main
from genzoo.evaluation.report import EvaluationReport
from genzoo.evaluation.stats import Estimate
from genzoo.models.chains import chain_kind
from genzoo.run_config import RunConfig
from genzoo.training.checkpoint import checkpoint_step, load_model
from genzoo.training.curves import last_value

# What a row's ``metric`` names: how RESULTS.md shows the figure. A row may give its own
# ``{name, unit, lower_is_better, per}``; its figure is then the report's NLL.
METRICS = {
    "nll": {"name": "test NLL", "unit": "nats", "lower_is_better": True, "per": "example"},
    "nll-bound": {"name": "test NLL (variational upper bound)", "unit": "nats",
                  "lower_is_better": True, "per": "example"},
    "parzen": {"name": "test Parzen log-likelihood", "unit": "nats", "lower_is_better": False,
               "per": "example"},
    "error": {"name": "test classification error", "unit": "%", "lower_is_better": True,
              "per": "test set"}}


def metric(row: dict[str, Any]) -> dict[str, Any]:
    """The row's metric: a name of :data:`METRICS`, or its own ``{name, unit, ...}``."""
    m = row.get("metric", "nll")
    return dict(METRICS[m]) if isinstance(m, str) else dict(m)


class Genzoo:
    """Runs genzoo commands (in this process, or as ``python -m genzoo`` with a log) and
    records each one as a user would type it, with its wall time."""

    def __init__(self, log: Path, in_process: bool) -> None:
        self.log, self.in_process = log, in_process
        self.steps: list[str] = []
        self.wall: dict[str, float] = {}

    def __call__(self, name: str, args: list[str]) -> None:
        shown = "genzoo " + " ".join(shlex.quote(a) for a in args)
        self.steps.append(shown)
        print(f"{name}: {shown}", flush=True)
        t0 = time.perf_counter()
        if self.in_process:
            rc = genzoo_main(args)
        else:
            with open(self.log, "a") as fh:
                fh.write(f"$ {shown}\n")
                fh.flush()
                rc = subprocess.run([sys.executable, "-m", "genzoo", *args], stdout=fh,
                                    stderr=subprocess.STDOUT, check=False).returncode
        if rc:
            tail = "\n".join(self.log.read_text().splitlines()[-20:]) if self.log.exists() else ""
            raise SystemExit(f"`{shown}` failed ({rc}):\n{tail}")
        self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - t0

    def task(self, name: str, shown: str, function: str, *args: Any) -> Any:
        """``tasks.FUNCTION(*ARGS)``, recorded as the step ``python API: tasks.SHOWN``."""
        self.steps.append(f"python API: tasks.{shown}")
        t0 = time.perf_counter()
        out = getattr(importlib.import_module("tasks"), function)(*args)
        self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - t0
        return out


def plan(row: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The data set, the training and evaluation settings and the epochs of this run: the
    row's, then its smoke settings with ``--smoke``, then the command line's."""
    smoke = row.get("smoke", {}) if args.smoke else {}
    epochs = 1 if args.smoke else (args.epochs or row.get("epochs"))
    train = {**row.get("settings", {}), **smoke.get("settings", {}),
             **({"train.epochs": epochs} if epochs else {})}
    evaluate = {**row.get("evaluate", {}), **smoke.get("evaluate", {})}
    grid = {**row.get("grid", {}), **smoke.get("grid", {})}
    for target, pairs in ((train, args.set), (evaluate, args.eval_set), (grid, args.grid)):
        target.update(p.split("=", 1) for p in pairs)
    grid = {k: json.loads(v) if isinstance(v, str) else v for k, v in grid.items()}
    return {"data": smoke.get("data", row.get("data")), "train": train, "evaluate": evaluate,
            "epochs": epochs, "grid": grid}


def row_settings(name: str, epochs: int | None = None) -> dict[str, Any]:
    """The ``--set`` settings of a full run of row ``name`` (``epochs``: the row's unless
    given)."""
    row = load_row(name)
    return plan(row, parser().parse_args([name, *(["--epochs", str(epochs)] if epochs else [])]))["train"]


def has_checkpoint(run: Path) -> bool:
    return (run / "config.json").is_file()


def train(row: dict[str, Any], p: dict[str, Any], run: Path, genzoo: Genzoo,
          args: argparse.Namespace) -> None:
    """``genzoo train`` (or ``--resume`` of a run with a checkpoint); the prerequisite run a
    row ``requires`` (e.g. the DBM a classifier starts from) first."""
    sets = {**p["train"]}
    if "requires" in row:
        need = row["requires"]
        source = run.parent / need["row"] if args.smoke else Path(need["run"])
        if args.smoke and not has_checkpoint(source):
            dep = load_row(need["row"])
            dep_plan = plan(dep, argparse.Namespace(**{**vars(args), "set": [], "eval_set": []}))
            train(dep, dep_plan, source, genzoo, args)
        sets[need["set"]] = str(source)
    if args.resume and has_checkpoint(run):
        length = {k: v for k, v in sets.items() if k in ("train.epochs", "train.max_steps")}
        genzoo("train", ["train", row["model"], "--out", str(run), "--resume",
                         *common.sets_to_args({**length, "train.progress": False})])
    elif row.get("train_with"):
        genzoo.task("train", f"{row['train_with']}, {sets}", row["train_with"], row, p["data"],
                    sets, run)
    else:
        genzoo("train", ["train", row["model"], "--data", p["data"],
                         *common.sets_to_args({**sets, "train.progress": False}),
                         "--out", str(run)])


def evaluate(row: dict[str, Any], p: dict[str, Any], run: Path, genzoo: Genzoo) -> dict:
    """What the result publishes of the run's evaluation (of ``RUN/best`` where the row keeps
    the best): :func:`published` from the typed report of ``genzoo evaluate --json``, or the
    same keys from the row's ``evaluate_with``."""
    target = run / "best" if row.get("best") and has_checkpoint(run / "best") else run
    if row.get("evaluate_with"):
        return genzoo.task("evaluate", f"{row['evaluate_with']}({target})",
                           row["evaluate_with"], target, p)
    out = run / "eval_test.json"
    genzoo("evaluate", ["evaluate", str(target), "--split", "test", "--json",
                        *common.sets_to_args(p["evaluate"]), "--out", str(out)])
    report = json.loads(out.read_text())
    return published(row, p, EvaluationReport.from_dict(report), report.get("data_description"))


def published(row: dict[str, Any], p: dict[str, Any], report: EvaluationReport,
              description: str | None = None) -> dict[str, Any]:
    """What a result publishes of a typed evaluation report: the value and standard error of
    the Estimate the row's metric names (the Parzen log-likelihood of the model's samples, the
    classification error in per cent, or else the NLL), the estimator, the split
    evaluated, every other figure of the report as ``extra`` (:func:`extra_figures`) and the
    notes on them. For AIS rows the figure is normally forward AIS (as the papers report); when
    genzoo warns that forward and reverse AIS disagree beyond their error bars, forward AIS
    has most likely missed modes and flatters the model, so the higher (cautious) of the two
    NLLs is published and the notes give both."""
    kind, scale = row.get("metric", "nll"), 100.0 if metric(row)["unit"] == "%" else 1.0
    est = (report.samples.parzen if kind == "parzen"
           else report.classification if kind == "error" else report.nll)
    value, stderr, notes, side = est.value * scale, est.stderr * scale, [], None
    unreliable = [w for w in report.warnings if "AIS is unreliable" in w]
    if unreliable and report.nll_reverse is not None:
        rev = report.nll_reverse  # publish the higher NLL: the one that does not flatter
        side = "reverse" if rev.value >= value else "forward"
        value, stderr = max((value, stderr), (rev.value, rev.stderr))
        notes.append(
            f"AIS DID NOT CONVERGE: genzoo's evaluator warned: {unreliable[0]} The value "
            f"published here is therefore the higher of forward AIS ({est.value:.2f} +/- "
            f"{est.stderr:.2f}) and reverse AIS ({rev.value:.2f} +/- {rev.stderr:.2f}). Neither "
            "is a trustworthy estimate of this model's NLL until the two agree.")
    return {"estimator": estimator(report, p, side), "value": value, "stderr": stderr,
            "extra": extra_figures(report), "notes": notes,
            "data": {"split": report.split or "test", "n_examples": report.n_examples,
                     "description": description}}


def estimator(report: EvaluationReport, p: dict[str, Any], published_side: str | None) -> dict:
    """The estimator behind the figure: its name and precision; for AIS its runs, temperatures,
    schedule, whether reverse AIS ran and, when forward and reverse disagree, which side
    (``published_side``) gave the published figure; otherwise its proposal draws per example,
    and the model samples and Parzen bandwidth of a sample-based score."""
    est = {"name": report.estimator, "dtype": report.dtype}
    z = report.log_z
    if z is not None and "n_betas" in z.diagnostics:
        est |= {"ais_runs": z.n_samples, "ais_betas": z.diagnostics["n_betas"],
                "schedule": p["evaluate"].get("eval.schedule", "sm08"),
                "reverse": report.log_z_reverse is not None}
        if published_side:
            est["name"] += f"; published: {published_side} AIS (forward and reverse disagree)"
    elif report.nll is not None and report.nll.n_samples is not None:
        est["n_samples"] = report.nll.n_samples
    if report.samples is not None:
        est |= {"n_model_samples": report.samples.n_model_samples,
                "sigma": report.samples.parzen.diagnostics["sigma"]}
    return est


def extra_figures(report: EvaluationReport) -> dict[str, Any]:
    """The figures of ``report`` beside the published one, under their JSON names: the NLL's
    diagnostics; for AIS, log Z forward and reverse with their standard errors and effective
    sample sizes and the NLL each gives (``value_forward``, ``value_reverse``); the examples
    classified; the sample-based measures; what a data transform adds (log-Jacobian, bits per
    dimension); the evaluator's warnings."""
    extra = dict(report.nll.diagnostics) if report.nll is not None else {}
    ais = report.log_z is not None and "n_betas" in report.log_z.diagnostics
    for z, nll, suffix, value in ((report.log_z, report.nll, "", "value_forward"),
                                  (report.log_z_reverse, report.nll_reverse, "_reverse",
                                   "value_reverse")):
        if ais and z is not None:
            extra |= {f"log_z{suffix}": z.value, f"stderr_log_z{suffix}": z.stderr,
                      f"ais_ess{suffix}": z.diagnostics["ess"], value: nll.value}
    if not ais and report.nll_reverse is not None:  # a log Z per frame: the NLLs only
        extra |= {"value_forward": report.nll.value, "value_reverse": report.nll_reverse.value}
    if report.classification is not None:
        extra["n_classified"] = report.classification.n_samples
    s = report.samples
    if s is not None:  # the measures that are not the published Parzen score
        extra |= {"mmd2": s.mmd2.value, "mmd_p_value": s.mmd2.diagnostics["p_value"],
                  "mmd_sigmas": s.mmd2.diagnostics["sigmas"]}
        extra |= {f.name: getattr(s, f.name) for f in dataclasses.fields(s)
                  if not isinstance(getattr(s, f.name), Estimate | None)}
    if report.warnings:
        extra["warnings"] = list(report.warnings)
    return extra | (report.data_space or {})


def with_run_config(result: dict[str, Any], run: Path) -> dict[str, Any]:
    """``result`` with the config the run was trained with (its ``config.json``) as
    ``training.run_config``, and a note naming every setting of ``training.settings`` the run
    does not hold (a run resumed after its recipe changed keeps the config it started with).
    Unchanged when ``run`` holds no run."""
    if not has_checkpoint(run):
        return result
    run_config = RunConfig.from_dict(json.loads((run / "config.json").read_text()))
    training = {**result.get("training", {}), "run_config": run_config.to_dict()}
    if (run / "samples.png").is_file():
        training["samples"] = str(run / "samples.png")
    notes = list(result["notes"])
    mismatches = run_config.mismatches(training.get("settings", {}))
    if mismatches:
        notes.append("The run was not trained with the recipe as printed here (its saved "
                     "config, training.run_config, is what ran): " + "; ".join(mismatches))
    return {**result, "training": training, "notes": notes}


def run_notes(row: dict[str, Any], p: dict[str, Any], smoke: bool) -> list[str]:
    """The row's notes, headed by the smoke note, or by a budget note when the run is shorter
    than the recipe."""
    if smoke:
        return [common.SMOKE_NOTE, *row.get("notes", [])]
    if p["epochs"] and row.get("epochs") and p["epochs"] < row["epochs"]:
        return [(f"Budget run: {p['epochs']} epochs, fewer than the recipe's {row['epochs']}; "
                 "the model is not trained to convergence, so the gap says little about the "
                 "implementation."), *row.get("notes", [])]
    return list(row.get("notes", []))


def kept_best(run: Path) -> str | None:
    """A note on the model ``train.keep_best`` kept in ``RUN/best`` (None without one)."""
    step = checkpoint_step(run / "best")
    return None if step is None else (f"Evaluated: the model kept at step {step} "
                                      "(train.keep_best: the lowest validation figure), not "
                                      "the final one.")


def likelihood(row: dict[str, Any], args: argparse.Namespace, argv: list[str] | None) -> Path:
    """Train (unless ``--evaluate-only``), evaluate and write the result of a likelihood row;
    a ``task`` row's function does the whole run and returns the result's body."""
    p = plan(row, args)
    run, results, log = common.output_dirs(row["name"], args.smoke, args.out, args.results)
    head = {**common.header(row.get("result", row["name"]), row["name"], row["title"],
                            "likelihood", args.smoke, argv),
            "references": [dict(r) for r in row.get("references", [])]}
    if "task" in row:  # timed whole, unless the task times its parts
        t0 = time.perf_counter()
        body = getattr(importlib.import_module("tasks"), row["task"])(row, p, results)
        body.setdefault("wall_s", {"task": time.perf_counter() - t0})
        return common.publish(common.with_gaps(
            {**head, "notes": run_notes(row, p, args.smoke), **body}), results)
    genzoo = Genzoo(log, args.in_process)
    if not args.evaluate_only:
        train(row, p, run, genzoo, args)
    chain = run / "chain.png" if chain_kind(load_model(run)[0]) else None  # a chain's strip
    if chain:  # a Markov-chain sampler's, beside its grid
        genzoo("chain", ["chain", str(run), "--out", str(chain), "--force", "--quiet"])
    figures = evaluate(row, p, run, genzoo)
    row_notes = run_notes(row, p, args.smoke)  # a smoke run's note comes before the evaluation's
    smoke_note, row_notes = (row_notes[:1], row_notes[1:]) if args.smoke else ([], row_notes)
    data, notes = figures.pop("data"), [*smoke_note, *figures.pop("notes", []), *row_notes]
    best = kept_best(run) if row.get("best") else None
    notes += [best] if best else []
    extra = figures["extra"]
    if row.get("baselines"):
        extra |= getattr(importlib.import_module("tasks"), row["baselines"])(p)
    if (run / "samples.png").is_file():  # the run's own grid, unless the task drew one
        extra.setdefault("images", {}).setdefault("samples", str(run / "samples.png"))
    if chain:
        extra.setdefault("images", {}).setdefault("chain", str(chain))
    for kind, image in extra.pop("images", {}).items():  # run dirs are scratch: keep a copy
        results.mkdir(parents=True, exist_ok=True)
        kept = results / f"{row.get('result', row['name'])}_{kind}.png"
        shutil.copyfile(image, kept)
        extra.setdefault("images", {})[kind] = kept.name
    logged = last_value(run, "wall_s")
    if logged is not None:  # a resumed run's own step saw only its last part
        genzoo.wall["train_logged"] = logged
    result = {
        **head, "steps": genzoo.steps,
        "data": {"name": p["data"], "binarization": row.get("binarization", "none"), **data},
        "metric": metric(row), **figures,  # estimator, value, stderr, extra
        "training": {"model": row.get("model"), "epochs": p["epochs"], "settings": p["train"]},
        "wall_s": genzoo.wall, "notes": notes}
    return common.publish(with_run_config(common.with_gaps(result), run), results)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("row", nargs="?", help="a file name of benchmarks/rows/ without .json")
    p.add_argument("--list", action="store_true", help="list the rows and exit")
    p.add_argument("--smoke", action="store_true",
                   help="seconds-long check on the bundled digits, in a temporary directory")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint")
    p.add_argument("--evaluate-only", action="store_true",
                   help="skip training; evaluate the run in --out")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the row's)")
    for flag, metavar, what in (("--set", "KEY=VALUE", "a training setting of the row"),
                                ("--eval-set", "KEY=VALUE", "an evaluation setting of the row"),
                                ("--grid", "KEY=JSON", "a task row's grid")):
        p.add_argument(flag, action="append", default=[], metavar=metavar,
                       help=f"override {what} (repeatable)")
    p.add_argument("--out", type=Path, default=None,
                   help="genzoo run directory (default benchmarks/runs/ROW)")
    p.add_argument("--results", type=Path, default=None,
                   help="where the result JSON goes (default benchmarks/results)")
    p.add_argument("--in-process", action="store_true",
                   help="run genzoo's commands in this process")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # After --: the arguments of a speed row's own command line.
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser().parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if args.list or not args.row:
        for name in row_names():
            print(f"{name:40s} {load_row(name)['title']}")
        return 0
    row = load_row(args.row)
    if "speed" in row:  # its module's run(row, args, dirs) yields the results
        module = importlib.import_module(f"speed.{row['speed']}")
        speed_args, dirs = common.speed_args(
            module, row, [*row.get("args", []), *rest, *(["--smoke"] if args.smoke else [])])
        for result in module.run(row, speed_args, dirs):
            common.publish(result, dirs.results)
        return 0
    likelihood(row, args, ["benchmarks/run.py", *argv])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
