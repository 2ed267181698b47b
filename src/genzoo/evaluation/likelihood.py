"""Negative log-likelihood of exact-likelihood models (``EXACT_LIKELIHOOD``): the mean of
-log p(x) over the split, in nats per example, with no estimator error.

The only uncertainty is that of the test-set mean, so ``stderr`` is the standard error over
examples, std(-log p(x_n)) / sqrt(N).
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch

from genzoo.core.errors import GenzooError
from genzoo.core.protocols import EXACT_LIKELIHOOD, has
from genzoo.evaluation.config import EvalConfig

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def exact_nll(model, x: torch.Tensor, eval_config: EvalConfig) -> dict[str, Any]:
    """Mean exact NLL in nats per example of ``x`` (N, D) under ``model``, computed by
    ``model.log_prob`` on a copy of the model in ``eval_config.dtype`` (float64 by default),
    ``eval_config.batch_size`` examples at a time. The model is not modified.

    Returns nll_nats, stderr (= stderr_examples, std of the per-example NLL / sqrt(N)),
    stderr_examples, estimator, n_examples, dtype, wall_s, and the AIS keys of the energy
    report (n_samples, n_betas, log_z, log_z_reverse, nll_nats_reverse, ais_ess) as None.
    """
    start = time.perf_counter()
    if not has(model, EXACT_LIKELIHOOD):
        raise GenzooError(f"{type(model).__name__} has no exact likelihood (log_prob)")
    check = getattr(model, "check_input", None)
    if check is not None:
        check(x, "x")
    if len(x) == 0:
        raise GenzooError("the evaluation split is empty")
    dtype = _DTYPES[eval_config.dtype]
    m = copy.deepcopy(model).to(dtype)
    m.eval()
    device = next(m.parameters()).device
    bs = eval_config.batch_size
    with torch.no_grad():
        nll = -torch.cat(
            [
                m.log_prob(x[s : s + bs].to(device=device, dtype=dtype)).to(torch.float64)
                for s in range(0, len(x), bs)
            ]
        )
    if not bool(torch.isfinite(nll).all()):
        raise GenzooError(
            f"{int((~torch.isfinite(nll)).sum())} example(s) have non-finite log-likelihood "
            "under the model; the run has diverged or the data do not match it"
        )
    n = len(x)
    se = float(nll.std(unbiased=True)) / math.sqrt(n) if n > 1 else 0.0
    return {
        "nll_nats": float(nll.mean()),
        "stderr": se,
        "stderr_examples": se,
        "estimator": "exact (autoregressive)",
        "n_samples": None,
        "n_betas": None,
        "log_z": None,
        "log_z_reverse": None,
        "nll_nats_reverse": None,
        "ais_ess": None,
        "n_examples": n,
        "dtype": eval_config.dtype,
        "wall_s": time.perf_counter() - start,
    }
