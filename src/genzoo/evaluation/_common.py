"""What every likelihood estimator does the same way: refuse a model without the capability it
needs, check the data, work on a copy of the model in the evaluation precision, and summarise
per-example values."""

from __future__ import annotations

import copy
import math

import torch

from genzoo.core.errors import GenzooError
from genzoo.core.protocols import has
from genzoo.evaluation.stats import Estimate

# eval.dtype -> the dtype of the evaluation copy of the model; "mixed" runs it in float32 and
# every estimator accumulates its sums in float64.
DTYPES = {"mixed": torch.float32, "float64": torch.float64, "float32": torch.float32}


def check_data(model, x: torch.Tensor, name: str = "x") -> None:
    """``model.check_input(x, name)`` (the TrainingHooks contract: InputError naming the fix).
    Every model on genzoo.models.base.GenzooModel has it; a model still outside that base class
    and without the method is evaluated unchecked."""
    check = getattr(model, "check_input", None)
    if check is not None:
        check(x, name)


def evaluation_copy(model, x: torch.Tensor, capability: str, dtype: torch.dtype, needs: str):
    """(copy of ``model`` in ``dtype`` and eval mode, its device) after checking that the model
    has ``capability`` (else GenzooError "<Model> <needs>") and that ``x`` is valid, non-empty
    input for it. The caller's model is never modified."""
    if not has(model, capability):
        raise GenzooError(f"{type(model).__name__} {needs}")
    check_data(model, x)
    if len(x) == 0:
        raise GenzooError("the evaluation split is empty")
    m = copy.deepcopy(model).to(dtype)
    m.eval()
    params = next(m.parameters(), None)
    return m, (params.device if params is not None else x.device)


def default_generator(model, eval_config) -> torch.Generator:
    """A generator seeded with ``eval_config.seed`` on the model's device (the CPU for a model
    without parameters), so that an evaluation without an explicit generator is reproducible."""
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    return torch.Generator(device=device).manual_seed(eval_config.seed)


# Forward and reverse log Z further apart than this many combined standard errors (and at least
# AIS_AGREEMENT_NATS) mean at least one of the two runs is wrong.
AIS_AGREEMENT_SIGMAS = 3.0
AIS_AGREEMENT_NATS = 1.0


def ais_disagreement(forward: Estimate, reverse: Estimate) -> str | None:
    """A warning when the forward and reverse AIS estimates of log Z disagree beyond their
    error bars (|gap| > max(1 nat, 3 sqrt(se_f^2 + se_r^2))), else None.

    Forward AIS is a stochastic lower bound on log Z (E[log Z_f] <= log Z): when its chains
    miss modes of the model it falls short, with a small standard error that hides it, and the
    NLL computed from it (``nll_nats``) is too low. Reverse AIS is a stochastic upper bound
    (its weights estimate 1/Z without bias, so E[log Z_r] >= log Z when its start states are
    model samples) and ``nll_nats_reverse`` is too high when it errs. So log Z_f < log Z_r is
    the expected order, and the true NLL most likely lies between the two figures; the reverse
    estimate below the forward one means at least one of them is wrong in the direction its
    bias does not explain (reverse runs started from poor samples, or too few temperatures).
    The message names which estimate is the lower and which the upper figure either way."""
    gap = reverse.value - forward.value
    se = math.hypot(forward.stderr, reverse.stderr)
    if abs(gap) <= max(AIS_AGREEMENT_NATS, AIS_AGREEMENT_SIGMAS * se):
        return None
    figures = (
        f"AIS is unreliable here: forward log Z {forward.value:.2f} +/- {forward.stderr:.2f} "
        f"and reverse {reverse.value:.2f} +/- {reverse.stderr:.2f} differ by {abs(gap):.2f} "
        "nats, far beyond their standard errors."
    )
    if gap > 0:
        sides = (
            " Forward AIS tends to underestimate log Z and reverse AIS to overestimate it, and "
            "here they do so in order: forward is the lower log Z (nll_nats, the lower NLL, "
            "too low when its chains miss modes), reverse the upper (nll_nats_reverse, the "
            "higher NLL). The true NLL most likely lies between them; the higher, "
            "nll_nats_reverse, is the cautious figure."
        )
    else:
        sides = (
            " Forward AIS tends to underestimate log Z and reverse AIS to overestimate it, but "
            "here the reverse log Z is the lower one (nll_nats_reverse, the lower NLL) and the "
            "forward the upper (nll_nats, the higher NLL): the bracket is inverted, so at "
            "least one run is wrong against its own bias (the reverse runs' start states are "
            "poor model samples, or the temperatures are too few). Neither figure bounds the "
            "NLL; the higher, nll_nats, is the cautious one."
        )
    return figures + sides + (
        " Raise eval.ais_betas (and eval.reverse_burn_in) until the two agree."
    )


def example_stderr(values: torch.Tensor) -> float:
    """Standard error of the mean of per-example values (N,): std / sqrt(N), 0 for N = 1."""
    n = len(values)
    return float(values.std(unbiased=True)) / math.sqrt(n) if n > 1 else 0.0


def require_finite(values: torch.Tensor, what: str) -> None:
    """GenzooError naming how many examples have a non-finite ``what``."""
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        raise GenzooError(
            f"{int(bad.sum())} example(s) have non-finite {what}; the run has diverged or the "
            "data do not match the model"
        )
