"""SBN trained by NVIL with local (per-layer) learning signals: the surrogate's gradient
against hand-derived per-layer rules, unbiasedness against the exact ELBO gradient by
enumeration, the variance reduction over the global signal, a short run on binarized digits,
and a checkpoint round trip of the per-layer statistics."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from genzoo.models.directed.sbn import SBN, SBNConfig
from genzoo.run_config import RunConfig


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def make(d=4, hidden=(3, 2, 2), seed=0, local=True, **kw) -> SBN:
    kw.setdefault("init_std", 1.0)
    kw.setdefault("nvil_baseline_hidden", 6)
    cfg = SBNConfig(n_visible=d, hidden=hidden, training="nvil", nvil_local_signals=local, **kw)
    return SBN(cfg, gen(seed)).double()


def binary(n=5, d=4, seed=1):
    return (torch.rand(n, d, generator=gen(seed)) < 0.4).double()


def all_states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def log_bern(h, logits):
    # log sigmoid(a) = a - log(1 + e^a), log(1 - sigmoid(a)) = -log(1 + e^a)
    return (h * logits - torch.log1p(torch.exp(logits))).sum(-1)


# -- (1) the surrogate's gradient is each layer's rule --------------------------------------
def test_local_nvil_gradient_is_each_layers_rule_and_statistics_are_per_layer():
    model = make(nvil_alpha=0.5)
    x = binary()
    model.loss(x, gen(0))  # the first batch initialises the running statistics
    c0, v0 = model.layer_signal_mean.clone(), model.layer_signal_var.clone()
    model.zero_grad()
    model.loss(x, gen(9))["loss"].backward()
    auto = {k: p.grad.clone() for k, p in model.named_parameters()}

    h = model.proposal(x).sample((1,), gen(9))[0]  # the draws loss() made
    hs = [x, *h.split(model.sizes, -1)]
    L = len(model.sizes)
    W = [m.weight.detach() for m in model.generative]
    b = [m.bias.detach() for m in model.generative]
    U = [m.weight.detach() for m in model.recognition]
    c = [m.bias.detach() for m in model.recognition]
    b_top = model.top_bias.detach()
    # gen_k = log p(h_k | h_{k+1}) (k < L), gen_L = log p(h_L); rec_l = log q(h_l | h_{l-1})
    gen_terms = [log_bern(hs[k], hs[k + 1] @ W[k].T + b[k]) for k in range(L)]
    gen_terms.append(log_bern(hs[L], b_top.expand_as(hs[L])))
    rec = {l: log_bern(hs[l], hs[l - 1] @ U[l - 1].T + c[l - 1]) for l in range(1, L + 1)}
    raw = {l: sum(gen_terms[l - 1:]) - sum(rec[k] for k in range(l, L + 1))
           for l in range(1, L + 1)}
    assert torch.allclose(raw[1], sum(gen_terms) - sum(rec.values()))  # l_1 is the global l

    def baseline_parts(net, u):
        W1, b1, w2 = net[0].weight.detach(), net[0].bias.detach(), net[2].weight.detach()[0]
        t = torch.tanh(u @ W1.T + b1)
        value = t @ w2 + net[2].bias.detach()[0]
        back = w2 * (1 - t**2)  # dC/d(pre-activation), (B, n_hidden)
        grads = {"0.weight": back.unsqueeze(-1) * u.unsqueeze(-2), "0.bias": back,
                 "2.weight": t.unsqueeze(-2), "2.bias": torch.ones(len(u), 1, dtype=u.dtype)}
        return value, grads

    expected = {}
    B = len(x)
    for l in range(1, L + 1):
        value, bgrads = baseline_parts(model.layer_baselines[l - 1], hs[l - 1])
        centred = raw[l] - value
        mean = 0.5 * c0[l - 1] + 0.5 * centred.mean()
        var = 0.5 * v0[l - 1] + 0.5 * centred.var(unbiased=False)
        assert float(model.layer_signal_mean[l - 1]) == pytest.approx(float(mean))
        assert float(model.layer_signal_var[l - 1]) == pytest.approx(float(var))
        signal = (centred - mean) / max(1.0, math.sqrt(float(var)))
        # phi_l: signal_l * (h_l - sigmoid(U_l h_{l-1} + c_l)) h_{l-1}^T, averaged, negated
        r = hs[l] - torch.sigmoid(hs[l - 1] @ U[l - 1].T + c[l - 1])
        expected[f"recognition.{l - 1}.weight"] = -(signal[:, None] * r).T @ hs[l - 1] / B
        expected[f"recognition.{l - 1}.bias"] = -(signal[:, None] * r).sum(0) / B
        for name, g in bgrads.items():
            sig = signal.view(-1, *[1] * (g.dim() - 1))
            expected[f"layer_baselines.{l - 1}.{name}"] = -(sig * g).sum(0) / B
    for k in range(L):  # theta: grad log p(x, h), the same as for the global signal
        r = hs[k] - torch.sigmoid(hs[k + 1] @ W[k].T + b[k])
        expected[f"generative.{k}.weight"] = -r.T @ hs[k + 1] / B
        expected[f"generative.{k}.bias"] = -r.sum(0) / B
    expected["top_bias"] = -(hs[L] - torch.sigmoid(b_top)).sum(0) / B

    assert set(expected) == set(auto)  # every parameter's rule is checked
    for k, v in expected.items():
        assert torch.allclose(auto[k], v, atol=1e-10), (k, auto[k], v)


# -- (2) unbiased, and lower variance than the global signal --------------------------------
def exact_recognition_grad(model: SBN, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """-mean_i grad_phi ELBO(x_i), the ELBO summed exactly over all 2^H latent states."""
    z = all_states(sum(model.sizes)).unsqueeze(1).expand(-1, len(x), -1)
    model.zero_grad()
    q = model.proposal(x)
    log_q = q.log_prob(z)
    with torch.no_grad():
        log_p = model.log_joint(x, z)
    elbo = (log_q.exp() * (log_p - log_q)).sum(0)  # (B,)
    (-elbo.mean()).backward()
    return {k: p.grad.clone() for k, p in model.named_parameters() if k.startswith("recognition")}


def estimator_draws(model: SBN, x: torch.Tensor, calls: int, seed: int) -> torch.Tensor:
    """(calls, P): the recognition gradient of the surrogate, one batch of x per call."""
    rows = []
    for m in range(calls):
        model.zero_grad()
        model.loss(x, gen(seed + m))["loss"].backward()
        rows.append(torch.cat([p.grad.flatten() for k, p in model.named_parameters()
                               if k.startswith("recognition")]))
    return torch.stack(rows)


def assert_mean_matches(draws: torch.Tensor, exact: torch.Tensor) -> None:
    """Every coordinate's mean over the draws within 5 standard errors of the exact value
    (coordinates of an input pixel that is 0 in every example are exactly 0 in both)."""
    se = draws.std(0) / math.sqrt(len(draws))
    gap = (draws.mean(0) - exact).abs()
    assert bool((gap <= 5 * se + 1e-12).all()), (gap / se).max()


def test_local_signals_are_unbiased_and_lower_variance_than_the_global_signal():
    # 3 layers, 9 latent bits: the exact gradient enumerates 512 states per example.
    local = make(d=5, hidden=(3, 3, 3), seed=4)
    glob = make(d=5, hidden=(3, 3, 3), seed=4, local=False)
    shared = {k: v for k, v in local.state_dict().items()
              if k.startswith(("generative", "recognition", "top_bias"))}
    glob.load_state_dict(shared, strict=False)
    x = binary(n=3, d=5, seed=2).repeat(100, 1)  # 300 rows: 100 draws per example per call
    exact = exact_recognition_grad(local, x)
    exact = torch.cat([exact[k].flatten() for k, _ in local.named_parameters()
                       if k.startswith("recognition")])

    # Frozen statistics (eval mode): with v <= 1 the estimator is l' grad log q with an
    # arbitrary baseline C_l(h_{l-1}) + c_l, which must leave its mean unchanged.
    local.eval()
    local.layer_signal_mean.copy_(torch.tensor([0.7, -1.2, 2.0]))
    local.layer_signal_var.fill_(0.5)
    assert_mean_matches(estimator_draws(local, x, 200, seed=1000), exact)

    # Variance: both estimators without baselines (C = 0, c = 0, v = 1), the same draws.
    for model in (local, glob):
        nets = model.layer_baselines if model is local else [model.baseline]
        for net in nets:
            torch.nn.init.zeros_(net[2].weight)
            torch.nn.init.zeros_(net[2].bias)
        model.eval()
    local.layer_signal_mean.zero_()
    local.layer_signal_var.fill_(1.0)
    d_local = estimator_draws(local, x, 200, seed=5000)
    d_glob = estimator_draws(glob, x, 200, seed=5000)
    for d in (d_local, d_glob):
        assert_mean_matches(d, exact)
    # Layer 1 (the first 5*3 + 3 = 18 coordinates) gets the same signal in both forms; the
    # layers above lose the noise of the terms below them.
    n1 = 5 * 3 + 3
    var_local, var_glob = d_local.var(0), d_glob.var(0)
    assert torch.allclose(d_local[:, :n1], d_glob[:, :n1], atol=1e-10)
    ratio_above = float(var_local[n1:].sum() / var_glob[n1:].sum())
    ratio_all = float(var_local.sum() / var_glob.sum())
    assert ratio_above < 0.5, (ratio_above, ratio_all)
    assert ratio_all < 0.9, (ratio_above, ratio_all)


# -- (3) training on binarized digits ------------------------------------------------------
def test_training_with_local_signals_raises_the_elbo_on_binarized_digits():
    datasets = pytest.importorskip("sklearn.datasets")
    pixels = torch.as_tensor(datasets.load_digits().data, dtype=torch.float32)
    x = (pixels > 7).float()  # 8x8 grey levels 0..16, binarized at the midpoint
    train, valid = x[:1400], x[1400:]
    cfg = SBNConfig(n_visible=64, hidden=(32, 16), training="nvil", nvil_local_signals=True,
                    nvil_baseline_hidden=32, init_std=0.1)
    model = SBN(cfg, gen(0))
    model.init_from_data(train)
    start = model.validation_metrics(valid)["elbo"]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = gen(1)
    for step in range(600):
        batch = train[torch.randint(len(train), (100,), generator=g)]
        opt.zero_grad()
        model.loss(batch, g)["loss"].backward()
        opt.step()
    end = model.validation_metrics(valid)["elbo"]
    # init_from_data starts at the independent-pixel fit, so the gain is latent structure.
    assert end > start + 3.0, (start, end)


# -- (4) checkpoints -------------------------------------------------------------------------
def test_checkpoint_round_trip_keeps_the_per_layer_statistics(tmp_path):
    from genzoo.training.checkpoint import load_model, save_checkpoint

    cfg = SBNConfig(n_visible=4, hidden=(3, 2), training="nvil", nvil_local_signals=True,
                    nvil_baseline_hidden=5, init_std=1.0)
    model = SBN(cfg, gen(0))
    x = (torch.rand(8, 4, generator=gen(1)) < 0.5).float()
    for step in range(3):
        model.loss(x, gen(step))
    assert int(model.layer_signal_count) == 3 and model.layer_signal_mean.shape == (2,)
    save_checkpoint(tmp_path, model, RunConfig(model_name="sbn", model=cfg), None)
    loaded, loaded_cfg = load_model(tmp_path)
    assert loaded_cfg.model.nvil_local_signals is True
    state = model.state_dict()
    for name in ("layer_signal_mean", "layer_signal_var", "layer_signal_count"):
        assert torch.equal(loaded.state_dict()[name], state[name]), name
    assert set(loaded.state_dict()) == set(state)
    model.eval()
    a, b = model.loss(x, gen(7)), loaded.loss(x, gen(7))
    assert torch.equal(a["loss"], b["loss"]) and torch.equal(a["signal_mean_2"], b["signal_mean_2"])


def test_a_config_written_before_the_option_rebuilds_the_global_form():
    old = {"n_visible": 4, "hidden": [3, 2], "training": "nvil"}  # no nvil_local_signals key
    cfg = SBNConfig.from_dict(old)
    assert cfg.nvil_local_signals is False
    model = SBN(cfg, gen(0))
    names = set(model.state_dict())
    assert {"signal_mean", "signal_var", "signal_count", "baseline.0.weight"} <= names
    assert not any(n.startswith(("layer_signal", "layer_baselines")) for n in names)
