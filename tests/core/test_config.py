"""The config system: typed sections, self-validation, dotted overrides, JSON round trip."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from genzoo.core.config import Config, check
from genzoo.core.errors import ConfigError
from genzoo.data.config import DataConfig
from genzoo.evaluation.config import EvalConfig
from genzoo.run_config import RunConfig
from genzoo.training.config import TrainConfig


@dataclasses.dataclass(frozen=True)
class Toy(Config):
    n: int = 3
    rate: float = 0.5
    name: str = "a"
    flag: bool = False
    mode: Literal["x", "y"] = "x"
    limit: int | None = None
    sizes: tuple[int, ...] = (1, 2)

    def validate(self) -> None:
        check(self.n > 0, f"n={self.n} must be positive")


def test_defaults_validate_and_are_frozen():
    cfg = Toy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.n = 4  # type: ignore[misc]


def test_types_are_checked_on_construction():
    with pytest.raises(ConfigError, match="Toy.n"):
        Toy(n="3")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="one of 'x', 'y'"):
        Toy(mode="z")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="must be positive"):
        Toy(n=0)
    assert Toy(rate=1).rate == 1.0 and isinstance(Toy(rate=1).rate, float)
    assert Toy(sizes=[4, 5]).sizes == (4, 5)


@pytest.mark.parametrize(
    "key, raw, expected",
    [
        ("n", "7", 7),
        ("rate", "1e-3", 1e-3),
        ("name", "hello", "hello"),
        ("flag", "true", True),
        ("flag", "0", False),
        ("mode", "y", "y"),
        ("limit", "none", None),
        ("limit", "12", 12),
        ("sizes", "3,4,5", (3, 4, 5)),
    ],
)
def test_override_parses_by_field_type(key, raw, expected):
    assert getattr(Toy().with_override(key, raw), key) == expected


def test_override_rejects_bad_values_and_unknown_keys():
    with pytest.raises(ConfigError, match="expected int"):
        Toy().with_override("n", "three", "model")
    with pytest.raises(ConfigError, match="valid keys: model.n, model.rate"):
        Toy().with_override("nn", "3", "model")
    with pytest.raises(ConfigError, match="must be positive"):
        Toy().with_override("n", "-1")


def test_from_dict_rejects_unknown_keys_and_round_trips():
    cfg = Toy(n=5, sizes=(7,), limit=3)
    assert Toy.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown config key"):
        Toy.from_dict({"n": 1, "bogus": 2})


def test_run_config_overrides_and_round_trip():
    cfg = RunConfig.default("rbm").with_overrides(
        ["model.n_hidden=20", "train.lr=0.05", "data.name=binarized-mnist", "eval.ais_runs=10"]
    )
    assert cfg.model.n_hidden == 20 and cfg.train.lr == 0.05
    assert cfg.data.name == "binarized-mnist" and cfg.eval.ais_runs == 10
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.bogus=1", "valid keys: model."),
        ("nosection=1", "section.key"),
        ("optim.lr=1", "section one of model, data, train, eval"),
        ("train.lr=-1", "must be positive"),
        ("train.batch_size=ten", "expected int"),
        ("data.name=cifar", "unknown data set"),
        ("train.optimizer=rmsprop", "one of 'sgd', 'adam'"),
        ("noequals", "section.key=value"),
    ],
)
def test_run_config_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.default("rbm").with_overrides([override])


def test_section_validation():
    with pytest.raises(ConfigError):
        DataConfig(name="binarized-mnist", binarize="dynamic")
    with pytest.raises(ConfigError):
        TrainConfig(momentum=1.0)
    with pytest.raises(ConfigError):
        EvalConfig(ais_runs=1)
    with pytest.raises(ConfigError, match="unknown model"):
        RunConfig.default("no-such-model")
