"""What every likelihood evaluator does the same way: refuse a model without the capability it
needs, check the data, work on a copy of the model in the evaluation precision, and report the
spread of per-example values (for the energy-based NLLs, F(x) + log Z, in one report shape)."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch

from genzoo.core.errors import GenzooError
from genzoo.core.protocols import has
from genzoo.evaluation.stats import Estimate

DTYPES = {"float64": torch.float64, "float32": torch.float32}

# Report keys of estimators that do not apply to a given model (always present, so reports of
# every model have one shape).
NOT_APPLICABLE = ("n_samples", "n_betas", "log_z", "log_z_reverse", "nll_nats_reverse", "ais_ess")


def evaluation_copy(model, x: torch.Tensor, capability: str, dtype: torch.dtype, needs: str):
    """(copy of ``model`` in ``dtype`` and eval mode, its device) after checking that the model
    has ``capability`` (else GenzooError "<Model> <needs>") and that ``x`` is valid, non-empty
    input for it. The caller's model is never modified."""
    if not has(model, capability):
        raise GenzooError(f"{type(model).__name__} {needs}")
    check = getattr(model, "check_input", None)
    if check is not None:
        check(x, "x")
    if len(x) == 0:
        raise GenzooError("the evaluation split is empty")
    m = copy.deepcopy(model).to(dtype)
    m.eval()
    params = next(m.parameters(), None)
    return m, (params.device if params is not None else x.device)


def log_z_report() -> dict[str, Any]:
    """The keys of an F(x) + log Z report that only some log Z estimators fill (reverse AIS,
    AIS run counts and diagnostics), all None to start with."""
    return {
        "log_z_reverse": None,
        "nll_nats_reverse": None,
        "stderr_log_z_reverse": None,
        "reverse_start": None,
        "ais_ess": None,
        "ais_ess_reverse": None,
        "n_samples": None,
        "n_betas": None,
    }


def add_reverse_log_z(report: dict[str, Any], z_rev: Estimate, reverse_start: str) -> None:
    """Record a reverse-AIS log Z estimate (value, stderr, ESS) and how its runs were started
    in ``report``."""
    report["reverse_start"] = reverse_start
    report["log_z_reverse"] = z_rev.value
    report["stderr_log_z_reverse"] = z_rev.stderr
    report["ais_ess_reverse"] = z_rev.diagnostics["ess"]


def add_nll_summary(
    report: dict[str, Any], f: torch.Tensor, z: Estimate, dtype_name: str, **extra: Any
) -> None:
    """Complete ``report`` with NLL_i = f_i + log Z for per-example free energies f (N,) and a
    log Z estimate ``z``: nll_nats (mean, nats per example), stderr = sqrt(stderr_log_z^2 +
    stderr_examples^2), stderr_log_z, stderr_examples, log_z, n_examples, dtype, then ``extra``,
    and nll_nats_reverse when the report has a reverse log Z."""
    nll = f + z.value
    se_examples = example_stderr(nll)
    report.update(
        nll_nats=float(nll.mean()),
        stderr=math.sqrt(z.stderr**2 + se_examples**2),
        stderr_log_z=z.stderr,
        stderr_examples=se_examples,
        log_z=z.value,
        n_examples=len(f),
        dtype=dtype_name,
        **extra,
    )
    if report["log_z_reverse"] is not None:
        report["nll_nats_reverse"] = float((f + report["log_z_reverse"]).mean())
        warning = ais_disagreement(report)
        if warning is not None:
            report.setdefault("warnings", []).append(warning)


# Forward and reverse log Z further apart than this many combined standard errors (and at least
# AIS_AGREEMENT_NATS) mean at least one of the two runs is wrong.
AIS_AGREEMENT_SIGMAS = 3.0
AIS_AGREEMENT_NATS = 1.0


def ais_disagreement(report: dict[str, Any]) -> str | None:
    """A warning when the forward and reverse AIS estimates of log Z in ``report`` disagree
    beyond their error bars, else None. Forward AIS is a stochastic lower bound on log Z: when
    its chains miss modes of the model it falls short, with a small standard error that hides
    it, and the NLL computed from it is too low. Reverse AIS from approximate samples can err
    either way. Only their agreement says the estimate can be trusted."""
    gap = report["log_z_reverse"] - report["log_z"]
    se = math.hypot(report["stderr_log_z"], report["stderr_log_z_reverse"])
    if abs(gap) <= max(AIS_AGREEMENT_NATS, AIS_AGREEMENT_SIGMAS * se):
        return None
    return (
        f"AIS is unreliable here: forward log Z {report['log_z']:.2f} +/- "
        f"{report['stderr_log_z']:.2f} and reverse {report['log_z_reverse']:.2f} +/- "
        f"{report['stderr_log_z_reverse']:.2f} differ by {gap:.2f} nats, far beyond their "
        "standard errors. Forward AIS underestimates log Z when its chains miss modes, which "
        "makes nll_nats too low; the reverse value (nll_nats_reverse) is the more cautious "
        "figure. Raise eval.ais_betas (and eval.reverse_burn_in) until the two agree."
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
