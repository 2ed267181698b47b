"""Discriminant (supervised) GSN for structured output p(y | x): a chain over the outputs with
the inputs clamped.

Bengio, Thibodeau-Laufer, Alain & Yosinski (2014), "Deep generative stochastic networks
trainable by backprop", ICML, section 3.5 (GSNs for conditional distributions and structured
outputs; Zhou & Troyanskaya 2014 applied the supervised deep GSN to protein structure). The
deep GSN of :mod:`genzoo.models.markov.gsn` is run with the output y as its visible layer and
the input x entering the first hidden layer as a clamped, always-observed extra neighbour::

    a^1 = W_1 y + W_2^T h^2 + U x + b_1,   a^l (l > 1) as in the GSN
    h^l = tanh(a^l + sigma_pre eps) + sigma_post eps'
    P(y | h^1) = softmax(W_1^T h^1 + b_0)   over C classes (y one-hot)

The output's corruption replaces the label by a uniformly random class with probability
``noise_level`` (the categorical analogue of salt and pepper). Walkback training unrolls K
steps from (x, C(y)) and penalises every reconstruction, -log P(y | h^1_k), nats per example.
Prediction runs the chain from a uniformly random label with x clamped and averages P(y|h^1)
over the steps after the burn-in (a Monte Carlo estimate of the chain's conditional p(y | x)).

A classifier, not a generative model of x (no sampler): registered as ``discriminant-gsn``
with the ``CLASSIFIER`` capability, trained by the Trainer on labelled data
(``loss(x, generator, y=y)``); ``genzoo evaluate RUN --task classify --split SPLIT`` reports
its error rate.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.config import Config, check, check_nonnegative
from genzoo.core.errors import InputError
from genzoo.core.protocols import CLASSIFIER
from genzoo.core.registry import register_model
from genzoo.models.base import GenzooModel, checks_input, train_recipe
from genzoo.nn.init import normal_or_zero_


@dataclasses.dataclass(frozen=True)
class DiscriminantGSNConfig(Config):
    """``n_inputs``: D of x; ``n_classes``: C; ``hidden``: H_1 .. H_L; ``noise_level``:
    probability of replacing the label by a random class; ``pre_noise`` / ``post_noise``:
    hidden noise sigmas; ``walkback``: K (None: 2 L); ``predict_steps`` / ``predict_burn_in``:
    chain steps of :meth:`DiscriminantGSN.predict_proba` and how many are discarded."""

    n_inputs: int = 64
    n_classes: int = 10
    hidden: tuple[int, ...] = (200, 200)
    noise_level: float = 0.5
    pre_noise: float = 1.0
    post_noise: float = 0.5
    walkback: int | None = None
    predict_steps: int = 20
    predict_burn_in: int = 5
    init_std: float | None = None

    def validate(self) -> None:
        check(self.n_inputs > 0 and self.n_classes > 1, "n_inputs > 0 and n_classes > 1")
        check(len(self.hidden) >= 1 and all(h > 0 for h in self.hidden), "hidden: sizes > 0")
        check(0 <= self.noise_level <= 1, "noise_level must be in [0, 1]")
        check_nonnegative(self.pre_noise, "pre_noise")
        check_nonnegative(self.post_noise, "post_noise")
        check(self.walkback is None or self.walkback >= 1, "walkback must be >= 1 or none")
        check(0 <= self.predict_burn_in < self.predict_steps,
              "need 0 <= predict_burn_in < predict_steps")


@register_model("discriminant-gsn", family="markov", paper="Bengio et al. 2014")
class DiscriminantGSN(GenzooModel):
    """Discriminant GSN: p(y|x) by a GSN chain over the labels with x clamped (classifier).

    x (B, D) floating; y (B,) int64."""

    config_class = DiscriminantGSNConfig
    config: DiscriminantGSNConfig
    capabilities = frozenset({CLASSIFIER})
    train_defaults = train_recipe(optimizer="adam", lr=3e-3)
    test_overrides = ("model.hidden=8,8", "model.predict_burn_in=1", "model.predict_steps=4")
    needs_labels = True
    binary_input = False

    def __init__(
        self, config: DiscriminantGSNConfig, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(config)
        self.sizes = [config.n_classes, *config.hidden]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(b, a)) for a, b in itertools.pairwise(self.sizes)
        )
        self.U = nn.Parameter(torch.empty(config.hidden[0], config.n_inputs))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(n)) for n in self.sizes)
        for W in [*self.weights, self.U]:
            std = config.init_std if config.init_std is not None else math.sqrt(2 / sum(W.shape))
            normal_or_zero_(W, std, generator)

    @property
    def n_layers(self) -> int:
        return len(self.config.hidden)

    @property
    def walkback(self) -> int:
        return 2 * self.n_layers if self.config.walkback is None else self.config.walkback

    @property
    def input_width(self) -> int:
        return self.config.n_inputs

    def _check(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x (checked by :func:`checks_input`) on the parameters' dtype, after checking y."""
        if y is not None and (y.dtype != torch.int64 or y.shape != x.shape[:1]
                              or bool(((y < 0) | (y >= self.config.n_classes)).any())):
            raise InputError(f"y must be (B,) int64 labels in 0..{self.config.n_classes - 1}")
        return x.to(self.U)

    def _corrupt(self, y1: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        b, c = y1.shape
        replace = torch.rand(b, 1, generator=generator, dtype=y1.dtype, device=y1.device)
        cls = torch.randint(c, (b,), generator=generator, device=y1.device)
        return torch.where(replace < self.config.noise_level, F.one_hot(cls, c).to(y1), y1)

    def _draw(self, logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        p = torch.softmax(logits, -1)
        u = torch.rand(len(p), 1, generator=generator, dtype=p.dtype, device=p.device)
        idx = (p.cumsum(-1) < u).sum(-1).clamp_(max=p.shape[-1] - 1)
        return F.one_hot(idx, p.shape[-1]).to(p)

    def _noise(self, a: torch.Tensor, sigma: float, generator: torch.Generator | None):
        if sigma == 0:
            return a
        return a + sigma * torch.randn(a.shape, generator=generator, dtype=a.dtype,
                                       device=a.device)

    def step(self, state: list[torch.Tensor], ux: torch.Tensor,
             generator: torch.Generator | None = None):
        """One transition (odd layers, then even layers, y included); ``ux`` = U x (B, H_1).
        Returns (new state, the logits of P(y | h^1) used in this step)."""
        cfg, state = self.config, list(state)
        logits = state[0]
        for parity in (1, 0):
            for l in range(parity, self.n_layers + 1, 2):
                a = self.biases[l]
                if l > 0:
                    a = a + state[l - 1] @ self.weights[l - 1].T
                if l < self.n_layers:
                    a = a + state[l + 1] @ self.weights[l]
                if l == 1:
                    a = a + ux
                if l == 0:
                    logits = a
                    state[0] = self._corrupt(self._draw(a.detach(), generator), generator)
                else:
                    h = torch.tanh(self._noise(a, cfg.pre_noise, generator))
                    state[l] = self._noise(h, cfg.post_noise, generator)
        return state, logits

    def _start(self, y1: torch.Tensor) -> list[torch.Tensor]:
        return [y1, *[y1.new_zeros(len(y1), n) for n in self.config.hidden]]

    @checks_input(nonempty=True)
    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None,
             y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``loss``: mean over the K walkback steps and the batch of -log P(y | h^1_k)
        (nats per example) for labels y (B,) int64 (required); ``nll_first``: the first
        step's, detached."""
        if y is None:
            raise InputError("discriminant-gsn learns p(y | x): call loss(x, y=labels) with (B,) "
                             "int64 labels (the Trainer does so for labelled data sets)")
        x = self._check(x, y)
        y1 = F.one_hot(y, self.config.n_classes).to(x)
        ux = x @ self.U.T
        state = self._start(self._corrupt(y1, generator))
        rows = []
        for _ in range(self.walkback):
            state, logits = self.step(state, ux, generator)
            rows.append(F.cross_entropy(logits, y, reduction="none"))
        nll = torch.stack(rows)
        return {"loss": nll.mean(), "nll_first": nll[0].mean().detach()}

    @torch.no_grad()
    @checks_input
    def predict_proba(self, x: torch.Tensor, generator: torch.Generator | None = None,
                      n_steps: int | None = None) -> torch.Tensor:
        """(B, C): P(y | h^1_t) averaged over the chain's steps after the burn-in, the chain
        started from uniformly random labels with x clamped."""
        x = self._check(x)
        cfg = self.config
        steps = cfg.predict_steps if n_steps is None else n_steps
        burn = min(cfg.predict_burn_in, steps - 1)
        cls = torch.randint(cfg.n_classes, (len(x),), generator=generator, device=x.device)
        state = self._start(F.one_hot(cls, cfg.n_classes).to(x))
        ux = x @ self.U.T
        total = torch.zeros(len(x), cfg.n_classes, dtype=x.dtype, device=x.device)
        for t in range(steps):
            state, logits = self.step(state, ux, generator)
            if t >= burn:
                total += torch.softmax(logits, -1)
        return total / (steps - burn)

    @torch.no_grad()
    @checks_input
    def predict(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """argmax of :meth:`predict_proba`, (B,) int64. Without a ``generator`` the chain draws
        from one seeded with 0, so that a classifier's predictions are a function of x (its
        reported error reproducible)."""
        if generator is None:
            generator = torch.Generator(device=self.U.device).manual_seed(0)
        return self.predict_proba(x, generator).argmax(-1)
