"""Generator and discriminator networks shared by the implicit models: MLPs, and the
convolutional pair of DCGAN.

Radford, Metz & Chintala (2016), "Unsupervised representation learning with deep convolutional
generative adversarial networks", ICLR, section 3 and 4: the generator projects z to a small
spatial map and adds spatial detail layer by layer with fractionally-strided (transposed)
convolutions, batch normalisation in the generator and in the discriminator except at the
generator output and the discriminator input, ReLU in the generator, LeakyReLU with slope 0.2
in the discriminator, strided convolutions instead of pooling, and all weights initialised from
N(0, 0.02^2). (They train with Adam, lr 2e-4, beta1 0.5: ``train.optimizer=adam train.lr=2e-4
train.momentum=0.5``.) Our data live in [0, 1], so the generator ends in a sigmoid, not tanh.

Images are square side x side with side = sqrt(D) divisible by 4 (8x8 digits: 2x2 -> 4x4 ->
8x8; 28x28 MNIST: 7x7 -> 14x14 -> 28x28). Conditioning (conditional GAN) is by concatenating
the one-hot label to z in the generator and, in the discriminator, to x (MLP) or as constant
feature maps to the image (DCGAN).

Shapes: generators map z (B, J) (and y one-hot (B, C)) to outputs (B, D) in (0, 1);
discriminators map x (B, D) to logits (B,).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from genzoo.core.errors import ConfigError

ARCHITECTURES = ("mlp", "dcgan")


def image_side(n_visible: int) -> int:
    """sqrt(n_visible) for the convolutional networks; ConfigError unless a multiple of 4."""
    side = math.isqrt(n_visible)
    if side * side != n_visible or side % 4 != 0:
        raise ConfigError(
            f"model.architecture=dcgan needs square images with a side divisible by 4; "
            f"n_visible={n_visible} is not; use model.architecture=mlp"
        )
    return side


class MLPGenerator(nn.Module):
    """z (B, J) [+ one-hot (B, C)] -> ReLU hidden layers -> sigmoid (B, D)."""

    def __init__(self, n_in: int, hidden: tuple[int, ...], n_out: int) -> None:
        super().__init__()
        sizes = [n_in, *hidden]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers += [nn.Linear(sizes[-1], n_out), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """x (B, D) [+ one-hot (B, C)] -> LeakyReLU(0.2) hidden layers -> logit (B,)."""

    def __init__(self, n_in: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        sizes = [n_in, *hidden]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        layers.append(nn.Linear(sizes[-1], 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class ConvGenerator(nn.Module):
    """DCGAN generator: z (B, J) -> (2w, s/4, s/4) -> BN, ReLU -> transposed conv to
    (w, s/2, s/2) -> BN, ReLU -> transposed conv to (1, s, s) -> sigmoid, flattened (B, s*s).
    ``width`` is w, the channels of the last hidden map."""

    def __init__(self, n_in: int, side: int, width: int) -> None:
        super().__init__()
        self.side, self.width = side, width
        q = side // 4
        self.project = nn.Linear(n_in, 2 * width * q * q)
        self.net = nn.Sequential(
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        q = self.side // 4
        h = self.project(z).view(len(z), 2 * self.width, q, q)
        return self.net(h).flatten(1)


class ConvDiscriminator(nn.Module):
    """DCGAN discriminator: image (B, 1 + C, s, s) -> strided conv, LeakyReLU(0.2) -> strided
    conv, BN, LeakyReLU(0.2) -> linear -> logit (B,). ``n_cond`` label maps C (0: none)."""

    def __init__(self, side: int, width: int, n_cond: int = 0) -> None:
        super().__init__()
        self.side, self.n_cond = side, n_cond
        q = side // 4
        self.net = nn.Sequential(
            nn.Conv2d(1 + n_cond, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(2 * width * q * q, 1),
        )

    def forward(self, x: torch.Tensor, y_onehot: torch.Tensor | None = None) -> torch.Tensor:
        s = self.side
        img = x.view(len(x), 1, s, s)
        if y_onehot is not None:
            maps = y_onehot[:, :, None, None].expand(-1, -1, s, s)
            img = torch.cat([img, maps.to(img)], 1)
        return self.net(img).squeeze(-1)


def build_generator(
    architecture: str, n_in: int, n_visible: int, hidden: tuple[int, ...], width: int
) -> nn.Module:
    """The generator named by ``architecture`` ("mlp" or "dcgan"), input size ``n_in``."""
    if architecture == "dcgan":
        return ConvGenerator(n_in, image_side(n_visible), width)
    return MLPGenerator(n_in, hidden, n_visible)


def build_discriminator(
    architecture: str, n_visible: int, hidden: tuple[int, ...], width: int, n_cond: int = 0
) -> nn.Module:
    """The discriminator named by ``architecture``; ``n_cond`` one-hot label size (0: none)."""
    if architecture == "dcgan":
        return ConvDiscriminator(image_side(n_visible), width, n_cond)
    return MLPDiscriminator(n_visible + n_cond, hidden)


def discriminate(d: nn.Module, x: torch.Tensor, y_onehot: torch.Tensor | None) -> torch.Tensor:
    """Logits (B,) of discriminator ``d`` for x (B, D), conditioned on y_onehot (B, C) if given."""
    if isinstance(d, ConvDiscriminator):
        return d(x, y_onehot)
    return d(x if y_onehot is None else torch.cat([x, y_onehot.to(x)], 1))


@torch.no_grad()
def normal_init(module: nn.Module, std: float, generator: torch.Generator | None = None) -> None:
    """DCGAN initialisation: linear and (transposed) convolution weights ~ N(0, std^2),
    batch-norm scales ~ N(1, std^2), all biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            m.weight.normal_(0.0, std, generator=generator)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.normal_(1.0, std, generator=generator)
            m.bias.zero_()

