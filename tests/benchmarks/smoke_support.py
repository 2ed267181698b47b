"""What the benchmark smoke tests share: run a command the way CI does, check that
benchmarks/results was left alone, and read back the result it wrote (validated against
benchmarks/common.py's schema). Importable because pytest puts this folder on sys.path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from support import BENCH, load_benchmark

REPO = BENCH.parent
common = load_benchmark("common")


def smoke_env(**extra: str) -> dict[str, str]:
    """Never download in a test, and keep the BLAS pools small on a shared 2-core machine."""
    return {**os.environ, "GENZOO_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra}


def results_snapshot() -> dict[str, float]:
    return {p.name: p.stat().st_mtime for p in (BENCH / "results").glob("*")}


def run_script(args: list[str], timeout: float = 240,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` from the repository root; assert that it succeeds and that it left
    benchmarks/results untouched."""
    before = results_snapshot()
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env or smoke_env(),
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert results_snapshot() == before, "a smoke run touched benchmarks/results"
    return proc


def read_result(path: Path) -> dict[str, Any]:
    """The result JSON at ``path``, validated against the schema."""
    result = json.loads(Path(path).read_text())
    common.validate_result(result)
    return result


def written_result(proc: subprocess.CompletedProcess) -> dict[str, Any]:
    """The result a script announced on its last line, ``wrote PATH``."""
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("wrote "), proc.stdout[-3000:]
    return read_result(Path(last.removeprefix("wrote ").strip()))
