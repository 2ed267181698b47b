"""The Python front door, in the spirit of scikit-learn: :func:`fit` trains a registered model
on an array, a tensor, a Dataset, a file or a built-in data set through the one Trainer and a
normal run directory; :func:`score` is the mean log-likelihood of data under a model by the
estimator ``genzoo evaluate`` would choose (``GenzooModel.score`` calls it).

Settings are given as one keyword argument per config section, each a dict of that section's
fields with Python values, type-checked like ``--set``::

    model, run = genzoo.fit("rbm", x, out="runs/rbm", model={"n_hidden": 64},
                            train={"epochs": 5}, data={"binarize": "dynamic"})
    model.score(x_test)                    # mean log p(x), nats per example
    model.score(x_test, estimate=True)     # the same as an Estimate, with its standard error

The command line shares :func:`resolve_for_data` and :func:`check_fits_model` with it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from genzoo.core.errors import ConfigError, DataError, GenzooError
from genzoo.core.protocols import IMPLICIT
from genzoo.data import IN_MEMORY, DataBundle, Split, load_data, recorded_config
from genzoo.data.user import resolve_path, to_values
from genzoo.evaluation import Estimate, EvalConfig, EvaluationReport, estimator_for, evaluate
from genzoo.models.boltzmann.dbm_classifier import DBMClassifier, DBMClassifierConfig
from genzoo.recipes.dbm_classifier import resolve_source, start_from_run
from genzoo.recipes.dbm_pretraining import pretrain_run
from genzoo.run_config import SECTIONS, RunConfig
from genzoo.training.manifest import PRETRAIN_DIR


@dataclasses.dataclass
class Run:
    """A finished training run: its directory ``path`` (a normal genzoo run: ``genzoo
    evaluate PATH`` works on it when its data are a file or a built-in set), the resolved
    ``config`` saved there, the last ``metrics`` logged, the ``bundle`` trained on and the
    trained ``model``."""

    path: Path
    config: RunConfig
    metrics: dict[str, float | int]
    bundle: DataBundle
    model: torch.nn.Module

    def evaluate(self, split: str = "test", **eval_settings: Any) -> EvaluationReport:
        """The report ``genzoo evaluate`` prints, on ``split`` of the data trained on, in the
        data's own space; ``eval_settings`` are fields of the ``eval`` section (e.g.
        ``ais_runs=100``)."""
        cfg = _section(self.config.eval, {"split": split, **eval_settings}, "eval")
        return evaluate(self.model, self.bundle, cfg)


class Fitted(NamedTuple):
    """What :func:`fit` returns: ``model, run = genzoo.fit(...)``."""

    model: torch.nn.Module
    run: Run


def _section(current, settings: dict[str, Any], name: str):
    if not isinstance(settings, dict):
        raise ConfigError(f"{name}= takes a dict of {name}.* settings, e.g. {name}="
                          f"{{'{dataclasses.fields(current)[0].name}': ...}}")
    return type(current).from_dict({**current.to_dict(), **settings}, name)


def _data_name(data: Any) -> str:
    if isinstance(data, (str, os.PathLike)):
        return resolve_path(os.fspath(data))
    return IN_MEMORY


def fit(
    model: str,
    data: Any,
    /,
    *,
    out: str | os.PathLike,
    y: Any = None,
    resume: bool = False,
    **sections: dict[str, Any],
) -> Fitted:
    """Train the registered model ``model`` (e.g. ``"rbm"``) on ``data`` into the run
    directory ``out``; returns ``(model, run)`` (:class:`Fitted`).

    ``data``: a numpy array or torch tensor (N, ...) of examples, an ``(x, y)`` pair, a
    ``torch.utils.data.Dataset`` of ``x`` or ``(x, y)`` items, the path of a file or folder
    (see :mod:`genzoo.data.user`), or a built-in data set's name. ``y``: (N,) labels for an
    array ``data``. ``sections``: ``model=``, ``data=``, ``train=``, ``eval=``, each a dict of
    that config section's fields (see the module docstring). ``resume``: continue the run in
    ``out`` from its checkpoint (its config is read from there; ``train`` settings may
    lengthen it).

    Data whose kind the model cannot take are refused before training with the fix (a
    Bernoulli model given grey levels: ``data={"binarize": "dynamic"}``). Raises
    :class:`~genzoo.core.errors.GenzooError` subclasses naming the fix.
    """
    from genzoo.core.registry import get_model_spec
    from genzoo.training import Trainer
    from genzoo.training.checkpoint import read_run_config
    from genzoo.training.run_directory import run_lock

    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)} for genzoo.fit; settings "
                          f"are given by section: {', '.join(s + '={...}' for s in SECTIONS)}")
    spec = get_model_spec(model)
    in_memory = data if _data_name(data) == IN_MEMORY else None
    if y is not None:
        if in_memory is None:
            raise DataError("y= goes with an array; a file holds its own labels")
        in_memory = (data, y)
    if resume:
        cfg = read_run_config(out)
        if cfg.model_name != spec.name:
            raise GenzooError(f"{out} holds a {cfg.model_name!r} run, not {spec.name!r}")
    else:
        cfg = RunConfig.default(spec.name)
        cfg = dataclasses.replace(cfg, data=cfg.data.replace(name=_data_name(data)))
    for name, settings in sections.items():
        cfg = dataclasses.replace(cfg, **{name: _section(getattr(cfg, name), settings, name)})
    cfg, pretrain = plan_pretraining(cfg, None, resume)
    bundle = load_data(cfg.data, in_memory)
    cfg = resolve_for_data(cfg, bundle)
    # nn.Module initialisers draw from the global generator: seeded by train.seed as the
    # command line does, inside fork_rng so that the caller's generator is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        built = spec.build(cfg.model)
    check_fits_model(bundle, built, spec.name, cfg.data.name)
    # Held from before the recipes write (out/pretrain) until the Trainer ends, as by
    # genzoo train: a user's folder is refused untouched, and the run is genzoo's meanwhile.
    with run_lock(out):
        if not resume:
            start_fresh(built, cfg, bundle, out, pretrain)
        metrics = Trainer(built, cfg, bundle, out).fit(resume=resume)
    built.eval()
    return Fitted(built, Run(Path(out), cfg, metrics, bundle, built))


def plan_pretraining(cfg: RunConfig, epochs: int | None, resume: bool) -> tuple[RunConfig, bool]:
    """(config, whether to pretrain now): ``epochs`` (``genzoo train --pretrain EPOCHS``; None:
    the config's) is model.pretrain_epochs; a fresh run with pretrain_epochs > 0 pretrains and
    keeps the pretrained visible bias (model.init_visible_bias=false, recorded in config.json);
    a resumed run never pretrains."""
    has_field = any(f.name == "pretrain_epochs" for f in dataclasses.fields(cfg.model))
    if epochs is not None:
        if not has_field:
            raise GenzooError(
                f"--pretrain applies to models with greedy layerwise pretraining (dbm, "
                f"centered-dbm), not {cfg.model_name!r}; drop --pretrain"
            )
        cfg = cfg.with_overrides([f"model.pretrain_epochs={epochs}"])
    pretrain = has_field and not resume and cfg.model.pretrain_epochs > 0
    if pretrain:
        cfg = cfg.with_overrides(["model.init_visible_bias=false"])
    return cfg, pretrain


def start_fresh(model: torch.nn.Module, cfg: RunConfig, bundle: DataBundle,
                out: str | os.PathLike, pretrain: bool, *, distributed: bool = False) -> None:
    """What a fresh run of some models does before its Trainer starts: a DBM classifier takes
    its DBM from the run ``model.dbm_run`` names (:func:`genzoo.recipes.dbm_classifier.
    start_from_run`); with ``pretrain`` (:func:`plan_pretraining`), a DBM is pretrained
    greedily layer by layer into ``out/pretrain`` (:func:`genzoo.recipes.dbm_pretraining.
    pretrain_run`; under torchrun every rank trains the RBMs data-parallel)."""
    if isinstance(model, DBMClassifier):
        start_from_run(model)
    if pretrain:
        pretrain_run(model, cfg, bundle, Path(out) / PRETRAIN_DIR, distributed=distributed)


def resolve_for_data(cfg: RunConfig, bundle: DataBundle) -> RunConfig:
    """Fill what comes from the data before the model is built: ``model.n_visible``, and the
    SHA-256, shape and kind of the user's data (``data.file_*``, recorded in config.json); the
    DBM classifier's config reads its source run's config first (the recipe) and then checks
    the data against it."""
    model_cfg = cfg.model
    if isinstance(model_cfg, DBMClassifierConfig):
        model_cfg = resolve_source(model_cfg).resolve_for_data(bundle)
    if any(f.name == "n_visible" for f in dataclasses.fields(model_cfg)):
        if model_cfg.n_visible is None:
            model_cfg = model_cfg.replace(n_visible=bundle.n_features)
        elif model_cfg.n_visible != bundle.n_features:
            raise GenzooError(
                f"model.n_visible={model_cfg.n_visible} but data set {cfg.data.name!r} has "
                f"{bundle.n_features} features; drop the override or pick matching data"
            )
    return dataclasses.replace(cfg, model=model_cfg, data=recorded_config(cfg.data, bundle))


def check_fits_model(bundle: DataBundle, model, model_name: str, data_name: str) -> None:
    """Refuse data the model cannot take, before training, with the fix: grey levels or real
    values for a model with binary units, values outside a model's ``input_range``."""
    xs = (bundle.train_x(0), bundle.valid.x, bundle.test.x)
    lo = min(float(x.min()) for x in xs if len(x))
    hi = max(float(x.max()) for x in xs if len(x))
    if model.binary_input and not bundle.binary:
        if bundle.grey_eval and lo >= 0 and hi <= 1:
            if model.mean_field_input:  # binary train split, grey valid/test read as means
                return
            raise DataError(
                f"data.grey_eval keeps the grey levels of valid/test, but {model_name} reads "
                "binary inputs only; set data.grey_eval=false (grey-level evaluation is for "
                "models whose mean-field inference reads inputs as means: mp-dbm, "
                "dbm-classifier)"
            )
        if lo < 0 or hi > 1:
            raise DataError(
                f"{model_name} has binary (Bernoulli) units but {data_name!r} is real-valued "
                f"(values in [{lo:g}, {hi:g}]); rescale it into [0, 1] and set data.binarize="
                "dynamic or data.binarize=threshold, or choose a real-valued model (genzoo "
                "models lists them)"
            )
        raise DataError(
            f"{model_name} has binary (Bernoulli) units but {data_name!r} has grey levels in "
            "[0, 1]; binarize them: data.binarize=dynamic (a fresh draw each epoch) or "
            "data.binarize=threshold"
        )
    rng = model.input_range
    if not model.binary_input and rng is not None and (lo < rng[0] or hi > rng[1]):
        raise DataError(
            f"{model_name} takes values in [{rng[0]:g}, {rng[1]:g}] but {data_name!r} ranges "
            f"over [{lo:g}, {hi:g}]; rescale the data into that range"
        )


def _as_batch(x: Any) -> torch.Tensor:
    """(N, D) float32 CPU tensor of examples ``x`` (array or tensor, (N, ...) flattened;
    uint8 grey levels divided by 255 as when a file is read)."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim < 2:
        raise DataError(f"score takes a batch of examples (N, D) or (N, ...); got shape "
                        f"{a.shape} (one example: x[None])")
    values, _ = to_values(a, "score's x")
    return torch.from_numpy(values.reshape(len(values), -1))


def score(
    model, x: Any, /, *, estimate: bool = False, generator: torch.Generator | None = None,
    **eval_settings: Any,
) -> float | Estimate:
    """Mean log-likelihood log p(x) of the examples ``x`` (N, D) (array or tensor) under
    ``model``, in nats per example, by the estimator ``genzoo evaluate`` would choose for it
    (exact, exact log Z or AIS, importance sampling, the variational bound of a DBM).

    ``x`` is what the model takes (its model space: for a run trained with
    ``data.dequantize`` / ``logit_alpha`` / ``standardize``, the transformed values; use
    ``run.evaluate()`` for the data-space figure). ``eval_settings``: fields of the ``eval``
    section (e.g. ``ais_runs=100``, ``is_samples=500``); ``generator`` seeds the estimator.
    ``estimate=True`` returns the :class:`~genzoo.evaluation.Estimate` of the mean
    log-likelihood instead of its value: ``stderr``, ``n_samples``, ``estimator`` and the
    estimator's ``diagnostics`` (with ``bound`` when the figure is a lower bound, and
    ``log_likelihood_reverse`` for the reverse-AIS end of the bracket).

    Raises :class:`GenzooError` for a model without a likelihood (implicit models: see
    ``genzoo evaluate`` for their sample-based measures).
    """
    entry = estimator_for(model)
    if entry is None or entry.capability == IMPLICIT:
        raise GenzooError(
            f"{type(model).__name__} has no likelihood estimator, so it has no score; "
            "genzoo evaluate gives the sample-based measures of a model that only samples"
        )
    batch = _as_batch(x)
    binary = bool(((batch == 0) | (batch == 1)).all())
    split = Split(batch)
    bundle = DataBundle(name=IN_MEMORY, train=split, valid=split, test=split,
                        image_shape=(1, batch.shape[1]), binary=binary,
                        description="examples given to score")
    cfg = _section(EvalConfig(), {**eval_settings, "split": "test", "task": "likelihood"}, "eval")
    report = evaluate(model, bundle, cfg, generator)
    if not estimate:
        return -report.nll.value
    diagnostics = dict(report.nll.diagnostics)
    if report.bound is not None:
        diagnostics["bound"] = report.bound
    if report.nll_reverse is not None:
        diagnostics["log_likelihood_reverse"] = -report.nll_reverse.value
    return Estimate(-report.nll.value, report.nll.stderr, report.nll.n_samples,
                    report.estimator, diagnostics, report.nll.unit)


__all__ = ["Fitted", "Run", "check_fits_model", "fit", "resolve_for_data", "score"]
