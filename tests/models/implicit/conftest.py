"""A short real-data run shared by the implicit-model tests."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genzoo.core.registry import get_model_spec
from genzoo.data import load_data
from genzoo.evaluation.mmd import mmd
from genzoo.evaluation.sample_based import median_heuristic_sigmas
from genzoo.run_config import RunConfig
from genzoo.training import Trainer


@pytest.fixture
def train_on_digits(tmp_path):
    """run(name, overrides, steps) -> (model, MMD^2 to the test digits before, after)."""

    def run(name, overrides, steps):
        cfg = RunConfig.default(name).with_overrides(
            ["data.name=digits", "data.n_eval=300", f"train.max_steps={steps}",
             "train.epochs=1000", "train.batch_size=64", "train.progress=false",
             "train.grid_samples=0", "train.checkpoint_every=100000", "train.log_every=50",
             *overrides])
        bundle = load_data(cfg.data)
        cfg = dataclasses.replace(cfg, model=cfg.model.replace(n_visible=64))
        torch.manual_seed(0)
        model = get_model_spec(name).build(cfg.model)
        x = bundle.test.x.double()
        sig = median_heuristic_sigmas(x)

        def distance():
            s = model.sample(len(x), torch.Generator().manual_seed(1)).double()
            return float(mmd(s, x, sig))

        before = distance()
        Trainer(model, cfg, bundle, tmp_path / name).fit()
        return model, before, distance()

    return run
