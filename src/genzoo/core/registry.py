"""Model registry: name -> (class, config class, family, summary, paper).

A model module registers itself with :func:`register_model`; :func:`get_model_spec` imports
every module under ``genzoo.models`` lazily, so ``genzoo models`` lists everything without the
caller importing anything, and a new model is one new file (no list to keep in step).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable
from typing import TypeVar

from genzoo.core.config import Config
from genzoo.core.errors import ConfigError

T = TypeVar("T")

_MODELS_ROOT = "genzoo.models"
_REGISTRY: dict[str, ModelSpec] = {}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    cls: type
    config_cls: type[Config]
    family: str
    summary: str
    paper: str

    def build(self, config: Config):
        if not isinstance(config, self.config_cls):
            raise ConfigError(
                f"model {self.name!r} needs a {self.config_cls.__name__}, got {type(config).__name__}"
            )
        return self.cls(config)


def register_model(
    name: str,
    *,
    family: str,
    summary: str,
    paper: str,
    config: type[Config] | None = None,
) -> Callable[[T], T]:
    """Class decorator adding a model to the registry under ``name``. ``config``: its config
    class, by default the class's ``config_class`` (:class:`genzoo.models.base.GenzooModel`)."""

    def deco(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise RuntimeError(f"model name {name!r} registered twice")
        config_cls = config if config is not None else getattr(cls, "config_class", None)
        if config_cls is None or not issubclass(config_cls, Config):
            raise TypeError(f"model {name!r}: give config= or set the class's config_class")
        _REGISTRY[name] = ModelSpec(name, cls, config_cls, family, summary, paper)  # type: ignore[arg-type]
        return cls

    return deco


_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    root = importlib.import_module(_MODELS_ROOT)
    for info in pkgutil.walk_packages(root.__path__, prefix=_MODELS_ROOT + "."):
        importlib.import_module(info.name)
    _loaded = True


def list_models() -> list[ModelSpec]:
    _load_all()
    return sorted(_REGISTRY.values(), key=lambda s: (s.family, s.name))


def get_model_spec(name: str) -> ModelSpec:
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; available models: {', '.join(sorted(_REGISTRY))} "
            "(see `genzoo models`)"
        ) from None
