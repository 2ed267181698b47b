"""What every benchmark shares: the result format, its provenance, and one timing helper.

A result is one JSON object, ``benchmarks/results/<benchmark>.json``. Every result carries
:data:`REQUIRED_KEYS`; likelihood results add :data:`LIKELIHOOD_KEYS`, speed results
:data:`SPEED_KEYS`. Gaps to published numbers are ``ours - reference`` in the metric's unit, so
for a lower-is-better metric (an NLL in nats) a positive gap is a shortfall.

This module imports nothing else from ``benchmarks/``; everything else imports it.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

SCHEMA_VERSION = 2
BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
ROWS_DIR = BENCH_DIR / "rows"
RUNS_DIR = BENCH_DIR / "runs"

REQUIRED_KEYS = ("schema_version", "benchmark", "row", "title", "kind", "command", "git", "date",
                 "machine", "data", "wall_s", "smoke", "notes")
LIKELIHOOD_KEYS = ("metric", "estimator", "value", "stderr", "references")
SPEED_KEYS = ("config", "timings", "ratios", "acceptance")
DATA_KEYS = ("name", "binarization", "split")
REFERENCE_KEYS = ("label", "value", "source")
SMOKE_NOTE = "SMOKE RUN: tiny model and data; the number is not comparable to the references."


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
            if t.get("status") == "ok" and "median_s" not in t and "examples_per_s" not in t:
                problems.append(f"timings[{name!r}] is ok but has no median_s")
            if t.get("status") != "ok" and not t.get("reason"):
                problems.append(f"timings[{name!r}] is not ok and gives no reason")
    else:
        problems.append(f"kind must be 'likelihood' or 'speed', got {kind!r}")
    if "wall_s" in result and not isinstance(result["wall_s"], dict):
        problems.append("wall_s must map a name to seconds, e.g. {'train': 12.3}")
    problems += [f"data lacks {k!r}" for k in DATA_KEYS if k not in result.get("data", {})]
    git = result.get("git", {})
    if "commit" not in git or "dirty" not in git:
        problems.append("git needs 'commit' and 'dirty'")
    if problems:
        raise ResultFormatError(f"result {result.get('benchmark', '<unnamed>')!r}: "
                                + "; ".join(problems))


def gap(ours: float, reference: float) -> float:
    """``ours - reference`` (for a lower-is-better metric, positive means we fall short)."""
    return float(ours) - float(reference)


def describe_gap(ours: float, reference: float, unit: str, lower_is_better: bool) -> str:
    """Words for the gap that never hide a shortfall, e.g. ``short by 3.21 nats``."""
    g = gap(ours, reference)
    if g == 0:
        return f"equal (0 {unit})"
    worse = g > 0 if lower_is_better else g < 0
    return f"{'short' if worse else 'ahead'} by {abs(g):.2f} {unit}"


def with_gaps(result: dict[str, Any]) -> dict[str, Any]:
    """Fill ``gap`` and ``gap_text`` of every reference of a likelihood result."""
    metric = result["metric"]
    for ref in result["references"]:
        ref["gap"] = gap(result["value"], ref["value"])
        ref["gap_text"] = describe_gap(result["value"], ref["value"], metric["unit"],
                                       metric["lower_is_better"])
    return result


# ------------------------------------------------------------------------------ provenance


def git_info(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """``{"commit": sha or "uncommitted", "dirty": bool}`` of the working tree."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                              check=False)

    try:
        head, status = git("rev-parse", "HEAD"), git("status", "--porcelain")
    except OSError:  # no git binary
        return {"commit": "uncommitted", "dirty": True}
    commit = head.stdout.strip() if head.returncode == 0 else "uncommitted"
    return {"commit": commit, "dirty": commit == "uncommitted" or bool(status.stdout.strip())}


# A long benchmark publishes hours later, when HEAD may have moved on: the code it ran is the
# code this process imported, so the commit is read once, at import.
_GIT_AT_START = git_info()


def run_git() -> dict[str, Any]:
    """:func:`git_info` as it was when this process started the benchmark code."""
    return dict(_GIT_AT_START)


def machine_info() -> dict[str, Any]:
    """CPU model, core and thread counts, load, and the versions of the numeric libraries."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip()
                   for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.lower().startswith("model name"))
    except (OSError, StopIteration):
        pass
    info: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(),
                            "torch_threads": torch.get_num_threads(),
                            "platform": platform.platform(), "python": platform.python_version(),
                            "torch": torch.__version__, "numpy": np.__version__}
    try:  # other work on the machine slows everything; the load says how busy it was
        info["load_average_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        import sklearn

        info["sklearn"] = sklearn.__version__
        from threadpoolctl import threadpool_info

        info["blas"] = [{k: p.get(k) for k in ("internal_api", "num_threads", "version")}
                        for p in threadpool_info()]
    except ImportError:
        pass
    return info


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def command_line(argv: list[str] | None = None) -> str:
    """The command that reproduces this run, relative to the repository root."""
    argv = list(sys.argv if argv is None else argv)
    try:
        argv[0] = str(Path(argv[0]).resolve().relative_to(REPO_ROOT))
    except ValueError:
        pass
    return "python " + " ".join(shlex.quote(a) for a in argv)


def header(benchmark: str, row: str, title: str, kind: str, smoke: bool,
           argv: list[str] | None = None) -> dict[str, Any]:
    """The keys every result starts with, in the schema's order."""
    return {"schema_version": SCHEMA_VERSION, "benchmark": benchmark, "row": row, "title": title,
            "kind": kind, "command": command_line(argv), "git": run_git(), "date": now_iso(),
            "machine": machine_info(), "smoke": bool(smoke)}


def write_result(result: dict[str, Any], out_dir: Path) -> Path:
    """Validate ``result`` and write it to ``out_dir/<benchmark>.json``. A smoke result is
    never written to ``benchmarks/results``."""
    validate_result(result)
    if result["smoke"] and Path(out_dir).resolve() == RESULTS_DIR.resolve():
        raise ResultFormatError("smoke results are never written to benchmarks/results")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result['benchmark']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def sets_to_args(sets: dict[str, Any] | None) -> list[str]:
    """``{"train.lr": 0.1, "train.progress": False}`` -> ``--set train.lr=0.1 --set
    train.progress=false`` (booleans as genzoo's config parser spells them)."""
    out: list[str] = []
    for key, value in (sets or {}).items():
        out += ["--set", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
    return out


def offline_data(config: Any) -> Any:
    """``genzoo.data.load_data(config)`` that never downloads: a benchmark must fail fast on
    a missing file, not wait on a network."""
    from genzoo.data import load_data

    saved = os.environ.get("GENZOO_OFFLINE")
    os.environ["GENZOO_OFFLINE"] = "1"
    try:
        return load_data(config)
    finally:
        if saved is None:
            del os.environ["GENZOO_OFFLINE"]
        else:
            os.environ["GENZOO_OFFLINE"] = saved


def load_binarized_mnist_train() -> tuple[np.ndarray, str]:
    """The fixed binarized MNIST train split as float32 (50000, 784), and how it was loaded."""
    from genzoo.data import DataConfig

    x = offline_data(DataConfig(name="binarized-mnist")).train.x
    return np.ascontiguousarray(x.numpy(), dtype=np.float32), "genzoo.data.load_data"


# ------------------------------------------------------------------ speed command lines


class RunDirs(NamedTuple):
    """Where one speed comparison puts its files: genzoo runs, the result, the log."""

    run: Path
    results: Path
    log: Path


def add_output_args(parser: argparse.ArgumentParser, smoke_help: str) -> None:
    parser.add_argument("--out", type=Path, default=None,
                        help="run directory (default under benchmarks/runs; temporary with --smoke)")
    parser.add_argument("--results-dir", "--results", dest="results_dir", type=Path,
                        default=None, help="where the result JSON goes (default "
                        "benchmarks/results; a temporary directory with --smoke)")
    parser.add_argument("--smoke", action="store_true",
                        help=smoke_help + "; nothing is written to benchmarks/results")


def run_dirs(parser: argparse.ArgumentParser, args: argparse.Namespace, name: str) -> RunDirs:
    """A smoke run writes into a fresh temporary directory and never into
    benchmarks/results; a full run defaults to benchmarks/runs/NAME and benchmarks/results."""
    if args.smoke:
        scratch = Path(tempfile.mkdtemp(prefix="genzoo-bench-smoke-"))
        run, results = args.out or scratch / "run", args.results_dir or scratch
        if results.resolve() == RESULTS_DIR.resolve():
            parser.error("--smoke results are never written to benchmarks/results")
    else:
        run, results = args.out or RUNS_DIR / name, args.results_dir or RESULTS_DIR
    run.parent.mkdir(parents=True, exist_ok=True)
    return RunDirs(run, results, run.parent / f"{run.name}.log")


# ---------------------------------------------------------------------------------- timing


def interleaved_medians(fns: dict[str, Callable[[], Any]], repetitions: int,
                        warmup: bool = True) -> dict[str, dict[str, Any]]:
    """Time each callable ``repetitions`` times, the order rotating every round so that load
    from other work on the machine hits every one alike. A callable that raises is reported
    ``{"status": "failed", "reason": ...}`` and dropped from later rounds; the others get
    ``{"status": "ok", "times_s": [...], "median_s": ...}``."""
    out: dict[str, dict[str, Any]] = {n: {"status": "ok", "times_s": []} for n in fns}
    names = list(fns)
    for rep in range(repetitions + (1 if warmup else 0)):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            if out[name]["status"] != "ok":
                continue
            t0 = time.perf_counter()
            try:
                fns[name]()
            except Exception as exc:  # noqa: BLE001 - a peer that fails is reported, not fatal
                out[name] = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
                continue
            if rep > 0 or not warmup:
                out[name]["times_s"].append(time.perf_counter() - t0)
    for t in out.values():
        if t["status"] == "ok":
            t["median_s"] = statistics.median(t["times_s"])
    return out


def ratios(timings: dict[str, dict[str, Any]], ours: str = "genzoo") -> dict[str, float]:
    """``{"genzoo / other": median ratio}`` for every other implementation that ran."""
    if timings.get(ours, {}).get("status") != "ok":
        return {}
    return {f"{ours} / {n}": timings[ours]["median_s"] / t["median_s"]
            for n, t in timings.items() if n != ours and t.get("status") == "ok"}
