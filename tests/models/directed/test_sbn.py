"""SBN: exact likelihood by enumeration against the importance sampler, ancestral sampling,
and each learning rule's surrogate gradient against hand-derived gradients."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from genzoo.core.errors import ConfigError, InputError
from genzoo.evaluation import importance_log_px
from genzoo.models.directed.sbn import SBN, SBNConfig


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def make(d=5, hidden=(3, 2), seed=0, **kw) -> SBN:
    kw.setdefault("init_std", 1.0)
    return SBN(SBNConfig(n_visible=d, hidden=hidden, **kw), gen(seed))


def binary(n=6, d=5, seed=1):
    return (torch.rand(n, d, generator=gen(seed)) < 0.4).float()


def all_states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def exact_log_px(model: SBN, x: torch.Tensor) -> torch.Tensor:
    """log p(x) = logsumexp over all 2^H latent states of log p(x, h)."""
    z = all_states(sum(model.sizes))  # (2^H, H)
    with torch.no_grad():
        lj = model.log_joint(x, z.unsqueeze(1).expand(-1, len(x), -1))
    return torch.logsumexp(lj, 0)


def test_importance_estimate_matches_enumeration_and_the_elbo_stays_below():
    model = make().double()
    x = binary().double()
    # Fit the recognition network with RWS-style wake updates only (p(x) is unchanged), so
    # that q covers the posterior as it would after training.
    opt = torch.optim.Adam(model.recognition.parameters(), lr=0.05)
    for step in range(100):
        opt.zero_grad()
        model.loss(x, gen(step))["loss"].backward()
        opt.step()
    exact = exact_log_px(model, x)
    est = importance_log_px(model, x, 4000, gen(2))
    se_mc = est.nll().diagnostics["stderr_mc"]
    diff = est.log_px - exact
    assert abs(float(diff.mean())) < 4 * se_mc + 1e-3, (diff, se_mc)
    assert float(diff.abs().max()) < 0.05
    assert bool((est.elbo < exact).all())


def test_proposal_is_normalised_and_its_draws_follow_it():
    model = make(d=4, hidden=(2, 2)).double()
    x = binary(n=3, d=4).double()
    q = model.proposal(x)
    z = all_states(4).unsqueeze(1).expand(-1, 3, -1)
    probs = q.log_prob(z).exp()  # (16, 3)
    assert torch.allclose(probs.sum(0), torch.ones(3, dtype=torch.float64))
    draws = q.sample((20000,), gen(3))  # (n, 3, 4)
    codes = (draws * torch.tensor([8.0, 4.0, 2.0, 1.0], dtype=torch.float64)).sum(-1).long()
    freq = torch.stack([torch.bincount(codes[:, b], minlength=16) for b in range(3)], 1) / 20000
    se = (probs * (1 - probs) / 20000).sqrt()
    assert bool(((freq - probs).abs() < 5 * se + 1e-3).all())


def test_sample_and_log_prob_gives_the_draws_of_sample_and_their_log_prob():
    model = make(d=6, hidden=(4, 3)).double()
    x = binary(n=5, d=6).double()
    q = model.proposal(x)
    z, log_q = q.sample_and_log_prob((7,), gen(4))
    assert z.shape == (7, 5, 7) and log_q.shape == (7, 5)
    assert torch.equal(z, q.sample((7,), gen(4)))
    assert torch.allclose(log_q, q.log_prob(z), atol=1e-12)
    # log p(x, h) with x and the top prior broadcast over the draws equals the same terms
    # written out per draw.
    hs = [x.expand(7, -1, -1), *z.split(model.sizes, -1)]
    sig = torch.distributions.Bernoulli(logits=model.top_bias.expand_as(hs[-1]))
    direct = sig.log_prob(hs[-1]).sum(-1)
    for l, layer in enumerate(model.generative):
        direct = direct + torch.distributions.Bernoulli(logits=layer(hs[l + 1])).log_prob(hs[l]).sum(-1)
    with torch.no_grad():
        assert torch.allclose(model.log_joint(x, z), direct, atol=1e-10)


def test_ancestral_samples_follow_the_exact_marginal():
    model = make(d=3, hidden=(2,)).double()
    with torch.no_grad():
        model.generative[0].weight.mul_(2.0)
    xs = all_states(3)
    p = exact_log_px(model, xs).exp()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-12)
    s = model.sample(40000, gen(4))
    codes = (s * torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)).sum(-1).long()
    freq = torch.bincount(codes, minlength=8) / 40000
    assert bool(((freq - p).abs() < 5 * (p * (1 - p) / 40000).sqrt() + 1e-3).all())


# -- hand-derived gradients on a one-hidden-layer net: x (D,), h (H,) ----------------------
# log p(x, h) = sum h*b1 - softplus(b1) + sum x*a - softplus(a), a = W h + b0
#   d/db1 = h - sigmoid(b1);  d/dW = (x - sigmoid(a)) h^T;  d/db0 = x - sigmoid(a)
# log q(h|x) = sum h*s - softplus(s), s = U x + c:  d/dU = (h - sigmoid(s)) x^T, d/dc = h - sigmoid(s)
def grad_log_p(model, x, h):
    a = h @ model.generative[0].weight.T + model.generative[0].bias
    r = x - torch.sigmoid(a)
    return {
        "top_bias": h - torch.sigmoid(model.top_bias),
        "generative.0.weight": r.unsqueeze(-1) * h.unsqueeze(-2),
        "generative.0.bias": r,
    }


def grad_log_q(model, x, h):
    s = x @ model.recognition[0].weight.T + model.recognition[0].bias
    r = h - torch.sigmoid(s)
    return {"recognition.0.weight": r.unsqueeze(-1) * x.unsqueeze(-2), "recognition.0.bias": r}


def autograd_of_loss(model, x, seed):
    model.zero_grad()
    model.loss(x, gen(seed))["loss"].backward()
    return {k: p.grad.clone() for k, p in model.named_parameters()}


def check(auto, expected):
    for k, v in expected.items():
        assert torch.allclose(auto[k], v, atol=1e-10), (k, auto[k], v)


def weighted(grads, w):
    """sum over draws and examples of w (k, B) times per-draw gradients (k, B, ...), / B."""
    return {k: (g * w.view(*w.shape, *[1] * (g.dim() - 2))).sum((0, 1)) / w.shape[1]
            for k, g in grads.items()}


@pytest.mark.parametrize("sleep", [False, True])
def test_rws_gradient_is_the_importance_weighted_rule(sleep):
    model = make(d=4, hidden=(3,), training="rws", rws_k=6, rws_sleep=sleep).double()
    x = binary(n=5, d=4).double()
    auto = autograd_of_loss(model, x, 7)
    g = gen(7)
    q = model.proposal(x)
    h = q.sample((6,), g)  # the same draws loss() made
    with torch.no_grad():
        w = torch.softmax(model.log_joint(x, h) - q.log_prob(h), 0)
    xk = x.expand(6, -1, -1)
    expected = {k: -v for k, v in weighted(grad_log_p(model, xk, h), w).items()}
    wake = weighted(grad_log_q(model, xk, h), w)
    if sleep:
        xd, hd = model.sample_joint(5, g)
        ones = torch.ones(1, 5, dtype=torch.float64)
        dream = weighted(grad_log_q(model, xd.unsqueeze(0), hd.unsqueeze(0)), ones)
        wake = {k: wake[k] + dream[k] for k in wake}  # both q terms at the one rate
    expected.update({k: -v for k, v in wake.items()})
    check(auto, expected)


def test_wake_sleep_gradient_is_wake_for_p_and_sleep_for_q():
    model = make(d=4, hidden=(3,), training="wake_sleep").double()
    x = binary(n=5, d=4).double()
    auto = autograd_of_loss(model, x, 8)
    g = gen(8)
    h = model.proposal(x).sample((1,), g)
    xd, hd = model.sample_joint(5, g)
    ones = torch.ones(1, 5, dtype=torch.float64)
    expected = {k: -v for k, v in weighted(grad_log_p(model, x.unsqueeze(0), h), ones).items()}
    expected.update({k: -v for k, v in
                     weighted(grad_log_q(model, xd.unsqueeze(0), hd.unsqueeze(0)), ones).items()})
    check(auto, expected)


def test_nvil_gradient_uses_the_centred_normalised_signal_and_updates_its_statistics():
    model = make(d=4, hidden=(3,), training="nvil", nvil_alpha=0.5).double()
    x = binary(n=5, d=4).double()
    # A first batch initialises the running statistics; the second uses the decay.
    model.loss(x, gen(0))
    c0, v0 = float(model.signal_mean), float(model.signal_var)
    auto = autograd_of_loss(model, x, 9)
    h = model.proposal(x).sample((1,), gen(9))
    with torch.no_grad():
        l = (model.log_joint(x, h) - model.proposal(x).log_prob(h))[0]
        baseline = model.baseline(x).squeeze(-1)
    centred = l - baseline
    c = 0.5 * c0 + 0.5 * float(centred.mean())
    v = 0.5 * v0 + 0.5 * float(centred.var(unbiased=False))
    assert float(model.signal_mean) == pytest.approx(c)
    assert float(model.signal_var) == pytest.approx(v)
    signal = (centred - c) / max(1.0, math.sqrt(v))
    ones = torch.ones(1, 5, dtype=torch.float64)
    expected = {k: -v for k, v in weighted(grad_log_p(model, x.unsqueeze(0), h), ones).items()}
    expected.update({k: -v for k, v in
                     weighted(grad_log_q(model, x.unsqueeze(0), h), signal.unsqueeze(0)).items()})
    # The baseline's parameters get -mean_i signal_i grad C(x_i).
    model.zero_grad()
    (-(signal * model.baseline(x).squeeze(-1)).mean()).backward()
    expected.update({f"baseline.{k}": p.grad.clone()
                     for k, p in model.baseline.named_parameters()})
    assert set(expected) == set(auto)  # every parameter's rule is checked
    check(auto, expected)


def test_nvil_statistics_survive_a_state_round_trip_and_eval_calls_leave_them():
    model = make(training="nvil")
    x = binary()
    model.loss(x, gen(0))
    model.eval()
    before = model.state_dict()["signal_mean"].clone()
    model.loss(x, gen(1))
    assert torch.equal(model.signal_mean, before)
    fresh = make(training="nvil")
    fresh.load_state_dict(model.state_dict())
    assert int(fresh.signal_count) == 1 and torch.equal(fresh.signal_mean, before)


def test_training_raises_the_bound_on_tiny_data():
    # Two prototypes with 5% of the bits flipped: far from the uniform start, so each rule
    # must learn structure (the exact optimum is ~1.7 nats, uniform is 5 log 2 = 3.47).
    proto = torch.tensor([[1.0, 1, 1, 0, 0], [0.0, 0, 1, 1, 1]])
    flips = (torch.rand(40, 5, generator=gen(3)) < 0.05).float()
    x = (proto[torch.arange(40) % 2] + flips) % 2
    for rule in ("wake_sleep", "rws", "nvil"):
        model = make(training=rule, init_std=0.1).double()
        xx = x.double()
        start = importance_log_px(model, xx, 200, gen(5)).nll().value
        opt = torch.optim.Adam(model.parameters(), lr=0.03)
        for step in range(150):
            opt.zero_grad()
            model.loss(xx, gen(100 + step))["loss"].backward()
            opt.step()
        end = importance_log_px(model, xx, 200, gen(5)).nll().value
        assert end < start - 1.0, (rule, start, end)


def test_refuses_grey_data_and_bad_configs():
    model = make()
    with pytest.raises(InputError, match="binarize"):
        model.loss(torch.full((2, 5), 0.5))
    with pytest.raises(ConfigError, match="hidden"):
        SBNConfig(hidden=())
    with pytest.raises(ConfigError, match="rws_k"):
        SBNConfig(rws_k=0)
    with pytest.raises(ConfigError, match="nvil_alpha"):
        SBNConfig(nvil_alpha=1.0)
    with pytest.raises(ConfigError, match="n_visible"):
        SBN(SBNConfig())
