"""Classification error of label-predicting models, and evaluate()'s report for them."""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.core.errors import GenzooError
from genzoo.data import DataConfig, load_data
from genzoo.evaluation import EvalConfig, classification_error, classification_report, evaluate
from genzoo.models.boltzmann.disc_rbm import DiscRBM, DiscRBMConfig


@pytest.fixture(scope="module")
def model_and_bundle():
    bundle = load_data(DataConfig(name="digits"))
    model = DiscRBM(DiscRBMConfig(n_visible=64, n_hidden=8, init_std=0.5),
                    generator=torch.Generator().manual_seed(0))
    return model, bundle


def test_error_is_the_share_of_wrong_predictions_whatever_the_chunk(model_and_bundle):
    model, bundle = model_and_bundle
    x, y = bundle.test.x, bundle.test.y
    wrong = int((model.predict(x) != y).sum())
    for chunk in (7, 1000):
        assert classification_error(model, x, y, chunk) == wrong / len(x)
    assert model.classification_error(x, y) == wrong / len(x)
    assert model.training  # the count runs in eval mode and restores the mode


def test_evaluate_reports_the_error_with_its_binomial_stderr(model_and_bundle):
    model, bundle = model_and_bundle
    # No AIS and no enumerable layer: the classification is the whole report.
    report = evaluate(model, bundle, EvalConfig(split="test"))
    e, n = report["classification_error"], len(bundle.test.x)
    assert report["estimator"] == "classification only" and report["n_classified"] == n
    assert e == classification_error(model, bundle.test.x, bundle.test.y)
    assert report["classification_stderr"] == pytest.approx(math.sqrt(e * (1 - e) / n))


def test_unlabelled_split_is_refused(model_and_bundle):
    model, bundle = model_and_bundle
    split = type("Split", (), {"x": bundle.test.x, "y": None})()
    with pytest.raises(GenzooError, match="no labels"):
        classification_report(model, split)


def test_eval_task_picks_the_figures(model_and_bundle):
    """``eval.task``: auto gives the likelihood figure and the error, likelihood and classify
    one each; a task the model cannot do is refused with the flag that fits."""
    from genzoo.models.autoregressive.nade import NADE, NADEConfig

    disc, bundle = model_and_bundle

    class LabellingNADE(NADE):
        """An exact-likelihood model that also predicts labels (here: always class 0)."""

        needs_labels = True

        def predict(self, x):
            return torch.zeros(len(x), dtype=torch.long)

    torch.manual_seed(0)
    model = LabellingNADE(NADEConfig(n_visible=64, n_hidden=4))
    binary = load_data(DataConfig(name="digits", binarize="threshold"))
    auto = evaluate(model, binary, EvalConfig(split="test"))
    assert "nll_nats" in auto and "classification_error" in auto
    likelihood = evaluate(model, binary, EvalConfig(split="test", task="likelihood"))
    assert likelihood["nll_nats"] == auto["nll_nats"] and "classification_error" not in likelihood
    classify = evaluate(model, binary, EvalConfig(split="test", task="classify"))
    assert classify["estimator"] == "classification only" and "nll_nats" not in classify
    assert classify["classification_error"] == auto["classification_error"]
    assert classify["classification_error"] == float((bundle.test.y != 0).double().mean())

    with pytest.raises(GenzooError, match="--task classify"):
        evaluate(disc, bundle, EvalConfig(task="likelihood"))
    with pytest.raises(GenzooError, match="does not predict labels"):
        evaluate(NADE(NADEConfig(n_visible=64, n_hidden=4)), bundle, EvalConfig(task="classify"))
