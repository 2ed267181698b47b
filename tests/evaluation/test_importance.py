"""importance_log_px / importance_nll on a linear-Gaussian model whose marginal is exact, and its
dispatch from evaluate."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import distributions as D
from torch import nn

from genzoo.core.errors import ConfigError, GenzooError
from genzoo.core.protocols import LATENT
from genzoo.evaluation import evaluate, importance_log_px, importance_nll
from genzoo.evaluation.config import EvalConfig

KEYS = {
    "nll_nats", "stderr", "stderr_examples", "stderr_mc", "elbo_nats", "is_ess", "estimator",
    "n_samples", "n_examples", "dtype", "wall_s",
}


class LinearGaussian(nn.Module):
    """Test-only latent model: p(z) = N(0, I_L), p(x|z) = N(A z + b, s^2 I_D), so
    p(x) = N(b, A A^T + s^2 I). The proposal is the exact posterior's mean and marginal
    standard deviations, shifted by ``offset`` and scaled by ``widen`` (exact when L = 1 and
    offset = 0, widen = 1)."""

    capabilities = frozenset({LATENT})

    def __init__(self, d=4, l=2, s=0.5, offset=0.0, widen=1.0, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.A = nn.Parameter(torch.randn(d, l, generator=g))
        self.b = nn.Parameter(torch.randn(d, generator=g))
        self.log_s = nn.Parameter(torch.tensor(math.log(s)))
        self.offset, self.widen = offset, widen

    def log_joint(self, x, z):
        s = self.log_s.exp()
        prior = D.Normal(torch.zeros_like(z), 1.0).log_prob(z).sum(-1)
        lik = D.Normal(z @ self.A.T + self.b, s).log_prob(x).sum(-1)
        return prior + lik

    def proposal(self, x):
        s2 = self.log_s.exp() ** 2
        eye = torch.eye(self.A.shape[1], dtype=x.dtype)
        cov = torch.linalg.inv(eye + self.A.T @ self.A / s2)
        mean = (x - self.b) @ self.A @ cov.T / s2
        std = cov.diagonal().sqrt() * self.widen
        return D.Independent(D.Normal(mean + self.offset, std.expand_as(mean)), 1)

    def exact_log_px(self, x):
        x = x.double()
        a, b = self.A.double(), self.b.double()
        cov = a @ a.T + self.log_s.double().exp() ** 2 * torch.eye(a.shape[0], dtype=x.dtype)
        return D.MultivariateNormal(b, cov).log_prob(x)

    def loss(self, x, generator=None):
        return {"loss": -self.exact_log_px(x).mean()}

    def sample(self, n, generator=None):
        return torch.zeros(n, self.A.shape[0])


def data(model, n=30, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        z = torch.randn(n, model.A.shape[1], generator=g)
        return z @ model.A.T + model.b + 0.5 * torch.randn(n, model.A.shape[0], generator=g)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def importance(model, x, k, *args, **kwargs):
    """importance_log_px: its NLL report (JSON view), with the per-example tensors beside it."""
    est = importance_log_px(model, x, k, *args, **kwargs)
    return {**est.report(), "per_example_log_px": est.log_px, "per_example_elbo": est.elbo}


def test_converges_to_the_exact_marginal_and_the_elbo_stays_below():
    model = LinearGaussian(d=4, l=2, offset=0.3, widen=1.3)
    x = data(model)
    exact = model.exact_log_px(x).detach()
    r1 = importance(model, x, 1, gen(0))
    r = importance(model, x, 5000, gen(1), max_draws=4000)  # several chunks
    err = -r["nll_nats"] - float(exact.mean())
    assert abs(err) < 4 * r["stderr_mc"] + 1e-3, (err, r["stderr_mc"])
    assert abs(err) < 0.1 * abs(-r1["nll_nats"] - float(exact.mean()))
    # The ELBO is below log p(x) for every example (the proposal is not the posterior).
    assert bool((r["per_example_elbo"] < exact).all())
    assert r["elbo_nats"] > r["nll_nats"]
    assert 1 < r["is_ess"] < 5000


def test_exact_posterior_proposal_gives_the_exact_value_in_every_chunk():
    model = LinearGaussian(d=3, l=1)  # diagonal proposal = exact posterior when L = 1
    x = data(model, n=7)
    exact = model.exact_log_px(x).detach()
    for max_draws in (7, 50, 100_000):
        r = importance(model, x, 40, gen(2), batch_size=3, max_draws=max_draws)
        assert torch.allclose(r["per_example_log_px"], exact, atol=1e-9, rtol=0)
        assert torch.allclose(r["per_example_elbo"], exact, atol=1e-9, rtol=0)
        assert r["is_ess"] == pytest.approx(40)
        assert r["stderr_mc"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("k", [1, 2, 17])
def test_the_estimate_is_never_below_the_elbo(k):
    model = LinearGaussian(d=4, l=3, offset=-0.5, widen=0.6, seed=3)
    x = data(model, n=25)
    r = importance(model, x, k, gen(k))
    assert bool((r["per_example_log_px"] >= r["per_example_elbo"] - 1e-12).all())
    if k == 1:
        assert torch.equal(r["per_example_log_px"], r["per_example_elbo"])


def test_report_keys_precision_and_model_untouched():
    model = LinearGaussian()
    x = data(model, n=5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = importance(model, x, 10, gen())
    assert KEYS <= set(r)
    assert r["estimator"] == "importance sampling (k=10)" and r["n_samples"] == 10
    assert r["dtype"] == "float64" and r["per_example_log_px"].dtype == torch.float64
    assert r["n_examples"] == 5 and "log_z" not in r and "n_betas" not in r
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert model.A.dtype == torch.float32
    again = importance(model, x, 10, gen())
    assert again["nll_nats"] == r["nll_nats"]  # deterministic under a seed


def test_errors():
    model = LinearGaussian()
    x = data(model, n=3)
    for bad_k in (0, -1, 2.5, True):
        with pytest.raises(GenzooError, match="importance samples"):
            importance(model, x, bad_k)
    with pytest.raises(GenzooError, match="empty"):
        importance(model, x[:0], 5)
    with pytest.raises(GenzooError, match="not a latent-variable model"):
        importance(nn.Linear(2, 2), x, 5)
    with pytest.raises(ConfigError, match="is_samples"):
        EvalConfig(is_samples=0)


def test_evaluate_dispatches_latent_models_to_importance_sampling():
    model = LinearGaussian()
    x = data(model, n=12)
    b = SimpleNamespace(train=SimpleNamespace(x=x), test=SimpleNamespace(x=x))
    b.split = lambda name: getattr(b, name)
    cfg = EvalConfig(is_samples=300)
    r = evaluate(model, b, cfg)
    assert r["estimator"] == "importance sampling (k=300)" and r["split"] == "test"
    assert KEYS <= set(r) and "per_example_log_px" not in r
    assert r["nll_nats"] == importance_nll(model, x, cfg)["nll_nats"]  # seeded by eval.seed
    assert r["nll_nats"] <= r["elbo_nats"]
    assert r["nll_nats"] == pytest.approx(-float(model.exact_log_px(x).detach().mean()), abs=0.05)


def test_draw_uses_the_generator_for_each_supported_proposal():
    from genzoo.evaluation.importance import draw

    p = torch.tensor([0.2, 0.7])
    cov = torch.tensor([[1.0, 0.6], [0.6, 2.0]])
    for q, mean, var in [
        (D.Independent(D.Bernoulli(probs=p), 1), p, p * (1 - p)),
        (D.MultivariateNormal(torch.zeros(2), cov), torch.zeros(2), cov.diagonal()),
        (D.Normal(torch.ones(2), 2.0), torch.ones(2), torch.full((2,), 4.0)),
    ]:
        z = draw(q, 20000, gen(4))
        assert z.shape == (20000, 2) and torch.equal(z, draw(q, 20000, gen(4)))
        assert torch.allclose(z.mean(0), mean, atol=4 * float(var.max().sqrt()) / 141)
        assert torch.allclose(z.var(0), var, rtol=0.05)
    with pytest.raises(GenzooError, match="generator"):
        draw(D.Gamma(torch.ones(2), 1.0), 3, gen())
