"""Which step-by-step sampling chain a model has: what ``genzoo chain`` runs and what a
benchmark result's chain strip shows."""

from __future__ import annotations

from typing import Literal

import torch

from genzoo.core.protocols import ENERGY, has
from genzoo.models.boltzmann.dbm import DBM
from genzoo.models.markov.base import MarkovChainModel

ChainKind = Literal["markov", "dbm", "gibbs"]


def chain_kind(model: torch.nn.Module | type) -> ChainKind | None:
    """``"markov"``: a Markov-chain sampler (dae, cae, gsn), whose ``chain(x0, steps)`` runs
    the whole chain; ``"dbm"``: a deep Boltzmann machine (dbm, centered-dbm), block Gibbs
    sweeps over all layers; ``"gibbs"``: an energy model (capability ``energy``) with a
    ``gibbs_step(v)``; None for a model that draws from its own sampler only. ``model``: a
    model or a model class."""
    cls = model if isinstance(model, type) else type(model)
    if issubclass(cls, MarkovChainModel):
        return "markov"
    if issubclass(cls, DBM):
        return "dbm"
    return "gibbs" if has(model, ENERGY) else None


__all__ = ["ChainKind", "chain_kind"]
