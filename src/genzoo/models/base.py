"""The small base class of every genzoo model, and the config fields that families share.

:class:`GenzooModel` is an ``nn.Module`` that owns what every model repeats: the check that its
config is of the right class, ``n_visible`` (filled from the data by the CLI when a config
leaves it None), ``device`` and ``dtype`` (those of its parameters), and the training hooks of
:class:`genzoo.core.protocols.TrainingHooks` with their defaults. A model declares what it
supports in ``capabilities`` (flags of :mod:`genzoo.core.protocols`) and implements the
Protocols of those flags; the conformance suite holds it to them.

A new model is one file::

    @dataclasses.dataclass(frozen=True)
    class MyConfig(VisibleConfig):
        n_components: int = 10

    @register_model("my-model", family="...", summary="...", paper="...")
    class MyModel(GenzooModel):
        config_class = MyConfig
        capabilities = frozenset({EXACT_LIKELIHOOD})

        def __init__(self, config: MyConfig) -> None:
            super().__init__(config)
            ...  # parameters

        def loss(self, x, generator=None): ...
        def sample(self, n, generator=None): ...
        def log_prob(self, x): ...

(``docs/extending.md`` works through a whole one.)
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn

from genzoo.core.config import Config, check
from genzoo.core.errors import ConfigError, InputError
from genzoo.core.protocols import Phase
from genzoo.core.validation import check_data


def check_n_visible(n_visible: int | None) -> None:
    """For ``Config.validate``: ConfigError unless ``n_visible`` is None or positive."""
    check(
        n_visible is None or n_visible > 0,
        f"model.n_visible={n_visible} must be positive (or none to take it from the data)",
    )


def require_n_visible(config, example: int = 784) -> int:
    """``config.n_visible`` at model construction, or a ConfigError naming the fix (``example``
    is the value the message suggests)."""
    if config.n_visible is None:
        raise ConfigError(
            f"model.n_visible is not set: set it (--set model.n_visible={example}) or let the "
            "CLI take it from the data"
        )
    return config.n_visible


def check_labels(y: torch.Tensor, n: int, n_classes: int) -> torch.Tensor:
    """``y`` itself after checking that it is (n,) int64 with values in [0, n_classes);
    InputError otherwise."""
    if y.shape != (n,) or y.dtype != torch.int64:
        raise InputError(f"y has shape {tuple(y.shape)} and dtype {y.dtype}; expected ({n},) int64")
    if bool(((y < 0) | (y >= n_classes)).any()):
        raise InputError(f"labels must be in [0, {n_classes}); set model.n_classes")
    return y


@dataclasses.dataclass(frozen=True)
class VisibleConfig(Config):
    """Fields of every model over a (B, n_visible) input: ``n_visible`` (None: the CLI takes it
    from the data)."""

    n_visible: int | None = None

    def validate(self) -> None:
        check_n_visible(self.n_visible)


class GenzooModel(nn.Module):
    """Base of every genzoo model (see the module docstring).

    Class attributes a model sets: ``config_class`` (its frozen config dataclass),
    ``capabilities`` (flags), ``needs_labels`` (the Trainer passes ``y=`` to ``loss``),
    ``binary_input`` (what the default :meth:`check_input` demands of x), ``test_overrides``
    (``--set`` overrides that make the model tiny and fast on the 8x8 digits: the conformance
    suite trains, samples and evaluates every registered model with them).
    """

    config_class: ClassVar[type[Config]] = Config
    capabilities: frozenset[str] = frozenset()
    needs_labels: ClassVar[bool] = False
    binary_input: ClassVar[bool] = True
    test_overrides: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Config) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        if any(f.name == "n_visible" for f in dataclasses.fields(config)):
            require_n_visible(config)
        self.config = config

    @property
    def device(self) -> torch.device:
        """The device of the model's first parameter or buffer (CPU for a model with none)."""
        for t in self._tensors():
            return t.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the model's first floating parameter or buffer (torch's default for a
        model with none)."""
        for t in self._tensors():
            if t.is_floating_point():
                return t.dtype
        return torch.get_default_dtype()

    def _tensors(self):
        yield from self.parameters()
        yield from self.buffers()

    # -- training hooks (genzoo.core.protocols.TrainingHooks), with their defaults -------------

    def check_input(self, x: torch.Tensor, name: str = "x") -> None:
        """Raise InputError unless x is a finite floating (B, n_visible) tensor, binary when
        ``binary_input``."""
        check_data(x, self.config.n_visible, binary=self.binary_input, name=name)

    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """Data-dependent starting values, set once by the Trainer on a fresh run; none by
        default."""

    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """Figures of the validation split x (N, D), logged as ``valid_<name>``; none by
        default."""
        return {}

    def phases(self) -> list[Phase]:
        """Parameter groups stepped in turn; ``[]`` (the default): one loss, one optimizer."""
        return []
