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

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.config import check
from genzoo.core.protocols import Phase
from genzoo.core.registry import register_model
from genzoo.models.base import checks_input, train_recipe
from genzoo.models.implicit.dcgan import MLPGenerator
from genzoo.models.implicit.generator import ImplicitGenerator, Labels
from genzoo.models.implicit.gmmn import MomentMatchingConfig, mmd2, sqrt_mmd


@dataclasses.dataclass(frozen=True)
class GMMNAEConfig(MomentMatchingConfig):
    """Hyperparameters of GMMN+AE.

    ``ae_hidden``: auto-encoder hidden size (paper 1024), ``n_code``: code size H (paper 32).
    ``ae_steps``: Trainer steps spent on the auto-encoder before the generator trains (> 0).
    ``n_latent``, ``prior``, ``hidden``: the code generator (paper, bottom-up: 10 -> 64, 256,
    256, 1024 -> H). ``bandwidths_sq``: code-space kernel variances sigma^2. ``init_std``:
    weights ~ N(0, init_std^2).
    """

    ae_hidden: int = 1024
    n_code: int = 32
    ae_steps: int = 5000
    bandwidths_sq: tuple[float, ...] = (0.25, 1.0, 4.0, 16.0)

    def validate(self) -> None:
        super().validate()
        check(self.ae_hidden > 0 and self.n_code > 0, "model.ae_hidden and model.n_code must be > 0")
        check(self.ae_steps > 0, "model.ae_steps must be > 0 (the auto-encoder trains first)")


@register_model("gmmn-ae", family="implicit", paper="Li, Swersky & Zemel 2015")
class GMMNAE(ImplicitGenerator):
    """GMMN matching moments in a trained auto-encoder's code space, samples decoded.

    Auto-encoder (``encoder``, ``decoder``) and code generator ``G``; x (B, D) in [0, 1].
    Device and dtype follow the parameters."""

    config: GMMNAEConfig
    config_class = GMMNAEConfig
    train_defaults = train_recipe(optimizer="adam", lr=0.001)
    test_overrides = ("model.ae_hidden=8", "model.n_code=4", "model.hidden=8", "model.ae_steps=2")

    def __init__(self, config: GMMNAEConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        d, a, h = config.n_visible, config.ae_hidden, config.n_code
        self.encoder = nn.Sequential(nn.Linear(d, a), nn.Sigmoid(), nn.Linear(a, h), nn.Sigmoid())
        # The decoder ends in logits so the reconstruction loss is computed on them.
        self.decoder = nn.Sequential(nn.Linear(h, a), nn.Sigmoid(), nn.Linear(a, d))
        self.G = MLPGenerator(config.n_latent, config.hidden, h)
        self.reset_parameters(generator)

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

    def _reconstruction(self, x: torch.Tensor) -> torch.Tensor:
        """-sum_d [x_d log x^_d + (1 - x_d) log(1 - x^_d)], x^ = d(f(x)), mean over the batch
        x (B, D) (nats per example), computed on the decoder's logits."""
        logits = self.decoder(self.encode(x))
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1).mean()

    def _phase_loss(
        self, x: torch.Tensor, phase: str | None, generator: torch.Generator | None, y: Labels
    ) -> dict[str, torch.Tensor]:
        """"ae" (the default): reconstruction cross-entropy, nats per example; "gmmn": sqrt
        MMD_b between B generated codes and the codes of x (encoder fixed), kernel units."""
        if phase == "ae":
            return {"loss": self._reconstruction(x)}
        with torch.no_grad():
            h = self.encode(x)
        return {"loss": sqrt_mmd(self.G(self.noise(len(x), generator)), h,
                                 self.config.bandwidths_sq)}

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """``reconstruction``: cross-entropy of held-out x (B, D), nats per example;
        ``code_mmd2``: unbiased MMD^2 between up to 1000 held-out codes and as many generated
        codes (fixed seed)."""
        x = x[:1000].to(self._ref())
        out = {"reconstruction": float(self._reconstruction(x))}
        if len(x) >= 2:
            z = self.noise(len(x), torch.Generator(device=x.device).manual_seed(0))
            out["code_mmd2"] = float(mmd2(self.G(z), self.encode(x), self.config.bandwidths_sq))
        return out

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, D) decoded generated codes d(g(z)), values in (0, 1)."""
        return self._samples(n, lambda m: self.decode(self.G(self.noise(m, generator))))
