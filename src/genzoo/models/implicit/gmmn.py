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
the kernel is :func:`genzoo.evaluation.mmd.kernel_matrix` with sigma = sqrt(s) (the
authors' code computes exp(-|x - x'|^2 / (2 s)) for these s). Since
d sqrt(u)/du is infinite at u = 0, the loss is sqrt(max(L_MMD^2, eps)) with ``eps`` = 1e-12
(the V-statistic is a squared RKHS norm, so it is >= 0 up to rounding). The paper's MNIST
generator is 10-64-256-256-1024-784 with ReLU and a sigmoid output (the default here);
``architecture=dcgan`` uses the DCGAN generator instead.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
from torch import nn

from genzoo.core.config import Config, check, check_nonnegative
from genzoo.core.errors import ConfigError
from genzoo.core.protocols import IMPLICIT
from genzoo.core.registry import register_model
from genzoo.core.validation import check_data
from genzoo.models.base import check_n_visible, require_n_visible
from genzoo.models.implicit.dcgan import (
    build_generator,
    draw_noise,
    image_side,
    normal_init,
    run_in_eval_mode,
    samples_or_empty,
)
from genzoo.ops.kernels import mmd

SQRT_EPS = 1e-12


def sqrt_mmd(x: torch.Tensor, y: torch.Tensor, bandwidths_sq: tuple[float, ...]) -> torch.Tensor:
    """sqrt(max(MMD_b^2, eps)) between x (n, D) and y (m, D) under Gaussian kernels of
    variances ``bandwidths_sq`` (the GMMN training loss, finite gradient everywhere)."""
    mmd2 = mmd(x, y, [math.sqrt(s) for s in bandwidths_sq], unbiased=False)
    return torch.sqrt(mmd2.clamp_min(SQRT_EPS))


@dataclasses.dataclass(frozen=True)
class GMMNConfig(Config):
    """Hyperparameters of the GMMN.

    ``n_visible``: D, filled from the data when None. ``n_latent``: J (paper: 10).
    ``prior``: "uniform" U[-1, 1] (paper) or "normal". ``architecture``: "mlp" with ReLU
    ``hidden`` layers (paper, bottom-up: 64, 256, 256, 1024) or "dcgan" (``width``
    channels). ``bandwidths_sq``: kernel variances sigma^2 (the paper's "sigma" values).
    ``init_std``: weights ~ N(0, init_std^2).
    """

    n_visible: int | None = None
    n_latent: int = 10
    prior: Literal["uniform", "normal"] = "uniform"
    architecture: Literal["mlp", "dcgan"] = "mlp"
    hidden: tuple[int, ...] = (64, 256, 256, 1024)
    width: int = 32
    bandwidths_sq: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0, 40.0, 80.0)
    init_std: float = 0.02

    def validate(self) -> None:
        check_n_visible(self.n_visible)
        check(self.n_latent > 0, f"model.n_latent={self.n_latent} must be positive")
        check(all(h > 0 for h in self.hidden), "model.hidden sizes must be > 0")
        check(self.width > 0, "model.width must be positive")
        check(
            len(self.bandwidths_sq) > 0 and all(s > 0 for s in self.bandwidths_sq),
            f"model.bandwidths_sq={self.bandwidths_sq}: give positive kernel variances",
        )
        check_nonnegative(self.init_std, "model.init_std")


@register_model(
    "gmmn",
    config=GMMNConfig,
    family="implicit",
    summary="generative moment matching network (sqrt MMD, mixture of Gaussian kernels)",
    paper="Li, Swersky & Zemel 2015",
)
class GMMN(nn.Module):
    """Generator ``G`` over D values in [0, 1], trained on sqrt MMD to the data minibatch.
    Device and dtype follow the parameters."""

    test_overrides = ("model.hidden=8", "model.n_latent=4")

    capabilities = frozenset({IMPLICIT})

    def __init__(self, config: GMMNConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(config, GMMNConfig):
            raise ConfigError(f"GMMN needs a GMMNConfig, got {type(config).__name__}")
        require_n_visible(config)
        if config.architecture == "dcgan":
            image_side(config.n_visible)
        self.config = config
        self.G = build_generator(
            config.architecture, config.n_latent, config.n_visible, config.hidden, config.width
        )
        normal_init(self, config.init_std, generator)

    @property
    def n_visible(self) -> int:
        return self.config.n_visible  # type: ignore[return-value]

    def _ref(self) -> torch.Tensor:
        return next(self.G.parameters())

    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """``loss`` = sqrt MMD_b between x (B, D) and B generator samples (kernel units, not
        nats), and ``mmd2`` (MMD_b^2, detached)."""
        check_data(x, self.n_visible, binary=False)
        ref = self._ref()
        x = x.to(ref)
        z = draw_noise(self.config.prior, len(x), self.config.n_latent, ref, generator)
        loss = sqrt_mmd(self.G(z), x, self.config.bandwidths_sq)
        return {"loss": loss, "mmd2": (loss.detach() ** 2)}

    @torch.no_grad()
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """``mmd2``: unbiased MMD^2 between up to 1000 held-out examples x (B, D) and as many
        samples (fixed seed), under the training kernels."""
        ref = self._ref()
        x = x[:1000].to(ref)
        s = self.sample(len(x), torch.Generator(device=ref.device).manual_seed(0))
        sig = [math.sqrt(v) for v in self.config.bandwidths_sq]
        return {"mmd2": float(mmd(s, x, sig))} if len(x) >= 2 else {}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, D) generator outputs g(z), z ~ prior, values in (0, 1)."""
        ref = self._ref()

        def draw(m: int) -> torch.Tensor:
            z = draw_noise(self.config.prior, m, self.config.n_latent, ref, generator)
            return run_in_eval_mode(self.G, z)

        return samples_or_empty(n, self.n_visible, ref, draw)
