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

AIS for log Z (SH09 sec. 4; SH12 sec. 4.2). Because the graph is bipartite, the odd layers can
be summed out given the even ones: for the AIS state x_even = (v, x_2, x_4, ...) concatenated in layer order, and the path
E_beta = (1 - beta) E_A + beta E with the base model A (W = 0, b_A_0 the logits of the data
marginals, b_A_l for a hidden layer the logits of its mean-field posterior averaged over the
training data)::

    F_beta(x_even) = - sum_{l even} ((1 - beta) b_A_l + beta b_l)^T x_l
                     - sum_{l odd} sum_j softplus((1 - beta) b_A_lj + beta a_lj(x_even))

with a_l = b_l + x_{l-1}^T W_l + W_{l+1} x_{l+1}. At beta = 0 this is the base's own free energy
(the odd layers' log 2's included), with log Z_A = sum_l sum_j softplus(b_A_lj). The transition
draws the odd layers at beta and then the even layers at beta. For the 784-500-1000 MNIST model
the state (v, h_2) has 1784 units and h_1 (500) is summed out, as in SH09.

Exact log Z enumerates the states of the parity (even or odd layers) with fewer units and sums
the other parity out the same way (beta = 1).

Greedy layerwise pretraining (SH09 sec. 3.1), which ``genzoo train dbm --pretrain EPOCHS``
(``model.pretrain_epochs``) runs before SML training, trains one model from others, so it is a
recipe: :mod:`genzoo.recipes.dbm_pretraining`.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from genzoo.core.config import check, check_nonnegative
from genzoo.core.errors import GenzooError
from genzoo.core.protocols import AIS, EXACT_LOG_PARTITION, INPAINT, VARIATIONAL
from genzoo.core.registry import register_model
from genzoo.models.base import GenzooModel, VisibleConfig, checks_input, train_recipe
from genzoo.models.boltzmann._ops import (
    PERSISTENT_SAMPLE_STEPS,
    bernoulli,
    check_sparsity_config,
    data_logits,
    layer_parameters,
    softplus,
    softplus_increment,
)
from genzoo.nn.init import normal_or_zero_
from genzoo.ops.enumeration import binary_states

# Most units enumerated per example by exact_free_energy (2^20 states per row).
_EXACT_FREE_ENERGY_MAX_UNITS = 20
# Training rows whose mean-field posteriors set the AIS base's hidden biases.
_BASE_ROWS = 10_000
# Gibbs sweeps of DBM.inpaint when the caller gives no n_steps.
_INPAINT_SWEEPS = 200


def bernoulli_entropy(q: torch.Tensor) -> torch.Tensor:
    """H_b(q) = -q log q - (1 - q) log(1 - q) elementwise, in nats (0 at q in {0, 1})."""
    return torch.special.entr(q) + torch.special.entr(1.0 - q)


@dataclasses.dataclass(frozen=True)
class DeepBoltzmannConfig(VisibleConfig):
    """Fields of every deep Boltzmann machine (the DBMs and the MP-DBM): ``hidden``, the
    hidden layer sizes bottom to top; ``init_std``, the weights' W ~ N(0, init_std^2);
    ``sample_burn_in``, the Gibbs sweeps of fresh chains in ``sample``."""

    hidden: tuple[int, ...] = (500, 1000)
    init_std: float = 0.01
    sample_burn_in: int = 1000

    def validate(self) -> None:
        super().validate()
        check(len(self.hidden) >= 1, "model.hidden must list at least one layer size, e.g. 500,1000")
        check(all(h > 0 for h in self.hidden), f"model.hidden={self.hidden}: sizes must be positive")
        check_nonnegative(self.init_std, "model.init_std")
        check(self.sample_burn_in >= 0, f"model.sample_burn_in={self.sample_burn_in} must be >= 0")


@dataclasses.dataclass(frozen=True)
class DBMConfig(DeepBoltzmannConfig):
    """Hyperparameters of the binary DBM.

    ``hidden``: hidden layer sizes, bottom to top (SH09's MNIST model: 500,1000). ``k``: Gibbs
    sweeps of the ``n_chains`` persistent chains per update. Mean field runs to a maximum change
    of ``mf_tol`` or ``mf_max_iters`` iterations at evaluation, at most ``mf_train_iters`` in
    training (SH12 use a handful). ``weight_decay``: L2 penalty 0.5 * weight_decay * sum ||W_l||^2.
    ``sparsity_target`` / ``sparsity_cost``: Hinton's sparsity penalty on the batch-mean
    mean-field activity of every hidden layer. ``init_std``: W ~ N(0, init_std^2).
    ``sample_burn_in``: Gibbs sweeps of fresh chains in :meth:`DBM.sample`.
    ``init_visible_bias``: whether ``init_from_data`` sets b_0 to the data logits (False for a
    pretrained DBM, see :mod:`genzoo.recipes.dbm_pretraining`). ``pretrain_epochs``: RBM
    epochs per layer of greedy pretraining that ``genzoo train`` runs on a fresh run (0: none;
    the Python API calls ``genzoo.recipes.dbm_pretraining.pretrain_run`` itself).
    """

    k: int = 1
    n_chains: int = 100
    mf_train_iters: int = 10
    mf_max_iters: int = 100
    mf_tol: float = 1e-6
    weight_decay: float = 0.0
    sparsity_target: float | None = None
    sparsity_cost: float = 0.0
    init_visible_bias: bool = True
    pretrain_epochs: int = 0

    def validate(self) -> None:
        super().validate()
        check(self.k >= 1, f"model.k={self.k} must be >= 1 (Gibbs sweeps per update)")
        check(self.n_chains >= 1, f"model.n_chains={self.n_chains} must be >= 1")
        check(self.mf_train_iters >= 1, "model.mf_train_iters must be >= 1")
        check(self.mf_max_iters >= 1, "model.mf_max_iters must be >= 1")
        check_nonnegative(self.mf_tol, "model.mf_tol")
        check_nonnegative(self.weight_decay, "model.weight_decay")
        check_sparsity_config(self, example_target=0.1)
        check(self.pretrain_epochs >= 0, "model.pretrain_epochs must be >= 0 (0: no pretraining)")


class DBMAnnealingBase(nn.Module):
    """The AIS base model: a DBM with W = 0, so every unit is independent. ``biases`` are the
    per-layer biases b_A_l; its states (for ``sample``) are the even layers concatenated."""

    def __init__(self, biases: list[torch.Tensor]) -> None:
        super().__init__()
        for l, b in enumerate(biases):
            self.register_buffer(f"b_{l}", b.detach().clone())

    @property
    def biases(self) -> list[torch.Tensor]:
        return [getattr(self, f"b_{l}") for l in range(len(self._buffers))]

    @torch.no_grad()
    def log_partition(self) -> torch.Tensor:
        """log Z_A = sum over all units of softplus(b_A) (0-dim tensor)."""
        return sum(softplus(b).sum() for b in self.biases)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact draws of the even layers (n, sum of even sizes)."""
        return torch.cat(
            [bernoulli(torch.sigmoid(b).expand(n, -1), generator) for b in self.biases[0::2]],
            dim=-1,
        )


class DeepBoltzmannBase(GenzooModel):
    """What the deep Boltzmann machines (the DBM, the centered DBM, the MP-DBM) share: binary
    layers x_0 = v, x_1 .. x_L with weights ``W`` [W_1 (D, n_1), ..., W_L] and biases ``b``
    [b_0 (D,), ..., b_L] (zero here; each model initialises them), binary input, and
    :meth:`inpaint`, which clamps the observed entries and lets the model's :meth:`complete`
    fill in the others."""

    config_class = DeepBoltzmannConfig

    def __init__(self, config: DeepBoltzmannConfig) -> None:
        super().__init__(config)
        self.W, self.b = layer_parameters((config.n_visible, *config.hidden))

    @property
    def n_visible(self) -> int:
        return self.b[0].shape[0]

    @property
    def n_layers(self) -> int:
        """Number of hidden layers L."""
        return len(self.W)

    @torch.no_grad()
    def inpaint(self, x: torch.Tensor, observed_mask: torch.Tensor, /,
                generator: torch.Generator | None = None, n_samples: int = 1,
                n_steps: int | None = None) -> torch.Tensor:
        """Completions (n_samples, B, D) of x (B, D) for ``genzoo inpaint``: the entries where
        ``observed_mask`` ((B, D) or (D,) bool) is True are kept, the others drawn by
        :meth:`complete` with ``n_steps`` (None: the model's default). Values of x at
        unobserved entries are ignored."""
        observed = self.observed_entries(x, observed_mask, n_samples)
        x = torch.where(observed, x, torch.zeros_like(x)).to(self.b[0].dtype)
        return self.complete(x, observed, n_samples, n_steps, generator)

    def complete(
        self, x: torch.Tensor, observed: torch.Tensor, n_samples: int, n_steps: int | None,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """Draws (n_samples, B, D) of the unobserved entries of x (B, D, binary, 0 where not
        observed) given the observed ones (``observed`` (B, D) bool), the observed entries
        kept; ``n_steps``: the model's chain steps or mean-field iterations (None: its
        default)."""
        raise NotImplementedError


@register_model("dbm", family="boltzmann", paper="Salakhutdinov & Hinton 2009, 2012")
class DBM(DeepBoltzmannBase):
    """Deep Boltzmann machine: mean-field + persistent-chain SML, AIS-based NLL bound.

    Binary DBM. A state is a list of layer tensors [v (B, D), h_1 (B, n_1), ..., h_L];
    per-example values are (B,) in nats; device and dtype follow the parameters."""

    test_overrides = ("model.hidden=8,6", "model.n_chains=10", "model.sample_burn_in=10")

    config_class = DBMConfig
    train_defaults = train_recipe(
        optimizer="sgd", lr=0.05, lr_schedule="linear", lr_final_factor=0.01,
    )
    capabilities = frozenset({VARIATIONAL, AIS, EXACT_LOG_PARTITION, INPAINT})

    def __init__(self, config: DBMConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        for l, n in enumerate(self.sizes):
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
    def chains(self) -> list[torch.Tensor]:
        """The persistent chains, one (n_chains, n_l) buffer per layer (views, not copies)."""
        return [getattr(self, f"chain_{l}") for l in range(self.n_layers + 1)]

    # -- energy and conditionals -----------------------------------------------------------------

    def bias(self, l: int) -> torch.Tensor:
        """The bias of layer l in the energy as written in the module docstring (b_l here; a
        reparameterised model such as the centered DBM returns its effective bias)."""
        return self.b[l]

    @checks_input
    def energy(self, v: torch.Tensor, h: list[torch.Tensor]) -> torch.Tensor:
        """E(v, h) for v (B, D) and h = [h_1 (B, n_1), ..., h_L] -> (B,). Also the mean-field
        expected energy E_Q[E(v, h)] when h holds the probabilities q (E is linear per layer)."""
        x = [v, *h]
        e = -sum(x[l] @ self.bias(l) for l in range(len(x)))
        for l in range(1, len(x)):
            e = e - ((x[l - 1] @ self.W[l - 1]) * x[l]).sum(-1)
        return e

    def layer_input(self, x: list[torch.Tensor | None], l: int) -> torch.Tensor:
        """Total input b_l + x_{l-1}^T W_l + W_{l+1} x_{l+1} of layer l given its neighbours in
        the state x (a list of all layers; layer l's own entry is not read, and a neighbour
        that is None, summed out, contributes nothing) -> (B, n_l)."""
        a = self.bias(l)
        if l > 0 and x[l - 1] is not None:
            a = a + x[l - 1] @ self.W[l - 1]
        if l < self.n_layers and x[l + 1] is not None:
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

    # -- mean-field inference (SH12 sec. 3.1) ------------------------------------------------

    def mean_field_init(
        self, v: torch.Tensor, vW: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """SH12's bottom-up recognition pass: q_l = sigmoid(b_l + m q_{l-1}^T W_l) with m = 2
        below the top layer (standing in for the top-down input) and 1 at the top. ``vW``:
        v^T W_1 (B, n_1) when the caller has it already."""
        q, prev = [], v
        for l in range(1, self.n_layers + 1):
            m = 2.0 if l < self.n_layers else 1.0
            below = vW if l == 1 and vW is not None else prev @ self.W[l - 1]
            prev = torch.sigmoid(self.bias(l) + m * below)
            q.append(prev)
        return q

    def mean_field_update(
        self, v: torch.Tensor, q: list[torch.Tensor], bottom: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """One fixed-point iteration: all odd hidden layers from their neighbours, then all even
        hidden layers from the new odd ones. Each block update maximises L(Q) over that block,
        so F_Q(v) never increases. Returns a new list. ``bottom``: the clamped part of layer
        1's input, b_1 + v^T W_1, when the caller iterates and has it already (it does not
        change while v is clamped)."""
        x = [v, *q]
        for parity in (1, 0):
            for l in range(1 if parity else 2, self.n_layers + 1, 2):
                if l == 1 and bottom is not None:
                    a = bottom if self.n_layers == 1 else bottom + x[2] @ self.W[1].T
                    x[1] = torch.sigmoid(a)
                else:
                    x[l] = self.conditional(x, l)
        return x[1:]

    def mean_field(
        self,
        v: torch.Tensor,
        max_iters: int | None = None,
        tol: float | None = None,
        q: list[torch.Tensor] | None = None,
    ) -> tuple[list[torch.Tensor], int]:
        """Mean-field posterior Q(h | v): ([q_1 (B, n_1), ..., q_L], iterations run). Iterates
        from ``q`` (default: the bottom-up pass) until the largest change of any q is below
        ``tol`` or ``max_iters`` (defaults: model.mf_tol, model.mf_max_iters)."""
        max_iters = self.config.mf_max_iters if max_iters is None else max_iters
        tol = self.config.mf_tol if tol is None else tol
        # b_1 + v^T W_1 is fixed while v is clamped: computed once per run instead of once
        # per iteration (a quarter of an iteration's products for the 784-500-1000 DBM), and
        # shared with the bottom-up initialisation.
        vW = v @ self.W[0]
        bottom = self.bias(1) + vW
        if q is None:
            q = self.mean_field_init(v, vW)
        it = 0
        for it in range(1, max_iters + 1):
            new = self.mean_field_update(v, q, bottom)
            delta = max(float((a - b).abs().max()) for a, b in zip(new, q)) if v.numel() else 0.0
            q = new
            if delta < tol:
                break
        return q, it

    @checks_input
    def variational_free_energy(
        self, v: torch.Tensor, q: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """F_Q(v) = E_Q[E(v, h)] - H(Q) (nats, (B,)); log p(v) >= -F_Q(v) - log Z. With ``q``
        None, Q is the converged mean-field posterior (model.mf_tol / mf_max_iters)."""
        if q is None:
            q, _ = self.mean_field(v)
        return self.energy(v, q) - sum(bernoulli_entropy(ql).sum(-1) for ql in q)

    # -- learning ---------------------------------------------------------------------------------

    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """SML surrogate on a binary batch x (B, D): ``loss`` = mean E(x, q) - mean E(chains)
        (+ weight decay), q the mean-field posterior (at most mf_train_iters iterations) and both
        terms' states detached, so its gradient is minus the SML estimate of the log-likelihood
        gradient. Advances the persistent chains by k sweeps in place. Logged:
        ``variational_free_energy`` (mean F_Q(x), nats; the bound lacks log Z),
        ``recon_error`` (mean squared error of p(v | q_1)), ``mf_iters``."""
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
        mf_iters = torch.tensor(float(iters), dtype=x.dtype, device=x.device)
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
    @checks_input
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """b_0 := logits of the (clamped) training marginals (if ``init_visible_bias``); the chains
        start at random training examples with hidden layers drawn from the bottom-up pass
        (``generator=None``: a generator on the model's device seeded 0). x_train (N, D) binary."""
        if self.config.init_visible_bias:
            self.b[0].copy_(data_logits(x_train.to(self.b[0])))
        self.start_chains(x_train, generator)

    @torch.no_grad()
    def start_chains(self, x_train: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """(Re)start the persistent chains at random rows of x_train, hidden layers drawn
        from the bottom-up recognition pass."""
        if generator is None:  # on the chains' device: the hidden layers are drawn there
            generator = torch.Generator(device=self.b[0].device).manual_seed(0)
        idx = torch.randint(
            len(x_train), (self.config.n_chains,), generator=generator, device=generator.device
        )
        v = x_train[idx.to(x_train.device)].to(self.b[0])
        state = [v] + [bernoulli(ql, generator) for ql in self.mean_field_init(v)]
        for c, s in zip(self.chains, state):
            c.copy_(s)

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """Mean F_Q(x) at converged mean field (nats; not a likelihood bound until log Z is
        added) and the reconstruction error of p(v | q_1). No chain updates."""
        x = x.to(dtype=self.b[0].dtype)
        q, _ = self.mean_field(x)
        recon = ((x - self.conditional([x, *q], 0)) ** 2).mean()
        return {
            "variational_free_energy": float(self.variational_free_energy(x, q).mean()),
            "recon_error": float(recon),
        }

    # -- sampling -------------------------------------------------------------------------------

    def complete(
        self, x: torch.Tensor, observed: torch.Tensor, n_samples: int, n_steps: int | None,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """For :meth:`inpaint`: ``n_steps`` block Gibbs sweeps (None: 200) of
        p(v_missing, h | v_observed), started from the bottom-up pass, with the observed
        entries clamped. (B, D) -> (n_samples, B, D)."""
        observed = observed.repeat(n_samples, 1)
        x = x.repeat(n_samples, 1)
        v = torch.where(observed, x, bernoulli(torch.sigmoid(self.bias(0)).expand_as(x), generator))
        state = [v] + [bernoulli(q, generator) for q in self.mean_field_init(v)]
        for _ in range(_INPAINT_SWEEPS if n_steps is None else n_steps):
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

    # -- state layout ------------------------------------------------------------------------

    def _parity_layers(self, parity: int) -> list[int]:
        return list(range(parity, self.n_layers + 1, 2))

    def _split(self, s: torch.Tensor, layers: list[int]) -> dict[int, torch.Tensor]:
        parts = torch.split(s, [self.sizes[l] for l in layers], dim=-1)
        return dict(zip(layers, parts))

    def even_state(self, x: list[torch.Tensor]) -> torch.Tensor:
        """The AIS state of a full DBM state x: its even layers concatenated (B, D_even)."""
        return torch.cat([x[l] for l in self._parity_layers(0)], dim=-1)

    def _summed_out_free_energy(
        self,
        fixed: dict[int, torch.Tensor],
        beta: float = 1.0,
        base: DBMAnnealingBase | None = None,
    ) -> torch.Tensor:
        """-log sum over the layers not in ``fixed`` (which must be all of one parity, plus
        possibly the other parity's layers that are given) of exp(-E_beta)."""
        x = [fixed.get(l) for l in range(self.n_layers + 1)]
        b_a = base.biases if base is not None else None
        f = 0.0
        for l in range(self.n_layers + 1):
            if x[l] is not None:
                bias = self.bias(l) if b_a is None else (1.0 - beta) * b_a[l] + beta * self.bias(l)
                f = f - x[l] @ bias
            else:
                a = beta * self.layer_input(x, l)
                if b_a is not None:
                    a = a + (1.0 - beta) * b_a[l]
                f = f - softplus(a).sum(-1)
        return f

    # -- AIS contract -------------------------------------------------------------------------

    @torch.no_grad()
    @checks_input
    def ais_base(self, x_train: torch.Tensor) -> DBMAnnealingBase:
        """Base model A: W = 0, visible bias the logits of the clamped training marginals, and
        each hidden layer's bias the logits of its mean-field posterior averaged over (up to
        ``_BASE_ROWS`` of) the training rows.

        Why not hidden biases 0: a trained DBM can put nearly all its mass where the top
        layer is almost silent. Chains started from a base with h_2 ~ Bernoulli(1/2) then stay
        in a region hundreds of nats less probable (on SH09's 784-500-1000 model after
        pretraining: free energy +286 against -475 for the persistent chains, h_2 activity
        0.35 against 0.04), and forward AIS misses the model's mass whatever the number of
        temperatures. Matching the base to the model's typical activity starts the chains
        there; any factorial base gives a valid estimator."""
        p = self.b[0]
        x = x_train[:_BASE_ROWS].to(p)
        biases = [data_logits(x)]
        if self.n_layers > 0:
            q = self.mean_field(x)[0]
            biases += [data_logits(q_l) for q_l in q]
        return DBMAnnealingBase(biases)

    def annealed_free_energy(
        self, x_even: torch.Tensor, beta: float, base: DBMAnnealingBase
    ) -> torch.Tensor:
        """F_beta(x_even) with the odd layers summed out (module docstring). (B, D_even) -> (B,)."""
        return self._summed_out_free_energy(self._split(x_even, self._parity_layers(0)), beta, base)

    @torch.no_grad()
    def annealed_gibbs_step(
        self,
        x_even: torch.Tensor,
        beta: float,
        base: DBMAnnealingBase,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Odd layers ~ p_beta(odd | even), then even layers ~ p_beta(even | odd); leaves the
        marginal p_beta(x_even) invariant. (B, D_even) -> (B, D_even)."""
        parts = self._split(x_even, self._parity_layers(0))
        x = [parts.get(l) for l in range(self.n_layers + 1)]
        b_a = base.biases
        for parity in (1, 0):
            for l in self._parity_layers(parity):
                a = beta * self.layer_input(x, l) + (1.0 - beta) * b_a[l]
                x[l] = bernoulli(torch.sigmoid(a), generator)
        return self.even_state(x)

    @torch.no_grad()
    def annealed_step(
        self, x_even: torch.Tensor, /, beta_prev: float, beta: float, base: DBMAnnealingBase,
        generator: torch.Generator | None = None, transition: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused AIS step used by ``ais_log_partition``: (F_{beta_prev}(x) - F_beta(x) (B,),
        the state after annealed_gibbs_step at beta), with the same values and random draws
        as the separate calls but each odd layer's input from the even layers computed once.
        A float32 model's products and draws stay float32 and its increment is summed in
        float64 without cancellation (:func:`softplus_increment`; mixed precision)."""
        parts = self._split(x_even, self._parity_layers(0))
        x = [parts.get(l) for l in range(self.n_layers + 1)]
        b_a = base.biases
        inc = 0.0
        for l in self._parity_layers(0):
            inc = inc + x[l] @ ((beta - beta_prev) * (self.bias(l) - b_a[l]))
        odd_inputs = {}
        for l in self._parity_layers(1):
            a = self.layer_input(x, l)
            odd_inputs[l] = a
            if a.dtype == torch.float64:
                inc = inc + (
                    softplus(beta * a + (1.0 - beta) * b_a[l])
                    - softplus(beta_prev * a + (1.0 - beta_prev) * b_a[l])
                ).sum(-1)
            else:  # x_beta = x_beta_prev + (beta - beta_prev)(a - b_A), without cancellation
                x_prev = beta_prev * a + (1.0 - beta_prev) * b_a[l]
                inc = inc + softplus_increment(x_prev, (beta - beta_prev) * (a - b_a[l]))
        if not transition:
            return inc, x_even
        for l, a in odd_inputs.items():
            x[l] = bernoulli(torch.sigmoid(beta * a + (1.0 - beta) * b_a[l]), generator)
        for l in self._parity_layers(0):
            a = beta * self.layer_input(x, l) + (1.0 - beta) * b_a[l]
            x[l] = bernoulli(torch.sigmoid(a), generator)
        return inc, self.even_state(x)

    @torch.no_grad()
    def ais_model_states(
        self, n: int, burn_in: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Approximate model states (n, D_even) to start reverse AIS: the persistent chains
        (repeated to n rows) after ``burn_in`` further sweeps at beta = 1."""
        reps = math.ceil(n / self.config.n_chains)
        x = [c.repeat(reps, 1)[:n].clone() for c in self.chains]
        for _ in range(burn_in):
            x = self.gibbs_sweep(x, generator=generator)
        return self.even_state(x)

    # -- exact enumeration (tiny models) ------------------------------------------------------------

    def enumerable_free_energy(self):
        """(F_parity, n_units): the free energy of the states of the parity with fewer units
        (its layers concatenated) with the other parity summed out, and that parity's number
        of units; sum over its 2^n_units states of exp(-F_parity) is Z."""
        counts = [sum(self.sizes[l] for l in self._parity_layers(p)) for p in (0, 1)]
        parity = 0 if counts[0] <= counts[1] else 1
        layers = self._parity_layers(parity)

        @torch.no_grad()
        def free_energy(s: torch.Tensor) -> torch.Tensor:
            return self._summed_out_free_energy(self._split(s, layers))

        return free_energy, counts[parity]

    @torch.no_grad()
    def exact_free_energy(self, v: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """F(v) = -log sum_h exp(-E(v, h)) exactly (B,), by enumerating whichever of the odd or
        the even hidden layers have fewer units (at most 20) and summing the others out."""

        odd, even = self._parity_layers(1), self._parity_layers(0)[1:]
        sizes = [sum(self.sizes[l] for l in ls) for ls in (odd, even)]
        layers, n_units = (odd, sizes[0]) if sizes[0] <= sizes[1] else (even, sizes[1])
        if n_units > _EXACT_FREE_ENERGY_MAX_UNITS:
            raise GenzooError(
                f"exact_free_energy enumerates 2^{n_units} hidden states per example; it needs "
                f"at most {_EXACT_FREE_ENERGY_MAX_UNITS} units (use variational_free_energy)"
            )
        n_states = 2**n_units
        parts = []
        for s in range(0, n_states, chunk):
            h = binary_states(
                torch.arange(s, min(s + chunk, n_states), device=v.device), n_units, v.dtype
            )
            m = h.shape[0]
            fixed = {l: t.repeat(v.shape[0], 1) for l, t in self._split(h, layers).items()}
            fixed[0] = v.repeat_interleave(m, dim=0)
            f = self._summed_out_free_energy(fixed).view(v.shape[0], m)
            parts.append(torch.logsumexp(-f, dim=1))
        return -torch.logsumexp(torch.stack(parts, dim=1), dim=1)
