"""Generative moment matching network in the code space of an auto-encoder (GMMN+AE).

Li, Swersky & Zemel (2015), "Generative moment matching networks", ICML, section 3.2 and
figure 1(b): first train an auto-encoder (encoder f, decoder d, sigmoid code h = f(x)); then
train a GMMN generator h~ = g(z) to match the codes of the data by minimising sqrt MMD^2
between {g(z_j)} and {f(x_i)} (eq. 2, see :mod:`genzoo.models.implicit.gmmn`); sample by
decoding, x = d(g(z)). Our auto-encoder is kept simple: one sigmoid hidden layer per side
(``ae_hidden``, default 1024, code size ``n_code`` default 32, our reading of the paper's
MNIST sizes, not re-verified), no dropout or layer-wise pre-training, trained on the Bernoulli
cross-entropy -sum_d [x_d log x^_d + (1 - x_d) log(1 - x^_d)], computed on logits.

Training contract: two phases in sequence, each with its own optimizer: "ae" updates the
auto-encoder for the first ``ae_steps`` Trainer steps, then "gmmn" updates the generator on the
codes of the (now fixed) encoder for the rest of the run. Kernel bandwidths in code space
(``bandwidths_sq``, variances sigma^2 as in the paper's notation) are our choice for codes in
[0, 1]^H; the paper does not list its code-space values with the architecture.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.config import Config, check, check_nonnegative
from genzoo.core.errors import ConfigError, GenzooError
from genzoo.core.protocols import IMPLICIT, Phase
from genzoo.core.registry import register_model
from genzoo.core.validation import check_data
from genzoo.models.base import check_n_visible, require_n_visible
from genzoo.models.implicit.dcgan import MLPGenerator, draw_noise, normal_init, samples_or_empty
from genzoo.models.implicit.gmmn import sqrt_mmd
from genzoo.ops.kernels import mmd


@dataclasses.dataclass(frozen=True)
class GMMNAEConfig(Config):
    """Hyperparameters of GMMN+AE.

    ``n_visible``: D, filled from the data when None. ``ae_hidden``: auto-encoder hidden
    size (paper 1024), ``n_code``: code size H (paper 32). ``ae_steps``: Trainer steps spent
    on the auto-encoder before the generator trains (> 0). ``n_latent``, ``prior``,
    ``hidden``: the code generator (paper, bottom-up: 10 -> 64, 256, 256, 1024 -> H).
    ``bandwidths_sq``: code-space kernel variances sigma^2. ``init_std``: weights ~ N(0,
    init_std^2).
    """

    n_visible: int | None = None
    ae_hidden: int = 1024
    n_code: int = 32
    ae_steps: int = 5000
    n_latent: int = 10
    prior: Literal["uniform", "normal"] = "uniform"
    hidden: tuple[int, ...] = (64, 256, 256, 1024)
    bandwidths_sq: tuple[float, ...] = (0.25, 1.0, 4.0, 16.0)
    init_std: float = 0.02

    def validate(self) -> None:
        check_n_visible(self.n_visible)
        check(self.ae_hidden > 0 and self.n_code > 0, "model.ae_hidden and model.n_code must be > 0")
        check(self.ae_steps > 0, "model.ae_steps must be > 0 (the auto-encoder trains first)")
        check(self.n_latent > 0, f"model.n_latent={self.n_latent} must be positive")
        check(all(h > 0 for h in self.hidden), "model.hidden sizes must be > 0")
        check(
            len(self.bandwidths_sq) > 0 and all(s > 0 for s in self.bandwidths_sq),
            f"model.bandwidths_sq={self.bandwidths_sq}: give positive kernel variances",
        )
        check_nonnegative(self.init_std, "model.init_std")


@register_model(
    "gmmn-ae",
    config=GMMNAEConfig,
    family="implicit",
    summary="GMMN matching moments in a trained auto-encoder's code space, samples decoded",
    paper="Li, Swersky & Zemel 2015",
)
class GMMNAE(nn.Module):
    """Auto-encoder (``encoder``, ``decoder``) and code generator ``G``; x (B, D) in [0, 1].
    Device and dtype follow the parameters."""

    test_overrides = ("model.ae_hidden=8", "model.n_code=4", "model.hidden=8", "model.ae_steps=2")

    capabilities = frozenset({IMPLICIT})

    def __init__(self, config: GMMNAEConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(config, GMMNAEConfig):
            raise ConfigError(f"GMMNAE needs a GMMNAEConfig, got {type(config).__name__}")
        require_n_visible(config)
        self.config = config
        d, a, h = config.n_visible, config.ae_hidden, config.n_code
        self.encoder = nn.Sequential(nn.Linear(d, a), nn.Sigmoid(), nn.Linear(a, h), nn.Sigmoid())
        # The decoder ends in logits so the reconstruction loss is computed on them.
        self.decoder = nn.Sequential(nn.Linear(h, a), nn.Sigmoid(), nn.Linear(a, d))
        self.G = MLPGenerator(config.n_latent, config.hidden, h)
        normal_init(self, config.init_std, generator)

    @property
    def n_visible(self) -> int:
        return self.config.n_visible  # type: ignore[return-value]

    def _ref(self) -> torch.Tensor:
        return self.encoder[0].weight

    def phases(self) -> list[Phase]:
        """("ae", auto-encoder parameters, 1 update while step < ae_steps), then ("gmmn",
        generator parameters, 1 update once step >= ae_steps)."""
        n = self.config.ae_steps
        ae = [*self.encoder.parameters(), *self.decoder.parameters()]
        return [
            Phase("ae", ae, lambda step: 1 if step < n else 0),
            Phase("gmmn", list(self.G.parameters()), lambda step: 0 if step < n else 1),
        ]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes h = f(x) (B, H) in (0, 1) for x (B, D)."""
        return self.encoder(x)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """Decoder means (B, D) in (0, 1) for codes h (B, H)."""
        return torch.sigmoid(self.decoder(h))

    def loss(
        self,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
        phase: str | None = None,
        y: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """"ae" (default): reconstruction cross-entropy, nats per example; "gmmn": sqrt MMD_b
        between B generated codes and the codes of x (encoder fixed), kernel units."""
        phase = phase or "ae"
        check_data(x, self.n_visible, binary=False)
        x = x.to(self._ref())
        if phase == "ae":
            logits = self.decoder(self.encode(x))
            rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1).mean()
            return {"loss": rec}
        if phase != "gmmn":
            raise GenzooError(f"GMMNAE.loss: phase={phase!r}; use 'ae' or 'gmmn'")
        with torch.no_grad():
            h = self.encode(x)
        z = draw_noise(self.config.prior, len(x), self.config.n_latent, h, generator)
        return {"loss": sqrt_mmd(self.G(z), h, self.config.bandwidths_sq)}

    @torch.no_grad()
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """``reconstruction``: cross-entropy of held-out x (B, D), nats per example;
        ``code_mmd2``: unbiased MMD^2 between up to 1000 held-out codes and as many generated
        codes (fixed seed)."""

        x = x[:1000].to(self._ref())
        rec = F.binary_cross_entropy_with_logits(
            self.decoder(self.encode(x)), x, reduction="none").sum(1).mean()
        out = {"reconstruction": float(rec)}
        if len(x) >= 2:
            g = torch.Generator(device=x.device).manual_seed(0)
            z = draw_noise(self.config.prior, len(x), self.config.n_latent, x, g)
            sig = [math.sqrt(s) for s in self.config.bandwidths_sq]
            out["code_mmd2"] = float(mmd(self.G(z), self.encode(x), sig))
        return out

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, D) decoded generated codes d(g(z)), values in (0, 1)."""
        ref = self._ref()

        def draw(m: int) -> torch.Tensor:
            return self.decode(self.G(draw_noise(self.config.prior, m, self.config.n_latent, ref,
                                                 generator)))

        return samples_or_empty(n, self.n_visible, ref, draw)
