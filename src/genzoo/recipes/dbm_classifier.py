"""The DBM classifier started from a trained DBM run (Salakhutdinov & Hinton 2009, sec. 5).

:class:`~genzoo.models.boltzmann.dbm_classifier.DBMClassifier` is the model; this recipe reads
the run it starts from. ``genzoo train dbm-classifier --set model.dbm_run=DBM_RUN`` calls
:func:`resolve_source` before building the classifier (so its run config records the source
DBM's model name and config, and the run is self-contained) and, on a fresh run,
:func:`start_from_run` before the Trainer fine-tunes it. From Python::

    config = resolve_source(DBMClassifierConfig(dbm_run="DBM_RUN"))
    clf = start_from_run(DBMClassifier(config))

or, with the DBM in memory, ``DBMClassifier.from_dbm(dbm, n_classes)``.
"""

from __future__ import annotations

import json

from genzoo.core.errors import ConfigError
from genzoo.models.boltzmann.dbm_classifier import SOURCES, DBMClassifier, DBMClassifierConfig
from genzoo.training.checkpoint import load_model, read_run_config


def resolve_source(config: DBMClassifierConfig) -> DBMClassifierConfig:
    """``config`` with ``dbm_model`` / ``dbm_config`` read from the run config of
    ``dbm_run`` (which must hold a dbm or centered-dbm run); unchanged when ``dbm_config`` is
    set already (a resumed run, a checkpoint) or no ``dbm_run`` is given."""
    if config.dbm_config is not None or config.dbm_run is None:
        return config
    source = read_run_config(config.dbm_run)
    if source.model_name not in SOURCES:
        raise ConfigError(
            f"model.dbm_run={config.dbm_run} holds a {source.model_name!r} run; the "
            f"classifier starts from one of {', '.join(SOURCES)}"
        )
    return config.replace(
        dbm_model=source.model_name, dbm_config=json.dumps(source.model.to_dict())
    )


def start_from_run(model: DBMClassifier) -> DBMClassifier:
    """Load the DBM of ``model.config.dbm_run`` (its checkpoint verified, no pickle) and start
    ``model`` from it (:meth:`DBMClassifier.init_from_dbm`), for a fresh training run; a model
    configured without ``dbm_run`` keeps its random initialisation. Returns ``model``."""
    config = model.config
    if config.dbm_run is None:
        return model
    dbm, source = load_model(config.dbm_run)
    if source.model_name != config.dbm_model:
        raise ConfigError(
            f"model.dbm_run={config.dbm_run} now holds a {source.model_name!r} run, not "
            f"the {config.dbm_model!r} recorded in model.dbm_model"
        )
    return model.init_from_dbm(dbm.to(model.W[0]))
