"""Model registry: name -> (class, config class, family, summary, paper).

A model module registers itself with :func:`register_model`; :func:`get_model_spec` imports
every module under ``genzoo.models`` lazily, so ``genzoo models`` lists everything without the
caller importing anything, and a new model is one new file (no list to keep in step).

Models outside genzoo (plug-ins) are loaded the same way, from two places:

- the ``genzoo.models`` entry-point group of installed packages (in a plug-in's
  ``pyproject.toml``: ``[project.entry-points."genzoo.models"] my-model = "my_pkg.my_model"``);
- the ``GENZOO_PLUGINS`` environment variable: module names or paths of ``.py`` files,
  separated by the platform's path separator (``:`` on Linux), for a model that is one file
  in a user's project. A run trained with a plug-in needs the same plug-in to be evaluated.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import os
import pkgutil
import sys
from collections.abc import Callable
from typing import TypeVar

from genzoo.core.config import Config
from genzoo.core.errors import ConfigError, GenzooError

T = TypeVar("T")

_MODELS_ROOT = "genzoo.models"
PLUGINS_ENV = "GENZOO_PLUGINS"
ENTRY_POINT_GROUP = "genzoo.models"
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
    paper: str,
    summary: str | None = None,
    config: type[Config] | None = None,
) -> Callable[[T], T]:
    """Class decorator adding a model to the registry under ``name``. ``summary``: the one line
    ``genzoo models`` prints, by default the first paragraph of the class docstring (so the
    docstring and the listing never disagree). ``config``: its config class, by default the
    class's ``config_class`` (:class:`genzoo.models.base.GenzooModel`)."""

    def deco(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise RuntimeError(f"model name {name!r} registered twice")
        config_cls = config if config is not None else getattr(cls, "config_class", None)
        if config_cls is None or not issubclass(config_cls, Config):
            raise TypeError(f"model {name!r}: give config= or set the class's config_class")
        line = summary if summary is not None else _first_paragraph(cls.__doc__)
        if not line:
            raise TypeError(f"model {name!r}: give summary= or a class docstring")
        _REGISTRY[name] = ModelSpec(name, cls, config_cls, family, line, paper)  # type: ignore[arg-type]
        return cls

    return deco


def _first_paragraph(doc: str | None) -> str:
    """The docstring's first paragraph on one line, without its closing full stop."""
    head = (doc or "").strip().split("\n\n")[0]
    return " ".join(head.split()).removesuffix(".")


_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    root = importlib.import_module(_MODELS_ROOT)
    for info in pkgutil.walk_packages(root.__path__, prefix=_MODELS_ROOT + "."):
        importlib.import_module(info.name)
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        _load_plugin(entry.value.split(":")[0], f"entry point {entry.name!r}")
    for item in os.environ.get(PLUGINS_ENV, "").split(os.pathsep):
        if item.strip():
            _load_plugin(item.strip(), PLUGINS_ENV)
    _loaded = True


def _load_plugin(target: str, source: str) -> None:
    """Import the plug-in ``target`` (a module name, or the path of a .py file), whose
    :func:`register_model` decorators add its models; GenzooError naming ``source`` when it
    cannot be imported."""
    try:
        if target.endswith(".py"):
            path = os.path.abspath(os.path.expanduser(target))
            name = "genzoo_plugin_" + os.path.splitext(os.path.basename(path))[0]
            if name in sys.modules:
                return
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or not os.path.isfile(path):
                raise FileNotFoundError(path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)  # type: ignore[union-attr]
            except BaseException:
                del sys.modules[name]
                raise
        else:
            importlib.import_module(target)
    except GenzooError:
        raise
    except Exception as exc:  # a plug-in's own bug or a wrong path: say which plug-in
        raise GenzooError(
            f"cannot load the genzoo plug-in {target!r} (from {source}): "
            f"{type(exc).__name__}: {exc}; fix or remove it"
        ) from exc


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
            f"(see `genzoo models`; a plug-in's model needs its plug-in loaded: "
            f"{PLUGINS_ENV}=path/to/model.py or the {ENTRY_POINT_GROUP!r} entry point)"
        ) from None
