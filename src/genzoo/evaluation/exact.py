"""Exact log partition function by enumerating the smaller layer of an energy model.

For an RBM, Z = sum_h exp(-F(h)) with F(h) = -c^T h - sum_i softplus(b_i + (W h)_i) (hidden layer
smaller) or Z = sum_v exp(-F(v)) (visible layer smaller). The 2^n states are enumerated in chunks
and combined with a running logsumexp, in float64.
"""

from __future__ import annotations

import copy
import time

import torch

from genzoo.core.errors import GenzooError
from genzoo.core.protocols import EXACT_LOG_PARTITION, has
from genzoo.evaluation import progress
from genzoo.evaluation.stats import Estimate
from genzoo.ops.enumeration import binary_states

# 2^26 states x a few hundred units is minutes of CPU; beyond that enumeration is not an option.
HARD_MAX_UNITS = 26


def exact_log_partition(
    model,
    chunk: int = 2048,
    max_units: int = HARD_MAX_UNITS,
    dtype: torch.dtype = torch.float64,
) -> Estimate:
    """log Z of an ``EXACT_LOG_PARTITION`` model by enumeration (the model is not modified: a
    copy is cast to ``dtype``). ``chunk`` states are scored per block: a (chunk, other layer)
    block of a few MB is several times faster than huge blocks that miss the cache. Raises
    GenzooError when the smaller layer has more than ``max_units`` (at most 26) units. The
    Estimate has stderr 0 and n_samples = 2^n_units."""
    if not has(model, EXACT_LOG_PARTITION):
        raise GenzooError(
            f"{type(model).__name__} does not support exact log-partition enumeration"
        )
    limit = min(max_units, HARD_MAX_UNITS)
    _, n_units = model.enumerable_free_energy()
    if n_units > limit:
        raise GenzooError(
            f"exact enumeration needs 2^{n_units} states of the smaller layer, above the limit "
            f"of {limit} units (eval.exact_max_units, hard cap {HARD_MAX_UNITS}); use AIS instead"
        )
    start = time.perf_counter()
    m = copy.deepcopy(model).to(dtype)
    free_energy, n_units = m.enumerable_free_energy()
    device = next(m.parameters()).device
    n_states = 2**n_units
    parts = []
    name = f"exact enumeration, 2^{n_units} states"
    with torch.no_grad(), progress.Stage(name, n_states, "states") as st:
        for s in range(0, n_states, chunk):
            idx = torch.arange(s, min(s + chunk, n_states), device=device)
            parts.append(torch.logsumexp(-free_energy(binary_states(idx, n_units, dtype)), 0))
            st.advance(len(idx))
        log_z = torch.logsumexp(torch.stack(parts), 0)
    return Estimate(
        value=float(log_z),
        stderr=0.0,
        n_samples=n_states,
        estimator="exact enumeration",
        diagnostics={"n_units": n_units, "wall_s": time.perf_counter() - start},
        unit="nats",
    )
