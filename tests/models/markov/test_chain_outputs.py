"""What the chain models hand to the rest of genzoo: sampling-chain pictures, and the
sample-based evaluation of IMPLICIT models."""

from __future__ import annotations

import math

import torch
from PIL import Image

from genzoo.models.markov.dae import DAE, DAEConfig
from genzoo.models.markov.gsn import GSN, GSNConfig
from genzoo.utils.animation import save_chain_gif, save_chain_strip


def test_a_gsn_chain_becomes_a_strip_and_a_gif(tmp_path):
    m = GSN(GSNConfig(n_visible=64, hidden=(8, 8)), generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    x0 = (torch.rand(3, 64, generator=g) < 0.5).float()
    path = m.chain(x0, 6, g)
    assert path.shape == (7, 3, 64)
    save_chain_strip(path, (8, 8), tmp_path / "strip.png", every=2)
    assert save_chain_gif(path, (8, 8), tmp_path / "chain.gif") == 7
    assert Image.open(tmp_path / "strip.png").size[0] > Image.open(tmp_path / "strip.png").size[1]


def test_sample_based_report_scores_a_dae():
    from genzoo.data import load_data
    from genzoo.data.config import DataConfig
    from genzoo.evaluation.config import EvalConfig
    from genzoo.evaluation.frechet import FeatureClassifier
    from genzoo.evaluation.sample_based import sample_based_report

    bundle = load_data(DataConfig(name="digits", binarize="threshold", n_eval=60))
    m = DAE(DAEConfig(n_visible=64, n_hidden=16, sample_steps=3),
            generator=torch.Generator().manual_seed(0))
    m.init_from_data(bundle.train.x)
    torch.manual_seed(0)
    report = sample_based_report(m, bundle, EvalConfig(), torch.Generator().manual_seed(0),
                                 n_samples=200, n_permutations=10,
                                 classifier=FeatureClassifier(64, 10, 16, 8))
    assert math.isfinite(report["parzen_log_likelihood"]) and report["n_model_samples"] == 200
    assert report["mmd2"] is not None
