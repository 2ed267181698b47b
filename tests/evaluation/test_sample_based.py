"""``evaluate`` on an implicit model: the sample-based report."""

from __future__ import annotations

import torch

from genzoo.data import load_data
from genzoo.evaluation import evaluate, frechet
from genzoo.evaluation.parzen import PARZEN_WARNING
from genzoo.evaluation.sample_based import sample_based_report
from genzoo.models.implicit.gmmn import GMMN, GMMNConfig
from genzoo.run_config import RunConfig


def test_evaluate_dispatches_implicit_models_to_the_sample_based_report(monkeypatch, tmp_path):
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path))
    monkeypatch.setitem(frechet._SETTINGS, "epochs", 2)
    cfg = RunConfig.default("gmmn").with_overrides(["data.name=digits", "data.n_eval=60"])
    bundle = load_data(cfg.data)
    torch.manual_seed(0)
    model = GMMN(GMMNConfig(n_visible=64, hidden=(8,), n_latent=2))
    report = evaluate(model, bundle, cfg.eval)
    assert report["split"] == "test" and report["n_examples"] == 60
    assert report["n_model_samples"] == 10_000
    # No density, so no NLL: the Parzen score stands under its own name with its own error.
    assert "nll_nats" not in report and report.nll is None
    assert report["parzen_log_likelihood"] == report.samples.parzen.value
    assert report["parzen_stderr"] == report.samples.parzen.stderr > 0
    assert PARZEN_WARNING in report["warnings"]
    assert 0 < report["mmd_p_value"] <= 1
    assert report["frechet_distance"] > 0 and 0 <= report["classes_covered"] <= 10
    assert sum(report["class_counts"]) == 10_000


class Copycat(torch.nn.Module):
    """A 'model' whose samples are the test data: every measure must call it perfect."""

    capabilities = frozenset({"implicit"})

    def __init__(self, x):
        super().__init__()
        self.register_buffer("x", x)

    def sample(self, n, generator=None):
        idx = torch.randint(0, len(self.x), (n,), generator=generator)
        return self.x[idx]


def test_data_copying_sampler_scores_far_above_an_untrained_one(monkeypatch, tmp_path):
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path))
    cfg = RunConfig.default("gmmn").with_overrides(["data.name=digits", "data.n_eval=100"])
    bundle = load_data(cfg.data)
    clf = frechet.train_feature_classifier(bundle.train.x, bundle.train.y, epochs=3)
    copy = sample_based_report(Copycat(bundle.test.x), bundle, cfg.eval, n_samples=2000,
                               classifier=clf)
    torch.manual_seed(0)
    noise = GMMN(GMMNConfig(n_visible=64, hidden=(8,), n_latent=2))
    poor = sample_based_report(noise, bundle, cfg.eval, n_samples=2000, classifier=clf)
    assert copy["parzen_log_likelihood"] > poor["parzen_log_likelihood"] + 10
    assert copy["mmd_p_value"] > 0.05 > poor["mmd_p_value"]
    assert copy["frechet_distance"] < 0.05 * poor["frechet_distance"]
    assert copy["classes_covered"] == copy["reference_classes_covered"] >= 9
    assert not any("mode collapse" in w for w in copy["warnings"])
