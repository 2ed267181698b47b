"""chain_kind: which step-by-step chain `genzoo chain` runs and a benchmark result's chain strip
shows, for every registered model (and for its class)."""

from __future__ import annotations

from genzoo.core.protocols import ENERGY
from genzoo.core.registry import get_model_spec, list_models
from genzoo.models.boltzmann.dbm import DBM
from genzoo.models.chains import chain_kind
from genzoo.models.markov.base import MarkovChainModel


def test_each_family_gets_its_chain():
    kinds = {name: chain_kind(get_model_spec(name).cls)
             for name in ("dae", "gsn", "dbm", "centered-dbm", "rbm", "conv-rbm", "vae", "nade",
                          "gan")}
    assert kinds == {"dae": "markov", "gsn": "markov", "dbm": "dbm", "centered-dbm": "dbm",
                     "rbm": "gibbs", "conv-rbm": "gibbs", "vae": None, "nade": None,
                     "gan": None}


def test_every_registered_model_is_classified_by_what_it_implements():
    for spec in list_models():
        kind = chain_kind(spec.cls)
        if issubclass(spec.cls, MarkovChainModel):
            assert kind == "markov", spec.name
        elif issubclass(spec.cls, DBM):
            assert kind == "dbm", spec.name
        elif ENERGY in getattr(spec.cls, "capabilities", frozenset()):
            assert kind == "gibbs" and callable(getattr(spec.cls, "gibbs_step", None)), spec.name
        else:
            assert kind is None, spec.name
