"""Test NLL bound of models with a mean-field variational bound (deep Boltzmann machines).

Salakhutdinov & Hinton (2009), "Deep Boltzmann machines", sec. 4: for any Q(h | v),

    log p(v) >= -F_Q(v) - log Z,    F_Q(v) = E_Q[E(v, h)] - H(Q)

so -log p(v) <= F_Q(v) + log Z, reported per example in nats. log Z is exact (enumeration of the
smaller parity of layers) when that has at most ``eval.exact_max_units`` units, otherwise
estimated by AIS over the model's annealing path (alternate layers summed out analytically),
forward and, with ``eval.reverse``, reverse. Forward AIS underestimates log Z in expectation, so
the reported bound is itself a stochastic estimate: the NLL bound with the reverse log Z
(``nll_nats_reverse``) is the conservative one, as far as the chains that start it have mixed.

AIS runs (forward, and reverse with their burn-in) and the test examples are cut into shards of
``eval.batch_size`` with their own seeds (:mod:`genzoo.evaluation.shards`), so that under
torchrun the ranks share them and all combine the gathered log weights and F_Q(x) exactly as
one process would.
"""

from __future__ import annotations

import torch

from genzoo.core.protocols import VARIATIONAL
from genzoo.evaluation import progress
from genzoo.evaluation._common import require_finite
from genzoo.evaluation.config import EvalConfig
from genzoo.evaluation.energy import LogZNLL, log_z_nll
from genzoo.evaluation.report import EvaluationReport
from genzoo.evaluation.shards import local_items, map_shards


@torch.no_grad()
def variational_free_energies(
    model, x: torch.Tensor, batch_size: int = 1000, *, distributed: bool = False
) -> torch.Tensor:
    """F_Q(x) (N,) float64 CPU of a ``VARIATIONAL`` model, in batches of ``batch_size``, on the
    model's device and dtype. The model is used as given (no copy). With ``distributed`` (every
    rank calling with the same arguments) batch s runs on rank s % world_size and every rank
    gets all N values, identical to one process's (the batches do not depend on the world
    size, and mean field draws nothing)."""
    p = next(model.parameters())

    def batch(lo: int, hi: int, g: torch.Generator) -> torch.Tensor:
        f = model.variational_free_energy(x[lo:hi].to(device=p.device, dtype=p.dtype))
        st.advance(hi - lo)
        return f

    # Mean field is deterministic: the shard generators are never drawn from.
    unused = torch.Generator().manual_seed(0)
    mine = local_items(len(x), batch_size, distributed)
    with progress.Stage(f"mean-field free energies, {len(x)} examples", mine, "examples") as st:
        return map_shards(len(x), batch_size, batch, 1, unused, distributed)[:, 0]


@torch.no_grad()
def reverse_ais_start_states(
    m, base, lo: int, hi: int, burn_in: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Start states (hi - lo, D_even) of reverse AIS runs lo..hi-1: run i starts from the
    state ``m.ais_model_states`` gives its row i (persistent chain i mod n_chains), then
    ``burn_in`` Gibbs sweeps at beta = 1 (``annealed_gibbs_step``, which at beta = 1 is the
    model's block Gibbs sweep on the even layers) drawing from ``generator``. Depends only on
    (lo, hi, generator), so that a shard of runs is the same in any process."""
    states = m.ais_model_states(hi, 0, generator)[lo:hi]
    with progress.Stage(f"Gibbs burn-in of {hi - lo} chains", burn_in) as st:
        for _ in range(burn_in):
            states = m.annealed_gibbs_step(states, 1.0, base, generator)
            st.advance()
    return states


def _checked_free_energies(m, x: torch.Tensor, batch_size: int, distributed: bool):
    f = variational_free_energies(m, x, batch_size, distributed=distributed)
    require_finite(f, "variational free energy")
    return f


def variational_nll(
    model, x: torch.Tensor, x_train: torch.Tensor, eval_config: EvalConfig,
    generator: torch.Generator | None = None, *, distributed: bool = False,
) -> EvaluationReport:
    """Upper bound on the mean NLL (nats per example) of ``x`` (N, D): mean F_Q(x) + log Z.

    ``x_train`` builds the AIS base model. ``generator`` defaults to one seeded with
    ``eval_config.seed`` on the model's device. The model is not modified. The report is
    that of :func:`~genzoo.evaluation.energy.energy_nll` with ``bound`` (what the NLL is) and
    ``variational_free_energy`` (mean F_Q(x)) among the NLL's diagnostics.

    ``distributed``: every rank of the default process group calls this with the same
    arguments; forward and reverse AIS runs and the batches of ``x`` are shared out in shards
    of ``eval.batch_size`` (shard s on rank s % world_size) and every rank returns the report
    one process would compute with the same seeds (the log weights of all runs are gathered
    before their logsumexp). Exact enumeration of log Z is not split.
    """
    burn_in = eval_config.reverse_burn_in
    how = LogZNLL(
        capability=VARIATIONAL,
        needs="has no variational bound (variational_free_energy)",
        free_energies=_checked_free_energies,
        exact_name="mean-field bound, exact log Z",
        ais_name="mean-field bound, AIS (forward) log Z",
        no_log_z="has neither a small enough parity of layers for exact enumeration of log Z "
        "nor AIS support",
        reverse_start=lambda m, base, lo, hi, g: reverse_ais_start_states(
            m, base, lo, hi, burn_in, g
        ),
        start_text=lambda m, n: f"persistent chains + {n} Gibbs sweeps (approximate samples)",
        bound="upper bound on the NLL (mean-field variational bound with the estimated log Z)",
        extra=lambda f: {"variational_free_energy": float(f.mean())},
    )
    return log_z_nll(how, model, x, x_train, eval_config, generator, distributed)
