"""The Trainer with parameter groups stepped in turn (``model.phases()``)."""

from __future__ import annotations

import csv
import dataclasses

import pytest
import torch
from support import KillAt, Killed
from torch import nn

from genzoo.core import registry
from genzoo.core.config import Config
from genzoo.core.errors import ConfigError
from genzoo.core.protocols import Phase
from genzoo.data import load_data
from genzoo.data.config import DataConfig
from genzoo.run_config import RunConfig
from genzoo.training import Trainer
from genzoo.training.checkpoint import checkpoint_step, load_trainer_state
from genzoo.training.config import TrainConfig

NAME = "test-two-phase"


@dataclasses.dataclass(frozen=True)
class TwoPhaseConfig(Config):
    k: int = 3
    late: int = 0  # phase "g" starts after this many Trainer steps


class TwoPhase(nn.Module):
    """Two parameter vectors; each phase's loss depends on both, as a GAN's does."""

    capabilities = frozenset()

    def __init__(self, config: TwoPhaseConfig) -> None:
        super().__init__()
        self.config = config
        self.a = nn.Parameter(torch.zeros(6))
        self.b = nn.Parameter(torch.ones(6))
        self.calls: list[tuple[str, torch.Tensor, torch.Tensor]] = []

    def phases(self):
        late = self.config.late
        return [Phase("d", [self.a], self.config.k),
                Phase("g", [self.b], (lambda s: int(s >= late)) if late else 1)]

    def loss(self, x, generator=None, phase=None):
        self.calls.append((phase, self.a.detach().clone(), self.b.detach().clone()))
        noise = torch.randn(6, generator=generator)
        if phase == "d":
            loss = ((self.a * self.b - x.mean(0)) ** 2).sum() + (noise * self.a).sum()
        else:
            loss = ((self.a + self.b - x.mean(0) + noise) ** 2).sum()
        return {"loss": loss, "norm": (self.a.detach() ** 2).sum()}


def make_bundle():
    import types

    x = torch.rand(40, 6, generator=torch.Generator().manual_seed(0))
    return types.SimpleNamespace(
        train=types.SimpleNamespace(x=x, y=None), valid=types.SimpleNamespace(x=x[:5]),
        test=types.SimpleNamespace(x=x[:5]), image_shape=(2, 3), n_features=6,
        train_x=lambda epoch: x, description="toy")


def make_config(model=None, **train):
    base = {"epochs": 2, "batch_size": 10, "lr": 0.05, "progress": False, "log_every": 2,
                "checkpoint_every": 3, "grid_samples": 0, "optimizer": "adam"}
    base.update(train)
    return RunConfig(model_name=NAME, model=model or TwoPhaseConfig(), data=DataConfig(),
                     train=TrainConfig(**base))


@pytest.fixture(autouse=True)
def _registered(monkeypatch):
    spec = registry.ModelSpec(NAME, TwoPhase, TwoPhaseConfig, "test", "toy", "none")
    monkeypatch.setitem(registry._REGISTRY, NAME, spec)


def test_k_d_steps_then_one_g_step_each_touching_only_its_parameters(tmp_path):
    cfg = make_config()
    model = TwoPhase(cfg.model)
    trainer = Trainer(model, cfg, make_bundle(), tmp_path / "run")
    trainer.fit()
    assert trainer.optimizer is None and set(trainer.optimizers) == {"d", "g"}
    assert [p for g in trainer.optimizers["d"].param_groups for p in g["params"]] == [model.a]
    assert [p for g in trainer.optimizers["g"].param_groups for p in g["params"]] == [model.b]
    phases = [c[0] for c in model.calls]
    assert phases == ["d", "d", "d", "g"] * 8  # 2 epochs x 4 batches
    final = ("end", model.a.detach(), model.b.detach())
    for (p, a0, b0), (_, a1, b1) in zip(model.calls, model.calls[1:] + [final]):
        if p == "d":  # a "d" update moves a only
            assert not torch.equal(a0, a1) and torch.equal(b0, b1)
        else:
            assert torch.equal(a0, a1) and not torch.equal(b0, b1)
    with open(tmp_path / "run" / "metrics.csv") as f:
        cols = next(csv.reader(f))
    assert {"loss", "d_loss", "d_norm", "g_loss", "g_norm"} <= set(cols)


def test_a_phase_can_start_later_and_logs_nan_until_then(tmp_path):
    cfg = make_config(TwoPhaseConfig(k=1, late=5))
    model = TwoPhase(cfg.model)
    Trainer(model, cfg, make_bundle(), tmp_path / "run").fit()
    phases = [c[0] for c in model.calls]
    assert phases == ["d"] * 5 + ["d", "g"] * 3
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["g_loss"] == "nan" and rows[-1]["g_loss"] != "nan"


def _same(a, b):
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_toy_resume_is_exact_and_every_optimizer_is_checkpointed(tmp_path):
    cfg = make_config()
    full = TwoPhase(cfg.model)
    Trainer(full, cfg, make_bundle(), tmp_path / "full").fit()
    first = TwoPhase(cfg.model)
    with pytest.raises(Killed):
        Trainer(first, cfg, make_bundle(), tmp_path / "res", callbacks=[KillAt(5)]).fit()
    state = load_trainer_state(tmp_path / "res")
    assert set(state["optimizers"]) == {"d", "g"} and "optimizer" not in state
    resumed = TwoPhase(cfg.model)
    Trainer(resumed, cfg, make_bundle(), tmp_path / "res").fit(resume=True)
    _same(full, resumed)


def test_overlapping_phases_are_refused(tmp_path):
    cfg = make_config()
    model = TwoPhase(cfg.model)
    model.phases = lambda: [Phase("d", [model.a], 1), Phase("g", [model.a, model.b], 1)]
    with pytest.raises(ConfigError, match="shares parameters"):
        Trainer(model, cfg, make_bundle(), tmp_path / "run").fit()


@pytest.mark.parametrize("name,extra", [
    ("gan", ["model.architecture=dcgan", "model.width=4", "model.d_steps=2"]),
    ("conditional-gan", ["model.g_hidden=16", "model.d_hidden=16"]),
    ("gmmn-ae", ["model.ae_hidden=16", "model.n_code=4", "model.hidden=16",
                 "model.ae_steps=4"]),
])
def test_implicit_models_resume_exactly(tmp_path, name, extra):
    from genzoo.core.registry import get_model_spec

    cfg = RunConfig.default(name).with_overrides(
        ["data.name=digits", "data.n_train=120", "data.n_eval=30", "train.batch_size=20",
         "train.epochs=2", "train.checkpoint_every=4", "train.optimizer=adam",
         "train.lr=2e-4", "train.momentum=0.5", "train.progress=false",
         "train.grid_samples=0", "model.n_latent=4", *extra])
    bundle = load_data(cfg.data)
    cfg = dataclasses.replace(cfg, model=cfg.model.replace(n_visible=64))

    def build():
        torch.manual_seed(0)
        return get_model_spec(name).build(cfg.model)

    full = build()
    Trainer(full, cfg, bundle, tmp_path / "full").fit()
    first = build()
    with pytest.raises(Killed):
        Trainer(first, cfg, bundle, tmp_path / "res", callbacks=[KillAt(10)]).fit()
    assert checkpoint_step(tmp_path / "res") == 8
    resumed = build()
    trainer = Trainer(resumed, cfg, bundle, tmp_path / "res")
    trainer.fit(resume=True)
    _same(full, resumed)
    rows = []
    for run in ("full", "res"):
        with open(tmp_path / run / "metrics.csv") as f:
            rows.append([{k: v for k, v in r.items() if k not in ("wall_s", "examples_per_s")}
                         for r in csv.DictReader(f)])
    assert rows[0] == rows[1] and len(rows[0]) > 2
