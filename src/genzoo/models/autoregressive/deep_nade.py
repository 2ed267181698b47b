"""Order-agnostic deep NADE.

Uria, Murray & Larochelle (2014), "A deep and tractable density estimator", ICML, sections 3-4
(85.10 nats on binarized MNIST with 2 hidden layers and an ensemble of 128 orderings).

Binary x in {0,1}^D. One network serves every ordering o (a permutation of 0 .. D-1, o_d the
variable at position d): given the mask m_i = [rank_o(i) < d] of the variables already seen, it
reads the masked values and the mask flags and outputs logits for all D variables::

    a_1 = c_1 + W (x * m) + U m                   (H_1,)   first layer, W and U (H_1, D)
    h_l = relu(a_l),  a_{l+1} = c_{l+1} + W_{l+1} h_l      further hidden layers
    l(x * m, m) = b + V h_L                       (D,)     logits of every variable
    p(x_{o_d} = 1 | x_{o_<d}) = sigmoid(l(x * m_d, m_d)_{o_d})

Exact log-likelihood in ordering o (one forward pass per position, D in all)::

    log p_o(x) = sum_d [x_{o_d} l_{o_d} - softplus(l_{o_d})]    evaluated at m = m_d

The first layer is linear in (x * m, m) and m_{d+1} = m_d + e_{o_d}, so as in NADE its
pre-activations follow the running sum a_1(d+1) = a_1(d) + W[:, o_d] x_{o_d} + U[:, o_d]; only
the layers above it cost a pass per position.

Training (equation 9, order-agnostic): per example draw d uniformly from {0 .. D-1} and a random
ordering o, observe the first d variables, and minimise

    J = -(D / (D - d)) sum_{i: m_i = 0} log p(x_i | x_{o_<d})

whose expectation over (d, o) is E_o[-log p_o(x)], the NLL averaged over orderings. Ensembles
(section 4): K orderings give the mixture p(x) = (1/K) sum_k p_{o_k}(x), combined by
log-mean-exp of the per-ordering log-likelihoods, never by averaging logits or conditionals.
The same network infers any subset of variables given any other (inpainting).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

from genzoo.core.config import check
from genzoo.core.errors import InputError
from genzoo.core.protocols import EXACT_LIKELIHOOD, INPAINT
from genzoo.core.registry import register_model
from genzoo.core.validation import check_observed_mask
from genzoo.models.autoregressive.base import (
    AutoregressiveConfig,
    BinaryAutoregressive,
    check_layer_sizes,
    check_sample_count,
    uniforms,
)
from genzoo.models.base import checks_input, train_recipe
from genzoo.nn.init import normal_or_zero_
from genzoo.ops.numerics import bernoulli_log_likelihood, softplus

# Without gradients, all-position evaluation runs on blocks of rows whose (rows, D, H) hidden
# tensor holds at most this many elements (32 MB in float64).
_NO_GRAD_BLOCK_ELEMENTS = 2**22


@dataclasses.dataclass(frozen=True)
class DeepNADEConfig(AutoregressiveConfig):
    """Hyperparameters of the order-agnostic deep NADE.

    ``n_visible`` is filled from the data by the CLI when left ``None``. ``hidden``: the sizes
    of the relu hidden layers (at least one; the paper's MNIST result uses two of 500).
    ``init_std``: the output weights V ~ N(0, init_std^2), so the model starts at its output
    biases b (set to the data marginals by ``init_from_data``); the hidden weights get He
    initialisation N(0, 2 / fan_in), the biases 0.

    Orderings: ``ordering_seed`` none means the default ordering is index order, an integer
    draws it as a permutation from that seed. ``n_eval_orderings`` K: ``log_prob`` (and so
    the reported likelihood of ``genzoo evaluate``) is that of the ensemble of K orderings, the
    default one first and K - 1 more drawn from ``ensemble_seed``; 1 means the default ordering
    alone. Both are evaluation choices (``EVALUATION_FIELDS``): ``genzoo evaluate RUN --set
    model.n_eval_orderings=128`` evaluates a trained model's 128-ordering ensemble.
    """

    EVALUATION_FIELDS = ("n_eval_orderings", "ensemble_seed")

    hidden: tuple[int, ...] = (500, 500)
    ordering_seed: int | None = None
    n_eval_orderings: int = 1
    ensemble_seed: int = 0

    def validate(self) -> None:
        super().validate()
        check_layer_sizes(self.hidden, "500,500")
        check(self.n_eval_orderings >= 1,
              f"model.n_eval_orderings={self.n_eval_orderings} must be >= 1")


def _permutation(d: int, seed: int) -> torch.Tensor:
    return torch.randperm(d, generator=torch.Generator().manual_seed(seed))


@register_model("deep-nade", family="autoregressive", paper="Uria, Murray & Larochelle 2014")
class DeepNADE(BinaryAutoregressive):
    """Order-agnostic deep NADE: any ordering, ensembles over orderings, inpainting.

    Order-agnostic deep NADE over D binary variables.

    Orderings are LongTensors (D,) (or (B, D), one per example) listing the variable at each
    position. Per-example values are in nats; device and dtype follow the parameters.
    """

    config_class = DeepNADEConfig
    train_defaults = train_recipe(
        optimizer="adam", lr=0.001, lr_schedule="linear", lr_final_factor=0.1,
    )
    capabilities = frozenset({EXACT_LIKELIHOOD, INPAINT})
    test_overrides = ("model.hidden=8,8",)

    def __init__(self, config: DeepNADEConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        d = config.n_visible
        sizes = tuple(config.hidden)
        self.W = nn.Parameter(torch.zeros(sizes[0], d))
        self.U = nn.Parameter(torch.zeros(sizes[0], d))
        self.c = nn.Parameter(torch.zeros(sizes[0]))
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.V = nn.Parameter(torch.zeros(d, sizes[-1]))
        self.b = nn.Parameter(torch.zeros(d))
        # Functions of the config alone, rebuilt with the model, so not checkpointed.
        default = (torch.arange(d) if config.ordering_seed is None
                   else _permutation(d, config.ordering_seed))
        self.register_buffer("default_ordering", default, persistent=False)
        g = torch.Generator().manual_seed(config.ensemble_seed)
        extra = [torch.randperm(d, generator=g) for _ in range(config.n_eval_orderings - 1)]
        self.register_buffer("eval_orderings", torch.stack([default, *extra]), persistent=False)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """He-normal hidden weights, V ~ N(0, init_std^2), zero biases."""
        with torch.no_grad():
            std0 = math.sqrt(2.0 / (2 * self.n_visible))  # the first layer reads [x * m, m]
            self.W.normal_(0.0, std0, generator=generator)
            self.U.normal_(0.0, std0, generator=generator)
            self.c.zero_()
            for layer in self.layers:
                layer.weight.normal_(0.0, math.sqrt(2.0 / layer.in_features), generator=generator)
                layer.bias.zero_()
            normal_or_zero_(self.V, self.config.init_std, generator)
            self.b.zero_()

    # ----------------------------------------------------------------- the network

    def _top(self, a1: torch.Tensor) -> torch.Tensor:
        """The last hidden layer (..., H_L) from the first layer's pre-activations a1
        (..., H_1)."""
        h = torch.relu(a1)
        for layer in self.layers:
            h = torch.relu(layer(h))
        return h

    def _head(self, a1: torch.Tensor) -> torch.Tensor:
        """Logits of all D variables (..., D) from the first layer's pre-activations a1
        (..., H_1)."""
        return self._top(a1) @ self.V.T + self.b

    def _head_at(self, a1: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """The logit of variable ``var`` only, (...,), from a1 (..., H_1) and integer ``var``
        (...,): one row of V per entry, so a chain that needs one conditional per position
        does not pay for the D - 1 others (the output layer would otherwise cost D times
        the hidden layers' H_L x D per position)."""
        return torch.einsum("...h,...h->...", self._top(a1), self.V[var]) + self.b[var]

    def masked_logits(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """l(x * m, m) (B, D): the logits of every variable given the variables with m = 1.
        x, m (B, D); entry i depends on x only through x_j with m_j = 1."""
        return self._head((x * m) @ self.W.T + m @ self.U.T + self.c)

    def _check_ordering(self, ordering: torch.Tensor, name: str = "ordering") -> torch.Tensor:
        d = self.n_visible
        if not isinstance(ordering, torch.Tensor):
            ordering = torch.as_tensor(ordering)
        if ordering.dim() not in (1, 2) or ordering.shape[-1] != d or ordering.is_floating_point():
            raise InputError(f"{name} must be an integer tensor of shape ({d},) or (B, {d}), "
                             f"got {tuple(ordering.shape)} {ordering.dtype}")
        ordering = ordering.to(device=self.b.device, dtype=torch.long)
        expected = torch.arange(d, device=ordering.device)
        if not bool((ordering.sort(-1).values == expected).all()):
            raise InputError(f"{name} must be a permutation of 0 .. {d - 1}")
        return ordering

    def _chain_logits(self, x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """Logits (B, D), indexed by variable: entry i is the logit of p(x_i = 1 | the variables
        before i in its row's ordering). x (B, D), order (B, D). Uses the running sum of the
        first layer (exclusive, so entry o_d has exactly zero gradient with respect to x_j for
        j at positions >= d), one head pass per position."""
        width = max(self.config.hidden)  # the widest (B, D, H) temporary
        rows = max(1, _NO_GRAD_BLOCK_ELEMENTS // (self.n_visible * width))
        if not torch.is_grad_enabled() and x.shape[0] > rows:
            return torch.cat([self._chain_logits(xb, ob)
                              for xb, ob in zip(x.split(rows), order.split(rows))])
        x_o = x.gather(1, order)  # (B, D): x at each position
        # One ordering for the whole batch (an expanded (D,) ordering, as in evaluation)
        # gathers the weight rows once, (1, D, H), and broadcasts them.
        o = order[:1] if order.shape[0] == 1 or order.stride(0) == 0 else order
        steps = torch.addcmul(self.U.T[o], x_o.unsqueeze(-1), self.W.T[o])  # (B, D, H_1)
        # a1 at position d is c + the steps before d: a cumulative sum that starts at c.
        first = self.c.expand(x.shape[0], 1, -1)
        a1 = torch.cumsum(torch.cat([first, steps[:, :-1]], dim=1), dim=1)
        own = self._head_at(a1, o)  # (B, D) by position
        return torch.empty_like(own).scatter_(1, order, own)

    # ----------------------------------------------------------------- likelihoods

    def conditional_logits(
        self, x: torch.Tensor, ordering: torch.Tensor | None = None
    ) -> torch.Tensor:
        """l (B, D), indexed by variable: l[:, i] is the logit of p(x_i = 1 | x_j for j before
        i in ``ordering`` (D,) or (B, D), default: the model's default ordering). In index
        order, l[:, d] depends on x[:, :d] only."""
        order = self._check_ordering(self.default_ordering if ordering is None else ordering)
        return self._chain_logits(x, order.expand(x.shape[0], -1))

    @checks_input
    def log_prob(self, x: torch.Tensor, ordering: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log p(x) in nats, x (B, D) binary -> (B,).

        With ``ordering`` (D,) or (B, D): log p_o(x) in that ordering. Without it: the model's
        evaluation distribution, i.e. the default ordering when ``n_eval_orderings`` is 1 and
        otherwise the ensemble of the K orderings ``eval_orderings`` (log-mean-exp, see
        :meth:`log_prob_ensemble`); the likelihood ``genzoo evaluate`` reports is then the
        ensemble's."""
        x = x.to(dtype=self.b.dtype)
        if ordering is None and self.config.n_eval_orderings > 1:
            return self.log_prob_ensemble(x, self.eval_orderings)
        return bernoulli_log_likelihood(self.conditional_logits(x, ordering), x)

    @checks_input
    def log_prob_ensemble(
        self, x: torch.Tensor, orderings: torch.Tensor | Sequence[torch.Tensor]
    ) -> torch.Tensor:
        """log (1/K) sum_k p_{o_k}(x) in nats, x (B, D), orderings (K, D) -> (B,): the mixture of
        the K orderings' distributions, combined in log space (log-mean-exp), not by averaging
        logits or conditionals (which would not be a normalised distribution)."""
        if not isinstance(orderings, torch.Tensor):
            orderings = torch.stack([torch.as_tensor(o) for o in orderings])
        if orderings.dim() != 2 or len(orderings) == 0:
            raise InputError(f"orderings must have shape (K >= 1, {self.n_visible}), "
                             f"got {tuple(orderings.shape)}")
        x = x.to(dtype=self.b.dtype)
        per = torch.stack([self.log_prob(x, ordering=o) for o in orderings])  # (K, B)
        return torch.logsumexp(per, 0) - math.log(len(orderings))

    def _observed_first(self, observed: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Per-row orderings (B, D): the observed variables first, then the others by ``keys``
        (B, D) ascending."""
        keys = torch.where(observed, torch.full_like(keys, -1.0), keys)
        return keys.argsort(dim=1, stable=True)

    @checks_input
    def conditional_log_prob(
        self, x: torch.Tensor, observed_mask: torch.Tensor, ordering: torch.Tensor | None = None
    ) -> torch.Tensor:
        """log p(x_u | x_o) in nats, (B,): the probability of the unobserved part of x (B, D)
        given its observed part (``observed_mask`` (B, D) or (D,), True = observed), the
        unobserved variables chained in ``ordering`` (D,) (default: the model's default
        ordering; the conditional depends on it since the model is not exactly consistent
        across orderings). Zero where everything is observed."""
        x = x.to(dtype=self.b.dtype)
        observed = check_observed_mask(observed_mask, x)
        order = self._check_ordering(self.default_ordering if ordering is None else ordering)
        if order.dim() == 1:
            order = order.expand(x.shape[0], -1)
        rank = torch.empty_like(order).scatter_(
            1, order, torch.arange(self.n_visible, device=order.device).expand_as(order))
        chain = self._observed_first(observed, rank.to(x.dtype))
        logits = self._chain_logits(x, chain)
        ll = x * logits - softplus(logits)
        return torch.where(observed, torch.zeros_like(ll), ll).sum(-1)

    # ----------------------------------------------------------------- training

    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Order-agnostic objective (equation 9) on x (B, D): per example a position d ~ U{0..D-1}
        and a random ordering (all draws from ``generator``), the first d variables observed,
        and -(D / (D - d)) times the log-likelihood of the D - d others. ``loss`` (with
        gradient) and ``nll_estimate`` (detached) are its batch mean, nats per example: an
        unbiased estimate of the NLL averaged over orderings."""
        x = x.to(dtype=self.b.dtype)
        n, d = x.shape
        keys = torch.rand((n, d), generator=generator, device=x.device)
        rank = keys.argsort(1).argsort(1)  # rank[b, i]: position of variable i
        n_obs = torch.randint(0, d, (n, 1), generator=generator, device=x.device)
        m = (rank < n_obs).to(x.dtype)
        logits = self.masked_logits(x, m)
        ll = ((x * logits - softplus(logits)) * (1 - m)).sum(-1)
        scale = d / (d - n_obs.squeeze(1)).to(x.dtype)
        loss = -(scale * ll).mean()
        return {"loss": loss, "nll_estimate": loss.detach()}

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """{"nll_estimate": the order-agnostic objective of :meth:`loss` on x (B, D), nats per
        example, with draws from a generator seeded 0}: the same positions and orderings at
        every validation, so the curve is comparable across steps. Not the exact NLL: that
        costs D network passes per ordering (hours per validation of MNIST with an ensemble),
        while this estimate of the ordering-averaged NLL costs one."""
        g = torch.Generator(device=x.device).manual_seed(0)
        return {"nll_estimate": float(self.loss(x, g)["nll_estimate"])}

    # ----------------------------------------------------------------- sampling

    @torch.no_grad()
    def _fill(
        self, x: torch.Tensor, observed: torch.Tensor, order: torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """Ancestral sampling of the unobserved variables of x (n, D) along per-row orderings
        order (n, D) that list the observed variables first. All uniforms are drawn first."""
        n, d = x.shape
        u = uniforms(n, d, self.b, generator)
        x = torch.where(observed, x, torch.zeros_like(x))
        obs = observed.to(x.dtype)
        a1 = (x * obs) @ self.W.T + obs @ self.U.T + self.c
        rows = torch.arange(n, device=x.device)
        n_obs = observed.sum(1)
        for t in range(int(n_obs.min()) if n else d, d):
            var = order[:, t]
            active = (t >= n_obs).to(x.dtype)  # rows whose position t is still unobserved
            logit = self._head_at(a1, var)
            draw = (u[rows, var] < torch.sigmoid(logit)).to(x.dtype)
            value = torch.where(active.bool(), draw, x[rows, var])
            x[rows, var] = value
            a1 = a1 + active.unsqueeze(1) * (value.unsqueeze(1) * self.W.T[var] + self.U.T[var])
        return x

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact, independent draws (n, D) by ancestral sampling in the default ordering,
        one head pass per variable (the first layer by its running sum)."""
        check_sample_count(n)
        d = self.n_visible
        x = torch.zeros(n, d, device=self.b.device, dtype=self.b.dtype)
        observed = torch.zeros(n, d, dtype=torch.bool, device=x.device)
        return self._fill(x, observed, self.default_ordering.expand(n, -1), generator)

    @torch.no_grad()
    def inpaint(
        self, x: torch.Tensor, observed_mask: torch.Tensor, /,
        generator: torch.Generator | None = None, n_samples: int = 1,
        n_steps: int | None = None, ordering: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Completions (n_samples, B, D) of x (B, D): the observed entries (``observed_mask``
        (B, D) or (D,), True = observed) are kept, the others drawn from the model given them by
        ancestral sampling; values at unobserved entries of x are ignored (may be anything
        finite or NaN). The unobserved variables are chained in a fresh random order per
        completion (drawn from ``generator``), or in ``ordering`` (D,) when given. The draws
        are exact, so ``n_steps`` (the chain length of models that complete by a Markov
        chain) is ignored."""
        observed = self.observed_entries(x, observed_mask, n_samples)
        b, d = x.shape
        x = x.to(dtype=self.b.dtype).repeat(n_samples, 1)
        observed = observed.repeat(n_samples, 1)
        if ordering is None:
            keys = torch.rand((len(x), d), generator=generator, device=x.device)
        else:
            order = self._check_ordering(ordering)
            rank = torch.empty_like(order).scatter_(0, order, torch.arange(d, device=order.device))
            keys = rank.to(x.dtype).expand(len(x), -1)
        chain = self._observed_first(observed, keys.to(x.dtype))
        return self._fill(x, observed, chain, generator).reshape(n_samples, b, d)
