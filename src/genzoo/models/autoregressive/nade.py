"""Neural autoregressive distribution estimator (NADE).

Larochelle & Murray (2011), "The neural autoregressive distribution estimator", AISTATS,
equations (6)-(7) and algorithm 1 (88.86 nats on binarized MNIST with 500 hidden units).

Binary x in {0,1}^D in index order, hidden size H, parameters W (H, D), V (D, H), output biases
b (D,), hidden biases c (H,)::

    h_d = sigmoid(a_d),    a_d = c + W[:, <d] x_<d
    p(x_d = 1 | x_<d) = sigmoid(b_d + V[d] . h_d)
    log p(x) = sum_d [x_d l_d - softplus(l_d)],    l_d = b_d + V[d] . h_d

The weights W are shared by all conditionals, so the pre-activations obey the recursion
a_1 = c, a_{d+1} = a_d + W[:, d] x_d: all D hidden vectors cost O(DH) per example (a running
sum; here an exclusive cumulative sum over d), not the O(D^2 H) of computing each conditional
from scratch. Ancestral sampling runs the same recursion one variable at a time.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from genzoo.core.config import Config, check, check_nonnegative
from genzoo.core.errors import ConfigError
from genzoo.core.registry import register_model
from genzoo.models.autoregressive._common import (
    BinaryAutoregressive,
    check_sample_count,
    check_visible,
    require_visible,
    uniforms,
)

# Without gradients the (B, D, H) hidden tensor is built for blocks of at most this many
# elements (32 MB in float64), so evaluating 1,000 MNIST digits with H = 500 does not need the
# 3 GB the whole batch would; with gradients the whole batch is kept for the backward pass.
_NO_GRAD_BLOCK_ELEMENTS = 2**22


@dataclasses.dataclass(frozen=True)
class NADEConfig(Config):
    """Hyperparameters of NADE.

    ``n_visible`` is filled from the data by the CLI when left ``None``. ``n_hidden`` is H (500
    in the paper's MNIST result). ``init_std``: W and V ~ N(0, init_std^2); c starts at 0 and b
    at the logits of the data marginals (``init_from_data``).
    """

    n_visible: int | None = None
    n_hidden: int = 500
    init_std: float = 0.01

    def validate(self) -> None:
        check_visible(self.n_visible)
        check(self.n_hidden > 0, f"model.n_hidden={self.n_hidden} must be positive")
        check_nonnegative(self.init_std, "model.init_std")


@register_model(
    "nade",
    config=NADEConfig,
    family="autoregressive",
    summary="neural autoregressive distribution estimator, exact likelihood in O(DH)",
    paper="Larochelle & Murray 2011",
)
class NADE(BinaryAutoregressive):
    """NADE over D binary variables in index order with H sigmoid hidden units."""

    def __init__(self, config: NADEConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(config, NADEConfig):
            raise ConfigError(f"NADE needs a NADEConfig, got {type(config).__name__}")
        d = require_visible(config)
        h = config.n_hidden
        self.config = config
        self.W = nn.Parameter(torch.zeros(h, d))
        self.V = nn.Parameter(torch.zeros(d, h))
        self.b = nn.Parameter(torch.zeros(d))
        self.c = nn.Parameter(torch.zeros(h))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """W, V ~ N(0, init_std^2); b, c = 0 (``init_from_data`` then sets b from the data).
        ``generator=None`` uses torch's default generator, as torch.nn layers do."""
        with torch.no_grad():
            for weight in (self.W, self.V):
                if self.config.init_std > 0:
                    weight.normal_(0.0, self.config.init_std, generator=generator)
                else:
                    weight.zero_()
            self.b.zero_()
            self.c.zero_()

    @property
    def n_hidden(self) -> int:
        return self.W.shape[0]

    def hidden_preactivations(self, x: torch.Tensor) -> torch.Tensor:
        """a (B, D, H) with a[:, d] = c + W[:, :d] x[:, :d]^T, by the O(DH) running sum.

        The sum is exclusive by construction (row d is the cumulative sum up to d - 1, row 0
        is c alone), not the inclusive sum minus x_d W[:, d]: the gradient of a[:, d] with
        respect to x_j, j >= d, is then exactly zero, not a rounding residue."""
        contributions = x.unsqueeze(-1) * self.W.T  # (B, D, H): x_j W[:, j]
        running = torch.cumsum(contributions[:, :-1], dim=1) + self.c
        first = self.c.expand(x.shape[0], 1, -1)
        return torch.cat([first, running], dim=1)

    def conditional_logits(self, x: torch.Tensor) -> torch.Tensor:
        """l (B, D) with l[:, d] = b_d + V[d] . sigmoid(a_d); depends on x[:, :d] only."""
        rows = max(1, _NO_GRAD_BLOCK_ELEMENTS // (self.n_visible * self.n_hidden))
        if torch.is_grad_enabled() or x.shape[0] <= rows:
            return self._logits(x)
        return torch.cat([self._logits(block) for block in x.split(rows)])

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.sigmoid(self.hidden_preactivations(x))
        return torch.einsum("bdh,dh->bd", h, self.V) + self.b

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact, independent draws (n, D) by ancestral sampling in index order, O(DH) per
        draw: the pre-activation a (n, H) is updated by x_d W[:, d] after each variable."""
        check_sample_count(n)
        d = self.n_visible
        u = uniforms(n, d, self.b, generator)
        x = torch.zeros(n, d, device=self.b.device, dtype=self.b.dtype)
        a = self.c.expand(n, -1).clone()
        for i in range(d):
            logit = torch.sigmoid(a) @ self.V[i] + self.b[i]
            x[:, i] = (u[:, i] < torch.sigmoid(logit)).to(x.dtype)
            a.addr_(x[:, i], self.W[:, i])
        return x
