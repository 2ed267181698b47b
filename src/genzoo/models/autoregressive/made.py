"""Masked autoencoder for distribution estimation (MADE).

Germain, Gregor, Murray & Larochelle (2015), "MADE: Masked autoencoder for distribution
estimation", ICML, sections 3-4, equations (10)-(13).

Binary x in {0,1}^D, hidden layers of sizes H_1 .. H_L. Each unit gets a degree: input d has
degree m^0(d), its 1-based position in the ordering (m^0(d) = d in index order); hidden unit k
of layer l has degree m^l(k), drawn uniformly from {min_k' m^{l-1}(k'), ..., D - 1}. A
connection is kept only where the degrees allow (eqs. 12-13)::

    M^l[k, k'] = [m^l(k) >= m^{l-1}(k')]          hidden layer l (H_l, H_{l-1})
    M^V[d, k]  = [m^0(d) > m^L(k)]                output layer (D, H_L)
    h^l = relu(c^l + (W^l * M^l) h^{l-1}),   h^0 = x
    l(x) = b + (V * M^V) h^L,   p(x_d = 1 | x_j : m^0(j) < m^0(d)) = sigmoid(l_d)

so output d depends only on the inputs before d in the ordering, and log p(x) = sum_d [x_d l_d -
softplus(l_d)] is exact. The masks multiply the weights in the forward pass
(:class:`genzoo.nn.masked.MaskedLinear`); the weights themselves are never edited.

Mask sets and ensembles (section 4, "Order-agnostic training" and "Connectivity-agnostic
training"): ``n_masks`` = K mask sets are drawn once from ``mask_seed`` and kept as buffers;
each training minibatch uses one of them, chosen by the trainer's generator, so one set of
weights learns K models p_k at once. A mask set is always its own hidden degrees
(connectivity-agnostic training). With ``orderings="random"`` it also has its own input
ordering, a uniform random permutation o_k of the D variables (order-agnostic training), so
m^0_k(o_k[t]) = t + 1 and p_k is an autoregressive model in ordering o_k; ``"natural"`` keeps
index order for every set. The paper redraws the ordering at every update, from all D!
orderings; here the pool is the K fixed orderings, which the ensemble then uses. The model
evaluated and sampled is the ensemble of the K (ordering, connectivity) pairs, the mixture
p(x) = (1/K) sum_k p_k(x): its log-likelihood is the log-mean-exp of the K exact per-set
log-likelihoods (never the likelihood of averaged logits), and it is sampled by drawing k
uniformly, then ancestrally in ordering o_k.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Literal

import torch
from torch import nn

from genzoo.core.config import check
from genzoo.core.errors import InputError
from genzoo.core.registry import register_model
from genzoo.models.autoregressive.base import (
    AutoregressiveConfig,
    BinaryAutoregressive,
    check_layer_sizes,
    check_sample_count,
    uniforms,
)
from genzoo.models.base import checks_input, train_recipe
from genzoo.nn.init import normal_or_zero_
from genzoo.nn.masked import MaskedLinear
from genzoo.ops.numerics import bernoulli_log_likelihood


@dataclasses.dataclass(frozen=True)
class MADEConfig(AutoregressiveConfig):
    """Hyperparameters of MADE.

    ``n_visible`` is filled from the data by the CLI when left ``None``. ``hidden``: sizes of
    the relu hidden layers (at least one; the paper's MNIST results use one or two of 500).
    ``n_masks`` K: the number of connectivity masks trained in turn and ensembled at test
    time (1 = a single fixed MADE). ``orderings``: ``"natural"`` (every mask set in index
    order) or ``"random"`` (each mask set in its own random ordering: order-agnostic training).
    ``mask_seed`` fixes the hidden degrees and the orderings. ``init_std``: the output weights
    V ~ N(0, init_std^2); hidden weights get He initialisation N(0, 2 / fan_in).
    """

    hidden: tuple[int, ...] = (500,)
    n_masks: int = 1
    orderings: Literal["natural", "random"] = "natural"
    mask_seed: int = 0

    def validate(self) -> None:
        super().validate()
        check_layer_sizes(self.hidden, "500")
        check(self.n_masks >= 1, f"model.n_masks={self.n_masks} must be at least 1")


@register_model("made", family="autoregressive", paper="Germain et al. 2015")
class MADE(BinaryAutoregressive):
    """Masked autoencoder, exact likelihood, ensembles over masks and orderings.

    MADE over D binary variables, an ensemble of K mask sets, each in index order or in its
    own random ordering; see the module docstring."""

    config_class = MADEConfig
    train_defaults = train_recipe(
        optimizer="adam", lr=0.001, lr_schedule="linear", lr_final_factor=0.1,
    )
    test_overrides = ("model.hidden=8", "model.n_masks=2")

    def __init__(self, config: MADEConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        d = config.n_visible
        sizes = (d, *config.hidden)
        self.layers = nn.ModuleList(MaskedLinear(a, b) for a, b in itertools.pairwise(sizes))
        self.V = MaskedLinear(sizes[-1], d, bias=False)
        self.b = nn.Parameter(torch.zeros(d))
        input_degrees, hidden_degrees = self._draw_degrees(d, config)
        # (D,) in index order, shared by every set; (K, D) with one ordering per set. Natural
        # checkpoints keep their original keys and shapes.
        self.register_buffer("input_degrees", input_degrees)
        for l, degrees in enumerate(hidden_degrees):
            self.register_buffer(f"degrees_{l}", degrees)
        self.reset_parameters(generator)

    @staticmethod
    def _draw_degrees(d: int, config: MADEConfig) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The input degrees m^0, (D,) in index order or (K, D) for random orderings, and per
        hidden layer the (K, H_l) degrees m^l of the K mask sets (section 4)."""
        g = torch.Generator().manual_seed(config.mask_seed)
        out = []
        low = torch.ones(config.n_masks, dtype=torch.int64)
        for h in config.hidden:
            # D - 1 is the largest useful degree; with D = 1 no hidden unit can reach an output.
            high = torch.full_like(low, max(d - 1, 1))
            u = torch.rand(config.n_masks, h, generator=g, dtype=torch.float64)
            deg = low[:, None] + (u * (high - low + 1)[:, None]).floor().long()
            out.append(deg.clamp(max=max(d - 1, 1)))
            low = deg.min(dim=1).values
        if config.orderings == "natural":
            return torch.arange(1, d + 1), out
        # Drawn after the hidden degrees, so a seed gives the same connectivity either way.
        positions = torch.arange(1, d + 1).expand(config.n_masks, d)
        o = torch.stack([torch.randperm(d, generator=g) for _ in range(config.n_masks)])
        return torch.empty_like(o).scatter_(1, o, positions), out

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """He-normal hidden weights, V ~ N(0, init_std^2), zero biases."""
        with torch.no_grad():
            for layer in self.layers:
                layer.weight.normal_(0.0, math.sqrt(2.0 / layer.in_features), generator=generator)
                layer.bias.zero_()
            normal_or_zero_(self.V.weight, self.config.init_std, generator)
            self.b.zero_()

    @property
    def n_masks(self) -> int:
        return self.config.n_masks

    def _input_degrees(self, k: int) -> torch.Tensor:
        """m^0 (D,) of mask set k: each variable's 1-based position in the set's ordering."""
        return self.input_degrees if self.input_degrees.dim() == 1 else self.input_degrees[k]

    def ordering(self, k: int = 0) -> torch.Tensor:
        """o_k (D,) int64: the variables of mask set k in the order they are generated
        (o_k[t] is the variable at position t; torch.arange(D) in index order)."""
        self._check_mask_index(k)
        return self._input_degrees(k).argsort()

    def _check_mask_index(self, k: int) -> None:
        if not 0 <= k < self.n_masks:
            raise InputError(f"mask index {k} out of range: this MADE has {self.n_masks} masks")

    def masks(self, k: int) -> list[torch.Tensor]:
        """The bool masks M^1 .. M^L, M^V of mask set k (eqs. 12-13)."""
        inputs = self._input_degrees(k)
        prev = inputs
        out = []
        for l in range(len(self.layers)):
            deg = getattr(self, f"degrees_{l}")[k]
            out.append(deg[:, None] >= prev[None, :])
            prev = deg
        out.append(inputs[:, None] > prev[None, :])
        return out

    def conditional_logits(self, x: torch.Tensor, k: int = 0) -> torch.Tensor:
        """l (B, D) under mask set k, indexed by variable: l[:, i] is the logit of
        p_k(x_i = 1 | the variables before i in ordering o_k) and depends on those only (on
        x[:, :i] in index order)."""
        self._check_mask_index(k)
        *hidden_masks, out_mask = self.masks(k)
        h = x
        for layer, mask in zip(self.layers, hidden_masks):
            h = torch.relu(layer(h, mask))
        return self.V(h, out_mask) + self.b

    @checks_input
    def log_prob_per_mask(self, x: torch.Tensor) -> torch.Tensor:
        """log p_k(x) (B, K) in nats for every mask set k. x (B, D) binary."""
        x = x.to(dtype=self.b.dtype)
        return torch.stack(
            [
                bernoulli_log_likelihood(self.conditional_logits(x, k), x)
                for k in range(self.n_masks)
            ],
            dim=1,
        )

    @checks_input
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) of the ensemble, log (1/K) sum_k p_k(x), in nats. x (B, D) -> (B,)."""
        lp = self.log_prob_per_mask(x)
        return torch.logsumexp(lp, dim=1) - math.log(self.n_masks)

    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Mean NLL of the batch x (B, D) under one mask set drawn with ``generator``
        (connectivity- and, with random orderings, order-agnostic training; with K = 1 the
        exact NLL): ``loss`` (with gradient) and ``nll`` (detached), nats per example."""
        k = 0
        if self.n_masks > 1:
            where = generator.device if generator is not None else None  # the generator's own
            k = int(torch.randint(self.n_masks, (1,), generator=generator, device=where))
        x = x.to(dtype=self.b.dtype)
        nll = -bernoulli_log_likelihood(self.conditional_logits(x, k), x).mean()
        return {"loss": nll, "nll": nll.detach()}

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, k: int | None = None
    ) -> torch.Tensor:
        """n exact draws (n, D) from the ensemble: a mask set uniformly per draw, then ancestral
        sampling under its p_k in its ordering o_k (one network pass per variable). With ``k``
        given, every draw comes from the member p_k alone."""
        check_sample_count(n)
        if k is not None:
            self._check_mask_index(k)
        d = self.n_visible
        u = uniforms(n, d, self.b, generator)
        if k is None:
            sets = torch.randint(self.n_masks, (n,), generator=generator, device=self.b.device)
        else:
            sets = torch.full((n,), k, dtype=torch.int64, device=self.b.device)
        x = torch.zeros(n, d, device=self.b.device, dtype=self.b.dtype)
        for j in range(self.n_masks):
            rows = (sets == j).nonzero().squeeze(1)
            if len(rows) == 0:
                continue
            xs = x[rows]
            for i in self.ordering(j).tolist():
                logit = self.conditional_logits(xs, j)[:, i]
                xs[:, i] = (u[rows, i] < torch.sigmoid(logit)).to(xs.dtype)
            x[rows] = xs
        return x
