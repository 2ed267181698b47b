"""Logistic autoregressive network, also called the fully visible sigmoid belief network (FVSBN).

Frey (1998), "Graphical models for machine learning and digital communication" (the logistic
autoregressive network); Neal (1992), "Connectionist learning of belief networks" (sigmoid
belief networks); used as the FVSBN baseline by Larochelle & Murray (2011), "The neural
autoregressive distribution estimator", table 1 (97.45 nats on binarized MNIST).

Binary x in {0,1}^D in index order, weights W (D, D) of which only the strictly lower triangle
is used, output biases b (D,)::

    p(x_d = 1 | x_<d) = sigmoid(b_d + sum_{j<d} W_dj x_j)
    log p(x) = sum_d [x_d l_d - softplus(l_d)],    l = b + x (W * M)^T

where M is the strictly lower-triangular mask (M_dj = 1 iff j < d). The mask multiplies W in
the forward pass, so W's upper triangle stays whatever the initialiser put there but never
receives a gradient nor affects the model; the weights are never edited in place to enforce it.
Each conditional is a logistic regression on the preceding variables, so the log-likelihood is
concave in (W, b).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from genzoo.core.registry import register_model
from genzoo.models.autoregressive.base import (
    AutoregressiveConfig,
    BinaryAutoregressive,
    check_sample_count,
    uniforms,
)
from genzoo.models.base import train_recipe
from genzoo.nn.init import normal_or_zero_


@dataclasses.dataclass(frozen=True)
class FVSBNConfig(AutoregressiveConfig):
    """Hyperparameters of the FVSBN.

    ``n_visible`` is filled from the data by the CLI when left ``None``. ``init_std``: W ~
    N(0, init_std^2); 0 (the default) is a fine start because the objective is concave.
    """

    init_std: float = 0.0


@register_model(
    "fvsbn", family="autoregressive", paper="Frey 1998; Neal 1992; Larochelle & Murray 2011 (FVSBN baseline)"
)
class FVSBN(BinaryAutoregressive):
    """Logistic autoregressive network (fully visible sigmoid belief net), exact likelihood.

    Logistic autoregressive network over D binary variables in index order.
    """

    config_class = FVSBNConfig
    train_defaults = train_recipe(
        optimizer="adam", lr=0.001, lr_schedule="linear", lr_final_factor=0.1,
    )
    test_overrides = ("model.init_std=0.01",)

    def __init__(self, config: FVSBNConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        d = config.n_visible
        self.W = nn.Parameter(torch.zeros(d, d))
        self.b = nn.Parameter(torch.zeros(d))
        # A function of D alone, rebuilt with the model, so checkpoints need not carry it.
        self.register_buffer("mask", torch.ones(d, d).tril_(-1), persistent=False)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """W ~ N(0, init_std^2), b = 0 (``init_from_data`` then sets b from the data)."""
        with torch.no_grad():
            normal_or_zero_(self.W, self.config.init_std, generator)
            self.b.zero_()

    def masked_weight(self) -> torch.Tensor:
        """W * M (D, D): the weights the model uses, zero on and above the diagonal."""
        return self.W * self.mask

    def conditional_logits(self, x: torch.Tensor) -> torch.Tensor:
        """l = b + x (W * M)^T, (B, D) -> (B, D); l[:, d] depends on x[:, :d] only."""
        return torch.addmm(self.b, x, self.masked_weight().T)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact, independent draws (n, D) by ancestral sampling in index order, O(D^2) per
        draw: variable d's logit is b_d + x_<d . W[d, :d]."""
        check_sample_count(n)
        d = self.n_visible
        u = uniforms(n, d, self.b, generator)
        x = torch.zeros(n, d, device=self.b.device, dtype=self.b.dtype)
        for i in range(d):
            logit = self.b[i] + x[:, :i] @ self.W[i, :i]
            x[:, i] = (u[:, i] < torch.sigmoid(logit)).to(x.dtype)
        return x
