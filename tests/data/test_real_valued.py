"""Real-valued data: image patches, dequantisation, the logit transform and its Jacobian."""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.core.errors import ConfigError
from genzoo.core.protocols import EXACT_LIKELIHOOD
from genzoo.data import DataConfig, load_data
from genzoo.data.patches import BLOCK, BLOCKS, PATCH, grey_images
from genzoo.data.transforms import ValueTransform
from genzoo.evaluation import EvalConfig, evaluate


def test_image_patches_shapes_and_dc_removal():
    d = load_data(DataConfig(name="image-patches"))
    assert (len(d.train), len(d.valid), len(d.test)) == (40000, 5000, 5000)
    assert d.n_features == 63 and d.image_shape == (8, 8) and not d.binary
    for s in (d.train, d.valid, d.test):
        assert s.x.dtype == torch.float32 and s.x.is_contiguous() and s.y is None
        # DC removed: the dropped pixel is minus the sum of the 63 kept, a pixel minus a mean
        assert (-s.x.sum(1)).abs().max() < 1.0
        assert d.to_images(s.x[:500]).shape == (500, 64)
    # dequantised (not integer levels / 256) and real-valued with the spread of pixel noise
    assert not torch.equal((d.train.x * 256).round(), d.train.x * 256)
    assert 0.01 < float(d.train.x.std()) < 0.5


def test_split_blocks_are_disjoint_and_cover_the_width():
    starts = [set(b) for b in BLOCKS]
    assert not (starts[0] & starts[1] or starts[0] & starts[2] or starts[1] & starts[2])
    assert sorted(set().union(*starts)) == list(range(0, 640, BLOCK))


def test_image_patches_come_from_their_blocks():
    """The first test patch matches (up to the dequantisation noise) some 8x8 window inside a
    test block of the first image, minus its mean (DC removal)."""
    d = load_data(DataConfig(name="image-patches", n_eval=3))
    img = torch.from_numpy(grey_images()[0].copy()).double()

    def best_error(starts):
        windows = torch.cat([
            img[:, s : s + BLOCK].unfold(0, PATCH, 1).unfold(1, PATCH, 1).reshape(-1, 64)
            for s in starts
        ])
        windows = (windows - windows.mean(1, keepdim=True))[:, :-1] / 256
        return float((windows - d.test.x[0].double()).abs().max(1).values.min())

    assert best_error(BLOCKS[2]) < 1.0 / 256  # noise of one grey level, minus its mean


def test_image_patches_split_is_seeded():
    a, b = (load_data(DataConfig(name="image-patches", n_eval=50)) for _ in range(2))
    c = load_data(DataConfig(name="image-patches", n_eval=50, seed=1))
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.x, b.test.x)
    assert not torch.equal(a.test.x, c.test.x)


def test_image_patches_unit_variance():
    d = load_data(DataConfig(name="image-patches", unit_variance=True, n_eval=100))
    assert abs(float(d.train.x.double().std()) - 1.0) < 1e-5
    raw = load_data(DataConfig(name="image-patches", n_eval=100))
    scale = d.transform.scale
    assert torch.allclose(d.test.x * scale, raw.test.x, atol=1e-6)
    # y = x / scale on 63 values: log|det dy/dx| = -63 log(scale) for every patch
    assert torch.allclose(d.log_det_jacobian(d.test.x), torch.full((100,), -63 * math.log(scale),
                          dtype=torch.float64))


def test_dequantized_digits_redraws_noise_per_epoch_and_keeps_levels():
    d = load_data(DataConfig(name="digits", dequantize=True))
    plain = load_data(DataConfig(name="digits"))
    assert torch.equal(d.train_x(0), d.train.x)
    assert not torch.equal(d.train_x(1), d.train.x)
    for x in (d.train_x(0), d.train_x(3), d.valid.x, d.test.x):
        assert 0.0 < x.min() and x.max() < 1.0
    for x, ref in ((d.train_x(5), plain.train.x), (d.test.x, plain.test.x)):
        assert torch.equal((x * 17).floor(), (ref * 16).round()), "(k + u)/17 keeps level k"
    assert torch.equal(load_data(DataConfig(name="digits", dequantize=True)).test.x, d.test.x)
    assert torch.equal(d.log_det_jacobian(d.test.x), torch.zeros(len(d.test), dtype=torch.float64))


def test_logit_transform_round_trips_to_images():
    d = load_data(DataConfig(name="digits", dequantize=True, logit_alpha=1e-6))
    plain = load_data(DataConfig(name="digits", dequantize=True))
    assert d.train.x.min() < -5 and d.train.x.max() > 5  # logit space
    assert torch.allclose(d.to_images(d.test.x), plain.test.x, atol=1e-5)


@pytest.mark.parametrize("alpha,scale,standardized", [
    (1e-6, 1.0, False), (0.05, 1.0, False), (0.05, 2.5, False), (None, 0.3, False),
    (0.05, 1.7, True),
])
def test_log_det_jacobian_matches_autograd(alpha, scale, standardized):
    t = ValueTransform(levels=256, logit_alpha=alpha, scale=scale)
    g = torch.Generator().manual_seed(0)
    if standardized:  # step 4, with statistics of other values
        t = t.standardized(t.forward(torch.rand(50, 5, generator=g, dtype=torch.float64) * 0.9 + 0.05))
        assert not t.is_identity
    x = torch.rand(4, 5, generator=g, dtype=torch.float64) * 0.98 + 0.01
    y = t.forward(x)
    for n in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v: t.forward(v[None])[0], x[n])
        assert torch.allclose(t.log_det_jacobian(y[n : n + 1])[0], torch.logdet(jac), atol=1e-9)
    assert torch.allclose(t.inverse(y), x, atol=1e-10)


def test_log_det_jacobian_matches_finite_differences_near_the_edges():
    t = ValueTransform(levels=256, logit_alpha=1e-6)
    x = torch.tensor([[1e-4, 0.5, 1 - 1e-4]], dtype=torch.float64)
    eps = 1e-9
    fd = ((t.forward(x + eps) - t.forward(x - eps)) / (2 * eps)).log().sum()
    assert abs(float(t.log_det_jacobian(t.forward(x))[0]) - float(fd)) < 1e-5


class _StandardNormal(torch.nn.Module):
    """An exact-likelihood stand-in: y ~ N(0, I)."""

    capabilities = frozenset({EXACT_LIKELIHOOD})

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def log_prob(self, y):
        return -0.5 * (y**2).sum(1) - 0.5 * y.shape[1] * math.log(2 * math.pi)


def test_evaluate_reports_the_data_space_density():
    """Change of variables: the NLL of the dequantised pixels is the model-space NLL minus the
    mean log-Jacobian; checked against a direct computation in data space."""
    d = load_data(DataConfig(name="digits", dequantize=True, logit_alpha=0.05, n_eval=40))
    model = _StandardNormal()
    report = evaluate(model, d, EvalConfig(split="test", batch_size=16))
    x = d.to_images(d.test.x).double()  # back in data space [0, 1]^64
    s = 0.05 + 0.9 * x
    y = torch.log(s) - torch.log1p(-s)
    direct = -(model.log_prob(y) + (math.log(0.9) - torch.log(s * (1 - s))).sum(1))
    assert report["nll_nats"] == pytest.approx(float(direct.mean()), abs=1e-3)
    assert report["log_det_jacobian_nats"] > 0 and "[0, 1]^D" in report["likelihood_space"]
    # bits per dimension of the 17 digit levels: -log2 p of the level k, bounded by dequantisation
    bits = (float(direct.mean()) + 64 * math.log(17)) / (64 * math.log(2))
    assert report["bits_per_dim"] == pytest.approx(bits, abs=1e-4)
    assert report["stderr"] >= float(direct.std() / math.sqrt(40)) - 1e-6  # a bound


@pytest.mark.parametrize(
    "overrides",
    [
        {"name": "binarized-mnist", "dequantize": True},
        {"name": "digits", "dequantize": True, "binarize": "threshold"},
        {"name": "digits", "logit_alpha": 1e-6},
        {"name": "digits", "dequantize": True, "logit_alpha": 0.5},
        {"name": "digits", "unit_variance": True},
        {"name": "digits", "standardize": True},
        {"name": "image-patches", "binarize": "threshold"},
        {"name": "image-patches", "dequantize": True},
    ],
)
def test_invalid_real_valued_options_name_the_fix(overrides):
    with pytest.raises(ConfigError, match="data\\."):
        DataConfig(**overrides)


def test_dequantized_mnist_when_available(real_file):
    real_file("mnist/train-images-idx3-ubyte.gz")
    d = load_data(DataConfig(name="mnist", dequantize=True, logit_alpha=1e-6, n_train=100,
                             n_eval=100))
    assert d.n_features == 784 and d.train_levels.shape == (100, 784)
    x = d.to_images(d.test.x)
    assert 0 < x.min() and x.max() < 1
    assert d.log_det_jacobian(d.test.x).shape == (100,)


def test_data_space_report_moves_the_reverse_ais_figure_and_its_bits_per_dim():
    """A report with a reverse-AIS NLL gets both NLLs moved by the same log-Jacobian and a
    bits-per-dimension figure for each."""
    d = load_data(DataConfig(name="digits", dequantize=True, logit_alpha=0.05, n_eval=20))
    t = d.transform
    y = d.test.x
    out = t.to_data_space({"nll_nats": 10.0, "nll_nats_reverse": 12.0, "stderr": 0.5}, y)
    ld = out["log_det_jacobian_nats"]
    assert out["nll_nats"] == pytest.approx(10.0 - ld)
    assert out["nll_nats_reverse"] == pytest.approx(12.0 - ld)
    bits = [(v + 64 * math.log(17)) / (64 * math.log(2)) for v in (10.0 - ld, 12.0 - ld)]
    assert out["bits_per_dim"] == pytest.approx(bits[0])
    assert out["bits_per_dim_reverse"] == pytest.approx(bits[1])
    assert "bits_per_dim_reverse" not in t.to_data_space({"nll_nats": 10.0, "stderr": 0.5}, y)
