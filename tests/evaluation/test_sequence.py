"""Likelihoods of sequences of frame RBMs (conditional RBM, RNN-RBM): the frame RBMs' exact log Z
against brute force, per-frame forward and reverse AIS against enumeration, the estimator's
AIS against its exact path on a small model, and ``genzoo evaluate`` on tiny trained models."""

from __future__ import annotations

import json
import math

import pytest
import torch

from genzoo.cli import main
from genzoo.evaluation import EvalConfig, sequence_nll
from genzoo.evaluation.sequence import frame_log_mean_exp
from genzoo.models.boltzmann.crbm import CRBM, CRBMConfig
from genzoo.models.boltzmann.rnn_rbm import RNNRBM, RNNRBMConfig
from genzoo.ops.enumeration import binary_states
from genzoo.ops.frame_rbm import (
    frame_ais_log_weights,
    frame_base_log_partition,
    frame_free_energy,
    frame_log_partition,
)


def _frames(d=10, h=12, n=30, scale=0.8, seed=0):
    g = torch.Generator().manual_seed(seed)
    W = scale * torch.randn(d, h, generator=g, dtype=torch.float64)
    b = torch.randn(n, d, generator=g, dtype=torch.float64)
    c = torch.randn(n, h, generator=g, dtype=torch.float64)
    return W, b, c


@pytest.mark.parametrize("n_hidden", [6, 12])  # enumerates the hidden, then the visible layer
def test_frame_log_partition_is_brute_force(n_hidden):
    W, b, c = _frames(h=n_hidden)
    V = binary_states(torch.arange(2**10), 10, torch.float64)
    brute = torch.logsumexp(-frame_free_energy(V.unsqueeze(1), W, b, c), 0)
    torch.testing.assert_close(frame_log_partition(W, b, c), brute)
    torch.testing.assert_close(frame_log_partition(W, b, c, max_elements=1000), brute)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_frame_ais_matches_enumeration_and_brackets(dtype):
    W, b, c = _frames()
    exact = frame_log_partition(W, b, c)
    runs, g = 50, torch.Generator().manual_seed(1)
    betas = torch.linspace(0.0, 1.0, 500).tolist()
    Wd, bd, cd = W.to(dtype), b.to(dtype), c.to(dtype)
    p = torch.sigmoid(bd).expand(runs, -1, -1)
    start = (torch.rand(p.shape, generator=g, dtype=dtype) < p).to(dtype)
    est, se = frame_log_mean_exp(frame_ais_log_weights(Wd, bd, cd, betas, start, g))
    forward = frame_base_log_partition(bd, cd) + est
    # Reverse AIS from exact samples of each frame RBM (its 2^10 images enumerated).
    V = binary_states(torch.arange(2**10), 10, torch.float64)
    probs = torch.softmax(-frame_free_energy(V.unsqueeze(1), W, b, c), 0).T  # (N, 1024)
    idx = torch.multinomial(probs, runs, replacement=True, generator=g).T  # (R, N)
    est_r, se_r = frame_log_mean_exp(
        frame_ais_log_weights(Wd, bd, cd, betas[::-1], V[idx].to(dtype), g)
    )
    reverse = frame_base_log_partition(bd, cd) - est_r
    err_f, err_r = forward - exact, reverse - exact
    print(f"frame AIS - exact ({dtype}): forward mean {err_f.mean():.4f} max |.| "
          f"{err_f.abs().max():.4f}; reverse mean {err_r.mean():.4f} max |.| "
          f"{err_r.abs().max():.4f} nats")
    assert err_f.abs().max() < 0.1 and err_r.abs().max() < 0.1
    # Over the 30 frames: forward low and reverse high in expectation, up to 3 standard errors.
    assert float(err_f.sum()) <= 3 * float(se.square().sum().sqrt())
    assert float(err_r.sum()) >= -3 * float(se_r.square().sum().sqrt())


def random_sequence_model(cls, cfg):
    """(model, x): a float64 ``cls(cfg)`` with parameters N(0, 0.7^2) and 40 random binary
    sequences x (40, D) of it."""
    torch.manual_seed(0)
    m = cls(cfg).double()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(0.7 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return m, (torch.rand(40, cfg.n_visible, generator=g) < 0.4).double()


# Tiny sequence models whose frames (6 units, 4 frames) are enumerable: (class, config).
TINY_SEQUENCE_MODELS = [
    (CRBM, CRBMConfig(n_visible=24, image_height=4, image_width=6, n_hidden=20, order=2)),
    (RNNRBM, RNNRBMConfig(n_visible=24, image_height=4, image_width=6, n_hidden=20,
                          n_recurrent=5)),
]


@pytest.mark.parametrize("cls, cfg", TINY_SEQUENCE_MODELS)
def test_sequence_nll_by_ais_matches_the_exact_one(cls, cfg):
    m, x = random_sequence_model(cls, cfg)
    exact = sequence_nll(m, x, EvalConfig())
    with torch.no_grad():
        torch.testing.assert_close(exact["nll_nats"], float(-m.log_prob(x).mean()))
    ais = sequence_nll(m, x, EvalConfig(exact_max_units=0, frame_ais_betas=500,
                                        frame_ais_runs=20, dtype="mixed"))
    print(f"{cls.__name__} nats per frame: exact {exact['nll_nats_per_frame']:.4f}, AIS "
          f"{ais['nll_nats_per_frame']:.4f} ({ais['estimator']})")
    assert exact["estimator"] == "exact enumeration per frame" and "n_samples" not in exact
    assert ais["estimator"].startswith("AIS per frame") and ais["n_samples"] == 20
    assert exact["n_frames"] == ais["n_frames"] == 4
    assert abs(ais["nll_nats_per_frame"] - exact["nll_nats_per_frame"]) < 0.1
    assert ais["stderr_mc"] > 0 and exact["stderr_mc"] == 0


@pytest.mark.parametrize("model, sets", [
    ("crbm", ["model.n_hidden=8"]),
    ("rnn-rbm", ["model.n_hidden=8", "model.n_recurrent=8"]),
])
def test_train_then_evaluate_reports_nats_per_frame_and_per_sequence(model, sets, tmp_path,
                                                                     capsys):
    run = tmp_path / model
    argv = ["train", model, "--data", "digits", "--out", str(run),
            "--set", "data.binarize=threshold", "--set", "data.n_train=300",
            "--set", "data.n_eval=50", "--set", "model.sample_gibbs=3",
            "--set", "train.epochs=1", "--set", "train.progress=false",
            "--set", "train.grid_samples=0"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    reports = {}
    for name, extra in [("exact", []), ("ais", ["--set", "eval.exact_max_units=0",
                                                "--set", "eval.frame_ais_betas=300"])]:
        capsys.readouterr()
        assert main(["evaluate", str(run), "--json", *extra]) == 0
        reports[name] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for r in reports.values():
        assert r["model"] == model and r["n_frames"] == 8 and r["stderr"] > 0
        assert 0 < r["nll_nats"] < 64 * math.log(2)
        assert math.isclose(r["nll_nats_per_frame"] * 8, r["nll_nats"])
    assert abs(reports["ais"]["nll_nats_per_frame"] - reports["exact"]["nll_nats_per_frame"]) < 0.1
    # Reverse AIS per frame too (eval.reverse, the default), within 0.1 nats per frame.
    assert "nll_nats_reverse" not in reports["exact"]
    assert abs(reports["ais"]["nll_nats_reverse"] - reports["exact"]["nll_nats"]) / 8 < 0.1
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    assert "nats per frame (8 frames per sequence)" in capsys.readouterr().out


def test_frame_log_partition_is_differentiable():
    W, b, c = _frames(h=6, n=3)
    W.requires_grad_(True)
    frame_log_partition(W, b, c).sum().backward()
    # d log Z_n / dW = E_n[v h^T], checked against the finite difference of one entry.
    eps = 1e-6
    Wp = W.detach().clone()
    Wp[2, 3] += eps
    fd = (frame_log_partition(Wp, b, c).sum() - frame_log_partition(W.detach(), b, c).sum()) / eps
    assert math.isclose(float(W.grad[2, 3]), float(fd), rel_tol=1e-4, abs_tol=1e-6)
