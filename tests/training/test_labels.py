"""The Trainer hands each batch's labels to models that learn from labels (``needs_labels``)."""

from __future__ import annotations

import types

import pytest
import torch

from genzoo.core.errors import DataError
from genzoo.training import Trainer


def _coded_bundle(toy, n: int = 50, with_labels: bool = True) -> types.SimpleNamespace:
    """Row i of x is the binary code of i and its label is i, so a batch reveals any mismatch."""
    bits = 2 ** torch.arange(toy.D)
    x = ((torch.arange(n).unsqueeze(1) & bits) > 0).float()
    y = torch.arange(n) if with_labels else None
    split = types.SimpleNamespace(x=x, y=y)
    return types.SimpleNamespace(
        train=split, valid=types.SimpleNamespace(x=x[:0], y=None), test=split,
        image_shape=toy.image_shape, n_features=toy.D, train_x=lambda epoch: x,
        description="coded",
    )


def _labelled_model(toy, cfg):
    model = toy.build(cfg)
    model.needs_labels = True
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    plain_loss = model.loss

    def loss(x, generator=None, y=None):
        seen.append((x.clone(), y.clone()))
        return plain_loss(x, generator=generator)

    model.loss = loss
    return model, seen


def test_each_batch_arrives_with_its_own_labels(toy, tmp_path):
    cfg = toy.make_config(epochs=2, batch_size=8)
    model, seen = _labelled_model(toy, cfg)
    Trainer(model, cfg, _coded_bundle(toy), tmp_path / "run").fit()
    assert len(seen) == 2 * 7  # ceil(50 / 8) batches per epoch
    bits = 2 ** torch.arange(toy.D)
    for x, y in seen:
        assert y.dtype == torch.int64 and y.shape == (x.shape[0],)
        assert torch.equal((x.long() * bits).sum(1), y)
    # Every example's label is delivered once per epoch.
    first_epoch = torch.cat([y for _, y in seen[:7]])
    assert torch.equal(first_epoch.sort().values, torch.arange(50))


def test_models_without_needs_labels_get_no_labels(toy, tmp_path):
    cfg = toy.make_config(epochs=1, batch_size=25)
    model = toy.build(cfg)  # its loss() takes no y: a y= argument would raise TypeError
    Trainer(model, cfg, _coded_bundle(toy), tmp_path / "run").fit()


def test_unlabelled_data_is_refused_naming_the_fix(toy, tmp_path):
    cfg = toy.make_config(epochs=1, batch_size=25)
    model, _ = _labelled_model(toy, cfg)
    with pytest.raises(DataError, match="learns from labels.*labelled data set"):
        Trainer(model, cfg, _coded_bundle(toy, with_labels=False), tmp_path / "run").fit()
