"""What every benchmark shares: rows, the result format and its provenance, output directories,
publishing, and the machinery of the speed comparisons (their command line, their results); the
timing itself is :mod:`genzoo.utils.timing` and :mod:`genzoo.training.timing`.

A result is one JSON object, ``benchmarks/results/<benchmark>.json``. Every result carries
:data:`REQUIRED_KEYS`; likelihood results add :data:`LIKELIHOOD_KEYS`, speed results
:data:`SPEED_KEYS`. Gaps to published numbers are ``ours - reference`` in the metric's unit, so
for a lower-is-better metric (an NLL in nats) a positive gap is a shortfall.

This module imports nothing else from ``benchmarks/``; everything else imports it."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple
from unittest import mock

from genzoo.utils import provenance
from genzoo.utils.provenance import machine_info, source_commit
from genzoo.utils.timing import median_ratios

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
KIND_KEYS = {"likelihood": LIKELIHOOD_KEYS, "speed": SPEED_KEYS}
DATA_KEYS = ("name", "binarization", "split")
REFERENCE_KEYS = ("label", "value", "source")
SMOKE_NOTE = "SMOKE RUN: tiny model and data; the number is not comparable to the references."


class ResultFormatError(ValueError):
    """A result JSON object lacks a required key or has a malformed one."""


def validate_result(result: dict[str, Any]) -> None:
    """Raise :class:`ResultFormatError` naming every missing or malformed key."""
    kind = result.get("kind")
    problems = [f"missing key {k!r}" for k in (*REQUIRED_KEYS, *KIND_KEYS.get(kind, ()))
                if k not in result]
    if kind == "likelihood":
        for i, ref in enumerate(result.get("references", [])):
            problems += [f"references[{i}] lacks {k!r}" for k in REFERENCE_KEYS if k not in ref]
        metric = result.get("metric", {})
        if "lower_is_better" not in metric or "unit" not in metric:
            problems.append("metric needs 'unit' and 'lower_is_better'")
    elif kind == "speed":
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


def load_row(name: str) -> dict[str, Any]:
    """``rows/<name>.json``, with the row it names as ``base`` merged under it (dict values
    merged one level deep, so a row states only what differs from its base)."""
    path = ROWS_DIR / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"no row {name!r}: choose one of {', '.join(row_names())}")
    row = json.loads(path.read_text())
    if "base" in row:
        base = load_row(row.pop("base"))
        row = {k: {**base[k], **v} if isinstance(v, dict) and isinstance(base.get(k), dict)
               else v for k, v in {**base, **row}.items()}
    return {**row, "name": name}


def row_names() -> list[str]:
    return sorted(p.stem for p in ROWS_DIR.glob("*.json"))


# ------------------------------------------------------------------------------ provenance


# A long benchmark publishes hours later, when HEAD may have moved on: the code it ran is the
# code this process imported, so the commit is read once, at import.
_GIT_AT_START = source_commit(REPO_ROOT)


def run_git() -> dict[str, Any]:
    """:func:`~genzoo.utils.provenance.source_commit` as it was when this process started the benchmark code."""
    return dict(_GIT_AT_START)


def header(benchmark: str, row: str, title: str, kind: str, smoke: bool,
           argv: list[str] | None = None) -> dict[str, Any]:
    """The keys every result starts with, in the schema's order; ``command`` reproduces this
    run (``argv``, by default ``sys.argv``), its script relative to the repository root."""
    return {"schema_version": SCHEMA_VERSION, "benchmark": benchmark, "row": row, "title": title,
            "kind": kind, "command": provenance.command_line(argv, REPO_ROOT), "git": run_git(),
            "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            "machine": machine_info(), "smoke": bool(smoke)}


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

    with mock.patch.dict(os.environ, {"GENZOO_OFFLINE": "1"}):
        return load_data(config)


def binarized_mnist_rows(n: int, smoke: bool, seed: int) -> tuple[Any, dict[str, Any]]:
    """The first ``n`` rows of the fixed binarized MNIST train split as a float32 tensor
    (n, 784), and the result's ``data`` entry. Without the file a smoke run gets random binary
    rows of that shape (it checks the machinery, not MNIST); a full run stops."""
    import torch

    from genzoo.core.errors import GenzooError
    from genzoo.data import DataConfig

    try:
        x = offline_data(DataConfig(name="binarized-mnist")).train.x[:n]
        data = {"name": "binarized-mnist", "binarization": "fixed (Larochelle & Murray 2011)",
                "split": "train", "loader": "genzoo.data.load_data"}
    except (GenzooError, OSError) as exc:
        if not smoke:
            raise SystemExit(f"binarized MNIST not available ({exc}); set GENZOO_DATA to "
                             "the folder holding binarized_mnist/") from None
        x = (torch.rand(n, 784, generator=torch.Generator().manual_seed(seed)) < 0.13)
        data = {"name": "synthetic-bernoulli(0.13)", "binarization": "synthetic",
                "split": "train", "loader": f"synthetic, real data unavailable: {exc}"}
    if len(x) < n:
        raise SystemExit(f"need {n} rows of binarized MNIST, the file has {len(x)}")
    return x.float().contiguous(), {**data, "n_examples": n}


# ------------------------------------------------------------------------- output, printing


class RunDirs(NamedTuple):
    """Where one run puts its files: the genzoo run directory, the result, the log."""

    run: Path
    results: Path
    log: Path


def output_dirs(name: str, smoke: bool, run: Path | None, results: Path | None) -> RunDirs:
    """A smoke run writes into a fresh temporary directory (unless told otherwise) and never
    into benchmarks/results; a full run defaults to benchmarks/runs/NAME and benchmarks/results."""
    if smoke:
        scratch = Path(tempfile.mkdtemp(prefix=f"genzoo-bench-{name}-"))
        run, results = run or scratch / "run", results or scratch
        if results.resolve() == RESULTS_DIR.resolve():
            raise SystemExit("--smoke results are never written to benchmarks/results")
    else:
        run, results = run or RUNS_DIR / name, results or RESULTS_DIR
    run.parent.mkdir(parents=True, exist_ok=True)
    return RunDirs(run, results, run.parent / f"{run.name}.log")


def publish(result: dict[str, Any], results: Path) -> Path:
    """Validate ``result``, write it to ``results/<benchmark>.json`` (a smoke result never to
    ``benchmarks/results``) and print its headline: a likelihood's value and its gap to every
    reference, a speed result's timings, ratios and acceptance. The last line printed is
    ``wrote PATH``."""
    validate_result(result)
    if result["smoke"] and results.resolve() == RESULTS_DIR.resolve():
        raise ResultFormatError("smoke results are never written to benchmarks/results")
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{result['benchmark']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    if result["kind"] == "likelihood":
        unit = result["metric"]["unit"]
        print(f"{result['benchmark']}: {result['value']:.2f} +/- {result['stderr']:.2f} {unit}")
        for ref in result["references"]:
            flag = " (not comparable)" if ref.get("comparable") is False else ""
            print(f"  vs {ref['label']} {ref['value']:.2f}: {ref['gap_text']}{flag}")
    else:
        for name, t in result["timings"].items():
            print(f"{name:>16}: " + (f"median {t['median_s']:.3f} s" if t["status"] == "ok"
                                     else f"{t['status']}: {t['reason']}"))
        for name, ratio in result["ratios"].items():
            print(f"{name} = {ratio:.3f}")
        acc = result["acceptance"]
        print(f"acceptance: {'PASSED' if acc['passed'] else 'NOT MET'} ({acc['why']})")
    if not result["smoke"] and results.resolve() == RESULTS_DIR.resolve():
        print("regenerate RESULTS.md: python benchmarks/make_results.py")
    print(f"wrote {path}")
    return path


# -------------------------------------------------------------------------- speed comparisons

SPEED_SMOKE_NOTE = "SMOKE RUN: tiny sizes; the numbers are not a benchmark."


def speed_args(module: Any, row: dict[str, Any],
               argv: list[str]) -> tuple[argparse.Namespace, RunDirs]:
    """The command line of the speed comparison ``module`` (``speed/NAME.py``), parsed, and
    where its files go. From its row: one ``--name`` per key of ``options`` with that default
    (an int where it is None) and one flag per preset of ``presets`` (``--smoke``: seconds,
    written to a temporary directory by default; ``--full``, ...); a preset replaces the
    defaults it names (``--smoke`` over any other preset) and a value given on the command line
    wins over both. ``--out`` is the genzoo run directory where the module names its runs
    (``RUN_NAME``, formatted with the arguments), else the result's directory;
    ``module.add_arguments(parser, row)``, where defined, adds the module's own arguments."""
    run_name = getattr(module, "RUN_NAME", None)
    p = argparse.ArgumentParser(description=module.__doc__.split("\n\n")[0])
    if run_name:
        p.add_argument("--out", type=Path, default=None, help="genzoo run directory")
        p.add_argument("--results-dir", "--results", dest="results_dir", type=Path,
                       default=None, help="where the result JSON goes")
    else:
        p.add_argument("--out", dest="results_dir", type=Path, default=None,
                       help="where the result JSON goes")
    for name, values in row["presets"].items():
        p.add_argument("--" + name, action="store_true",
                       help="preset " + ", ".join(f"{k}={v}" for k, v in values.items()))
    for name, default in row["options"].items():
        p.add_argument("--" + name.replace("_", "-"), default=default, help=f"default {default}",
                       type=int if default is None else type(default))
    if hasattr(module, "add_arguments"):
        module.add_arguments(p, row)
    args = p.parse_args(argv)
    for name in sorted(row["presets"], key=lambda name: name == "smoke"):
        if getattr(args, name):
            p.set_defaults(**row["presets"][name])
    args = p.parse_args(argv)
    name = (run_name or row["speed"]).format(**vars(args))
    return args, output_dirs(name, args.smoke, getattr(args, "out", None), args.results_dir)


def speed_result(row: dict[str, Any], args: argparse.Namespace, benchmark: str, title: str,
                 timings: dict[str, dict[str, Any]], acceptance: dict[str, Any],
                 notes: list[str], row_name: str | None = None, **keys: Any) -> dict[str, Any]:
    """A speed result of ``row`` run with ``args``: the header (naming ``row_name``, by default
    the row's name), its ``config`` (the row's options as the command line set them, then
    ``keys["config"]``), the timings and their ratios
    (:func:`~genzoo.utils.timing.median_ratios` unless ``keys`` give them), ``keys`` (data,
    wall_s: by default ``timed``, the seconds of every timed run), the acceptance, and the
    notes: the smoke note on a smoke run, ``notes``, then the row's, each with its ``{option}``
    filled in from ``args``."""
    config = {**{k: getattr(args, k) for k in row["options"]}, **keys.pop("config", {})}
    keys.setdefault("wall_s", {"timed": sum(sum(t.get("times_s", [])) for t in timings.values())})
    return {**header(benchmark, row_name or row["name"], title, "speed", args.smoke),
            "config": config, "timings": timings, "ratios": median_ratios(timings), **keys,
            "acceptance": acceptance,
            "notes": [*([SPEED_SMOKE_NOTE] if args.smoke else []), *notes,
                      *(note.format(**vars(args)) for note in row["notes"])]}


def acceptance(criterion: str, why: list[str], **more: Any) -> dict[str, Any]:
    """A speed result's ``acceptance``: passed when no reason in ``why`` says otherwise."""
    return {"criterion": criterion, "passed": not why, "why": "; ".join(why) or "met", **more}
