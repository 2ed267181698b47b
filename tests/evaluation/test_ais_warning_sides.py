"""The AIS disagreement warning names the lower and the upper estimate correctly, whichever of
forward and reverse AIS gave the lower log Z."""

from __future__ import annotations

from genzoo.evaluation._common import ais_disagreement
from genzoo.evaluation.stats import Estimate


def _warning(forward: float, reverse: float) -> str:
    text = ais_disagreement(Estimate(forward, 0.1, 10, "AIS (forward)"),
                            Estimate(reverse, 0.1, 10, "AIS (reverse)"))
    assert text is not None and "AIS is unreliable" in text
    return text


def test_forward_below_reverse_is_the_expected_order():
    text = _warning(100.0, 103.0)
    assert "forward is the lower log Z" in text and "reverse the upper" in text
    assert "the higher, nll_nats_reverse, is the cautious figure" in text
    assert "differ by 3.00 nats" in text


def test_reverse_below_forward_is_called_inverted():
    text = _warning(100.0, 97.0)
    assert "the reverse log Z is the lower one" in text and "forward the upper" in text
    assert "bracket is inverted" in text
    assert "the higher, nll_nats, is the cautious one" in text
    # The gap is a distance: never a negative number of nats.
    assert "differ by 3.00 nats" in text
    assert "reverse value (nll_nats_reverse) is the more cautious" not in text
