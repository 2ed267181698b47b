"""Per-unit standardisation of real-valued data (data.standardize): the statistics, the inverse,
the images, and invariance of data-space likelihoods to the preprocessing."""

from __future__ import annotations

import pytest
import torch

from genzoo.core.errors import DataError
from genzoo.data import DataConfig, load_data
from genzoo.data.transforms import ValueTransform


def _digits(**kw):
    return load_data(DataConfig(name="digits", dequantize=True, logit_alpha=0.05, **kw))


def test_training_values_have_zero_mean_and_unit_variance_per_unit():
    d = _digits(standardize=True)
    x = d.train.x.double()
    assert float(x.mean(0).abs().max()) < 1e-5
    torch.testing.assert_close(x.std(0, unbiased=False), torch.ones(64, dtype=torch.float64),
                               atol=1e-5, rtol=0)
    assert torch.equal(d.train_x(0), d.train.x)  # the epoch-0 draw, through the same map
    assert not torch.equal(d.train_x(1), d.train.x)  # later epochs redraw the noise
    assert "standardised" in d.description
    # the statistics come from the examples trained on, when subset
    sub = _digits(standardize=True, n_train=300)
    assert float(sub.train.x.double().mean(0).abs().max()) < 1e-5


def test_images_and_held_out_splits_are_the_same_data():
    plain, std = _digits(), _digits(standardize=True)
    for a, b in ((plain.test, std.test), (plain.valid, std.valid)):
        torch.testing.assert_close(std.to_images(b.x), plain.to_images(a.x), atol=1e-5, rtol=0)


def test_data_space_likelihoods_do_not_depend_on_the_standardisation():
    """A diagonal Gaussian fitted in model space is an affine-equivariant fit: its data-space
    NLL (model-space NLL minus the log-Jacobian) must be the same with or without step 4."""
    values = []
    for d in (_digits(), _digits(standardize=True)):
        x, y = d.train.x.double(), d.test.x.double()
        fit = torch.distributions.Normal(x.mean(0), x.std(0, unbiased=False))
        values.append(float((-fit.log_prob(y).sum(1) - d.log_det_jacobian(y)).mean()))
    assert values[0] == pytest.approx(values[1], abs=1e-6)


def test_a_constant_unit_cannot_be_standardised():
    t = ValueTransform()
    y = torch.randn(10, 3, dtype=torch.float64)
    y[:, 1] = 0.25
    with pytest.raises(DataError, match="constant"):
        t.standardized(y)
