"""Typed, frozen, self-validating configuration.

Every hyperparameter section is a frozen dataclass deriving from :class:`Config`. A section
validates itself on construction (``validate``), round-trips through plain JSON dicts
(``to_dict`` / ``from_dict``, unknown keys rejected with the list of valid ones), and accepts
string overrides of the form ``section.key=value`` whose values are parsed by the field's type.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

from genzoo.core.errors import ConfigError

C = TypeVar("C", bound="Config")


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of all config sections. Subclasses override :meth:`validate`.

    ``EVALUATION_FIELDS`` (a model config's class attribute): the fields that change only how
    a trained model is evaluated, never its parameters (e.g. the size of an ensemble over
    orderings), so ``genzoo evaluate --set model.KEY=VALUE`` may change them."""

    EVALUATION_FIELDS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            object.__setattr__(self, f.name, _coerce(type(self), f, value))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the field and the valid range."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any], section: str = "") -> C:  # noqa: PYI019 (typing.Self needs 3.11)
        if not isinstance(d, dict):
            raise ConfigError(f"config section {section or cls.__name__!r} must be a JSON object")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            where = f"{section}." if section else ""
            raise ConfigError(
                f"unknown config key(s) {', '.join(where + k for k in unknown)}; "
                f"valid keys: {', '.join(where + n for n in names)}"
            )
        return cls(**d)

    def replace(self: C, **changes: Any) -> C:  # noqa: PYI019 (typing.Self needs 3.11)
        return dataclasses.replace(self, **changes)

    def with_override(self: C, key: str, raw: str, section: str = "") -> C:  # noqa: PYI019 (typing.Self needs 3.11)
        """Return a copy with ``key`` set from the string ``raw``, parsed by the field's type."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        where = f"{section}." if section else ""
        if key not in fields:
            raise ConfigError(
                f"unknown key {where}{key}; valid keys: "
                + ", ".join(where + n for n in fields)
            )
        hint = typing.get_type_hints(type(self))[key]
        value = parse_value(raw, hint, f"{where}{key}")
        return dataclasses.replace(self, **{key: value})


def check(condition: bool, message: str) -> None:
    """Validation helper: raise :class:`ConfigError` with ``message`` unless ``condition``."""
    if not condition:
        raise ConfigError(message)


def check_nonnegative(value: float, name: str) -> None:
    """Validation helper: ``value`` must be a finite number >= 0 (a rate, a cost, a scale)."""
    check(value >= 0 and math.isfinite(value), f"{name}={value} must be a finite number >= 0")


def _coerce(cls: type, f: dataclasses.Field, value: Any) -> Any:
    """Type-check a field value (ints accepted for floats, lists for tuples)."""
    hint = typing.get_type_hints(cls)[f.name]
    try:
        return _check_type(value, hint)
    except TypeError as exc:
        raise ConfigError(
            f"{cls.__name__}.{f.name}={value!r}: expected {_type_name(hint)} ({exc})"
        ) from None


def _is_union(hint: Any) -> bool:
    return get_origin(hint) in (Union, types.UnionType)


def _check_type(value: Any, hint: Any) -> Any:
    if hint is Any:
        return value
    if _is_union(hint):
        for arg in get_args(hint):
            try:
                return _check_type(value, arg)
            except TypeError:
                continue
        raise TypeError("no member of the union matches")
    if hint is type(None):
        if value is None:
            return None
        raise TypeError("expected None")
    if get_origin(hint) is Literal:
        if value in get_args(hint):
            return value
        raise TypeError(f"must be one of {list(get_args(hint))}")
    if get_origin(hint) is tuple:
        if not isinstance(value, (tuple, list)):
            raise TypeError("expected a sequence")
        args = get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_type(v, args[0]) for v in value)
        if len(args) != len(value):
            raise TypeError(f"expected {len(args)} items")
        return tuple(_check_type(v, a) for v, a in zip(value, args))
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise TypeError("expected true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError("expected an integer")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError("expected a number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise TypeError("expected a string")
    return value


def _type_name(hint: Any) -> str:
    if _is_union(hint):
        return " or ".join(_type_name(a) for a in get_args(hint))
    if get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(hint))
    if hint is type(None):
        return "none"
    if get_origin(hint) is tuple:
        return "a comma-separated list"
    return getattr(hint, "__name__", str(hint))


def parse_value(raw: str, hint: Any, name: str) -> Any:
    """Parse the command-line string ``raw`` into a value of type ``hint``."""
    text = raw.strip()
    candidates: list[Any]
    if _is_union(hint):
        candidates = list(get_args(hint))
    else:
        candidates = [hint]
    for cand in candidates:
        try:
            return _parse_one(text, cand)
        except (TypeError, ValueError):
            continue
    raise ConfigError(f"--set {name}={raw!r}: expected {_type_name(hint)}")


def _parse_one(text: str, hint: Any) -> Any:
    if hint is type(None):
        if text.lower() in ("none", "null", ""):
            return None
        raise ValueError
    if get_origin(hint) is Literal:
        for option in get_args(hint):
            if str(option) == text:
                return option
        raise ValueError
    if hint is bool:
        low = text.lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ValueError
    if hint is int:
        return int(text)
    if hint is float:
        return float(text)
    if hint is str:
        return text
    if get_origin(hint) is tuple:
        args = get_args(hint)
        parts = [p for p in text.strip("()[]").split(",") if p.strip()]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_parse_one(p.strip(), args[0]) for p in parts)
        if len(parts) != len(args):
            raise ValueError
        return tuple(_parse_one(p.strip(), a) for p, a in zip(parts, args))
    raise TypeError(f"cannot parse {hint}")
