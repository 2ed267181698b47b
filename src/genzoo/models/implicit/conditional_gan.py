"""Conditional generative adversarial net.

Mirza & Osindero (2014), "Conditional generative adversarial nets", arXiv:1411.1784, eq. (2):
generator and discriminator both receive the class label y (one-hot), and the value function
of the GAN (Goodfellow et al. 2014, eq. 1) becomes

    min_G max_D E_{x,y}[log D(x|y)] + E_{z,y}[log(1 - D(G(z|y)|y))],

the fake pairs using the labels of the data minibatch. The losses are those of
:class:`~genzoo.models.implicit.gan.GAN` on logits (non-saturating or minimax generator loss);
z and y are concatenated at the generator input and y is appended to the discriminator's input
(MLP) or as C constant feature maps (DCGAN). Sampling draws from p(x|y) for given labels, or
from sum_y p(y) p(x|y) with y uniform over the classes.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from genzoo.core.config import check
from genzoo.core.errors import ConfigError, InputError
from genzoo.core.registry import register_model
from genzoo.models.base import check_labels
from genzoo.models.implicit.dcgan import draw_noise, run_in_eval_mode, samples_or_empty
from genzoo.models.implicit.gan import GAN, GANConfig


@dataclasses.dataclass(frozen=True)
class ConditionalGANConfig(GANConfig):
    """:class:`GANConfig` plus ``n_classes`` (C, the labels are 0..C-1)."""

    n_classes: int = 10

    def validate(self) -> None:
        super().validate()
        check(self.n_classes >= 2, f"model.n_classes={self.n_classes} must be >= 2")


@register_model(
    "conditional-gan",
    config=ConditionalGANConfig,
    family="implicit",
    summary="conditional GAN: generator and discriminator given the class label, samples p(x|y)",
    paper="Mirza & Osindero 2014",
)
class ConditionalGAN(GAN):
    """GAN conditioned on class labels; ``loss`` needs ``y`` (B,) int64 (the Trainer passes it,
    ``needs_labels``)."""

    test_overrides = ("model.architecture=dcgan", "model.width=2", "model.n_latent=4")

    needs_labels = True

    def __init__(
        self, config: ConditionalGANConfig, generator: torch.Generator | None = None
    ) -> None:
        if not isinstance(config, ConditionalGANConfig):
            raise ConfigError(
                f"ConditionalGAN needs a ConditionalGANConfig, got {type(config).__name__}"
            )
        self.n_classes = config.n_classes
        super().__init__(config, generator)

    def _condition(self, y: torch.Tensor | None, n: int) -> torch.Tensor:
        if y is None:
            raise InputError(
                "conditional-gan learns from labels: call loss(x, y=labels) with (B,) int64 "
                "labels (the Trainer does so for labelled data sets: digits, mnist)"
            )
        check_labels(y, n, self.n_classes)
        return F.one_hot(y.to(self._ref().device), self.n_classes).to(self._ref())

    @torch.no_grad()
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """``d_fake_prob`` (mean D(G(z|y)|y) on 1000 fakes of uniform labels, fixed seed); the
        real-data figures of the GAN need labels the validation hook does not receive."""
        ref = self._ref()
        g = torch.Generator(device=ref.device).manual_seed(0)
        n = min(len(x), 1000)
        y = torch.randint(0, self.n_classes, (n,), generator=g, device=ref.device)
        c = self._condition(y, n)
        z = draw_noise(self.config.prior, n, self.config.n_latent, ref, g)
        return {"d_fake_prob": float(torch.sigmoid(self.logits(self.generate(z, c), c)).mean())}

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(n, D) draws of G(z|y): from p(x|y) for the given labels y (n,) int64, or with y
        uniform over the C classes (drawn from ``generator``) when y is None."""
        ref = self._ref()

        def draw(m: int) -> torch.Tensor:
            labels = y
            if labels is None:
                labels = torch.randint(0, self.n_classes, (m,), generator=generator,
                                       device=ref.device)
            c = self._condition(labels, m)
            z = draw_noise(self.config.prior, m, self.config.n_latent, ref, generator)
            return run_in_eval_mode(self.G, torch.cat([z, c], 1))

        return samples_or_empty(n, self.n_visible, ref, draw)
