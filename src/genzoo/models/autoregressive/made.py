"""Masked autoencoder for distribution estimation (MADE).

Germain, Gregor, Murray & Larochelle (2015), "MADE: Masked autoencoder for distribution
estimation", ICML, sections 3-4, equations (10)-(13).

Binary x in {0,1}^D in index order, hidden layers of sizes H_1 .. H_L. Each unit gets a degree:
input d (1-based) has degree d; hidden unit k of layer l has degree m^l(k), drawn uniformly
from {min_k' m^{l-1}(k'), ..., D - 1}. A connection is kept only where the degrees allow
(eqs. 12-13)::

    M^l[k, k'] = [m^l(k) >= m^{l-1}(k')]          hidden layer l (H_l, H_{l-1})
    M^V[d, k]  = [d > m^L(k)]                     output layer (D, H_L)
    h^l = relu(c^l + (W^l * M^l) h^{l-1}),   h^0 = x
    l(x) = b + (V * M^V) h^L,   p(x_d = 1 | x_<d) = sigmoid(l_d)

so output d depends on x_<d only and log p(x) = sum_d [x_d l_d - softplus(l_d)] is exact. The
masks multiply the weights in the forward pass (:class:`genzoo.nn.masked.MaskedLinear`).

Connectivity-agnostic training (section 4.2): ``n_masks`` = K sets of hidden degrees are drawn
once (from ``mask_seed``) and kept as buffers; each training minibatch uses one of them, chosen
by the trainer's generator. Each mask set k defines its own exact model p_k; the model evaluated
and sampled is their ensemble, the mixture p(x) = (1/K) sum_k p_k(x), whose log-likelihood is the
log-mean-exp of the K per-mask log-likelihoods (never an average of logits).
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import torch
from torch import nn

from genzoo.core.config import Config, check, check_nonnegative
from genzoo.core.errors import ConfigError, InputError
from genzoo.core.registry import register_model
from genzoo.models._common import check_n_visible, require_n_visible
from genzoo.models.autoregressive._common import (
    BinaryAutoregressive,
    bernoulli_log_likelihood,
    check_sample_count,
    uniforms,
)
from genzoo.nn.init import normal_or_zero_
from genzoo.nn.masked import MaskedLinear


@dataclasses.dataclass(frozen=True)
class MADEConfig(Config):
    """Hyperparameters of MADE.

    ``n_visible`` is filled from the data by the CLI when left ``None``. ``hidden``: sizes of
    the relu hidden layers (at least one; the paper's MNIST results use one or two of 500).
    ``n_masks`` K: the number of connectivity masks trained in turn and ensembled at test
    time (1 = a single fixed MADE). ``mask_seed`` fixes the hidden degrees. ``init_std``: the
    output weights V ~ N(0, init_std^2); hidden weights get He initialisation N(0, 2 / fan_in).
    """

    n_visible: int | None = None
    hidden: tuple[int, ...] = (500,)
    n_masks: int = 1
    mask_seed: int = 0
    init_std: float = 0.01

    def validate(self) -> None:
        check_n_visible(self.n_visible)
        check(len(self.hidden) >= 1, "model.hidden needs at least one layer, e.g. 500")
        check(all(h > 0 for h in self.hidden), f"model.hidden={self.hidden} must be positive")
        check(self.n_masks >= 1, f"model.n_masks={self.n_masks} must be at least 1")
        check_nonnegative(self.init_std, "model.init_std")


@register_model(
    "made",
    config=MADEConfig,
    family="autoregressive",
    summary="masked autoencoder, exact likelihood, ensembles over connectivity masks",
    paper="Germain et al. 2015",
)
class MADE(BinaryAutoregressive):
    """MADE over D binary variables in index order; see the module docstring."""

    def __init__(self, config: MADEConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(config, MADEConfig):
            raise ConfigError(f"MADE needs a MADEConfig, got {type(config).__name__}")
        d = require_n_visible(config)
        self.config = config
        sizes = (d, *config.hidden)
        self.layers = nn.ModuleList(MaskedLinear(a, b) for a, b in itertools.pairwise(sizes))
        self.V = MaskedLinear(sizes[-1], d, bias=False)
        self.b = nn.Parameter(torch.zeros(d))
        self.register_buffer("input_degrees", torch.arange(1, d + 1))
        for l, degrees in enumerate(self._draw_degrees(d, config)):
            self.register_buffer(f"degrees_{l}", degrees)
        self.reset_parameters(generator)

    @staticmethod
    def _draw_degrees(d: int, config: MADEConfig) -> list[torch.Tensor]:
        """Per hidden layer, the (K, H_l) degrees of the K mask sets (section 4.1)."""
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
        return out

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

    def masks(self, k: int) -> list[torch.Tensor]:
        """The bool masks M^1 .. M^L, M^V of mask set k (eqs. 12-13)."""
        prev = self.input_degrees
        out = []
        for l in range(len(self.layers)):
            deg = getattr(self, f"degrees_{l}")[k]
            out.append(deg[:, None] >= prev[None, :])
            prev = deg
        out.append(self.input_degrees[:, None] > prev[None, :])
        return out

    def conditional_logits(self, x: torch.Tensor, k: int = 0) -> torch.Tensor:
        """l (B, D) under mask set k: l[:, d] is the logit of p_k(x_d = 1 | x_<d) and depends
        on x[:, :d] only."""
        if not 0 <= k < self.n_masks:
            raise InputError(f"mask index {k} out of range: this MADE has {self.n_masks} masks")
        *hidden_masks, out_mask = self.masks(k)
        h = x
        for layer, mask in zip(self.layers, hidden_masks):
            h = torch.relu(layer(h, mask))
        return self.V(h, out_mask) + self.b

    def log_prob_per_mask(self, x: torch.Tensor) -> torch.Tensor:
        """log p_k(x) (B, K) in nats for every mask set k. x (B, D) binary."""
        self.check_input(x)
        x = x.to(dtype=self.b.dtype)
        return torch.stack(
            [
                bernoulli_log_likelihood(self.conditional_logits(x, k), x)
                for k in range(self.n_masks)
            ],
            dim=1,
        )

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) of the ensemble, log (1/K) sum_k p_k(x), in nats. x (B, D) -> (B,)."""
        lp = self.log_prob_per_mask(x)
        return torch.logsumexp(lp, dim=1) - math.log(self.n_masks)

    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Mean NLL of the batch x (B, D) under one mask set drawn with ``generator``
        (connectivity-agnostic training; with K = 1 the exact NLL): ``loss`` (with gradient)
        and ``nll`` (detached), nats per example."""
        self.check_input(x)
        k = 0
        if self.n_masks > 1:
            k = int(torch.randint(self.n_masks, (1,), generator=generator))
        x = x.to(dtype=self.b.dtype)
        nll = -bernoulli_log_likelihood(self.conditional_logits(x, k), x).mean()
        return {"loss": nll, "nll": nll.detach()}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact draws (n, D) from the ensemble: a mask set k uniformly per draw, then
        ancestral sampling under p_k in index order (one network pass per variable)."""
        check_sample_count(n)
        d = self.n_visible
        u = uniforms(n, d, self.b, generator)
        k = torch.randint(self.n_masks, (n,), generator=generator, device=self.b.device)
        x = torch.zeros(n, d, device=self.b.device, dtype=self.b.dtype)
        for j in range(self.n_masks):
            rows = (k == j).nonzero().squeeze(1)
            if len(rows) == 0:
                continue
            xs = x[rows]
            for i in range(d):
                logit = self.conditional_logits(xs, j)[:, i]
                xs[:, i] = (u[rows, i] < torch.sigmoid(logit)).to(xs.dtype)
            x[rows] = xs
        return x
