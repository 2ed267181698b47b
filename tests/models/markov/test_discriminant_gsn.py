"""The discriminant GSN: walkback structure over the outputs, and p(y|x) learnt on digits."""

from __future__ import annotations

import pytest
import torch

from genzoo.core.errors import InputError
from genzoo.models.markov.discriminant_gsn import DiscriminantGSN, DiscriminantGSNConfig


def _model(**kw):
    kw.setdefault("n_inputs", 64)
    kw.setdefault("hidden", (64, 64))
    return DiscriminantGSN(DiscriminantGSNConfig(**kw), generator=torch.Generator().manual_seed(0))


def test_predicted_probabilities_are_a_distribution_and_deterministic_under_a_seed():
    m = _model(n_inputs=5, n_classes=3, hidden=(4,))
    x = torch.rand(6, 5, generator=torch.Generator().manual_seed(0))
    p = m.predict_proba(x, torch.Generator().manual_seed(1))
    assert p.shape == (6, 3) and torch.allclose(p.sum(1), torch.ones(6))
    assert torch.equal(p, m.predict_proba(x, torch.Generator().manual_seed(1)))
    assert m.walkback == 2


def test_bad_labels_are_refused():
    m = _model(n_inputs=5, n_classes=3, hidden=(4,))
    with pytest.raises(InputError, match="labels"):
        m.loss(torch.rand(2, 5), y=torch.tensor([0, 3]))


def test_learns_p_y_given_x_on_digits():
    from genzoo.data import load_data
    from genzoo.data.config import DataConfig

    bundle = load_data(DataConfig(name="digits"))
    x, y = bundle.train.x[:800], bundle.train.y[:800]
    g = torch.Generator().manual_seed(0)
    m = _model()
    err_before = float((m.predict(bundle.valid.x, g) != bundle.valid.y).double().mean())
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(10):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 50):
            idx = perm[i : i + 50]
            loss = m.loss(x[idx], g, y=y[idx])["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
    err = float((m.predict(bundle.valid.x, g) != bundle.valid.y).double().mean())
    # Chance is 0.9; a chain over the labels with the image clamped classifies well.
    assert err_before > 0.6 and err < 0.2
