"""Toy model and data for the Trainer and checkpoint tests.

The toy model is registered under a test-only name for the duration of each test only.
"""

from __future__ import annotations

import dataclasses
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core import registry
from genzoo.core.config import Config
from genzoo.data.config import DataConfig
from genzoo.run_config import RunConfig
from genzoo.training.config import TrainConfig

TOY_NAME = "test-toy-bernoulli"
IMAGE_SHAPE = (2, 3)
D = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
N_CHAINS = 4


@dataclasses.dataclass(frozen=True)
class ToyConfig(Config):
    n_visible: int = D
    nan_at_call: int = 0  # loss() returns NaN on this call (0: never)
    bad_grad_at_call: int = 0  # finite loss but NaN gradient on this call (0: never)
    poison_buffer_at_call: int = 0  # a buffer the loss does not read turns Inf (0: never)
    strict: bool = False  # let torch.bernoulli raise on NaN probabilities (as real models do)


class ToyBernoulli(nn.Module):
    """Independent Bernoulli units trained by a stochastic CD-like surrogate.

    The negative phase comes from persistent chains (a buffer) advanced with the trainer's
    generator, so the parameters depend on the random stream and on buffer state.
    """

    capabilities = frozenset()

    def __init__(self, config: ToyConfig) -> None:
        super().__init__()
        self.config = config
        self.theta = nn.Parameter(torch.zeros(config.n_visible))
        self.register_buffer("chain", torch.full((N_CHAINS, config.n_visible), 0.5))
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))
        self.register_buffer("scratch", torch.zeros(2))
        self.init_calls = 0

    def init_from_data(self, x: torch.Tensor) -> None:
        self.init_calls += 1
        p = x.mean(0).clamp(0.05, 0.95)
        self.theta.copy_(torch.log(p) - torch.log1p(-p))

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        self.calls += 1
        p = torch.sigmoid(self.theta).detach()
        probs = 0.5 * (p + self.chain)
        if not self.config.strict:
            probs = torch.nan_to_num(probs, nan=0.5)
        self.chain = torch.bernoulli(probs, generator=generator)
        loss = -(x @ self.theta).mean() + (self.chain @ self.theta).mean()
        nll = F.binary_cross_entropy_with_logits(
            self.theta.expand_as(x), x, reduction="none"
        ).sum(1).mean()
        call = int(self.calls)
        if call == self.config.poison_buffer_at_call:
            self.scratch.fill_(float("inf"))
        if call == self.config.nan_at_call:
            loss = loss * float("nan")
        if call == self.config.bad_grad_at_call:
            loss = loss + torch.sqrt((self.theta - self.theta.detach()).pow(2).sum())
        return {"loss": loss, "nll": nll.detach()}

    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        nll = F.binary_cross_entropy_with_logits(self.theta.expand_as(x), x, reduction="none")
        return {"nll": float(nll.sum(1).mean()), "mean_p": float(torch.sigmoid(self.theta).mean())}

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(self.theta).expand(n, -1), generator=generator)


def make_bundle(n_train: int = 50, n_valid: int = 12, seed: int = 0) -> types.SimpleNamespace:
    """A DataBundle stand-in whose training data are redrawn each epoch (dynamic binarization)."""
    g = torch.Generator().manual_seed(seed)
    probs = torch.linspace(0.1, 0.9, D)
    grey = (probs + 0.1 * torch.randn(n_train, D, generator=g)).clamp(0, 1)
    valid = torch.bernoulli(probs.expand(n_valid, D), generator=g)

    def train_x(epoch: int) -> torch.Tensor:
        return torch.bernoulli(grey, generator=torch.Generator().manual_seed(1000 + epoch))

    return types.SimpleNamespace(
        train=types.SimpleNamespace(x=grey),
        valid=types.SimpleNamespace(x=valid),
        test=types.SimpleNamespace(x=valid),
        image_shape=IMAGE_SHAPE,
        n_features=D,
        train_x=train_x,
        description="toy",
    )


def make_config(model: dict | None = None, **train) -> RunConfig:
    base = {"epochs": 2, "batch_size": 8, "lr": 0.1, "progress": False, "log_every": 4,
                "checkpoint_every": 1000, "grid_samples": 6, "momentum_warmup_epochs": 1}
    base.update(train)
    return RunConfig(
        model_name=TOY_NAME,
        model=ToyConfig(**(model or {})),
        data=DataConfig(),
        train=TrainConfig(**base),
    )


def build(cfg: RunConfig) -> ToyBernoulli:
    return ToyBernoulli(cfg.model)


@pytest.fixture(autouse=True)
def _toy_registered(monkeypatch):
    """Register the toy model for one test only, so registry-wide suites never see it."""
    spec = registry.ModelSpec(TOY_NAME, ToyBernoulli, ToyConfig, "test", "toy", "none")
    monkeypatch.setitem(registry._REGISTRY, TOY_NAME, spec)


@pytest.fixture
def bundle() -> types.SimpleNamespace:
    return make_bundle()


@pytest.fixture
def toy() -> types.SimpleNamespace:
    """The helpers above, for test modules (which cannot import a conftest by name)."""
    return types.SimpleNamespace(
        name=TOY_NAME, Model=ToyBernoulli, Config=ToyConfig, make_config=make_config,
        build=build, make_bundle=make_bundle, image_shape=IMAGE_SHAPE, D=D,
    )
