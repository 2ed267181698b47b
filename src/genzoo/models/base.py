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

    @register_model("my-model", family="...", paper="...")
    class MyModel(GenzooModel):
        '''One line: what ``genzoo models`` lists.

        Shapes and units of the batch methods.'''

        config_class = MyConfig
        capabilities = frozenset({EXACT_LIKELIHOOD})

        def __init__(self, config: MyConfig) -> None:
            super().__init__(config)
            ...  # parameters

        @checks_input(nonempty=True)
        def loss(self, x, generator=None): ...
        def sample(self, n, generator=None): ...
        @checks_input
        def log_prob(self, x): ...

Public methods that take data (``loss``, ``log_prob``, ``free_energy``, ``energy``,
``gibbs_step``, ``log_joint``, ``proposal``, ``variational_free_energy``, ``predict``) wear
:func:`checks_input`, so the one :meth:`GenzooModel.check_input` guards them; a model's own
calls between them (``loss`` calling ``free_energy``, a Gibbs chain in ``sample``) are not
checked again.

(``docs/extending.md`` works through a whole one.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import threading
import types
from collections.abc import Callable, Iterator, Mapping
from typing import ClassVar, TypeVar

import torch
from torch import nn

from genzoo.core.config import Config, check
from genzoo.core.errors import ConfigError, InputError
from genzoo.core.protocols import Phase
from genzoo.core.validation import check_data, check_observed_mask

_F = TypeVar("_F", bound=Callable)
_inside = threading.local()  # .depth: checked model calls open on this thread
_means = threading.local()  # .depth: mean_field_inputs scopes open on this thread


@contextlib.contextmanager
def trusted_input() -> Iterator[None]:
    """A scope whose calls to :func:`checks_input` methods skip the check: a model's loops over
    states it made itself (Gibbs chains in ``sample``, AIS transitions), where a check per step
    would cost a pass over the data and a device read-back each time."""
    _inside.depth = getattr(_inside, "depth", 0) + 1
    try:
        yield
    finally:
        _inside.depth -= 1


@contextlib.contextmanager
def mean_field_inputs() -> Iterator[None]:
    """A scope in which a model with ``mean_field_input`` also accepts inputs in [0, 1] (read
    as the Bernoulli means its mean-field inference clamps v to) where it otherwise demands
    {0, 1}: the classification of grey-level images (``data.grey_eval``). Other models check
    their inputs as always."""
    _means.depth = getattr(_means, "depth", 0) + 1
    try:
        yield
    finally:
        _means.depth -= 1


class _ConfigOnly:
    """Stands in for a model whose config-dependent properties are read before it is built."""

    def __init__(self, config: Config) -> None:
        self.config = config


def checks_input(method: _F | None = None, *, nonempty: bool = False):
    """Decorator of a public model method whose first argument is a data batch: the call runs
    ``self.check_input(batch, name)`` first (``name``: the parameter's own, e.g. ``v``), and
    with ``nonempty`` refuses an empty batch (``loss``: a mean over no examples is NaN). Calls
    made while another checked method of any model runs (or inside :func:`trusted_input`) are
    not checked again, so a training step or an estimator pays for one check of its input.
    Used as ``@checks_input`` or ``@checks_input(nonempty=True)``."""

    def wrap(f: _F) -> _F:
        name = list(inspect.signature(f).parameters)[1]

        @functools.wraps(f)
        def checked(self, x, /, *args, **kwargs):
            if getattr(_inside, "depth", 0):
                return f(self, x, *args, **kwargs)
            self.check_input(x, name)
            if nonempty and len(x) == 0:
                raise InputError(
                    f"{name} is an empty batch (0 rows): pass at least one example (check the "
                    "data subset and the batch size)"
                )
            with trusted_input():
                return f(self, x, *args, **kwargs)

        return checked  # type: ignore[return-value]

    return wrap(method) if method is not None else wrap


def train_recipe(**settings: object) -> Mapping[str, object]:
    """A model's ``train_defaults`` (read-only): ``train.*`` field names and values, e.g.
    ``train_recipe(optimizer="adam", lr=1e-3)``; the run config checks them against
    :class:`genzoo.training.config.TrainConfig` when it builds a model's default run."""
    return types.MappingProxyType(dict(settings))


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
    ``binary_input`` and ``input_range`` (what :meth:`check_input` demands of x: values in
    {0, 1}, or in [lo, hi] when not binary and a range is set; a model whose support depends on
    its config makes them properties), ``mean_field_input`` (a binary-input model whose
    predictions are defined for inputs in [0, 1] read as Bernoulli means: it accepts them
    inside :func:`mean_field_inputs`), ``test_overrides``
    (``--set`` overrides that make the model tiny and fast on the 8x8 digits: the conformance
    suite trains, samples and evaluates every registered model with them), ``train_defaults``
    (``train.*`` fields, e.g. ``{"optimizer": "adam", "lr": 1e-3}``: the optimizer, rate and
    schedule that make the model learn on its natural data in a short run, its benchmark's
    recipe; :meth:`genzoo.run_config.RunConfig.default` puts them under the user's own
    ``--set train.*``, and ``tests/test_defaults_learn.py`` holds every model to them).
    """

    config_class: ClassVar[type[Config]] = Config
    capabilities: frozenset[str] = frozenset()
    needs_labels: ClassVar[bool] = False
    binary_input: ClassVar[bool] = True
    input_range: ClassVar[tuple[float, float] | None] = None
    mean_field_input: ClassVar[bool] = False
    test_overrides: ClassVar[tuple[str, ...]] = ()
    train_defaults: ClassVar[Mapping[str, object]] = types.MappingProxyType({})

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

    @classmethod
    def takes_binary_input(cls, config: Config) -> bool:
        """Whether a model of this class built from ``config`` takes binary data, known before
        it is built (the command line picks a binarization from it): ``binary_input``, or,
        where a model makes that a property of its config, the property's value for
        ``config`` (such properties read ``self.config`` only)."""
        attr = inspect.getattr_static(cls, "binary_input")
        if isinstance(attr, property):
            return bool(attr.fget(_ConfigOnly(config)))
        return bool(attr)

    @property
    def input_width(self) -> int:
        """D, the number of columns of the (B, D) batches the model takes: ``n_visible``."""
        return self.config.n_visible  # type: ignore[attr-defined]

    def _tensors(self):
        yield from self.parameters()
        yield from self.buffers()

    # -- training hooks (genzoo.core.protocols.TrainingHooks), with their defaults -------------

    def check_input(self, x: torch.Tensor, name: str = "x") -> None:
        """Raise InputError unless x is a finite floating (B, input_width) tensor, binary when
        ``binary_input``, else in ``input_range`` when set. The one input check of every model:
        the methods that wear :func:`checks_input` and the estimators call it. Inside
        :func:`mean_field_inputs` a model with ``mean_field_input`` takes x in [0, 1]."""
        if self.mean_field_input and self.binary_input and getattr(_means, "depth", 0):
            check_data(x, self.input_width, binary=False, value_range=(0.0, 1.0), name=name)
            return
        check_data(x, self.input_width, binary=self.binary_input, value_range=self.input_range,
                   name=name)

    def check_observed_input(self, x: torch.Tensor, observed: torch.Tensor) -> None:
        """:meth:`check_input` of x (B, D) for ``inpaint``, where only the entries with
        ``observed`` True ((B, D) or (D,) bool) are read: the others may hold anything, NaN
        included. A malformed x is refused before the mask is looked at."""
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.input_width:
            self.check_input(x)  # raises, naming the expected shape
        observed = torch.as_tensor(observed, dtype=torch.bool, device=x.device)
        self.check_input(torch.where(observed, x, torch.zeros_like(x)))

    def observed_entries(
        self, x: torch.Tensor, observed_mask: torch.Tensor, n_samples: int
    ) -> torch.Tensor:
        """The checked arguments of ``inpaint``: refuses an ``n_samples`` below 1, a malformed x
        (B, D) or mask, and bad values at the observed entries; returns the mask as (B, D)
        bool (True = observed)."""
        if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples < 1:
            raise InputError(f"n_samples={n_samples!r} must be a positive integer")
        nothing = torch.zeros((), dtype=torch.bool, device=x.device)
        self.check_observed_input(x, nothing)  # shape and dtype only
        observed = check_observed_mask(observed_mask, x)
        self.check_observed_input(x, observed)
        return observed

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

    def score(self, x, /, *, estimate: bool = False, **eval_settings):
        """Mean log-likelihood of the examples x (N, D) in nats per example, by the estimator
        ``genzoo evaluate`` chooses for this model; ``estimate=True``: the Estimate with its
        standard error. See :func:`genzoo.facade.score` (``eval_settings``, ``generator``)."""
        # The estimators sit above models/ (genzoo.evaluation), which models/ never imports;
        # the package's facade, on top of every layer, runs them.
        from genzoo import score

        return score(self, x, estimate=estimate, **eval_settings)
