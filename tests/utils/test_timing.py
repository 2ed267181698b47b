"""Interleaved timing: every candidate runs once a round in a rotating order, a float returned
is the candidate's own time, a failing candidate is reported and dropped; and the Trainer's
loop timer."""

from __future__ import annotations

import torch

from genzoo.utils.timing import (
    Unavailable,
    build_candidates,
    interleaved_medians,
    limit_threads,
    median_ratios,
    top_operators,
)


def test_rounds_rotate_and_medians_use_a_returned_time():
    order = []

    def make(name, inner=None):
        def run():
            order.append(name)
            return inner
        return run

    out = interleaved_medians({"a": make("a"), "b": make("b", 0.25), "c": make("c")}, 3,
                              descriptions={"a": "first", "b": "second", "c": "third"})
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert out["b"] == {"status": "ok", "times_s": [0.25] * 3, "median_s": 0.25,
                        "description": "second"}
    assert len(out["a"]["times_s"]) == 3 and out["a"]["median_s"] >= 0


def test_a_failing_candidate_is_reported_and_dropped():
    calls = []

    def broken():
        calls.append(1)
        raise RuntimeError("no such library")

    out = interleaved_medians({"ok": lambda: None, "broken": broken}, 4)
    assert out["broken"] == {"status": "error", "reason": "RuntimeError: no such library"}
    assert len(calls) == 1 and len(out["ok"]["times_s"]) == 4


def test_limit_threads_sets_torch_threads_and_none_leaves_them():
    before = torch.get_num_threads()
    try:
        limit_threads(None)
        assert torch.get_num_threads() == before
        limit_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        limit_threads(before)


def test_a_candidate_that_cannot_be_built_is_reported_not_fatal():
    def missing():
        raise Unavailable("peerlib not installed")

    def broken():
        raise ValueError("bad shape")

    timings, built = build_candidates(
        {"ours": lambda: ("fn", {"version": "1"}), "peer": missing, "other": broken},
        {"ours": "ours, step", "peer": "peer, step", "other": "other, step"}, missing="missing")
    assert built == {"ours": "fn"}
    assert timings["ours"] == {"description": "ours, step", "version": "1", "status": "ok"}
    assert timings["peer"] == {"description": "peer, step", "status": "missing",
                               "reason": "peerlib not installed"}
    assert timings["other"]["status"] == "error" and "ValueError: bad shape" in timings["other"][
        "reason"]


def test_median_ratios_compare_ours_with_every_candidate_that_ran():
    timings = {"genzoo": {"status": "ok", "median_s": 1.0},
               "fast": {"status": "ok", "median_s": 0.5},
               "gone": {"status": "error", "reason": "x"}}
    assert median_ratios(timings) == {"genzoo / fast": 2.0}
    assert median_ratios({"genzoo": {"status": "error"}, "b": timings["fast"]}) == {}


def test_top_operators_ranks_the_profiled_ops_by_self_time():
    a = torch.randn(64, 64)

    def work(n: int) -> None:
        for _ in range(n):
            torch.mm(a, a)
            torch.sigmoid(a)

    ops = top_operators(work, 4, top=3)
    assert 1 <= len(ops) <= 3
    assert any(op["op"] == "aten::mm" and op["calls"] == 4 for op in ops)
    shares = [op["self_share"] for op in ops]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1 + 1e-9
    assert all(op["self_ms_per_batch"] >= 0 for op in ops)
