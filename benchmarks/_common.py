"""Shared pieces of the benchmark scripts: the result format, provenance, data loading.

A benchmark result is one JSON object written to ``benchmarks/results/<benchmark>.json``.
Every result carries the keys in :data:`REQUIRED_KEYS`; likelihood results add
:data:`LIKELIHOOD_KEYS`, speed results :data:`SPEED_KEYS`. ``make_results.py`` turns the
files into ``RESULTS.md``; nothing else writes that file.

Gaps to published numbers are always ``ours - reference`` in the metric's own unit. For a
metric where lower is better (an NLL in nats) a positive gap is a shortfall.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

SCHEMA_VERSION = 1
BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

REQUIRED_KEYS = (
    "schema_version",
    "benchmark",
    "title",
    "kind",  # "likelihood" or "speed"
    "command",
    "git",
    "date",
    "machine",
    "data",
    "wall_s",
    "smoke",
    "notes",
)
LIKELIHOOD_KEYS = ("metric", "estimator", "value", "stderr", "references")
SPEED_KEYS = ("config", "timings", "ratios", "acceptance")
DATA_KEYS = ("name", "binarization", "split")
REFERENCE_KEYS = ("label", "value", "source")


class ResultFormatError(ValueError):
    """A result JSON object lacks a required key or has a malformed one."""


def validate_result(result: dict[str, Any]) -> None:
    """Raise :class:`ResultFormatError` naming every missing or malformed key."""
    problems = [f"missing key {k!r}" for k in REQUIRED_KEYS if k not in result]
    kind = result.get("kind")
    if kind == "likelihood":
        problems += [f"missing key {k!r}" for k in LIKELIHOOD_KEYS if k not in result]
        for i, ref in enumerate(result.get("references", [])):
            problems += [f"references[{i}] lacks {k!r}" for k in REFERENCE_KEYS if k not in ref]
        metric = result.get("metric", {})
        if "lower_is_better" not in metric or "unit" not in metric:
            problems.append("metric needs 'unit' and 'lower_is_better'")
    elif kind == "speed":
        problems += [f"missing key {k!r}" for k in SPEED_KEYS if k not in result]
        for name, t in result.get("timings", {}).items():
            if t.get("status") == "ok" and "median_s" not in t:
                problems.append(f"timings[{name!r}] is ok but has no median_s")
            if t.get("status") != "ok" and not t.get("reason"):
                problems.append(f"timings[{name!r}] is not ok and gives no reason")
    else:
        problems.append(f"kind must be 'likelihood' or 'speed', got {kind!r}")
    if "wall_s" in result and not isinstance(result["wall_s"], dict):
        problems.append("wall_s must map a name to seconds, e.g. {'train': 12.3}")
    data = result.get("data", {})
    problems += [f"data lacks {k!r}" for k in DATA_KEYS if k not in data]
    git = result.get("git", {})
    if "commit" not in git or "dirty" not in git:
        problems.append("git needs 'commit' and 'dirty'")
    if problems:
        name = result.get("benchmark", "<unnamed>")
        raise ResultFormatError(f"result {name!r}: " + "; ".join(problems))


def gap(ours: float, reference: float) -> float:
    """``ours - reference`` (for a lower-is-better metric, positive means we fall short)."""
    return float(ours) - float(reference)


def describe_gap(ours: float, reference: float, unit: str, lower_is_better: bool) -> str:
    """Words for the gap that never hide a shortfall, e.g. ``short by 3.21 nats``."""
    g = gap(ours, reference)
    worse = g > 0 if lower_is_better else g < 0
    size = abs(g)
    if size == 0:
        return f"equal (0 {unit})"
    return f"{'short' if worse else 'ahead'} by {size:.2f} {unit}"


def with_gaps(result: dict[str, Any]) -> dict[str, Any]:
    """Fill ``gap`` and ``gap_text`` of every reference of a likelihood result."""
    metric = result["metric"]
    for ref in result["references"]:
        ref["gap"] = gap(result["value"], ref["value"])
        ref["gap_text"] = describe_gap(
            result["value"], ref["value"], metric["unit"], metric["lower_is_better"]
        )
    return result


def git_info(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """``{"commit": sha or "uncommitted", "dirty": bool}`` of the working tree."""

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, check=False
        )

    try:
        head = run("rev-parse", "HEAD")
        status = run("status", "--porcelain")
    except OSError:  # no git binary
        return {"commit": "uncommitted", "dirty": True}
    commit = head.stdout.strip() if head.returncode == 0 else "uncommitted"
    dirty = commit == "uncommitted" or bool(status.stdout.strip())
    return {"commit": commit, "dirty": dirty}


def run_git() -> dict[str, Any]:
    """:func:`git_info` as it was when this process imported the benchmark code, which is
    the code it runs: a long benchmark publishes hours later, when HEAD may have moved on."""
    return dict(_GIT_AT_START)


_GIT_AT_START = git_info()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU model, core and thread counts, and the versions of the numeric libraries."""
    import torch

    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    try:
        # Other work on the machine slows every implementation; the load says how busy it was.
        info["load_average_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        import sklearn

        info["sklearn"] = sklearn.__version__
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: p.get(k) for k in ("internal_api", "num_threads", "version")}
            for p in threadpool_info()
        ]
    except ImportError:
        pass
    return info


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def command_line(argv: list[str] | None = None) -> str:
    """The command that reproduces this run, relative to the repository root."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve()
    try:
        argv[0] = str(script.relative_to(REPO_ROOT))
    except ValueError:
        argv[0] = str(script)
    return "python " + " ".join(shlex.quote(a) for a in argv)


def write_result(result: dict[str, Any], out_dir: Path) -> Path:
    """Validate ``result`` and write it to ``out_dir/<benchmark>.json``."""
    validate_result(result)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result['benchmark']}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    return path


def data_path(relpath: str) -> Path | None:
    """``$GENZOO_DATA/relpath`` when the variable is set and the file exists, else None."""
    root = os.environ.get("GENZOO_DATA")
    if not root:
        return None
    path = Path(root) / relpath
    return path if path.is_file() else None


def load_binarized_mnist_train() -> tuple[np.ndarray, str]:
    """The fixed binarized MNIST train split as float32 (50000, 784), and how it was loaded.

    Uses genzoo's data module when it is importable, else reads the bit-packed ``.npz`` from
    ``$GENZOO_DATA`` directly. Raises ``FileNotFoundError`` when neither can find the data.
    """
    try:
        from genzoo.data import load_data
        from genzoo.data.config import DataConfig
    except ImportError:
        load_data = None
    if load_data is not None:
        # A benchmark never downloads: a missing file must fail fast, not wait on a network.
        saved = os.environ.get("GENZOO_OFFLINE")
        os.environ["GENZOO_OFFLINE"] = "1"
        try:
            bundle = load_data(DataConfig(name="binarized-mnist"))
            x = bundle.train.x
            x = x.numpy() if hasattr(x, "numpy") else np.asarray(x)
            return np.ascontiguousarray(x, dtype=np.float32), "genzoo.data.load_data"
        except Exception as exc:  # noqa: BLE001 - fall back to the raw file below
            fallback_reason = f"genzoo.data.load_data failed ({type(exc).__name__}: {exc})"
        finally:
            if saved is None:
                del os.environ["GENZOO_OFFLINE"]
            else:
                os.environ["GENZOO_OFFLINE"] = saved
    else:
        fallback_reason = "genzoo.data.load_data not available"
    path = data_path("binarized_mnist/binarized_mnist.npz")
    if path is None:
        raise FileNotFoundError(
            "binarized MNIST not found: set GENZOO_DATA to the data directory "
            f"(e.g. /work/shared/data); {fallback_reason}"
        )
    with np.load(path) as z:
        x = np.unpackbits(z["train"], axis=1, count=int(z["shape"][0]))
    return x.astype(np.float32), f"raw npz ({fallback_reason})"


def genzoo_cmd(*args: str) -> list[str]:
    """``genzoo ARGS`` run with this interpreter, so a venv's genzoo is the one measured."""
    return [sys.executable, "-m", "genzoo", *args]


def display_command(cmd: list[str]) -> str:
    """The command as a user would type it (``genzoo ...`` rather than ``python -m genzoo``)."""
    shown = ["genzoo", *cmd[3:]] if cmd[:3] == [sys.executable, "-m", "genzoo"] else cmd
    return " ".join(shlex.quote(c) for c in shown)


def run_logged(cmd: list[str], log: Path, who: str) -> float:
    """Run ``cmd`` with its output appended to ``log``; return the wall time in seconds, or
    raise SystemExit with the log's tail when it fails."""
    t0 = time.perf_counter()
    with open(log, "a") as fh:
        fh.write(f"$ {display_command(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-20:])
        raise SystemExit(f"{who}: `{display_command(cmd)}` failed ({proc.returncode}):\n{tail}")
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# The steps every "train, evaluate, write a result" script takes, one function each: pick the
# directories, spell the genzoo commands, run them with a log, assemble the result, publish it.

SMOKE_NOTE = "SMOKE RUN: tiny model and data; the number is not comparable to the references."


class RunDirs(NamedTuple):
    """Where one benchmark run puts its files; ``scratch`` is the smoke run's temp dir."""

    run: Path
    results: Path
    log: Path
    scratch: Path | None


def run_dirs(parser: argparse.ArgumentParser, args: argparse.Namespace,
             default_run_name: str) -> RunDirs:
    """The genzoo run directory, the result directory and the log of this run.

    A smoke run writes into a fresh temporary directory unless ``--out`` / ``--results-dir``
    name others, and refuses ``benchmarks/results`` (smoke results never belong there). A full
    run defaults to ``benchmarks/runs/<default_run_name>`` and ``benchmarks/results``. The log
    lies beside the run directory, ``<run>.log``.
    """
    out, results = args.out, getattr(args, "results_dir", None)
    scratch = None
    if args.smoke:
        scratch = Path(tempfile.mkdtemp(prefix="genzoo-bench-smoke-"))
        run, results = out or scratch / "run", results or scratch
        if results.resolve() == RESULTS_DIR.resolve():
            parser.error("--smoke results are never written to benchmarks/results")
    else:
        run, results = out or BENCH_DIR / "runs" / default_run_name, results or RESULTS_DIR
    run.parent.mkdir(parents=True, exist_ok=True)
    return RunDirs(run, results, run.parent / f"{run.name}.log", scratch)


def add_output_args(parser: argparse.ArgumentParser, smoke_help: str,
                    evaluate_only: bool = False) -> None:
    """``--out``, ``--results-dir`` (alias ``--results``), ``--smoke`` and, where the script
    can skip training, ``--evaluate-only``."""
    parser.add_argument("--out", type=Path, default=None,
                        help="genzoo run directory (default under benchmarks/runs; a temporary "
                        "one with --smoke)")
    parser.add_argument("--results-dir", "--results", dest="results_dir", type=Path,
                        default=None, help="where the result JSON goes (default "
                        "benchmarks/results; a temporary directory with --smoke)")
    if evaluate_only:
        parser.add_argument("--evaluate-only", action="store_true",
                            help="skip training; evaluate the last checkpoint of the run in "
                            "--out (a run stopped early, or continued with `genzoo train "
                            "MODEL --out RUN --resume`, is reported with the epochs it saw)")
    parser.add_argument("--smoke", action="store_true",
                        help=smoke_help + "; nothing is written to benchmarks/results")


def warn_without_data(who: str) -> None:
    """Say on stderr when GENZOO_DATA is unset (genzoo then looks in its default folder)."""
    if "GENZOO_DATA" not in os.environ:
        print(f"{who}: GENZOO_DATA is not set; genzoo will look in its default data directory "
              "(and may try to download)", file=sys.stderr)


def sets_to_args(sets: dict[str, Any] | None) -> list[str]:
    """``{"train.lr": 0.1, "train.progress": False}`` -> ``--set train.lr=0.1 --set
    train.progress=false`` (booleans as genzoo's config parser spells them)."""
    out: list[str] = []
    for key, value in (sets or {}).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        out += ["--set", f"{key}={text}"]
    return out


def train_cmd(model: str, data: str, sets: dict[str, Any], run_dir: Path) -> list[str]:
    """``genzoo train MODEL --data DATA --set ... --out RUN``."""
    return (genzoo_cmd("train", model, "--data", data) + sets_to_args(sets)
            + ["--out", str(run_dir)])


def evaluate_cmd(run_dir: Path, report: Path, sets: dict[str, Any] | None = None) -> list[str]:
    """``genzoo evaluate RUN --split test --json --set ... --out REPORT``."""
    return (genzoo_cmd("evaluate", str(run_dir), "--split", "test", "--json")
            + sets_to_args(sets) + ["--out", str(report)])


class Steps:
    """Runs a benchmark's commands with their output in one log, and records each command
    (as a user would type it, for the result's ``steps``) and its wall time."""

    def __init__(self, log: Path, who: str, announce: bool = False) -> None:
        self.log, self.who, self.announce = log, who, announce
        self.steps: list[str] = []
        self.wall: dict[str, float] = {}

    def run(self, name: str, cmd: list[str]) -> None:
        """Run ``cmd``; its wall time goes to ``wall[name]``. SystemExit when it fails."""
        shown = display_command(cmd)
        self.steps.append(shown)
        if self.announce:
            verb = {"train": "training", "evaluate": "evaluating"}.get(name, name)
            print(f"{verb}: {shown}", flush=True)
        self.wall[name] = run_logged(cmd, self.log, self.who)

    def evaluate(self, run_dir: Path, sets: dict[str, Any] | None = None,
                 keep_genzoo_wall: bool = False) -> dict[str, Any]:
        """``genzoo evaluate`` on the test split into ``run_dir/eval_test.json``; the report.
        ``keep_genzoo_wall`` also records the evaluation time genzoo reports itself."""
        report_path = run_dir / "eval_test.json"
        self.run("evaluate", evaluate_cmd(run_dir, report_path, sets))
        report = json.loads(report_path.read_text())
        if keep_genzoo_wall and report.get("wall_s") is not None:
            self.wall["evaluate_reported_by_genzoo"] = report["wall_s"]
        return report


def budget_note(epochs: int, default: int, why: bool = True) -> str:
    """The note that labels a run shorter than its recipe."""
    note = f"Budget run: {epochs} epochs, fewer than the recipe's {default}"
    if not why:
        return note + "."
    return note + ("; the model is not trained to convergence, so the gap says little about "
                   "the implementation.")


def with_run_notes(notes: list[str], smoke: bool, smoke_note: str = SMOKE_NOTE,
                   epochs: int | None = None, default_epochs: int | None = None,
                   budget_why: bool = True) -> list[str]:
    """``notes`` headed by the smoke note, or by the budget note when ``epochs`` falls short
    of ``default_epochs``."""
    notes = list(notes)
    if smoke:
        notes.insert(0, smoke_note)
    elif epochs is not None and default_epochs is not None and epochs < default_epochs:
        notes.insert(0, budget_note(epochs, default_epochs, budget_why))
    return notes


def report_data(report: dict[str, Any], name: str, binarization: str,
                **more: Any) -> dict[str, Any]:
    """A result's ``data`` block from a ``genzoo evaluate`` report (``more`` appended)."""
    return {"name": name, "binarization": binarization, "split": report.get("split", "test"),
            "n_examples": report.get("n_examples"),
            "description": report.get("data_description"), **more}


NLL_METRIC = {"name": "test NLL", "unit": "nats", "lower_is_better": True, "per": "example"}
PARZEN_METRIC = {"name": "test Parzen log-likelihood", "unit": "nats", "lower_is_better": False,
                 "per": "example"}


def ais_estimator(report: dict[str, Any], schedule: str) -> dict[str, Any]:
    """A result's ``estimator`` block for an AIS-based ``genzoo evaluate`` report (its name
    says so when :func:`ais_headline` publishes the reverse figure)."""
    name = report.get("estimator")
    if ais_headline(report)[2]:
        name = f"{name}; published: reverse AIS (forward and reverse disagree)"
    return {"name": name, "ais_runs": report.get("n_samples"),
            "ais_betas": report.get("n_betas"), "schedule": schedule,
            "reverse": report.get("log_z_reverse") is not None, "dtype": report.get("dtype")}


def ais_headline(report: dict[str, Any]) -> tuple[float, float, list[str]]:
    """The value, standard error and notes a benchmark publishes from an AIS-based ``genzoo
    evaluate`` report. Normally the forward-AIS figure (``nll_nats``, as the papers report).
    When genzoo warns that forward and reverse AIS disagree beyond their error bars, forward
    AIS has most likely missed modes and its NLL flatters the model, so the cautious
    reverse-AIS figure is published instead and the notes give both."""
    value, stderr = report["nll_nats"], report["stderr"]
    warnings = [w for w in report.get("warnings", []) if "AIS is unreliable" in w]
    if not warnings or report.get("nll_nats_reverse") is None:
        return value, stderr, []
    reverse_stderr = math.hypot(report["stderr_log_z_reverse"], report["stderr_examples"])
    note = (
        f"AIS DID NOT CONVERGE: genzoo's evaluator warned: {warnings[0]} The value published "
        f"here is therefore the reverse-AIS figure {report['nll_nats_reverse']:.2f} +/- "
        f"{reverse_stderr:.2f}; the forward-AIS figure would be {value:.2f} +/- {stderr:.2f}. "
        "Neither is a trustworthy estimate of this model's NLL until the two agree."
    )
    return report["nll_nats_reverse"], reverse_stderr, [note]


def likelihood_result(*, benchmark: str, title: str, steps: list[str] | None,
                      body: dict[str, Any], references: list[dict[str, Any]],
                      wall: dict[str, float], smoke: bool, notes: list[str]) -> dict[str, Any]:
    """A complete likelihood result, keys in the schema's order, gaps filled in.

    ``body`` holds the benchmark's own blocks, in order: ``data``, ``metric``, ``estimator``,
    ``value``, ``stderr``, ``extra`` and (where the script trains) ``training``.
    """
    result: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "benchmark": benchmark,
        "title": title,
        "kind": "likelihood",
        "command": command_line(),
        **({"steps": steps} if steps is not None else {}),
        "git": run_git(),
        "date": now_iso(),
        "machine": machine_info(),
        **body,
        "references": [dict(r) for r in references],
        "wall_s": wall,
        "smoke": bool(smoke),
        "notes": notes,
    }
    return with_gaps(result)


def publish(result: dict[str, Any], results_dir: Path, headline: str) -> Path:
    """Write ``result``, print ``headline`` and the gap to every reference, regenerate
    RESULTS.md when a full run wrote to benchmarks/results; the last line printed is
    ``wrote PATH``."""
    path = write_result(result, results_dir)
    print(headline)
    unit = "%" if result.get("metric", {}).get("unit") == "%" else ""
    for ref in result.get("references", []):
        flag = " (not comparable)" if ref.get("comparable") is False else ""
        print(f"  vs {ref['label']} {ref['value']:.2f}{unit}: {ref['gap_text']}{flag}")
    if not result["smoke"] and results_dir.resolve() == RESULTS_DIR.resolve():
        import make_results

        make_results.main([])
    print(f"wrote {path}")
    return path


def add_model_args(parser: argparse.ArgumentParser, recipes: dict[str, Any],
                   default_epochs: Any) -> None:
    """``--model`` (one of ``recipes``) and ``--epochs`` (default: the recipe's)."""
    parser.add_argument("--model", choices=sorted(recipes), required=True)
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"training epochs (default {default_epochs})")


def add_training_args(parser: argparse.ArgumentParser, epochs: int, n_hidden: int,
                      lr_default: Any) -> None:
    """``--epochs``, ``--n-hidden`` and ``--lr`` (default None: the recipe's, ``lr_default``)."""
    parser.add_argument("--epochs", type=int, default=epochs,
                        help=f"training epochs (default {epochs})")
    parser.add_argument("--n-hidden", type=int, default=n_hidden)
    parser.add_argument("--lr", type=float, default=None,
                        help=f"learning rate (default {lr_default})")


def add_ais_args(parser: argparse.ArgumentParser) -> None:
    """``--ais-runs`` and ``--ais-betas``, SM08's 100 runs x 14,500 temperatures by default."""
    parser.add_argument("--ais-runs", type=int, default=100)
    parser.add_argument("--ais-betas", type=int, default=14500)


def ais_eval_sets(args: argparse.Namespace, smoke_burn_in: int) -> dict[str, Any]:
    """``genzoo evaluate`` settings for forward and reverse AIS. A smoke run's tiny model would
    be enumerated exactly; it must exercise AIS as the full run does."""
    sets: dict[str, Any] = {"eval.ais_runs": args.ais_runs, "eval.ais_betas": args.ais_betas,
                            "eval.reverse": True}
    if args.smoke:
        sets.update({"eval.exact_max_units": 0, "eval.reverse_burn_in": smoke_burn_in})
    return sets


def set_epochs(args: argparse.Namespace, smoke_epochs: int, default: int) -> None:
    """``args.epochs``: the smoke run's, else the one given, else the recipe's ``default``."""
    args.epochs = smoke_epochs if args.smoke else (args.epochs or default)


def has_checkpoint(run_dir: Path) -> bool:
    """True when ``run_dir`` holds a genzoo checkpoint (a run that can be resumed)."""
    from genzoo.training.checkpoint import has_checkpoint as _has

    return _has(run_dir)


def add_resume_arg(parser: argparse.ArgumentParser) -> None:
    """``--resume``: continue the run in --out from its last checkpoint."""
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run in --out from its last checkpoint "
                        "(only --epochs may differ); a run without a checkpoint starts afresh")


def resume_cmd(args: argparse.Namespace, model: str, run_dir: Path) -> list[str] | None:
    """With ``--resume`` and a checkpoint in ``run_dir``, the ``genzoo train --resume``
    command that continues it to ``args.epochs`` (resume accepts only length changes; the rest
    comes from the saved config); otherwise None (train afresh)."""
    if not (getattr(args, "resume", False) and has_checkpoint(run_dir)):
        return None
    return (genzoo_cmd("train", model, "--out", str(run_dir), "--resume")
            + sets_to_args({"train.epochs": args.epochs, "train.progress": False}))


def last_wall_s(metrics_csv: Path) -> float | None:
    """The last ``wall_s`` of a Trainer's metrics.csv: its training time in seconds,
    cumulative over resumes (None without the file or a value)."""
    import csv

    if not metrics_csv.is_file():
        return None
    with metrics_csv.open() as f:
        rows = [r for r in csv.DictReader(f) if r.get("wall_s")]
    return float(rows[-1]["wall_s"]) if rows else None


def logged_wall(run_dir: Path) -> dict[str, float]:
    """``{"train_logged": seconds}`` from the run's metrics.csv, or {} without one."""
    wall = last_wall_s(run_dir / "metrics.csv")
    return {} if wall is None else {"train_logged": wall}


def train_and_evaluate(dirs: RunDirs, who: str, train: list[str] | None,
                       eval_sets: dict[str, Any] | None = None, announce: bool = False,
                       keep_genzoo_wall: bool = False,
                       best: bool = False) -> tuple[dict[str, Any], Steps]:
    """Run ``train`` (skipped when None) then ``genzoo evaluate`` on the test split; the
    evaluation report and the :class:`Steps` that ran them. ``best``: evaluate the model
    that ``train.keep_best`` kept in ``RUN/best/`` when the run has one."""
    steps = Steps(dirs.log, who, announce)
    if train is not None:
        steps.run("train", train)
    target = dirs.run / "best" if best and has_checkpoint(dirs.run / "best") else dirs.run
    return steps.evaluate(target, eval_sets, keep_genzoo_wall), steps


def kept_best(run_dir: Path) -> dict[str, Any] | None:
    """What ``train.keep_best`` kept in ``run_dir/best/``: ``{"figure", "step", "epoch",
    "value"}`` (the metrics.csv row of its step), or None when the run kept none."""
    import csv

    from genzoo.training.checkpoint import checkpoint_step, read_run_config

    best = run_dir / "best"
    if not has_checkpoint(best):
        return None
    figure, step = read_run_config(best).train.keep_best, checkpoint_step(best)
    with (run_dir / "metrics.csv").open() as f:
        row = next((r for r in csv.DictReader(f) if r["step"] == str(step)), None)
    if not figure or step is None or row is None or not row.get(f"valid_{figure}"):
        return None
    return {"figure": figure, "step": step, "epoch": float(row["epoch"]),
            "value": float(row[f"valid_{figure}"])}


def recipe_mismatches(run_config: Any, settings: dict[str, Any]) -> list[str]:
    """Every ``section.field`` of a recipe's ``settings`` that the saved ``run_config`` (a
    genzoo RunConfig) does not hold, as ``"train.lr: recipe 0.001, run 0.0005"``. Settings a
    trained model may change at evaluation (``eval.*`` and the model's
    ``EVALUATION_FIELDS``) are not the run's to hold and are skipped."""
    from genzoo.core.errors import ConfigError

    out = []
    evaluation = getattr(type(run_config.model), "EVALUATION_FIELDS", ())
    for key, value in settings.items():
        section, _, field = key.partition(".")
        if section == "eval" or (section == "model" and field in evaluation):
            continue
        [arg] = sets_to_args({key: value})[1:]
        try:
            expected = getattr(getattr(run_config.with_overrides([arg]), section), field)
        except ConfigError as e:
            out.append(f"{key}: recipe {value}, not a setting of this run ({e})")
            continue
        held = getattr(getattr(run_config, section), field)
        if expected != held:
            out.append(f"{key}: recipe {value}, run {held}")
    return out


def with_run_config(result: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """``result`` with the config the evaluated run was trained with (its checkpoint's
    config.json, verified against the manifest) as ``training.run_config``, and a note naming
    every setting of ``training.settings`` (the recipe as the script has it now) that the run
    does not hold: a run resumed after its recipe changed keeps the config it started with, so
    the recipe alone would misdescribe it. Unchanged when ``run_dir`` has no checkpoint."""
    from genzoo.training.checkpoint import read_run_config

    if not has_checkpoint(run_dir):
        return result
    run_config = read_run_config(run_dir)
    training = dict(result.get("training", {}))
    training["run_config"] = run_config.to_dict()
    mismatches = recipe_mismatches(run_config, training.get("settings", {}))
    notes = list(result["notes"])
    if mismatches:
        notes.append("The run was not trained with the recipe as printed here (its saved "
                     "config, training.run_config, is what ran): " + "; ".join(mismatches))
    return {**result, "training": training, "notes": notes}


def parse_model_benchmark(doc: str, argv: list[str] | None, benchmark: str,
                          recipes: dict[str, Any], default_epochs: dict[str, int],
                          smoke_epochs: int, smoke_help: str, add_args: Any = None,
                          evaluate_only: bool = False) -> tuple[argparse.Namespace, RunDirs]:
    """The command line of a script that benchmarks one of several ``--model`` recipes:
    ``--model``, ``--epochs``, the output options (with ``--evaluate-only`` when
    ``evaluate_only``) and whatever ``add_args(parser)`` adds;
    returns the arguments (``epochs`` filled in) and the run's directories
    (``benchmarks/runs/<benchmark>_<model>_e<epochs>`` by default)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    add_model_args(parser, recipes, default_epochs)
    if add_args is not None:
        add_args(parser)
    add_output_args(parser, smoke_help, evaluate_only)
    args = parser.parse_args(argv)
    set_epochs(args, smoke_epochs, default_epochs[args.model])
    return args, run_dirs(parser, args, f"{benchmark}_{args.model}_e{args.epochs}")
