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

Options against the discriminator winning outright (genzoo issue 6: on grey-level MNIST with
G 100-1200-1200-784 and D 784-240-240, Adam 2e-4, D(G(z)) fell to ~0.005 within 2000
updates and G collapsed to one image with every output saturated):

- ``d_input`` "symmetric": D reads 2x - 1 in [-1, 1] rather than x in [0, 1], the data range
  of DCGAN (Radford et al. 2016, section 4: images scaled to the range of tanh), inputs
  centred as LeCun, Bottou, Orr & Müller (1998, "Efficient BackProp", section 4.3) advise.
  The functions D can represent are the same (an affine map of the input); Adam's steps are
  not, and with it D no longer wins outright. G still ends in a sigmoid; samples stay in
  (0, 1).
- ``instance_noise`` sigma: in training, D sees x + sigma eps and G(z) + sigma eps',
  eps, eps' ~ N(0, I), in both phases (Sønderby, Caballero, Theis, Shi & Huszár 2017,
  "Amortised MAP inference for image super-resolution", section 3.2; Arjovsky & Bottou
  2017, "Towards principled methods for training GANs", section 3.1): the two distributions
  D compares then overlap, so it cannot separate them perfectly and G's gradient stays
  informative.
- ``label_smoothing`` eps (one-sided; Salimans et al. 2016, "Improved techniques for training
  GANs", section 3.4): D's target on data is 1 - eps; its loss on data becomes
  (1 - eps) softplus(-l(x)) + eps softplus(l(x)). G's loss and the validation figures keep V.
- ``d_minibatch_std``: D's last hidden layer also sees how varied its batch is
  (:func:`genzoo.models.implicit._maxout.minibatch_std_feature`).
- ``init`` "he" / "glorot" instead of DCGAN's N(0, init_std^2) (:func:`fan_scaled_init`).
  N(0, 0.02^2) through 1200-unit layers leaves G(z) almost constant in z at the start (per
  pixel spread over z ~ 0.009, against ~ 0.19 in MNIST); He initialisation removes that, but
  with Adam G's 784 outputs then saturate within a few hundred updates, so it is no fix.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.config import check, check_nonnegative
from genzoo.core.protocols import Phase
from genzoo.core.registry import register_model
from genzoo.models.base import checks_input, train_recipe
from genzoo.models.implicit._maxout import ACTIVATIONS, DropoutMLPDiscriminator
from genzoo.models.implicit.dcgan import (
    ARCHITECTURES,
    build_discriminator,
    build_generator,
    discriminate,
)
from genzoo.models.implicit.generator import GeneratorConfig, ImplicitGenerator, Labels

INITS = ("normal", "he", "glorot")
D_INPUTS = ("unit", "symmetric")


@dataclasses.dataclass(frozen=True)
class GANConfig(GeneratorConfig):
    """Hyperparameters of the GAN (``n_visible``, ``n_latent``, ``prior``, ``init_std``: see
    :class:`~genzoo.models.implicit.generator.GeneratorConfig`).

    ``architecture``: "mlp" (``g_hidden``,
    ``d_hidden`` ReLU / LeakyReLU(0.2) layers) or "dcgan" (``width`` channels, square images
    with side divisible by 4). ``generator_loss``: "non_saturating" or "minimax". ``d_steps``:
    k discriminator updates per generator update. ``init_std``: DCGAN's 0.02. Train DCGAN-style with ``train.optimizer=adam train.lr=2e-4
    train.momentum=0.5``. MLP discriminator only: ``d_activation`` "leaky_relu" or "maxout"
    (``d_maxout_pieces`` linear pieces per unit); ``d_dropout``: dropout rate on the hidden
    units of D, ``d_input_dropout``: on its input (the paper's MNIST setup: maxout, 5 pieces,
    0.5 and 0.2); ``d_minibatch_std``: minibatch standard deviation feature. ``init``:
    "normal" (N(0, init_std^2)), "he" or "glorot" (MLP only). ``d_input``: "symmetric" (D
    reads 2x - 1; default) or "unit" (D reads x, the original model). ``instance_noise``: sigma of the Gaussian noise added to
    D's inputs in training (data units, 0: none). ``label_smoothing``: eps, D's target on
    data 1 - eps (0: none). See the module docstring. All defaults but ``d_input`` give the
    original model; ``d_input`` is "symmetric" by default, without which Adam's D wins outright
    and G collapses even on the 8x8 digits (a config.json written before the option existed
    (a saved config that does not name ``d_input``, written before the option existed, still
    reads as "unit": :meth:`from_dict`).
    """

    n_latent: int = 100
    prior: Literal["normal", "uniform"] = "normal"
    architecture: Literal["mlp", "dcgan"] = "mlp"
    g_hidden: tuple[int, ...] = (256, 256)
    d_hidden: tuple[int, ...] = (256, 256)
    width: int = 32
    generator_loss: Literal["non_saturating", "minimax"] = "non_saturating"
    d_steps: int = 1
    d_activation: Literal["leaky_relu", "maxout"] = "leaky_relu"
    d_maxout_pieces: int = 5
    d_dropout: float = 0.0
    d_input_dropout: float = 0.0
    init: Literal["normal", "he", "glorot"] = "normal"
    label_smoothing: float = 0.0
    d_minibatch_std: bool = False
    instance_noise: float = 0.0
    d_input: Literal["unit", "symmetric"] = "symmetric"

    @classmethod
    def from_dict(cls, d: dict[str, Any], section: str = "") -> GANConfig:
        """As :meth:`Config.from_dict`; a saved config without ``d_input`` (written before the
        option existed) trained D on x itself, so it reads as ``d_input="unit"``."""
        if isinstance(d, dict) and "d_input" not in d:
            d = {**d, "d_input": "unit"}
        return super().from_dict(d, section)

    @property
    def d_is_plain(self) -> bool:
        """True when D is the original LeakyReLU MLP without dropout (its checkpoint layout)."""
        return (self.d_activation == "leaky_relu" and self.d_dropout == 0.0
                and self.d_input_dropout == 0.0 and not self.d_minibatch_std)

    def validate(self) -> None:
        super().validate()
        check(self.architecture in ARCHITECTURES, "model.architecture must be mlp or dcgan")
        check(all(h > 0 for h in self.g_hidden), "model.g_hidden sizes must be > 0")
        check(all(h > 0 for h in self.d_hidden), "model.d_hidden sizes must be > 0")
        check(self.width > 0, f"model.width={self.width} must be positive")
        check(self.d_steps >= 1, f"model.d_steps={self.d_steps} must be >= 1")
        check(self.init in INITS, f"model.init={self.init!r}: use normal, he or glorot")
        check(self.architecture == "mlp" or self.init == "normal",
              f"model.init={self.init} applies to model.architecture=mlp only; DCGAN uses "
              "model.init=normal (N(0, init_std^2), the DCGAN paper's)")
        check_nonnegative(self.instance_noise, "model.instance_noise")
        check(self.d_input in D_INPUTS, f"model.d_input={self.d_input!r}: use unit or symmetric")
        check(0.0 <= self.label_smoothing < 0.5,
              f"model.label_smoothing={self.label_smoothing} must be in [0, 0.5)")
        check(self.d_activation in ACTIVATIONS, "model.d_activation must be leaky_relu or maxout")
        check(self.d_maxout_pieces >= 2,
              f"model.d_maxout_pieces={self.d_maxout_pieces} must be >= 2")
        for name in ("d_dropout", "d_input_dropout"):
            p = getattr(self, name)
            check(0.0 <= p < 1.0, f"model.{name}={p} must be in [0, 1)")
        check(
            self.architecture == "mlp" or self.d_is_plain,
            "model.d_activation, model.d_dropout, model.d_input_dropout and "
            "model.d_minibatch_std apply to model.architecture=mlp only; leave them at their "
            "defaults for dcgan",
        )


def _gain(activation: nn.Module | None) -> float:
    """sqrt(2 / (1 + a^2)) for a (leaky) ReLU of negative slope a, else 1 (He et al. eq. 10)."""
    if isinstance(activation, nn.ReLU):
        return math.sqrt(2.0)
    if isinstance(activation, nn.LeakyReLU):
        return math.sqrt(2.0 / (1.0 + activation.negative_slope**2))
    return 1.0


@torch.no_grad()
def fan_scaled_init(
    module: nn.Module, scheme: str, generator: torch.Generator | None = None
) -> None:
    """Every linear layer of ``module`` (MLPs only) scaled by its fan-in/fan-out, biases 0.

    "he": W ~ N(0, gain^2 / fan_in) (He, Zhang, Ren & Sun 2015, "Delving deep into
    rectifiers", eq. 10), gain from the activation that follows the layer in its
    ``nn.Sequential`` (ReLU sqrt 2, LeakyReLU(a) sqrt(2 / (1 + a^2)); 1 before a sigmoid, a
    logit or a maxout unit). "glorot": W ~ U[-r, r], r = sqrt(6 / (fan_in + fan_out)) (Glorot
    & Bengio 2010, eq. 16). He keeps the spread of rectified activations constant with depth,
    so G(z) starts about as varied in z as the data; N(0, 0.02^2) through 1200-unit layers
    leaves it almost constant, Glorot in between (see the module docstring).
    """
    following: dict[int, nn.Module] = {}
    for seq in module.modules():
        if isinstance(seq, nn.Sequential):
            layers = list(seq)
            for a, b in itertools.pairwise(layers):
                following[id(a)] = b
    for m in module.modules():
        if not isinstance(m, nn.Linear):
            continue
        fan_out, fan_in = m.weight.shape
        if scheme == "he":
            std = _gain(following.get(id(m))) / math.sqrt(fan_in)
            m.weight.normal_(0.0, std, generator=generator)
        else:
            r = math.sqrt(6.0 / (fan_in + fan_out))
            m.weight.uniform_(-r, r, generator=generator)
        if m.bias is not None:
            m.bias.zero_()


@register_model("gan", family="implicit", paper="Goodfellow et al. 2014; Radford et al. 2016")
class GAN(ImplicitGenerator):
    """Generative adversarial net (minimax / non-saturating, k D steps; MLP or DCGAN).

    Generator ``G`` and discriminator ``D`` over D visible values in [0, 1].

    x (B, D) floating in [0, 1]; samples (n, D) are generator outputs in (0, 1). Device and
    dtype follow the parameters.
    """

    config: GANConfig
    config_class = GANConfig
    train_defaults = train_recipe(optimizer="adam", lr=0.001, momentum=0.5)
    test_overrides = ("model.g_hidden=8", "model.d_hidden=8", "model.n_latent=4")
    n_classes = 0  # one-hot label size the networks are conditioned on (0: unconditional)

    def __init__(self, config: GANConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        c = self.n_classes
        self.G = build_generator(
            config.architecture, config.n_latent + c, config.n_visible, config.g_hidden,
            config.width,
        )
        if config.architecture == "mlp" and not config.d_is_plain:
            self.D: nn.Module = DropoutMLPDiscriminator(
                config.n_visible + c, config.d_hidden, config.d_activation,
                config.d_maxout_pieces, config.d_dropout, config.d_input_dropout,
                config.d_minibatch_std,
            )
        else:
            self.D = build_discriminator(
                config.architecture, config.n_visible, config.d_hidden, config.width, c
            )
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Biases 0; weights by ``init``: "normal" N(0, init_std^2) (DCGAN), "he" or "glorot"
        (:func:`fan_scaled_init`). ``generator=None``: torch's default."""
        if self.config.init == "normal":
            super().reset_parameters(generator)
        else:
            fan_scaled_init(self, self.config.init, generator)

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
        of a dropout discriminator with masks from ``generator`` (no effect on the others).
        ``d_input`` "symmetric": D reads 2x - 1 in [-1, 1] instead of x in [0, 1]."""
        if self.config.d_input == "symmetric":
            x = 2.0 * x - 1.0
        if dropout and isinstance(self.D, DropoutMLPDiscriminator):
            v = x if y_onehot is None else torch.cat([x, y_onehot.to(x)], 1)
            return self.D(v, generator=generator, dropout=True)
        return discriminate(self.D, x, y_onehot)

    def _phase_loss(
        self, x: torch.Tensor, phase: str | None, generator: torch.Generator | None, y: Labels
    ) -> dict[str, torch.Tensor]:
        """The loss of ``phase`` on the minibatch x (B, D), mean over the batch (nats):
        "d" (the default): -V = softplus(-l(x)) + softplus(l(G(z))) (with ``label_smoothing``,
        the smoothed data term), with ``real_prob`` and ``fake_prob`` (mean D(x), D(G(z)));
        "g": the generator loss chosen by ``generator_loss``. Fresh noise z (B, n_latent) from
        ``generator`` on each call, then in training mode, for each input of D in turn, its
        instance noise (``instance_noise`` > 0) and D's dropout masks (``d_dropout`` or
        ``d_input_dropout`` > 0)."""
        c = self._condition(y, len(x))
        z = self.noise(len(x), generator)
        drop = self.training
        if phase == "d":
            with torch.no_grad():
                fake = self.generate(z, c)
            l_real = self.logits(self._noisy(x, generator), c, generator, drop)
            l_fake = self.logits(self._noisy(fake, generator), c, generator, drop)
            loss = F.softplus(l_fake).mean() + self._real_term(l_real)
            return {
                "loss": loss,
                "real_prob": torch.sigmoid(l_real).mean().detach(),
                "fake_prob": torch.sigmoid(l_fake).mean().detach(),
            }
        l_fake = self.logits(self._noisy(self.generate(z, c), generator), c, generator, drop)
        if self.config.generator_loss == "minimax":
            loss = -F.softplus(l_fake).mean()
        else:
            loss = F.softplus(-l_fake).mean()
        return {"loss": loss}

    def _noisy(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """x + sigma * eps, eps ~ N(0, I) from ``generator`` (sigma = ``instance_noise``; in
        training mode only), the input D sees in the training loss."""
        sigma = self.config.instance_noise
        if sigma == 0.0 or not self.training:
            return x
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return x + sigma * eps

    def _real_term(self, l_real: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss on data, mean over the batch: softplus(-l), or with one-sided
        label smoothing eps the cross-entropy to the target 1 - eps,
        (1 - eps) softplus(-l) + eps softplus(l) (softplus(l) = -log(1 - D(x)))."""
        eps = self.config.label_smoothing
        if eps == 0.0:
            return F.softplus(-l_real).mean()
        return ((1.0 - eps) * F.softplus(-l_real) + eps * F.softplus(l_real)).mean()

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """Failure signals on up to 1000 held-out examples x (B, D) and as many samples (fixed
        seed): ``d_real_prob``, ``d_fake_prob`` (mean D), ``d_loss`` (-V; near 0 means the
        discriminator wins outright and the generator's gradients vanish), ``d_collapsed``
        (1.0 when d_loss < 0.01)."""
        x = x[:1000].to(self._ref())
        z = self.noise(len(x), torch.Generator(device=x.device).manual_seed(0))
        l_real, l_fake = self.logits(x), self.logits(self.generate(z))
        d_loss = float(F.softplus(-l_real).mean() + F.softplus(l_fake).mean())
        return {
            "d_real_prob": float(torch.sigmoid(l_real).mean()),
            "d_fake_prob": float(torch.sigmoid(l_fake).mean()),
            "d_loss": d_loss,
            "d_collapsed": float(d_loss < 0.01),
        }
