"""Deep Boltzmann machine (DBM) with binary units.

Salakhutdinov & Hinton (2009), "Deep Boltzmann machines", AISTATS; Salakhutdinov & Hinton (2012),
"An efficient learning procedure for deep Boltzmann machines", Neural Computation 24(8)
(SH12: mean-field positive phase, persistent negative phase, pretraining, AIS); Goodfellow,
Bengio & Courville (2016), "Deep Learning", sec. 20.4.

Layers x_0 = v in {0,1}^D and hidden layers x_1 .. x_L, weights W_l (n_{l-1}, n_l) between
layers l-1 and l, one bias b_l per layer (b_0 is the visible bias)::

    E(v, h) = - sum_{l=1..L} x_{l-1}^T W_l x_l - sum_{l=0..L} b_l^T x_l

There are no connections inside a layer, and layer l touches only l-1 and l+1, so the odd layers
are conditionally independent given the even ones and vice versa (the graph is bipartite)::

    p(x_l = 1 | x_{l-1}, x_{l+1}) = sigmoid(b_l + x_{l-1}^T W_l + W_{l+1} x_{l+1})

Block Gibbs sampling draws all odd layers, then all even layers.

Mean-field inference (SH12 sec. 3.1). Q(h | v) = prod_l prod_j q_lj^h (1 - q_lj)^(1-h) and

    log p(v) >= L(Q) = -E_Q[E(v, h)] + H(Q) - log Z = -F_Q(v) - log Z,
    F_Q(v) = E(v, q) - sum_{l>=1} sum_j H_b(q_lj)         (E is linear in each layer)

maximised by the fixed-point equations q_l = sigmoid(b_l + q_{l-1}^T W_l + W_{l+1} q_{l+1}) (with
q_0 = v). Updating all odd layers, then all even layers, maximises L exactly over each block
given the other, so no update increases F_Q. q is initialised by a bottom-up pass with doubled
weights for all layers but the top (SH12's recognition pass, which stands in for the missing
top-down input).

Learning by stochastic maximum likelihood (SH12 Algorithm 1): the gradient of log p(v) for W_l
is E_data[q_{l-1} q_l^T] - E_model[x_{l-1} x_l^T], with the data term from mean field and the
model term from persistent Gibbs chains (the buffers ``chain_0 .. chain_L``, advanced ``k``
sweeps per update). It is written as the surrogate loss ``mean E(x, q) - mean E(chains)`` with q
and the chains detached, whose gradient is exactly that difference. Options of the SH12 recipe:
L2 ``weight_decay`` on the W's, a sparsity target on the mean-field hidden activities, and the
learning-rate decay and momentum of the Trainer (``train.lr_schedule``, ``train.momentum``).

Mean-field inference is in ``dbm_mean_field.py``; the AIS path for log Z (odd layers summed
out) and exact enumeration are in ``dbm_ais.py``;
greedy layerwise pretraining (SH09 sec. 3.1) is ``dbm_pretraining.pretrain_dbm``, which
``genzoo train dbm --pretrain EPOCHS`` (``model.pretrain_epochs``) runs before SML training.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from genzoo.core.config import Config, check, check_nonnegative
from genzoo.core.errors import ConfigError, GenzooError
from genzoo.core.protocols import AIS, EXACT_LOG_PARTITION, VARIATIONAL
from genzoo.core.registry import register_model
from genzoo.core.validation import check_binary
from genzoo.models.base import check_n_visible, require_n_visible
from genzoo.models.boltzmann._ops import (
    PERSISTENT_SAMPLE_STEPS,
    bernoulli,
    check_sparsity_config,
    data_logits,
    layer_parameters,
)
from genzoo.models.boltzmann.dbm_ais import DBMAnnealingPath
from genzoo.models.boltzmann.dbm_mean_field import DBMMeanField, bernoulli_entropy
from genzoo.nn.init import normal_or_zero_


@dataclasses.dataclass(frozen=True)
class DBMConfig(Config):
    """Hyperparameters of the binary DBM.

    ``hidden``: hidden layer sizes, bottom to top (SH09's MNIST model: 500,1000). ``k``: Gibbs
    sweeps of the ``n_chains`` persistent chains per update. Mean field runs to a maximum change
    of ``mf_tol`` or ``mf_max_iters`` iterations at evaluation, at most ``mf_train_iters`` in
    training (SH12 use a handful). ``weight_decay``: L2 penalty 0.5 * weight_decay * sum ||W_l||^2.
    ``sparsity_target`` / ``sparsity_cost``: Hinton's sparsity penalty on the batch-mean
    mean-field activity of every hidden layer. ``init_std``: W ~ N(0, init_std^2).
    ``sample_burn_in``: Gibbs sweeps of fresh chains in :meth:`DBM.sample`.
    ``init_visible_bias``: whether ``init_from_data`` sets b_0 to the data logits (False for a
    pretrained DBM, see ``dbm_pretraining``). ``pretrain_epochs``: RBM epochs per layer of
    greedy pretraining that ``genzoo train`` runs on a fresh run (0: none; the Python API
    calls ``dbm_pretraining.pretrain_run`` itself).
    """

    n_visible: int | None = None
    hidden: tuple[int, ...] = (500, 1000)
    k: int = 1
    n_chains: int = 100
    mf_train_iters: int = 10
    mf_max_iters: int = 100
    mf_tol: float = 1e-6
    weight_decay: float = 0.0
    sparsity_target: float | None = None
    sparsity_cost: float = 0.0
    init_std: float = 0.01
    sample_burn_in: int = 1000
    init_visible_bias: bool = True
    pretrain_epochs: int = 0

    def validate(self) -> None:
        check_n_visible(self.n_visible)
        check(len(self.hidden) >= 1, "model.hidden must list at least one layer size, e.g. 500,1000")
        check(all(h > 0 for h in self.hidden), f"model.hidden={self.hidden}: sizes must be positive")
        check(self.k >= 1, f"model.k={self.k} must be >= 1 (Gibbs sweeps per update)")
        check(self.n_chains >= 1, f"model.n_chains={self.n_chains} must be >= 1")
        check(self.mf_train_iters >= 1, "model.mf_train_iters must be >= 1")
        check(self.mf_max_iters >= 1, "model.mf_max_iters must be >= 1")
        check_nonnegative(self.mf_tol, "model.mf_tol")
        check_nonnegative(self.weight_decay, "model.weight_decay")
        check_sparsity_config(self, example_target=0.1)
        check_nonnegative(self.init_std, "model.init_std")
        check(self.sample_burn_in >= 0, f"model.sample_burn_in={self.sample_burn_in} must be >= 0")
        check(self.pretrain_epochs >= 0, "model.pretrain_epochs must be >= 0 (0: no pretraining)")


@register_model(
    "dbm",
    config=DBMConfig,
    family="boltzmann",
    summary="deep Boltzmann machine: mean-field + persistent-chain SML, AIS-based NLL bound",
    paper="Salakhutdinov & Hinton 2009, 2012",
)
class DBM(DBMMeanField, DBMAnnealingPath, nn.Module):
    """Binary DBM. A state is a list of layer tensors [v (B, D), h_1 (B, n_1), ..., h_L];
    per-example values are (B,) in nats; device and dtype follow the parameters."""

    test_overrides = ("model.hidden=8,6", "model.n_chains=10", "model.sample_burn_in=10")

    capabilities = frozenset({VARIATIONAL, AIS, EXACT_LOG_PARTITION})

    def __init__(self, config: DBMConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(config, DBMConfig):
            raise ConfigError(f"{type(self).__name__} needs a DBMConfig, got {type(config).__name__}")
        require_n_visible(config)
        self.config = config
        sizes = (config.n_visible, *config.hidden)
        self.W, self.b = layer_parameters(sizes)
        for l, n in enumerate(sizes):
            self.register_buffer(f"chain_{l}", torch.zeros(config.n_chains, n))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """W_l ~ N(0, init_std^2), biases and chains 0."""
        with torch.no_grad():
            for W in self.W:
                normal_or_zero_(W, self.config.init_std, generator)
            for b in self.b:
                b.zero_()
            for c in self.chains:
                c.zero_()

    @property
    def sizes(self) -> tuple[int, ...]:
        """Layer sizes (D, n_1, ..., n_L)."""
        return tuple(b.shape[0] for b in self.b)

    @property
    def n_visible(self) -> int:
        return self.b[0].shape[0]

    @property
    def n_layers(self) -> int:
        """Number of hidden layers L."""
        return len(self.W)

    @property
    def chains(self) -> list[torch.Tensor]:
        """The persistent chains, one (n_chains, n_l) buffer per layer (views, not copies)."""
        return [getattr(self, f"chain_{l}") for l in range(self.n_layers + 1)]

    def check_input(self, x: torch.Tensor, name: str = "x") -> None:
        """Raise InputError unless ``x`` is a finite binary (B, n_visible) floating tensor."""
        check_binary(x, self.n_visible, name)

    # -- energy and conditionals -----------------------------------------------------------------

    def bias(self, l: int) -> torch.Tensor:
        """The bias of layer l in the energy as written in the module docstring (b_l here; a
        reparameterised model such as the centered DBM returns its effective bias)."""
        return self.b[l]

    def energy(self, v: torch.Tensor, h: list[torch.Tensor]) -> torch.Tensor:
        """E(v, h) for v (B, D) and h = [h_1 (B, n_1), ..., h_L] -> (B,). Also the mean-field
        expected energy E_Q[E(v, h)] when h holds the probabilities q (E is linear per layer)."""
        x = [v, *h]
        e = -sum(x[l] @ self.bias(l) for l in range(len(x)))
        for l in range(1, len(x)):
            e = e - ((x[l - 1] @ self.W[l - 1]) * x[l]).sum(-1)
        return e

    def layer_input(self, x: list[torch.Tensor], l: int) -> torch.Tensor:
        """Total input b_l + x_{l-1}^T W_l + W_{l+1} x_{l+1} of layer l given its neighbours in
        the state x (a list of all layers; layer l's own entry is not read) -> (B, n_l)."""
        a = self.bias(l)
        if l > 0:
            a = a + x[l - 1] @ self.W[l - 1]
        if l < self.n_layers:
            a = a + x[l + 1] @ self.W[l].T
        return a

    def conditional(self, x: list[torch.Tensor], l: int, beta: float = 1.0) -> torch.Tensor:
        """p(x_l = 1 | x_{l-1}, x_{l+1}) at inverse temperature beta -> (B, n_l)."""
        return torch.sigmoid(beta * self.layer_input(x, l))

    @torch.no_grad()
    def gibbs_sweep(
        self, x: list[torch.Tensor], beta: float = 1.0, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """One block Gibbs sweep (odd layers given even, then even layers given odd) leaving
        p_beta(x) ∝ exp(-beta E(x)) invariant. Returns a new list of binary layers."""
        x = list(x)
        for parity in (1, 0):
            for l in range(parity, self.n_layers + 1, 2):
                x[l] = bernoulli(self.conditional(x, l, beta), generator)
        return x

    # -- learning ---------------------------------------------------------------------------------

    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """SML surrogate on a binary batch x (B, D): ``loss`` = mean E(x, q) - mean E(chains)
        (+ weight decay), q the mean-field posterior (at most mf_train_iters iterations) and both
        terms' states detached, so its gradient is minus the SML estimate of the log-likelihood
        gradient. Advances the persistent chains by k sweeps in place. Logged:
        ``variational_free_energy`` (mean F_Q(x), nats; the bound lacks log Z),
        ``recon_error`` (mean squared error of p(v | q_1)), ``mf_iters``."""
        self.check_input(x)
        x = x.to(dtype=self.b[0].dtype)
        cfg = self.config
        with torch.no_grad():
            q, iters = self.mean_field(x, max_iters=cfg.mf_train_iters)
            self._after_positive_phase(x, q)
            recon = ((x - self.conditional([x, *q], 0)) ** 2).mean()
            state = self.chains
            for _ in range(cfg.k):
                state = self.gibbs_sweep(state, generator=generator)
            for c, s in zip(self.chains, state):
                c.copy_(s)
            q_pos = q
            if cfg.sparsity_target is not None and cfg.sparsity_cost > 0:
                # Hinton's guide: cost * (mean activity - target) on each unit's total input,
                # applied as a shift of the positive-phase statistics (as in rbm.py).
                q_pos = [ql - cfg.sparsity_cost * (ql.mean(0) - cfg.sparsity_target) for ql in q]
        e_pos = self._mean_energy([x, *q_pos])
        loss = e_pos - self._mean_energy(state)
        with torch.no_grad():
            e_q = e_pos.detach() if q_pos is q else self._mean_energy([x, *q])
            f_q = e_q - sum(bernoulli_entropy(ql).sum(-1).mean() for ql in q)
        if cfg.weight_decay > 0:
            loss = loss + 0.5 * cfg.weight_decay * sum((W**2).sum() for W in self.W)
        mf_iters = torch.tensor(float(iters), device=x.device)
        return {"loss": loss, "variational_free_energy": f_q, "recon_error": recon,
                "mf_iters": mf_iters}

    def _mean_energy(self, x: list[torch.Tensor]) -> torch.Tensor:
        """The batch mean of E(x) (a scalar) for a state x = [v, h_1, ..., h_L] (or mean-field
        probabilities): - sum_l bias_l . mean(x_l) - sum_l <W_l, x_{l-1}^T x_l> / B, with the
        pairwise statistics x_{l-1}^T x_l computed without gradient. Equal to
        ``energy(x[0], x[1:]).mean()``, but its gradient in W_l is that statistic itself, so
        the SML update costs one product per layer and phase instead of two."""
        n = x[0].shape[0]
        e = -sum(self.bias(l) @ x[l].mean(0) for l in range(len(x)))
        for l in range(1, len(x)):
            with torch.no_grad():
                s = torch.mm(x[l - 1].T, x[l]).div_(n)
            e = e - (self.W[l - 1] * s).sum()
        return e

    def _after_positive_phase(self, x: torch.Tensor, q: list[torch.Tensor]) -> None:
        """Hook run in ``loss`` after mean field, before the chains move (the centered DBM
        updates its offsets here)."""

    @torch.no_grad()
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """b_0 := logits of the (clamped) training marginals (if ``init_visible_bias``); the chains
        start at random training examples with hidden layers drawn from the bottom-up pass
        (``generator=None``: a CPU generator seeded 0). x_train (N, D) binary."""
        self.check_input(x_train, "x_train")
        if self.config.init_visible_bias:
            self.b[0].copy_(data_logits(x_train.to(self.b[0])))
        self.start_chains(x_train, generator)

    @torch.no_grad()
    def start_chains(self, x_train: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """(Re)start the persistent chains at random rows of x_train, hidden layers drawn
        from the bottom-up recognition pass."""
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        idx = torch.randint(
            len(x_train), (self.config.n_chains,), generator=generator, device=generator.device
        )
        v = x_train[idx.to(x_train.device)].to(self.b[0])
        state = [v] + [bernoulli(ql, generator) for ql in self.mean_field_init(v)]
        for c, s in zip(self.chains, state):
            c.copy_(s)

    @torch.no_grad()
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """Mean F_Q(x) at converged mean field (nats; not a likelihood bound until log Z is
        added) and the reconstruction error of p(v | q_1). No chain updates."""
        self.check_input(x)
        x = x.to(dtype=self.b[0].dtype)
        q, _ = self.mean_field(x)
        recon = ((x - self.conditional([x, *q], 0)) ** 2).mean()
        return {
            "variational_free_energy": float(self.variational_free_energy(x, q).mean()),
            "recon_error": float(recon),
        }

    # -- sampling -------------------------------------------------------------------------------

    @torch.no_grad()
    def inpaint(
        self,
        x: torch.Tensor,
        observed_mask: torch.Tensor,
        generator: torch.Generator | None = None,
        n_samples: int = 1,
        n_sweeps: int = 200,
    ) -> torch.Tensor:
        """Completions (n_samples, B, D) of x (B, D) for ``genzoo inpaint``: the observed
        entries (``observed_mask`` (B, D) or (D,) bool, True = observed) are clamped and the
        others drawn by ``n_sweeps`` block Gibbs sweeps of p(v_missing, h | v_observed), started
        from the bottom-up pass (values at unobserved entries of x are ignored)."""
        if not isinstance(n_samples, int) or n_samples < 1:
            raise GenzooError(f"n_samples={n_samples!r} must be a positive integer")
        observed = observed_mask.to(device=x.device, dtype=torch.bool).expand_as(x)
        x = torch.where(observed, x, torch.zeros_like(x)).to(self.b[0].dtype)
        self.check_input(x)
        observed = observed.repeat(n_samples, 1)
        x = x.repeat(n_samples, 1)
        v = torch.where(observed, x, bernoulli(torch.sigmoid(self.bias(0)).expand_as(x), generator))
        state = [v] + [bernoulli(q, generator) for q in self.mean_field_init(v)]
        for _ in range(n_sweeps):
            state = self.gibbs_sweep(state, generator=generator)
            state[0] = torch.where(observed, x, state[0])
        return state[0].view(n_samples, -1, x.shape[1])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n binary visible vectors (n, D). n <= n_chains: a copy of the first n persistent
        chains after a few sweeps (the training chains are untouched); otherwise fresh chains
        from the visible base rates run ``sample_burn_in`` sweeps."""
        if n < 0:
            raise GenzooError(f"sample(n={n}): n must be >= 0")
        if n <= self.config.n_chains:
            x = [c[:n].clone() for c in self.chains]
            steps = PERSISTENT_SAMPLE_STEPS
        else:
            v = bernoulli(torch.sigmoid(self.bias(0)).expand(n, -1), generator)
            x = [v] + [bernoulli(ql, generator) for ql in self.mean_field_init(v)]
            steps = self.config.sample_burn_in
        for _ in range(steps):
            x = self.gibbs_sweep(x, generator=generator)
        return x[0]
