"""A short Trainer run on the 8x8 digits, shared by the chain models' tests."""

from __future__ import annotations

import dataclasses

import pytest
import torch


@pytest.fixture
def digits_run(tmp_path):
    """``run(name, overrides) -> (model, before, after)``: build the model seeded, start its
    output bias at the data, train with the Trainer, and return its validation
    reconstruction figure before and after."""
    from genzoo.core.registry import get_model_spec
    from genzoo.data import load_data
    from genzoo.run_config import RunConfig
    from genzoo.training import Trainer

    def run(name: str, overrides: list[str]):
        cfg = RunConfig.default(name).with_overrides([
            "data.name=digits", "data.binarize=threshold", "data.n_train=500",
            "data.n_eval=200", "train.batch_size=50", "train.optimizer=adam", "train.lr_schedule=constant",
            "train.progress=false", "train.grid_samples=4", *overrides,
        ])
        bundle = load_data(cfg.data)
        cfg = dataclasses.replace(cfg, model=cfg.model.replace(n_visible=bundle.n_features))
        torch.manual_seed(0)
        model = get_model_spec(name).build(cfg.model)
        with torch.no_grad():
            model.init_from_data(bundle.train.x)
        before = model.validation_metrics(bundle.valid.x)["reconstruction"]
        Trainer(model, cfg, bundle, tmp_path / name).fit()
        after = model.validation_metrics(bundle.valid.x)["reconstruction"]
        return model, before, after

    return run
