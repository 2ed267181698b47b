"""Negative log-likelihood of exact-likelihood models (``EXACT_LIKELIHOOD``): the mean of
-log p(x) over the split, in nats per example, with no estimator error.

The only uncertainty is that of the test-set mean, so ``stderr`` is the standard error over
examples, std(-log p(x_n)) / sqrt(N).
"""

from __future__ import annotations

import time

import torch

from genzoo.core.protocols import EXACT_LIKELIHOOD
from genzoo.evaluation import progress
from genzoo.evaluation._common import DTYPES, evaluation_copy, example_stderr, require_finite
from genzoo.evaluation.config import EvalConfig
from genzoo.evaluation.report import NLL_UNIT, EvaluationReport
from genzoo.evaluation.stats import Estimate

# The estimator: the model's own exact log_prob (any EXACT_LIKELIHOOD model: autoregressive,
# flows, a mixture with a closed-form marginal), averaged over the examples.
EXACT_NAME = "exact log-likelihood (log_prob)"


def exact_nll(model, x: torch.Tensor, eval_config: EvalConfig) -> EvaluationReport:
    """Mean exact NLL in nats per example of ``x`` (N, D) under ``model``, computed by
    ``model.log_prob`` on a copy of the model in ``eval_config.dtype`` (float64 by default),
    ``eval_config.batch_size`` examples at a time. The model is not modified.

    The report's ``nll`` has stderr = stderr_examples = std of the per-example NLL / sqrt(N),
    and no samples (n_samples None).
    """
    start = time.perf_counter()
    dtype = DTYPES[eval_config.dtype]
    m, device = evaluation_copy(
        model, x, EXACT_LIKELIHOOD, dtype, "has no exact likelihood (log_prob)"
    )
    bs = eval_config.batch_size
    parts = []
    with torch.no_grad(), progress.Stage(f"exact likelihood, {len(x)} examples", len(x),
                                         "examples") as st:
        for s in range(0, len(x), bs):
            parts.append(m.log_prob(x[s : s + bs].to(device=device, dtype=dtype)))
            st.advance(len(parts[-1]))
    nll = -torch.cat(parts).to(torch.float64)  # -log p(x_n), (N,)
    require_finite(nll, "log-likelihood under the model")
    se = example_stderr(nll)
    return EvaluationReport(
        estimator=EXACT_NAME,
        n_examples=len(x),
        nll=Estimate(float(nll.mean()), se, None, EXACT_NAME, {"stderr_examples": se}, NLL_UNIT),
        dtype=eval_config.dtype,
        wall_s=time.perf_counter() - start,
    )
