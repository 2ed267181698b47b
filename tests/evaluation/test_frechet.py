"""Fréchet distance, class coverage and the self-trained feature classifier (on the digits)."""

from __future__ import annotations

import pytest
import torch

from genzoo.data import load_data
from genzoo.data.config import DataConfig
from genzoo.evaluation import frechet
from genzoo.evaluation.frechet import (
    class_coverage,
    classifier_features,
    frechet_distance,
    frechet_report,
    train_feature_classifier,
)


def test_identical_sets_are_at_distance_zero_and_a_shift_costs_its_square():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g,
                                                                           dtype=torch.float64)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    shift = torch.tensor([1.0, -2.0, 0, 0, 0, 0.5], dtype=torch.float64)
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift.pow(2).sum()), rel=1e-7)


def test_matches_an_independent_matrix_square_root():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    g = torch.Generator().manual_seed(1)
    a = torch.randn(300, 4, generator=g, dtype=torch.float64) @ torch.randn(4, 4, generator=g,
                                                                           dtype=torch.float64)
    b = torch.randn(300, 4, generator=g, dtype=torch.float64) * 2.0 + 1.0
    ca, cb = torch.cov(a.T).numpy(), torch.cov(b.T).numpy()
    cross = scipy_linalg.sqrtm(ca @ cb).real.trace()
    want = float((a.mean(0) - b.mean(0)).pow(2).sum()) + ca.trace() + cb.trace() - 2 * cross
    assert frechet_distance(a, b) == pytest.approx(want, rel=1e-8)


@pytest.fixture(scope="module")
def digits():
    return load_data(DataConfig(name="digits"))


@pytest.fixture(scope="module")
def classifier(digits):
    return train_feature_classifier(digits.train.x, digits.train.y, epochs=10)


def test_classifier_training_is_deterministic(digits):
    a = train_feature_classifier(digits.train.x[:200], digits.train.y[:200], epochs=1)
    b = train_feature_classifier(digits.train.x[:200], digits.train.y[:200], epochs=1)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_halves_of_the_test_set_are_close_and_noise_is_far(digits, classifier):
    _, pred = classifier_features(classifier, digits.valid.x)
    assert float((pred == digits.valid.y).float().mean()) > 0.85
    x = digits.test.x
    half = len(x) // 2
    fd_halves = frechet_report(x[:half], x[half:], classifier)
    noise = torch.rand(half, x.shape[1], generator=torch.Generator().manual_seed(0))
    fd_noise = frechet_report(noise, x[half:], classifier)
    assert fd_halves["frechet_distance"] < 0.1 * fd_noise["frechet_distance"]
    assert fd_halves["classes_covered"] == 10
    # One digit repeated: mode collapse, one class covered.
    one = x[digits.test.y == 3][:1].expand(200, -1)
    assert frechet_report(one, x, classifier)["classes_covered"] == 1


def test_class_coverage_counts_classes_above_the_fraction():
    pred = torch.tensor([0] * 50 + [1] * 49 + [2])
    covered, counts = class_coverage(pred, 10, min_fraction=0.05)
    assert covered == 2 and counts[:3] == [50, 49, 1] and sum(counts) == 100


def test_cache_round_trip(monkeypatch, tmp_path, digits):
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path))
    monkeypatch.setitem(frechet._SETTINGS, "epochs", 1)
    built, meta = frechet.build_classifier("digits")
    assert meta["source"] == "digits" and 0 <= meta["valid_accuracy"] <= 1
    assert list(tmp_path.glob("*.safetensors")) and list(tmp_path.glob("*.json"))
    loaded = frechet.load_classifier("digits")
    for (k, va), vb in zip(built.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(va, vb), k
