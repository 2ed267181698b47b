"""Neural autoregressive network (NAN) of Bengio & Bengio.

Bengio & Bengio (2000), "Modeling high-dimensional discrete data with multi-layer neural
networks", NIPS 12: p(x) = prod_i p(x_i | x_<i) with one hidden layer organised in groups, here
for binary variables in index order.

Hidden group j (j = 1 .. D-1, G tanh units each) sees the inputs x_1 .. x_j; the output of
variable i sees the hidden groups 1 .. i-1 and, through direct connections, the inputs
x_1 .. x_{i-1}::

    h_j = tanh(c_j + W_j[:, <=j] x_<=j)                       (G,)  per group j
    p(x_i = 1 | x_<i) = sigmoid(b_i + sum_{j<i} V_ij . h_j + sum_{j<i} A_ij x_j)

There is no weight sharing between groups (each has its own input weights W_j), unlike NADE;
what is shared is the features themselves: h_j, computed once from x_<=j, feeds every later
conditional i > j, so the whole model costs O(D^2 G) per example. Without hidden units
(``hidden_per_group=0``) it is the logistic autoregressive network (``fvsbn``).

All groups are stacked into one layer of K = (D-1) G units with input weights W (K, D), hidden
biases c (K,), output weights V (D, K), direct weights A (D, D), output biases b (D,). The
connectivity is imposed by fixed binary masks multiplying the weights in the forward pass (unit k
of group g(k) sees input j iff j <= g(k); output i sees unit k iff g(k) < i; A is strictly lower
triangular); the stored weights are never edited to enforce it.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from genzoo.core.config import check
from genzoo.core.registry import register_model
from genzoo.models.autoregressive.base import (
    AutoregressiveConfig,
    BinaryAutoregressive,
    check_sample_count,
    uniforms,
)
from genzoo.models.base import train_recipe
from genzoo.nn.init import normal_or_zero_


@dataclasses.dataclass(frozen=True)
class NANConfig(AutoregressiveConfig):
    """Hyperparameters of the neural autoregressive network.

    ``n_visible`` is filled from the data by the CLI when left ``None``. ``hidden_per_group``:
    G, the tanh units of each of the D-1 hidden groups (0: no hidden layer). ``direct``: keep
    the direct input-to-output connections A. ``init_std``: W, V ~ N(0, init_std^2); A, c start
    at 0 and b at the logits of the data marginals (``init_from_data``).
    """

    hidden_per_group: int = 2
    direct: bool = True

    def validate(self) -> None:
        super().validate()
        check(
            self.hidden_per_group >= 0,
            f"model.hidden_per_group={self.hidden_per_group} must be >= 0",
        )
        check(
            self.hidden_per_group > 0 or self.direct,
            "model.hidden_per_group=0 with model.direct=false leaves every conditional "
            "constant; keep the direct connections or add hidden units",
        )


@register_model("nan", family="autoregressive", paper="Bengio & Bengio 2000")
class NeuralAutoregressiveNetwork(BinaryAutoregressive):
    """Neural autoregressive network (hidden groups, left-to-right), exact likelihood.

    Bengio & Bengio's network over D binary variables in index order.
    """

    config_class = NANConfig
    train_defaults = train_recipe(
        optimizer="adam", lr=0.001, lr_schedule="linear", lr_final_factor=0.1,
    )
    test_overrides = ("model.hidden_per_group=1",)

    def __init__(self, config: NANConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        d, g = config.n_visible, config.hidden_per_group
        k = (d - 1) * g
        self.W = nn.Parameter(torch.zeros(k, d))
        self.c = nn.Parameter(torch.zeros(k))
        self.V = nn.Parameter(torch.zeros(d, k))
        self.b = nn.Parameter(torch.zeros(d))
        self.A = nn.Parameter(torch.zeros(d, d)) if config.direct else None
        # Masks are functions of (D, G) alone, rebuilt with the model, so not checkpointed.
        group = torch.arange(k) // g if g > 0 else torch.zeros(0, dtype=torch.long)
        var = torch.arange(d)
        self.register_buffer(
            "mask_in", (var[None, :] <= group[:, None]).float(), persistent=False
        )
        self.register_buffer(
            "mask_out", (group[None, :] < var[:, None]).float(), persistent=False
        )
        self.register_buffer("mask_direct", torch.ones(d, d).tril_(-1), persistent=False)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """W, V ~ N(0, init_std^2); c, A, b = 0. ``generator=None`` uses torch's default
        generator, as torch.nn layers do."""
        with torch.no_grad():
            for weight in (self.W, self.V):
                normal_or_zero_(weight, self.config.init_std, generator)
            self.c.zero_()
            self.b.zero_()
            if self.A is not None:
                self.A.zero_()

    @property
    def hidden_per_group(self) -> int:
        return self.config.hidden_per_group

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """All hidden groups h (B, K), K = (D-1) G; unit k depends on x[:, :g(k)+1] only."""
        return torch.tanh(torch.addmm(self.c, x, (self.W * self.mask_in).T))

    def conditional_logits(self, x: torch.Tensor) -> torch.Tensor:
        """l (B, D) = b + h (V * M_out)^T + x (A * M_direct)^T; l[:, i] depends on x[:, :i]."""
        logits = torch.addmm(self.b, self.hidden(x), (self.V * self.mask_out).T)
        if self.A is not None:
            logits = logits + x @ (self.A * self.mask_direct).T
        return logits

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact, independent draws (n, D) by ancestral sampling in index order: after x_i is
        drawn, hidden group i is computed once from x_<=i and reused by every later variable,
        O(D^2 G) per draw."""
        check_sample_count(n)
        d, g = self.n_visible, self.hidden_per_group
        u = uniforms(n, d, self.b, generator)
        x = torch.zeros(n, d, device=self.b.device, dtype=self.b.dtype)
        h = torch.zeros(n, self.W.shape[0], device=self.b.device, dtype=self.b.dtype)
        for i in range(d):
            k = i * g  # units of groups 1 .. i-1 (0-based: groups 0 .. i-1) come first
            logit = self.b[i] + h[:, :k] @ self.V[i, :k]
            if self.A is not None:
                logit = logit + x[:, :i] @ self.A[i, :i]
            x[:, i] = (u[:, i] < torch.sigmoid(logit)).to(x.dtype)
            if g > 0 and i < d - 1:
                rows = slice(k, k + g)
                h[:, rows] = torch.tanh(
                    torch.addmm(self.c[rows], x[:, : i + 1], self.W[rows, : i + 1].T)
                )
        return x
