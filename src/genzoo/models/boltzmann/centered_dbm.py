"""Centered deep Boltzmann machine.

Montavon & Müller (2012), "Deep Boltzmann machines and the centering trick", in Neural Networks:
Tricks of the Trade, 2nd ed., LNCS 7700. Every layer is centered by an offset mu_l (a vector of
the layer's size) before it enters the energy::

    E(x) = - sum_{l=1..L} (x_{l-1} - mu_{l-1})^T W_l (x_l - mu_l) - sum_{l=0..L} b_l^T (x_l - mu_l)

which, up to a constant that depends only on the parameters (and cancels in every probability),
is the DBM energy of ``dbm.py`` with the effective biases

    a_l = b_l - W_l^T mu_{l-1} - W_{l+1} mu_{l+1}.

Conditionals, mean field, AIS and enumeration are the DBM's with a_l in place of b_l. The
stochastic-maximum-likelihood gradient in (W, b) is the centered one,
E_data[(x_{l-1} - mu_{l-1})(x_l - mu_l)^T] - E_model[...] for W_l and E_data[x_l] - E_model[x_l]
for b_l (autograd through a_l gives exactly this: the mu mu^T terms cancel between the phases).

Offsets. mu_0 starts at the data mean, hidden offsets at 0.5; after each positive phase every
offset moves towards the batch mean of the data (v for mu_0, the mean-field q_l for the hidden
layers) at rate ``offset_rate``: mu_l <- (1 - nu) mu_l + nu mean(q_l). The biases are then
re-parameterised, b_l <- b_l + W_l^T (mu'_{l-1} - mu_{l-1}) + W_{l+1} (mu'_{l+1} - mu_{l+1}), so
that a_l, hence the model's distribution, is unchanged by the move. Centering makes the
gradient well conditioned enough that the DBM trains from random initialisation without
layerwise pretraining.
"""

from __future__ import annotations

import dataclasses

import torch

from genzoo.core.config import check
from genzoo.core.registry import register_model
from genzoo.models.base import checks_input, train_recipe
from genzoo.models.boltzmann.dbm import DBM, DBMConfig


@dataclasses.dataclass(frozen=True)
class CenteredDBMConfig(DBMConfig):
    """DBMConfig plus ``offset_rate`` nu, the moving-average rate of the offsets (0 keeps them
    at their initial values: data mean for v, 0.5 for the hidden layers)."""

    offset_rate: float = 0.01

    def validate(self) -> None:
        super().validate()
        check(0.0 <= self.offset_rate <= 1.0, "model.offset_rate must be in [0, 1]")


@register_model("centered-dbm", family="boltzmann", paper="Montavon & Müller 2012")
class CenteredDBM(DBM):
    """Centered deep Boltzmann machine (offsets as moving data means), no pretraining.

    DBM with offsets ``mu_0 .. mu_L`` (buffers, checkpointed). Same state conventions and
    contracts as :class:`~genzoo.models.boltzmann.dbm.DBM`."""

    config_class = CenteredDBMConfig
    train_defaults = train_recipe(
        optimizer="sgd", lr=0.05, lr_schedule="linear", lr_final_factor=0.01,
    )

    def __init__(
        self, config: CenteredDBMConfig, generator: torch.Generator | None = None
    ) -> None:
        if isinstance(config, DBMConfig) and not isinstance(config, CenteredDBMConfig):
            # A DBM's config: the centered DBM of that architecture, default offset_rate.
            config = CenteredDBMConfig(**dataclasses.asdict(config))
        super().__init__(config, generator)
        for l, n in enumerate(self.sizes):
            self.register_buffer(f"mu_{l}", torch.full((n,), 0.5))

    @property
    def offsets(self) -> list[torch.Tensor]:
        """[mu_0 (D,), mu_1 (n_1,), ...] (the buffers themselves)."""
        return [getattr(self, f"mu_{l}") for l in range(self.n_layers + 1)]

    def bias(self, l: int) -> torch.Tensor:
        """Effective bias a_l = b_l - W_l^T mu_{l-1} - W_{l+1} mu_{l+1} (n_l,)."""
        a = self.b[l]
        mu = self.offsets
        if l > 0:
            a = a - mu[l - 1] @ self.W[l - 1]
        if l < self.n_layers:
            a = a - self.W[l] @ mu[l + 1]
        return a

    @torch.no_grad()
    def set_offsets(self, new: list[torch.Tensor]) -> None:
        """Move the offsets to ``new`` and re-parameterise b so that every effective bias, and
        so the distribution, is unchanged."""
        mu = self.offsets
        delta = [n.to(m) - m for n, m in zip(new, mu)]
        for l in range(self.n_layers + 1):
            if l > 0:
                self.b[l].add_(delta[l - 1] @ self.W[l - 1])
            if l < self.n_layers:
                self.b[l].add_(self.W[l] @ delta[l + 1])
        for m, n in zip(mu, new):
            m.copy_(n)

    def _after_positive_phase(self, x: torch.Tensor, q: list[torch.Tensor]) -> None:
        nu = self.config.offset_rate
        if nu > 0:
            self.set_offsets(
                [(1.0 - nu) * m + nu * s.mean(0) for m, s in zip(self.offsets, [x, *q])]
            )

    @torch.no_grad()
    @checks_input
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """mu_0 := data mean and, unless ``init_visible_bias`` is False, the effective visible
        bias a_0 := the data logits; hidden offsets 0.5; chains as in DBM.init_from_data."""
        x = x_train.to(self.b[0])
        mu = [t.clone() for t in self.offsets]
        mu[0] = x.mean(0)
        for l in range(1, self.n_layers + 1):
            mu[l].fill_(0.5)
        self.set_offsets(mu)
        super().init_from_data(x_train, generator)
        if self.config.init_visible_bias:
            # DBM.init_from_data set b_0 to the logits; make the effective bias equal them.
            self.b[0].add_(self.W[0] @ self.offsets[1])
