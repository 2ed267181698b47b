"""Where a number came from: the code, the machine and the command of a run.

A training run records :func:`environment` in ``RUN/environment.json`` when it starts, and every
benchmark result carries the same fields, so that a figure can be traced to the commit, the
library versions and the machine (and how busy it was) that produced it.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

SOURCE_ROOT = Path(__file__).resolve().parents[3]  # the checkout holding src/genzoo, if any


def source_commit(repo: Path = SOURCE_ROOT) -> dict[str, Any]:
    """``{"commit": sha or "uncommitted", "dirty": bool}`` of the git checkout at ``repo``
    (an installed, non-git copy of genzoo reads as uncommitted and dirty)."""
    if not (repo / ".git").exists():  # site-packages, a wheel: no commit to name
        return {"commit": "uncommitted", "dirty": True}

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                              check=False, timeout=30)

    try:
        head, status = git("rev-parse", "HEAD"), git("status", "--porcelain")
    except (OSError, subprocess.TimeoutExpired):  # no git binary, or a hung file system
        return {"commit": "uncommitted", "dirty": True}
    commit = head.stdout.strip() if head.returncode == 0 else "uncommitted"
    return {"commit": commit, "dirty": commit == "uncommitted" or bool(status.stdout.strip())}


def package_version(module: str) -> str:
    """``module.__version__``, or "unknown" when it is missing or fails to import."""
    try:
        return str(__import__(module).__version__)
    except Exception:  # noqa: BLE001 - a version string is informational only
        return "unknown"


def load_average() -> float | None:
    """The 1-minute load average (None where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def busy_notes(when: str, advice: str, load: float | None = None) -> list[str]:
    """A note when the 1-minute load average (``load``, or now) exceeded half the cores:
    other work on the machine slows every implementation, unevenly."""
    load = load_average() if load is None else load
    cores = os.cpu_count() or 1
    if load is None or load <= 0.5 * cores:
        return []
    return [(f"The machine was busy with other work (1-minute load average {load:.2f} on "
             f"{cores} cores {when}): {advice}")]


def machine_info(blas: bool = True) -> dict[str, Any]:
    """CPU model, core and thread counts, load, and the versions of the numeric libraries;
    ``blas``: also scikit-learn's and the BLAS / OpenMP pools (importing scikit-learn costs a
    second or two in a fresh process)."""
    import numpy as np
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
    if torch.cuda.is_available():
        info["cuda_devices"] = [torch.cuda.get_device_name(i)
                                for i in range(torch.cuda.device_count())]
    try:  # other work on the machine slows everything; the load says how busy it was
        info["load_average_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        pass
    if not blas:
        return info
    try:
        import sklearn

        info["sklearn"] = sklearn.__version__
        from threadpoolctl import threadpool_info

        info["blas"] = [{k: p.get(k) for k in ("internal_api", "num_threads", "version")}
                        for p in threadpool_info()]
    except ImportError:
        pass
    return info


def command_line(argv: list[str] | None = None, root: Path | None = None) -> str:
    """The command that reproduces this process (``sys.argv`` by default): a script path is
    written relative to ``root`` when it lies below it; the ``genzoo`` entry point by name."""
    argv = list(sys.argv if argv is None else argv)
    if not argv:
        return ""
    program = Path(argv[0])
    if program.name == "genzoo":
        argv[0] = "genzoo"
        return shlex.join(argv)
    if root is not None:
        try:
            argv[0] = str(program.resolve().relative_to(root))
        except ValueError:
            pass
    return "python " + shlex.join(argv)


def environment(argv: list[str] | None = None) -> dict[str, Any]:
    """What ``RUN/environment.json`` holds: genzoo's version and source commit, the command,
    and :func:`machine_info` (with the BLAS pools only where scikit-learn is loaded already)."""
    return {"genzoo": package_version("genzoo"), "git": source_commit(),
            "command": command_line(argv), "machine": machine_info(blas="sklearn" in sys.modules)}
