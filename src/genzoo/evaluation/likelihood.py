"""Negative log-likelihood of exact-likelihood models (``EXACT_LIKELIHOOD``): the mean of
-log p(x) over the split, in nats per example, with no estimator error.

The only uncertainty is that of the test-set mean, so ``stderr`` is the standard error over
examples, std(-log p(x_n)) / sqrt(N).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from genzoo.core.protocols import EXACT_LIKELIHOOD
from genzoo.evaluation._common import (
    DTYPES,
    NOT_APPLICABLE,
    evaluation_copy,
    example_stderr,
    require_finite,
)
from genzoo.evaluation.config import EvalConfig


def exact_nll(model, x: torch.Tensor, eval_config: EvalConfig) -> dict[str, Any]:
    """Mean exact NLL in nats per example of ``x`` (N, D) under ``model``, computed by
    ``model.log_prob`` on a copy of the model in ``eval_config.dtype`` (float64 by default),
    ``eval_config.batch_size`` examples at a time. The model is not modified.

    Returns nll_nats, stderr (= stderr_examples, std of the per-example NLL / sqrt(N)),
    stderr_examples, estimator, n_examples, dtype, wall_s, and the AIS keys of the energy
    report (n_samples, n_betas, log_z, log_z_reverse, nll_nats_reverse, ais_ess) as None.
    """
    start = time.perf_counter()
    dtype = DTYPES[eval_config.dtype]
    m, device = evaluation_copy(
        model, x, EXACT_LIKELIHOOD, dtype, "has no exact likelihood (log_prob)"
    )
    bs = eval_config.batch_size
    with torch.no_grad():
        nll = -torch.cat(
            [
                m.log_prob(x[s : s + bs].to(device=device, dtype=dtype)).to(torch.float64)
                for s in range(0, len(x), bs)
            ]
        )
    require_finite(nll, "log-likelihood under the model")
    se = example_stderr(nll)
    return {
        "nll_nats": float(nll.mean()),
        "stderr": se,
        "stderr_examples": se,
        "estimator": "exact (autoregressive)",
        **dict.fromkeys(NOT_APPLICABLE),
        "n_examples": len(x),
        "dtype": eval_config.dtype,
        "wall_s": time.perf_counter() - start,
    }
