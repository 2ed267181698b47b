"""Discriminative / hybrid restricted Boltzmann machine (ClassRBM).

Larochelle & Bengio (2008), "Classification using discriminative restricted Boltzmann
machines", ICML.

A joint RBM over the input x in [0,1]^D, the one-hot label e_y (C classes) and hidden units
h in {0,1}^H, with W (D, H), U (C, H), biases b (D,), c (H,), d (C,)::

    E(y, x, h) = -x^T W h - b^T x - c^T h - d_y - (U h)_y
    p(y | x)   = exp(d_y + sum_j softplus(c_j + U_yj + (x^T W)_j))
                 / sum_y' exp(d_y' + sum_j softplus(c_j + U_y'j + (x^T W)_j))     (exact)
    F(x, y)    = -b^T x - d_y - sum_j softplus(c_j + U_yj + (x^T W)_j)
    F(x)       = -log sum_y exp(-F(x, y))

Objectives (per example, nats): discriminative L_disc = -log p(y | x), its exact gradient by
autograd; generative L_gen = -log p(x, y), its gradient estimated by CD-k on the joint chain
(h ~ p(h | x, y), then y ~ softmax(d + U h) and x ~ sigmoid(b + W h)), written as the surrogate
F(x, y) - F(x^-, y^-) with the negative sample detached; hybrid L = L_disc + alpha L_gen
(the paper's eq. for the hybrid objective; alpha = 0 gives the purely discriminative RBM).
Unlabelled batches (``loss(x)`` without y) get the unsupervised term of the paper's
semi-supervised objective, the CD surrogate of -log p(x) = F(x) + log Z.

Energy contract: the latent state of x is (h, y); ``energy(x, hy)`` takes hy = [h, e_y]
(B, H + C), ``free_energy(x)`` sums out both, and ``gibbs_step`` draws y ~ p(y | x) exactly,
h ~ p(h | x, y), then x ~ p(x | h), which leaves p(x) invariant.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.config import check, check_nonnegative
from genzoo.core.errors import GenzooError
from genzoo.core.protocols import ENERGY
from genzoo.core.registry import register_model
from genzoo.models.base import (
    GenzooModel,
    VisibleConfig,
    check_labels,
    checks_input,
    train_recipe,
    trusted_input,
)
from genzoo.models.boltzmann._ops import bernoulli, data_logits, softplus
from genzoo.nn.init import normal_or_zero_
from genzoo.ops.classification import classification_error


@dataclasses.dataclass(frozen=True)
class DiscRBMConfig(VisibleConfig):
    """``n_visible`` from the data; ``n_classes`` label values 0..C-1. ``alpha``: weight of the
    generative term in the hybrid objective (0: discriminative RBM). ``k``: CD-k of the
    generative term. ``init_std``: W, U ~ N(0, init_std^2). ``sample_burn_in``: Gibbs sweeps
    of :meth:`DiscRBM.sample`."""

    n_hidden: int = 500
    n_classes: int = 10
    alpha: float = 0.01
    k: int = 1
    init_std: float = 0.01
    sample_burn_in: int = 1000

    def validate(self) -> None:
        super().validate()
        check(self.n_hidden > 0, f"model.n_hidden={self.n_hidden} must be positive")
        check(self.n_classes >= 2, f"model.n_classes={self.n_classes} must be >= 2")
        check_nonnegative(self.alpha, "model.alpha")
        check(self.k >= 1, f"model.k={self.k} must be >= 1")
        check_nonnegative(self.init_std, "model.init_std")
        check(self.sample_burn_in >= 0, "model.sample_burn_in must be >= 0")


@register_model("disc-rbm", family="boltzmann", paper="Larochelle & Bengio 2008")
class DiscRBM(GenzooModel):
    """Discriminative / hybrid RBM over input and one-hot label, exact p(y|x).

    Hybrid RBM classifier. x (B, D) in [0, 1]; y (B,) int64 in [0, C).
    """

    test_overrides = ("model.n_hidden=8", "model.sample_burn_in=5")

    config_class = DiscRBMConfig
    train_defaults = train_recipe(
        optimizer="sgd", lr=0.05, lr_schedule="linear", lr_final_factor=0.1,
    )
    capabilities = frozenset({ENERGY})
    needs_labels = True
    binary_input = False
    input_range = (0.0, 1.0)  # pixel intensities or binary values

    def __init__(self, config: DiscRBMConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        d, h, n_c = config.n_visible, config.n_hidden, config.n_classes
        self.W = nn.Parameter(torch.zeros(d, h))
        self.U = nn.Parameter(torch.zeros(n_c, h))
        self.b = nn.Parameter(torch.zeros(d))
        self.c = nn.Parameter(torch.zeros(h))
        self.d = nn.Parameter(torch.zeros(n_c))
        with torch.no_grad():
            normal_or_zero_(self.W, config.init_std, generator)
            normal_or_zero_(self.U, config.init_std, generator)

    def _labels(self, y: torch.Tensor, n: int) -> torch.Tensor:
        return check_labels(y, n, self.config.n_classes)

    # -- energies and p(y|x) ------------------------------------------------------------------

    def class_logits(self, x: torch.Tensor) -> torch.Tensor:
        """-F(x, y) + b^T x for every class, (B, D) -> (B, C): log p(y | x) up to a constant."""
        a = torch.addmm(self.c, x, self.W)  # (B, H)
        return self.d + softplus(a.unsqueeze(1) + self.U.unsqueeze(0)).sum(-1)

    def log_p_y_given_x(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(y | x), (B, D) -> (B, C) in nats."""
        return torch.log_softmax(self.class_logits(x.to(self.W.dtype)), dim=-1)

    def joint_free_energy(self, x: torch.Tensor, y_onehot: torch.Tensor) -> torch.Tensor:
        """F(x, y) = -log sum_h exp(-E(y, x, h)). x (B, D), y_onehot (B, C) -> (B,)."""
        a = torch.addmm(self.c, x, self.W) + y_onehot @ self.U
        return -(x @ self.b) - y_onehot @ self.d - softplus(a).sum(-1)

    @checks_input
    def free_energy(self, x: torch.Tensor) -> torch.Tensor:
        """F(x) = -log sum_{y,h} exp(-E(y, x, h)), (B, D) -> (B,) nats."""
        return -(x @ self.b) - torch.logsumexp(self.class_logits(x), dim=-1)

    @checks_input
    def energy(self, x: torch.Tensor, hy: torch.Tensor) -> torch.Tensor:
        """E(y, x, h) with hy = [h, e_y] (B, H + C) -> (B,)."""
        h, y = hy[:, : self.config.n_hidden], hy[:, self.config.n_hidden :]
        return (
            -((x @ self.W) * h).sum(-1)
            - x @ self.b
            - h @ self.c
            - y @ self.d
            - (y @ self.U * h).sum(-1)
        )

    # -- prediction ---------------------------------------------------------------------------

    @torch.no_grad()
    @checks_input
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """argmax_y p(y | x), (B, D) -> (B,) int64."""
        return self.class_logits(x.to(self.W.dtype)).argmax(-1)

    def classification_error(self, x: torch.Tensor, y: torch.Tensor, chunk: int = 2000) -> float:
        """Fraction of examples whose predicted class differs from y (B,)."""
        return classification_error(self, x, y, chunk)

    # -- sampling -----------------------------------------------------------------------------

    def _sample_y(self, logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        # Inverse-CDF draw of a categorical, (B, C) logits -> (B, C) one-hot.
        p = torch.softmax(logits, dim=-1)
        u = torch.rand(len(p), 1, generator=generator, device=p.device, dtype=p.dtype)
        idx = (p.cumsum(-1) < u).sum(-1).clamp_(max=p.shape[-1] - 1)
        return F.one_hot(idx, p.shape[-1]).to(p.dtype)

    @torch.no_grad()
    @checks_input
    def gibbs_step(
        self, v: torch.Tensor, beta: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """x -> (y ~ p_beta(y | x), h ~ p_beta(h | x, y)) -> x ~ p_beta(x | h) for the tempered
        joint p_beta(x, y, h) ∝ exp(-beta E); leaves its x-marginal invariant. (B, D) -> (B, D)."""
        a = torch.addmm(self.c, v, self.W)
        logits = self.d + softplus(beta * (a.unsqueeze(1) + self.U.unsqueeze(0))).sum(-1) / beta
        y = self._sample_y(beta * logits, generator)
        h = bernoulli(torch.sigmoid(beta * (a + y @ self.U)), generator)
        return bernoulli(torch.sigmoid(beta * torch.addmm(self.b, h, self.W.T)), generator)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n inputs (n, D) after ``sample_burn_in`` Gibbs sweeps from the base rate sigmoid(b)."""
        if n < 0:
            raise GenzooError(f"sample(n={n}): n must be >= 0")
        v = bernoulli(torch.sigmoid(self.b).expand(n, -1), generator)
        with trusted_input():  # the chain's own states: no check per step
            for _ in range(self.config.sample_burn_in):
                v = self.gibbs_step(v, generator=generator)
        return v

    @torch.no_grad()
    def sample_class(
        self, y: torch.Tensor, steps: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Inputs drawn from p(x | y) with the label clamped, y (n,) -> (n, D) binary."""
        y1 = F.one_hot(y, self.config.n_classes).to(self.W.dtype)
        v = bernoulli(torch.sigmoid(self.b).expand(len(y), -1), generator)
        for _ in range(self.config.sample_burn_in if steps is None else steps):
            h = bernoulli(torch.sigmoid(torch.addmm(self.c, v, self.W) + y1 @ self.U), generator)
            v = bernoulli(torch.sigmoid(torch.addmm(self.b, h, self.W.T)), generator)
        return v

    # -- learning -----------------------------------------------------------------------------

    @checks_input(nonempty=True)
    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None,
             y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Hybrid objective on x (B, D), y (B,): ``loss`` = mean -log p(y|x) + alpha (CD
        surrogate of -log p(x, y)); ``nll_y_given_x`` (nats per example) and ``error``
        (batch classification error) are logged. Without labels (y None) the loss is the
        unsupervised term of the paper's semi-supervised objective, the CD surrogate of
        -log p(x) = F(x) - log Z (negative sample by ``gibbs_step``)."""
        x = x.to(self.W.dtype)
        if y is None:
            with torch.no_grad():
                v = x
                for _ in range(self.config.k):
                    v = self.gibbs_step(v, generator=generator)
            gap = self.free_energy(x).mean() - self.free_energy(v).mean()
            return {"loss": gap, "free_energy_gap": gap.detach()}
        y = self._labels(y, len(x))
        logp = self.log_p_y_given_x(x)
        disc = -logp.gather(1, y.unsqueeze(1)).mean()
        out = {"nll_y_given_x": disc.detach(), "error": (logp.argmax(-1) != y).to(x.dtype).mean()}
        loss = disc
        if self.config.alpha > 0:
            y1 = F.one_hot(y, self.config.n_classes).to(x.dtype)
            with torch.no_grad():
                v, yv = x, y1
                for _ in range(self.config.k):
                    a = torch.addmm(self.c, v, self.W) + yv @ self.U
                    h = bernoulli(torch.sigmoid(a), generator)
                    v = bernoulli(torch.sigmoid(torch.addmm(self.b, h, self.W.T)), generator)
                    yv = self._sample_y(torch.addmm(self.d, h, self.U.T), generator)
            gen = self.joint_free_energy(x, y1).mean() - self.joint_free_energy(v, yv).mean()
            out["free_energy_gap"] = gen.detach()
            loss = loss + self.config.alpha * gen
        out["loss"] = loss
        return out

    @torch.no_grad()
    @checks_input
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """b = logits of the clamped training marginals (Hinton's guide)."""
        self.b.copy_(data_logits(x_train.to(self.b)))
