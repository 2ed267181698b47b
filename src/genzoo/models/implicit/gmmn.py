"""Generative moment matching network.

Li, Swersky & Zemel (2015), "Generative moment matching networks", ICML. A generator x = g(z)
of noise z ~ U[-1, 1]^J is trained by minimising the maximum mean discrepancy between a
minibatch of its samples {x~_j} and a minibatch of data {x_i} (eq. 2, the biased V-statistic
of Gretton et al. 2012)::

    L_MMD^2 = 1/N^2 sum_ii' k(x_i, x_i') - 2/(NM) sum_ij k(x_i, x~_j) + 1/M^2 sum_jj' k(x~_j, x~_j')

with a mixture of Gaussian kernels of several bandwidths, and its square root as the
objective (the paper reports both as practical improvements). The paper writes each
kernel as exp(-|x - x'|^2 / (2 s)), so **its bandwidths s = 2, 5, 10, 20, 40, 80 (MNIST,
input space) are variances sigma^2**: ``bandwidths_sq`` holds them as written in the paper and
the kernel is :func:`genzoo.ops.kernels.kernel_matrix` with sigma = sqrt(s) (the
authors' code computes exp(-|x - x'|^2 / (2 s)) for these s). Since
d sqrt(u)/du is infinite at u = 0, the loss is sqrt(max(L_MMD^2, eps)) with ``eps`` = 1e-12
(the V-statistic is a squared RKHS norm, so it is >= 0 up to rounding). The paper's MNIST
generator is 10-64-256-256-1024-784 with ReLU and a sigmoid output (the default here);
``architecture=dcgan`` uses the DCGAN generator instead.

The authors' MNIST run (their released ``train.py``, ``mnist_mmd_input_space``): these six
equally weighted kernels, 40,000 updates on minibatches of 1000 data and 1000 samples, SGD with
learning rate 2 and momentum 0.9 on 1000 x sqrt MMD_b^2, the rate divided by 10 and the
momentum raised to 0.99 after 10,000 updates. Every part of it is a ``model`` or ``train``
setting here except that loss weight (the rows of ``benchmarks/rows`` state what they use).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
from torch import nn

from genzoo.core.config import check
from genzoo.core.registry import register_model
from genzoo.models.base import checks_input, train_recipe
from genzoo.models.implicit.dcgan import build_generator
from genzoo.models.implicit.generator import (
    GeneratorConfig,
    ImplicitGenerator,
    Labels,
    run_in_eval_mode,
)
from genzoo.ops.kernels import mmd

SQRT_EPS = 1e-12


def mmd2(
    x: torch.Tensor, y: torch.Tensor, bandwidths_sq: tuple[float, ...], unbiased: bool = True
) -> torch.Tensor:
    """MMD^2 (0-dim, kernel units) between x (n, D) and y (m, D) under the mixture of Gaussian
    kernels exp(-|a - b|^2 / (2 s)) of variances s in ``bandwidths_sq`` (sigma = sqrt(s));
    ``unbiased=False``: the V-statistic MMD_b^2 of eq. 2."""
    return mmd(x, y, [math.sqrt(s) for s in bandwidths_sq], unbiased=unbiased)


def sqrt_mmd(x: torch.Tensor, y: torch.Tensor, bandwidths_sq: tuple[float, ...]) -> torch.Tensor:
    """sqrt(max(MMD_b^2, eps)) between x (n, D) and y (m, D) under Gaussian kernels of
    variances ``bandwidths_sq`` (the GMMN training loss, finite gradient everywhere)."""
    return torch.sqrt(mmd2(x, y, bandwidths_sq, unbiased=False).clamp_min(SQRT_EPS))


@dataclasses.dataclass(frozen=True)
class MomentMatchingConfig(GeneratorConfig):
    """Fields of the moment-matching generators (GMMN, GMMN+AE): the MLP generator's ReLU
    ``hidden`` layers (paper, bottom-up: 64, 256, 256, 1024) and ``bandwidths_sq``, the
    kernel variances sigma^2 (the paper's "sigma" values; its input-space GMMN uses 2, 5, 10,
    20, 40, 80 on MNIST pixels, its GMMN+AE one variance, 1, on MNIST codes). ``init``:
    "normal", every weight ~ N(0, init_std^2) (DCGAN's); "lecun", every linear layer's
    weights ~ N(0, 1 / fan_in) (the authors' code, their networks' only initialisation);
    biases 0 either way."""

    hidden: tuple[int, ...] = (64, 256, 256, 1024)
    bandwidths_sq: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0, 40.0, 80.0)
    init: Literal["normal", "lecun"] = "normal"

    def validate(self) -> None:
        super().validate()
        check(all(h > 0 for h in self.hidden), "model.hidden sizes must be > 0")
        check(
            len(self.bandwidths_sq) > 0 and all(s > 0 for s in self.bandwidths_sq),
            f"model.bandwidths_sq={self.bandwidths_sq}: give positive kernel variances",
        )
        check(self.init in ("normal", "lecun"), f"model.init={self.init!r}: use normal or lecun")


class MomentMatchingGenerator(ImplicitGenerator):
    """Base of GMMN and GMMN+AE: a generator ``G`` trained on sqrt MMD_b (eq. 2) between its
    outputs and target vectors (pixels for a GMMN, codes for GMMN+AE) under the kernels of
    ``config.bandwidths_sq``."""

    config: MomentMatchingConfig

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """``config.init``: "normal" as :meth:`ImplicitGenerator.reset_parameters`; "lecun",
        every linear layer's W ~ N(0, 1 / fan_in), b = 0 (``generator=None``: torch's)."""
        if self.config.init == "normal":
            super().reset_parameters(generator)
            return
        for m in self.modules():
            if isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 1.0 / math.sqrt(m.in_features), generator=generator)
                m.bias.zero_()

    def moment_matching_loss(self, target: torch.Tensor,
                             generator: torch.Generator | None = None) -> torch.Tensor:
        """sqrt MMD_b (0-dim, kernel units) between len(target) outputs of ``G`` and
        ``target`` (B, K), the training loss of ``G``."""
        return sqrt_mmd(self.G(self.noise(len(target), generator)), target,
                        self.config.bandwidths_sq)

    def held_out_mmd2(self, target: torch.Tensor) -> float | None:
        """Unbiased MMD^2 between the held-out ``target`` (B, K) and as many outputs of ``G``
        (noise from a generator seeded 0), under the training kernels; None below 2 rows."""
        if len(target) < 2:
            return None
        z = self.noise(len(target), torch.Generator(device=target.device).manual_seed(0))
        return float(mmd2(run_in_eval_mode(self.G, z), target, self.config.bandwidths_sq))


@dataclasses.dataclass(frozen=True)
class GMMNConfig(MomentMatchingConfig):
    """Hyperparameters of the GMMN (``n_visible``, ``n_latent`` (paper: 10), ``prior``
    (paper: "uniform"), ``init_std``, ``hidden``, ``bandwidths_sq``: see
    :class:`MomentMatchingConfig`). ``architecture``: "mlp" (paper) or "dcgan" (``width``
    channels)."""

    architecture: Literal["mlp", "dcgan"] = "mlp"
    width: int = 32

    def validate(self) -> None:
        super().validate()
        check(self.width > 0, "model.width must be positive")
        check(self.architecture == "mlp" or self.init == "normal",
              f"model.init={self.init} applies to model.architecture=mlp only")


@register_model("gmmn", family="implicit", paper="Li, Swersky & Zemel 2015")
class GMMN(MomentMatchingGenerator):
    """Generative moment matching network (sqrt MMD, mixture of Gaussian kernels).

    Generator ``G`` over D values in [0, 1], trained on sqrt MMD to the data minibatch.
    Device and dtype follow the parameters."""

    config: GMMNConfig
    config_class = GMMNConfig
    train_defaults = train_recipe(optimizer="adam", lr=0.001)
    test_overrides = ("model.hidden=8", "model.n_latent=4")

    def __init__(self, config: GMMNConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        self.G = build_generator(
            config.architecture, config.n_latent, config.n_visible, config.hidden, config.width
        )
        self.reset_parameters(generator)

    def _phase_loss(
        self, x: torch.Tensor, phase: str | None, generator: torch.Generator | None, y: Labels
    ) -> dict[str, torch.Tensor]:
        """``loss`` = sqrt MMD_b between x (B, D) and B generator samples (kernel units, not
        nats), and ``mmd2`` (MMD_b^2, detached)."""
        loss = self.moment_matching_loss(x, generator)
        return {"loss": loss, "mmd2": (loss.detach() ** 2)}

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """``mmd2``: unbiased MMD^2 between up to 1000 held-out examples x (B, D) and as many
        samples (fixed seed), under the training kernels."""
        value = self.held_out_mmd2(x[:1000].to(self._ref()))
        return {} if value is None else {"mmd2": value}
