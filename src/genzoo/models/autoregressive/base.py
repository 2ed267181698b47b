"""The base classes of the autoregressive models, and the draws their samplers share.

An autoregressive model factors p(x) = prod_d p(x_d | x_<d) over the variables in an ordering,
so log p(x) is exact and the training objective is maximum likelihood: the mean negative
log-likelihood (log-density for real data) of the batch, in nats per example.
:class:`AutoregressiveModel` gives every such model that ``loss`` and the validation figure
from its ``log_prob``.

A binary model's conditionals are Bernoullis with logits l_d(x_<d)::

    log p(x) = sum_d [x_d l_d - softplus(l_d)]

(log sigmoid(l) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l), written as one
expression). :class:`BinaryAutoregressive` turns a model's ``conditional_logits(x) -> (B, D)``
(column d a function of x_<d only) and its output biases ``b`` (D,) into the exact
``log_prob``, and starts b at the data marginals (``init_from_data``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn

from genzoo.core.config import check, check_nonnegative
from genzoo.core.errors import GenzooError
from genzoo.core.protocols import EXACT_LIKELIHOOD
from genzoo.models.base import GenzooModel, VisibleConfig, checks_input
from genzoo.ops.numerics import bernoulli_log_likelihood, data_logits


@dataclasses.dataclass(frozen=True)
class AutoregressiveConfig(VisibleConfig):
    """Fields of every autoregressive model: ``n_visible`` and ``init_std``, the standard
    deviation (>= 0) of the weights each model draws at construction (which weights: its own
    config says)."""

    init_std: float = 0.01

    def validate(self) -> None:
        super().validate()
        check_nonnegative(self.init_std, "model.init_std")


def check_layer_sizes(hidden: Sequence[int], example: str) -> None:
    """For ``Config.validate``: ConfigError unless ``hidden`` lists one or more positive layer
    sizes (``example``: the value the message suggests, e.g. "500,500")."""
    check(len(hidden) >= 1, f"model.hidden must list at least one layer size, e.g. {example}")
    check(all(h > 0 for h in hidden), f"model.hidden={tuple(hidden)}: sizes must be positive")


def uniforms(n: int, d: int, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """(n, d) uniform draws on ``like``'s device and dtype. Drawn all at once before an
    ancestral pass, so a sample depends on the generator's state only, not on the order of the
    per-variable steps; x_d = [u_d < sigmoid(l_d)] is then a Bernoulli draw."""
    return torch.rand((n, d), generator=generator, device=like.device, dtype=like.dtype)


def check_sample_count(n: int) -> None:
    """GenzooError unless ``n`` (the number of samples asked for) is an integer >= 0."""
    if not isinstance(n, int) or n < 0:
        raise GenzooError(f"sample(n={n!r}): n must be an integer >= 0")


class AutoregressiveModel(GenzooModel):
    """Base of the models with an exact ``log_prob(x) -> (B,)``: trained by maximum
    likelihood. Subclasses implement ``log_prob`` and ``sample``."""

    capabilities = frozenset({EXACT_LIKELIHOOD})

    @checks_input
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) in nats, x (B, D) -> (B,)."""
        raise NotImplementedError

    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Mean negative log-likelihood of the batch x (B, D), nats per example: ``loss`` (with
        gradient) and ``nll`` (the same value, detached). ``generator`` is unused: the
        objective is exact."""
        nll = -self.log_prob(x).mean()
        return {"loss": nll, "nll": nll.detach()}

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """{"nll": mean exact negative log-likelihood of x (B, D), nats per example}."""
        return {"nll": float(-self.log_prob(x).mean())}


class BinaryAutoregressive(AutoregressiveModel):
    """Base of the binary autoregressive models: exact likelihood from ``conditional_logits``.

    Subclasses define ``self.b`` (D,), the output biases, and implement ``conditional_logits``
    and ``sample``. All batch methods take x (B, D) in {0, 1} and return per-example values in
    nats; device and dtype follow the parameters.
    """

    b: nn.Parameter

    @property
    def n_visible(self) -> int:
        return self.b.shape[0]

    def conditional_logits(self, x: torch.Tensor) -> torch.Tensor:
        """l (B, D): l[:, d] is the logit of p(x_d = 1 | x_<d) and depends on x[:, :d] only."""
        raise NotImplementedError

    @checks_input
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) in nats. x (B, D) binary -> (B,)."""
        x = x.to(dtype=self.b.dtype)
        return bernoulli_log_likelihood(self.conditional_logits(x), x)

    @torch.no_grad()
    @checks_input
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """Set the output biases b to the logits of the clamped training marginals, so the
        model starts at the independent-pixel fit. Called once by the Trainer on a fresh run.
        x_train (N, D) binary."""
        self.b.copy_(data_logits(x_train.to(self.b)))
