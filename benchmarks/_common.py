"""Shared pieces of the benchmark scripts: the result format, provenance, data loading.

A benchmark result is one JSON object written to ``benchmarks/results/<benchmark>.json``.
Every result carries the keys in :data:`REQUIRED_KEYS`; likelihood results add
:data:`LIKELIHOOD_KEYS`, speed results :data:`SPEED_KEYS`. ``make_results.py`` turns the
files into ``RESULTS.md``; nothing else writes that file.

Gaps to published numbers are always ``ours - reference`` in the metric's own unit. For a
metric where lower is better (an NLL in nats) a positive gap is a shortfall.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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
