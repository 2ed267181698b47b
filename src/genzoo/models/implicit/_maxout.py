"""Maxout units and dropout with explicit random masks: the GAN paper's MNIST discriminator.

Goodfellow, Warde-Farley, Mirza, Courville & Bengio (2013), "Maxout networks", ICML, eq. 1:
a maxout hidden unit i takes the maximum over k linear pieces of its input v (B, n_in),

    h_i(v) = max_{j in 1..k} z_ij,    z_ij = v^T W_{.ij} + b_ij,

so one layer is a linear map to (n_units * k) values followed by a max over each unit's k
consecutive pieces. Goodfellow et al. (2014), "Generative adversarial nets", section 5, train
their MNIST discriminator with maxout units and dropout (Srivastava et al. 2014).

Dropout here is the inverted form: during training each input of a layer is kept with
probability 1 - p and, when kept, multiplied by 1 / (1 - p), so E[dropped h] = h and the
network is used unchanged (no rescaling, no masks) at evaluation. Masks are drawn from the
``torch.Generator`` handed to ``forward``, never from torch's global state (``nn.Dropout``
cannot take one), so a run is reproduced by its seed.

Minibatch standard deviation (Karras, Aila, Laine & Lehtinen 2018, "Progressive growing of
GANs", section 3): optionally, the last hidden layer h (B, H) gets one more feature, the same for
every row of the batch,

    s = (1 / H) sum_i sqrt(Var_batch(h_i) + 1e-8),

so D sees how varied its batch is and can reject a generator that maps every z to nearly the
same x; through s, the generator's gradient then differs from sample to sample and pushes the
samples apart. D then scores a batch, not single examples: real and generated batches are
scored separately.

Shapes: x (B, n_in) -> logits (B,).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

ACTIVATIONS = ("leaky_relu", "maxout")


def minibatch_std_feature(h: torch.Tensor) -> torch.Tensor:
    """h (B, H) with the minibatch standard deviation s appended as column H (B, H + 1); the
    1e-8 keeps the gradient finite for a batch of identical rows."""
    s = torch.sqrt(h.var(0, unbiased=False) + 1e-8).mean()
    return torch.cat([h, s.expand(h.shape[0], 1)], 1)


def inverted_dropout(
    h: torch.Tensor, p: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """h (any shape) with each entry zeroed with probability ``p`` and the kept ones scaled by
    1 / (1 - p); the mask (Bernoulli(1 - p), same shape as h) comes from ``generator``
    (``None``: torch's default). ``p == 0`` returns h itself and draws nothing."""
    if p <= 0.0:
        return h
    u = torch.rand(h.shape, generator=generator, dtype=h.dtype, device=h.device)
    return h * (u >= p).to(h.dtype) / (1.0 - p)


class Maxout(nn.Module):
    """v (B, n_in) -> h (B, n_units), h_i = max over ``pieces`` linear pieces (eq. 1)."""

    def __init__(self, n_in: int, n_units: int, pieces: int) -> None:
        super().__init__()
        self.n_units, self.pieces = n_units, pieces
        self.linear = nn.Linear(n_in, n_units * pieces)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        z = self.linear(v).view(*v.shape[:-1], self.n_units, self.pieces)
        return z.max(-1).values


class DropoutMLPDiscriminator(nn.Module):
    """x (B, D) [+ one-hot (B, C)] -> hidden layers (``activation``: LeakyReLU(0.2) or maxout
    with ``pieces`` pieces) -> logit (B,), with inverted dropout on the inputs of every layer
    when ``forward(..., dropout=True)``: rate ``input_dropout`` on x, ``dropout`` on the inputs
    of the later layers (the hidden units), as in pylearn2's per-layer input dropout.
    ``minibatch_std``: the output layer also sees the batch's minibatch standard deviation
    (:func:`minibatch_std_feature`)."""

    def __init__(
        self,
        n_in: int,
        hidden: tuple[int, ...],
        activation: str = "leaky_relu",
        pieces: int = 5,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        minibatch_std: bool = False,
    ) -> None:
        super().__init__()
        self.dropout, self.input_dropout = dropout, input_dropout
        self.minibatch_std = minibatch_std
        sizes = [n_in, *hidden]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            if activation == "maxout":
                layers.append(Maxout(a, b, pieces))
            else:
                layers.append(nn.Sequential(nn.Linear(a, b), nn.LeakyReLU(0.2)))
        self.hidden = nn.ModuleList(layers)
        self.out = nn.Linear(sizes[-1] + int(minibatch_std), 1)

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None, dropout: bool = False
    ) -> torch.Tensor:
        """Logits (B,). ``dropout=False`` (evaluation, the default): the deterministic network.
        ``dropout=True``: masks from ``generator``, input layer first, then layer by layer."""
        h = inverted_dropout(x, self.input_dropout, generator) if dropout else x
        for layer in self.hidden:
            h = layer(h)
            if dropout:
                h = inverted_dropout(h, self.dropout, generator)
        if self.minibatch_std:
            h = minibatch_std_feature(h)
        return self.out(h).squeeze(-1)
