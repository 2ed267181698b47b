"""Interleaved timing: every candidate runs once a round in a rotating order, a float returned
is the candidate's own time, a failing candidate is reported and dropped; and the Trainer's
loop timer."""

from __future__ import annotations

import torch

from genzoo.utils.timing import interleaved_medians, limit_threads


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
