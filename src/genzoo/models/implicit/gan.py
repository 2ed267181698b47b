"""Generative adversarial network.

Goodfellow, Pouget-Abadie, Mirza, Xu, Warde-Farley, Ozair, Courville & Bengio (2014),
"Generative adversarial nets", NIPS. A generator G maps noise z ~ p_z to x = G(z); a
discriminator D(x) = sigmoid(l(x)) (l: logit) tells data from samples. The value function
(eq. 1)::

    min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]

Algorithm 1 alternates k steps on D (ascending V) with one step on G. Written on logits with
log sigmoid(l) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l), so no probability is
ever rounded to 0 or 1:

    discriminator loss     softplus(-l(x)) + softplus(l(G(z)))           (= -V, minimised)
    generator, minimax     -softplus(l(G(z)))                            (= log(1 - D(G(z))))
    generator, non-sat.    softplus(-l(G(z)))                            (= -log D(G(z)))

The non-saturating loss (section 3: G maximises log D(G(z)) instead of minimising
log(1 - D(G(z)))) has the same fixed point and strong gradients early in learning, when D
rejects samples with high confidence; ``generator_loss`` selects either.

Training contract: :meth:`GAN.phases` returns the discriminator phase ("d", k updates) then
the generator phase ("g", 1 update); the Trainer runs them in turn on each minibatch, each
with its own optimizer. The k discriminator updates of one Trainer step share the data
minibatch and draw fresh noise each (Algorithm 1 draws fresh data too; the paper's
experiments use k = 1, where the two agree). Networks: MLPs or the DCGAN pair
(:mod:`genzoo.models.implicit.dcgan`), set by ``architecture``.

The paper's MNIST discriminator (section 5) uses maxout units and dropout: ``d_activation``
"maxout" with ``d_maxout_pieces`` pieces, ``d_dropout`` / ``d_input_dropout`` (MLP only; see
:mod:`genzoo.models.implicit._maxout`). Dropout acts in :meth:`GAN.loss` in training mode, in
both phases (the generator is trained against the dropped-out D, as in the authors' code),
with masks from the loss's ``generator``; validation and sampling never drop anything.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.config import Config, check, check_nonnegative
from genzoo.core.errors import ConfigError, GenzooError
from genzoo.core.protocols import IMPLICIT
from genzoo.core.registry import register_model
from genzoo.core.validation import check_data
from genzoo.models._common import check_n_visible, require_n_visible
from genzoo.models.implicit._maxout import ACTIVATIONS, DropoutMLPDiscriminator
from genzoo.models.implicit.dcgan import (
    ARCHITECTURES,
    build_discriminator,
    build_generator,
    discriminate,
    draw_noise,
    image_side,
    normal_init,
    run_in_eval_mode,
    samples_or_empty,
)
from genzoo.training.schedule import Phase

PHASES = ("d", "g")


@dataclasses.dataclass(frozen=True)
class GANConfig(Config):
    """Hyperparameters of the GAN.

    ``n_visible``: D, filled from the data when None. ``n_latent``: size of z. ``prior``:
    "normal" N(0, I) or "uniform" U[-1, 1]. ``architecture``: "mlp" (``g_hidden``,
    ``d_hidden`` ReLU / LeakyReLU(0.2) layers) or "dcgan" (``width`` channels, square images
    with side divisible by 4). ``generator_loss``: "non_saturating" or "minimax". ``d_steps``:
    k discriminator updates per generator update. ``init_std``: weights ~ N(0, init_std^2)
    (DCGAN: 0.02). Train DCGAN-style with ``train.optimizer=adam train.lr=2e-4
    train.momentum=0.5``. MLP discriminator only: ``d_activation`` "leaky_relu" or "maxout"
    (``d_maxout_pieces`` linear pieces per unit); ``d_dropout``: dropout rate on the hidden
    units of D, ``d_input_dropout``: on its input (the paper's MNIST setup: maxout, 5 pieces,
    0.5 and 0.2).
    """

    n_visible: int | None = None
    n_latent: int = 100
    prior: Literal["normal", "uniform"] = "normal"
    architecture: Literal["mlp", "dcgan"] = "mlp"
    g_hidden: tuple[int, ...] = (256, 256)
    d_hidden: tuple[int, ...] = (256, 256)
    width: int = 32
    generator_loss: Literal["non_saturating", "minimax"] = "non_saturating"
    d_steps: int = 1
    init_std: float = 0.02
    d_activation: Literal["leaky_relu", "maxout"] = "leaky_relu"
    d_maxout_pieces: int = 5
    d_dropout: float = 0.0
    d_input_dropout: float = 0.0

    @property
    def d_is_plain(self) -> bool:
        """True when D is the original LeakyReLU MLP without dropout (its checkpoint layout)."""
        return (self.d_activation == "leaky_relu" and self.d_dropout == 0.0
                and self.d_input_dropout == 0.0)

    def validate(self) -> None:
        check_n_visible(self.n_visible)
        check(self.n_latent > 0, f"model.n_latent={self.n_latent} must be positive")
        check(self.architecture in ARCHITECTURES, "model.architecture must be mlp or dcgan")
        check(all(h > 0 for h in self.g_hidden), "model.g_hidden sizes must be > 0")
        check(all(h > 0 for h in self.d_hidden), "model.d_hidden sizes must be > 0")
        check(self.width > 0, f"model.width={self.width} must be positive")
        check(self.d_steps >= 1, f"model.d_steps={self.d_steps} must be >= 1")
        check_nonnegative(self.init_std, "model.init_std")
        check(self.d_activation in ACTIVATIONS, "model.d_activation must be leaky_relu or maxout")
        check(self.d_maxout_pieces >= 2,
              f"model.d_maxout_pieces={self.d_maxout_pieces} must be >= 2")
        for name in ("d_dropout", "d_input_dropout"):
            p = getattr(self, name)
            check(0.0 <= p < 1.0, f"model.{name}={p} must be in [0, 1)")
        check(
            self.architecture == "mlp" or self.d_is_plain,
            "model.d_activation, model.d_dropout and model.d_input_dropout apply to "
            "model.architecture=mlp only; leave them at their defaults for dcgan",
        )


@register_model(
    "gan",
    config=GANConfig,
    family="implicit",
    summary="generative adversarial net (minimax / non-saturating, k D steps; MLP or DCGAN)",
    paper="Goodfellow et al. 2014; Radford et al. 2016",
)
class GAN(nn.Module):
    """Generator ``G`` and discriminator ``D`` over D visible values in [0, 1].

    x (B, D) floating in [0, 1]; samples (n, D) are generator outputs in (0, 1). Device and
    dtype follow the parameters.
    """

    capabilities = frozenset({IMPLICIT})
    n_classes = 0  # one-hot label size the networks are conditioned on (0: unconditional)

    def __init__(self, config: GANConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(config, GANConfig):
            raise ConfigError(f"{type(self).__name__} needs a GANConfig, got {type(config).__name__}")
        require_n_visible(config)
        if config.architecture == "dcgan":
            image_side(config.n_visible)
        self.config = config
        c = self.n_classes
        self.G = build_generator(
            config.architecture, config.n_latent + c, config.n_visible, config.g_hidden,
            config.width,
        )
        if config.architecture == "mlp" and not config.d_is_plain:
            self.D: nn.Module = DropoutMLPDiscriminator(
                config.n_visible + c, config.d_hidden, config.d_activation,
                config.d_maxout_pieces, config.d_dropout, config.d_input_dropout,
            )
        else:
            self.D = build_discriminator(
                config.architecture, config.n_visible, config.d_hidden, config.width, c
            )
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Weights ~ N(0, init_std^2), biases 0 (DCGAN). ``generator=None``: torch's default."""
        normal_init(self, self.config.init_std, generator)

    @property
    def n_visible(self) -> int:
        return self.config.n_visible  # type: ignore[return-value]

    def _ref(self) -> torch.Tensor:
        return next(self.G.parameters())

    # -- training contract ---------------------------------------------------------------
    def phases(self) -> list[Phase]:
        """("d", discriminator parameters, k updates), then ("g", generator parameters, 1)."""
        return [
            Phase("d", list(self.D.parameters()), self.config.d_steps),
            Phase("g", list(self.G.parameters()), 1),
        ]

    def _condition(self, y: torch.Tensor | None, n: int) -> torch.Tensor | None:
        return None

    def generate(
        self, z: torch.Tensor, y_onehot: torch.Tensor | None = None
    ) -> torch.Tensor:
        """G(z) (B, D) for z (B, n_latent) (and one-hot labels (B, C) when conditional)."""
        return self.G(z if y_onehot is None else torch.cat([z, y_onehot.to(z)], 1))

    def logits(
        self,
        x: torch.Tensor,
        y_onehot: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        dropout: bool = False,
    ) -> torch.Tensor:
        """Discriminator logits l(x) (B,), D(x) = sigmoid(l(x)). ``dropout=True`` drops units
        of a dropout discriminator with masks from ``generator`` (no effect on the others)."""
        if dropout and isinstance(self.D, DropoutMLPDiscriminator):
            v = x if y_onehot is None else torch.cat([x, y_onehot.to(x)], 1)
            return self.D(v, generator=generator, dropout=True)
        return discriminate(self.D, x, y_onehot)

    def loss(
        self,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
        phase: str | None = None,
        y: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The loss of ``phase`` on the minibatch x (B, D), mean over the batch (nats):
        "d" (default): -V = softplus(-l(x)) + softplus(l(G(z))), with ``real_prob`` and
        ``fake_prob`` (mean D(x), D(G(z))); "g": the generator loss chosen by
        ``generator_loss``. Fresh noise z (B, n_latent) from ``generator`` on each call, then
        (training mode, ``d_dropout`` or ``d_input_dropout`` > 0) the dropout masks of D."""
        phase = phase or "d"
        if phase not in PHASES:
            raise GenzooError(f"{type(self).__name__}.loss: phase={phase!r}; use 'd' or 'g'")
        check_data(x, self.n_visible, binary=False)
        ref = self._ref()
        x = x.to(ref)
        c = self._condition(y, len(x))
        z = draw_noise(self.config.prior, len(x), self.config.n_latent, ref, generator)
        drop = self.training
        if phase == "d":
            with torch.no_grad():
                fake = self.generate(z, c)
            l_real = self.logits(x, c, generator, drop)
            l_fake = self.logits(fake, c, generator, drop)
            loss = F.softplus(-l_real).mean() + F.softplus(l_fake).mean()
            return {
                "loss": loss,
                "real_prob": torch.sigmoid(l_real).mean().detach(),
                "fake_prob": torch.sigmoid(l_fake).mean().detach(),
            }
        l_fake = self.logits(self.generate(z, c), c, generator, drop)
        if self.config.generator_loss == "minimax":
            loss = -F.softplus(l_fake).mean()
        else:
            loss = F.softplus(-l_fake).mean()
        return {"loss": loss}

    @torch.no_grad()
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """Failure signals on up to 1000 held-out examples x (B, D) and as many samples (fixed
        seed): ``d_real_prob``, ``d_fake_prob`` (mean D), ``d_loss`` (-V; near 0 means the
        discriminator wins outright and the generator's gradients vanish), ``d_collapsed``
        (1.0 when d_loss < 0.01)."""
        ref = self._ref()
        x = x[:1000].to(ref)
        g = torch.Generator(device=ref.device).manual_seed(0)
        z = draw_noise(self.config.prior, len(x), self.config.n_latent, ref, g)
        l_real, l_fake = self.logits(x), self.logits(self.generate(z))
        d_loss = float(F.softplus(-l_real).mean() + F.softplus(l_fake).mean())
        return {
            "d_real_prob": float(torch.sigmoid(l_real).mean()),
            "d_fake_prob": float(torch.sigmoid(l_fake).mean()),
            "d_loss": d_loss,
            "d_collapsed": float(d_loss < 0.01),
        }

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, D) generator outputs G(z), z ~ p_z, values in (0, 1); batch normalisation (DCGAN)
        uses its running statistics."""
        ref = self._ref()

        def draw(m: int) -> torch.Tensor:
            z = draw_noise(self.config.prior, m, self.config.n_latent, ref, generator)
            return run_in_eval_mode(self.G, z)

        return samples_or_empty(n, self.n_visible, ref, draw)
