"""The run config: model, data, training and evaluation sections, saved with every run.

The ``train`` section of a new run starts from the model's own training defaults (its class's
``train_defaults``: optimizer, rate, schedule), under which the user's ``--set train.*`` apply;
config.json records the resolved values, so resume and evaluate reproduce them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from genzoo.core.config import Config
from genzoo.core.errors import ConfigError
from genzoo.core.registry import ModelSpec, get_model_spec
from genzoo.data.config import DataConfig
from genzoo.evaluation.config import EvalConfig
from genzoo.training.config import TrainConfig

SECTIONS = ("model", "data", "train", "eval")
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run. ``model`` is the registered model's own config class."""

    model_name: str
    model: Config
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)

    @classmethod
    def default(cls, model_name: str) -> RunConfig:
        """The model's default config, its training section from :func:`train_defaults`."""
        spec = get_model_spec(model_name)
        return cls(model_name=model_name, model=spec.config_cls(), train=train_defaults(spec))

    def with_overrides(self, overrides: list[str]) -> RunConfig:
        """Apply ``section.key=value`` strings, type-checked against each section's fields."""
        cfg = self
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"--set {item!r}: expected section.key=value")
            dotted, raw = item.split("=", 1)
            section, _, key = dotted.strip().partition(".")
            if section not in SECTIONS or not key:
                raise ConfigError(
                    f"--set {item!r}: the key must be section.key with section one of "
                    f"{', '.join(SECTIONS)} (e.g. model.n_hidden=500, train.lr=0.05)"
                )
            current: Config = getattr(cfg, section)
            cfg = dataclasses.replace(cfg, **{section: current.with_override(key, raw, section)})
        return cfg

    def mismatches(self, settings: Mapping[str, Any]) -> list[str]:
        """Every ``section.field`` of ``settings`` (a recipe, ``{"train.lr": 0.001}``) that
        this config does not hold, as ``"train.lr: recipe 0.001, run 0.0005"``, or as ``"KEY:
        recipe VALUE, not a setting of this run (why)"``. Settings a trained model may change
        at evaluation (``eval.*``, the model config's ``EVALUATION_FIELDS``) are skipped."""
        out = []
        for key, value in settings.items():
            section, _, field = key.partition(".")
            if section == "eval" or (section == "model" and field in self.model.EVALUATION_FIELDS):
                continue
            raw = str(value).lower() if isinstance(value, bool) else value  # as --set spells it
            try:
                expected = getattr(getattr(self.with_overrides([f"{key}={raw}"]), section), field)
            except ConfigError as e:
                out.append(f"{key}: recipe {value}, not a setting of this run ({e})")
                continue
            held = getattr(getattr(self, section), field)
            if expected != held:
                out.append(f"{key}: recipe {value}, run {held}")
        return out

    def to_dict(self) -> dict[str, Any]:
        from genzoo import __version__

        return {
            "format_version": FORMAT_VERSION,
            "genzoo_version": __version__,
            "model_name": self.model_name,
            **{s: getattr(self, s).to_dict() for s in SECTIONS},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        if not isinstance(d, dict) or "model_name" not in d:
            raise ConfigError("run config must be a JSON object with a 'model_name' key")
        if d.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
            raise ConfigError(
                f"run config format {d.get('format_version')} is not supported by this genzoo "
                f"(expects {FORMAT_VERSION}); use the genzoo version that wrote it"
            )
        spec = get_model_spec(str(d["model_name"]))
        return cls(
            model_name=spec.name,
            model=spec.config_cls.from_dict(d.get("model", {}), "model"),
            data=DataConfig.from_dict(d.get("data", {}), "data"),
            train=train_defaults(spec, d.get("train", {})),
            eval=EvalConfig.from_dict(d.get("eval", {}), "eval"),
        )


def train_defaults(spec: ModelSpec, saved: dict[str, Any] | None = None) -> TrainConfig:
    """The ``train`` section of a ``spec.name`` run: the model's ``train_defaults`` over
    :class:`TrainConfig`'s own, then ``saved`` (a config.json's section, which holds every
    field once written) over both. ConfigError naming the model when its declaration is not a
    valid TrainConfig."""
    declared = dict(getattr(spec.cls, "train_defaults", {}) or {})
    try:
        base = TrainConfig.from_dict(declared, "train")
    except ConfigError as exc:
        raise ConfigError(f"model {spec.name!r} declares invalid train_defaults: {exc}") from None
    if saved is None:
        return base
    if not isinstance(saved, dict):
        raise ConfigError("config section 'train' must be a JSON object")
    return TrainConfig.from_dict({**declared, **saved}, "train")
