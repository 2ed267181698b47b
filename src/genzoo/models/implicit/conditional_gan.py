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
from genzoo.core.errors import InputError
from genzoo.core.registry import register_model
from genzoo.models.base import check_labels, checks_input, train_recipe
from genzoo.models.implicit.gan import GAN, GANConfig
from genzoo.models.implicit.generator import run_in_eval_mode


@dataclasses.dataclass(frozen=True)
class ConditionalGANConfig(GANConfig):
    """:class:`GANConfig` plus ``n_classes`` (C, the labels are 0..C-1)."""

    n_classes: int = 10

    def validate(self) -> None:
        super().validate()
        check(self.n_classes >= 2, f"model.n_classes={self.n_classes} must be >= 2")


@register_model("conditional-gan", family="implicit", paper="Mirza & Osindero 2014")
class ConditionalGAN(GAN):
    """Conditional GAN: generator and discriminator given the class label, samples p(x|y).

    GAN conditioned on class labels; ``loss`` needs ``y`` (B,) int64 (the Trainer passes it,
    ``needs_labels``)."""

    config: ConditionalGANConfig
    config_class = ConditionalGANConfig
    train_defaults = train_recipe(optimizer="adam", lr=0.001, momentum=0.5)
    test_overrides = ("model.architecture=dcgan", "model.width=2", "model.n_latent=4")
    needs_labels = True

    @property
    def n_classes(self) -> int:  # type: ignore[override]
        """C, the one-hot label size both networks are conditioned on."""
        return self.config.n_classes

    def _condition(self, y: torch.Tensor | None, n: int) -> torch.Tensor:
        if y is None:
            raise InputError(
                "conditional-gan learns from labels: call loss(x, y=labels) with (B,) int64 "
                "labels (the Trainer does so for labelled data sets: digits, mnist)"
            )
        check_labels(y, n, self.n_classes)
        return F.one_hot(y.to(self._ref().device), self.n_classes).to(self._ref())

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """``d_fake_prob`` (mean D(G(z|y)|y) on 1000 fakes of uniform labels, fixed seed); the
        real-data figures of the GAN need labels the validation hook does not receive."""
        ref = self._ref()
        g = torch.Generator(device=ref.device).manual_seed(0)
        n = min(len(x), 1000)
        y = torch.randint(0, self.n_classes, (n,), generator=g, device=ref.device)
        c = self._condition(y, n)
        z = self.noise(n, g)
        return {"d_fake_prob": float(torch.sigmoid(self.logits(self.generate(z, c), c)).mean())}

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(n, D) draws of G(z|y): from p(x|y) for the given labels y (n,) int64, or with y
        uniform over the C classes (drawn from ``generator``) when y is None."""

        def draw(m: int) -> torch.Tensor:
            labels = y
            if labels is None:
                labels = torch.randint(0, self.n_classes, (m,), generator=generator,
                                       device=self.device)
            c = self._condition(labels, m)
            return run_in_eval_mode(self.G, torch.cat([self.noise(m, generator), c], 1))

        return self._samples(n, draw)
