"""Timing pieces of code against each other on a machine that other work shares.

:func:`interleaved_medians` runs each candidate in turn, the order rotating every round, so that
a burst of load from elsewhere slows every candidate alike, and compares medians, which one
slow round does not move. :func:`limit_threads` fixes the thread count of torch and of
numpy's BLAS, so that the candidates run on the same cores.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any


def limit_threads(n: int | None) -> None:
    """``n`` threads for torch and for numpy's BLAS alike (None: leave the libraries'
    defaults). numpy's pools are limited through threadpoolctl where it is installed."""
    import torch

    if n is None:
        return
    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass


def interleaved_medians(fns: dict[str, Callable[[], Any]], repetitions: int,
                        descriptions: dict[str, str] | None = None,
                        progress: bool = False) -> dict[str, dict[str, Any]]:
    """Time each callable of ``fns`` (name -> callable) ``repetitions`` times, the order
    rotating every round so that load from other work on the machine hits every one alike;
    return name -> its timings entry, times in seconds. A callable that returns a float has
    timed its own inner loop (leaving out its setup): that is its time. One that raises is
    reported ``{"status": "error", "reason": ...}`` and dropped from later rounds; the others
    get ``{"status": "ok", "times_s": [...], "median_s": ...}``. ``descriptions``: name ->
    what the callable runs, put in its entry as ``description``; ``progress``: print each
    round's times."""
    out: dict[str, dict[str, Any]] = {n: {"status": "ok", "times_s": []} for n in fns}
    names = list(fns)
    for rep in range(repetitions):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            if out[name]["status"] != "ok":
                continue
            gc.collect()
            t0 = time.perf_counter()
            try:
                inner = fns[name]()
            except Exception as exc:  # noqa: BLE001 - a peer that fails is reported, not fatal
                out[name] = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
                continue
            elapsed = time.perf_counter() - t0
            out[name]["times_s"].append(inner if isinstance(inner, float) else elapsed)
        if progress:
            print(f"round {rep + 1}/{repetitions}: " + ", ".join(
                f"{n} {t['times_s'][-1]:.2f} s" for n, t in out.items() if t["status"] == "ok"),
                flush=True)
    for name, t in out.items():
        if t["status"] == "ok":
            t["median_s"] = statistics.median(t["times_s"])
        if descriptions:
            t["description"] = descriptions[name]
    return out


class Unavailable(Exception):
    """A candidate cannot run here (a library not installed, data missing); the message says
    why."""


def build_candidates(factories: dict[str, Callable[[], tuple[Any, dict[str, Any]]]],
                     descriptions: dict[str, str], missing: str = "unavailable",
                     ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Build every candidate: ``factories[name]()`` returns (what to time, facts for its
    timings entry). Returns the entries (name -> ``{"description": descriptions[name],
    "status": ..., **facts}``) and name -> what was built, for those that built. One that raises
    :class:`Unavailable` gets the status ``missing``, one that crashes ``"error"``, each with
    the reason: a candidate that cannot run is reported, never fatal."""
    timings, built = {}, {}
    for name, make in factories.items():
        entry: dict[str, Any] = {"description": descriptions[name]}
        try:
            built[name], info = make()
            entry.update(info, status="ok")
        except Unavailable as exc:
            entry.update(status=missing, reason=str(exc))
        except Exception as exc:  # noqa: BLE001
            entry.update(status="error", reason=f"{type(exc).__name__}: {exc}")
        timings[name] = entry
    return timings, built


def median_ratios(timings: dict[str, dict[str, Any]], ours: str = "genzoo") -> dict[str, float]:
    """``{"OURS / other": median time of ours / median time of other}`` for every other
    candidate of ``timings`` (:func:`interleaved_medians`) that ran; below 1, ours is faster.
    Empty when ours did not run."""
    if timings.get(ours, {}).get("status") != "ok":
        return {}
    return {f"{ours} / {n}": timings[ours]["median_s"] / t["median_s"]
            for n, t in timings.items() if n != ours and t.get("status") == "ok"}


def top_operators(fn: Callable[[int], Any], n_calls: int, top: int = 12) -> list[dict[str, Any]]:
    """Where ``fn(n_calls)`` spends its CPU time: the ``top`` operators of torch's profiler by
    self time, each ``{"op", "calls", "self_ms_per_batch" (per one of the n_calls),
    "self_share" (of all operators' self time)}``."""
    from torch.profiler import profile  # here: the profiler is slow to import

    with profile() as prof:
        fn(n_calls)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    return [{"op": e.key, "calls": e.count,
             "self_ms_per_batch": e.self_cpu_time_total / 1e3 / n_calls,
             "self_share": e.self_cpu_time_total / total} for e in events[:top]]
