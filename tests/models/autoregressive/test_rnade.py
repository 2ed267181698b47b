"""RNADE: a normalised density (numerical integration in 2-D), the O(DH) running sum against
the per-conditional definition, the autoregressive property, gradients, the sampler against
the model's own density, and a short training run on image patches."""

from __future__ import annotations

import pytest
import torch
from test_autoregressive_properties import randomize

from genzoo.core.errors import ConfigError, InputError
from genzoo.data import DataConfig, load_data
from genzoo.models.autoregressive.rnade import RNADE, RNADEConfig


def _random_rnade(d=2, h=4, k=3, seed=0, scale=0.4, activation="relu", sigma_min=0.05,
                  sigma_max=None):
    m = RNADE(RNADEConfig(n_visible=d, n_hidden=h, n_components=k, activation=activation,
                          sigma_min=sigma_min, sigma_max=sigma_max))
    return randomize(m, seed, scale)


def _density_grid(m: RNADE, n: int = 601, lim: float = 20.0):
    """(t, p) with p[i, j] = p(x_1 = t_i, x_2 = t_j) on a square grid wide enough for random
    models of ``_random_rnade``'s scale (their tails are Gaussian mixtures whose widths grow
    with x_1)."""
    t = torch.linspace(-lim, lim, n, dtype=torch.float64)
    with torch.no_grad():
        p = m.log_prob(torch.cartesian_prod(t, t)).exp().reshape(n, n)
    return t, p


@pytest.mark.parametrize("activation,sigma_max", [("relu", None), ("sigmoid", None),
                                                  ("relu", 1.5)])
def test_two_dimensional_density_integrates_to_one(activation, sigma_max):
    m = _random_rnade(activation=activation, seed=1, sigma_max=sigma_max)
    t, p = _density_grid(m)
    total = torch.trapezoid(torch.trapezoid(p, t, dim=1), t)
    assert abs(float(total) - 1.0) < 1e-6


def _per_conditional_log_probs(m: RNADE, x: torch.Tensor) -> torch.Tensor:
    """Equations (3)-(8) of Uria et al. (2013) taken literally, one conditional at a time."""
    cols = []
    for d in range(m.n_visible):
        a = m.c + x[:, :d] @ m.W[:, :d].T
        h = m._act(m.rho[d] * a)
        alpha = torch.softmax(h @ m.V_alpha[d].T + m.b_alpha[d], dim=-1)
        mu = h @ m.V_mu[d].T + m.b_mu[d]
        e = torch.exp(h @ m.V_sigma[d].T + m.b_sigma[d])
        if m.config.sigma_max is not None:  # the harmonic soft minimum of e and the cap
            e = 1.0 / (1.0 / e + 1.0 / m.config.sigma_max)
        sigma = m.config.sigma_min + e
        normal = torch.distributions.Normal(mu, sigma)
        cols.append((alpha * normal.log_prob(x[:, d : d + 1]).exp()).sum(-1).log())
    return torch.stack(cols, dim=1)


@pytest.mark.parametrize("sigma_max", [None, 0.8])
def test_running_sum_equals_the_per_conditional_definition(sigma_max):
    m = _random_rnade(d=7, h=5, k=4, seed=2, scale=0.4, sigma_max=sigma_max)
    x = torch.randn(16, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(m.conditional_log_probs(x), _per_conditional_log_probs(m, x),
                              rtol=0, atol=1e-10)


def test_autoregressive_property_by_autograd():
    d = 6
    m = _random_rnade(d=d, h=5, seed=4)
    x = torch.randn(3, d, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    jac = torch.autograd.functional.jacobian(
        lambda v: m.conditional_log_probs(v).sum(0), x
    ).permute(1, 0, 2)  # [b, i, j] = d log p(x_i | x_<i) / d x_j
    future = torch.ones(d, d, dtype=torch.bool).triu(1)  # j > i
    assert torch.all(jac[:, future] == 0.0)
    assert torch.all(jac[:, ~future].abs().amax(0) > 0)


def test_gradcheck_of_log_prob():
    m = _random_rnade(d=4, h=3, k=2, seed=6, scale=0.5, activation="sigmoid")
    x = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    names = [n for n, _ in m.named_parameters()]

    class LogProb(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = m

        def forward(self, v):
            return self.m.log_prob(v)

    def f(*params):
        return torch.func.functional_call(LogProb(), {f"m.{n}": p for n, p in zip(names, params)},
                                          (x,))

    assert torch.autograd.gradcheck(f, tuple(p.detach().clone().requires_grad_()
                                             for p in m.parameters()))


def test_loss_is_the_mean_nll_and_gradient_flows():
    m = _random_rnade(d=5, seed=8).float()
    x = torch.randn(10, 5, generator=torch.Generator().manual_seed(9))
    out = m.loss(x)
    assert torch.allclose(out["loss"], -m.log_prob(x).mean())
    out["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    assert m.validation_metrics(x)["nll"] == pytest.approx(float(out["nll"]), rel=1e-6)


@pytest.mark.parametrize("sigma_max", [None, 1.2])
def test_samples_match_the_model_density(sigma_max):
    """x_1's samples against its exact mixture CDF (Kolmogorov-Smirnov), and the mean of x_2
    against its value by numerical integration of the joint (z-test); false-alarm rate 1e-3
    each, fixed seeds."""
    stats = pytest.importorskip("scipy.stats")
    m = _random_rnade(seed=10, sigma_max=sigma_max)
    n = 20_000
    x = m.sample(n, generator=torch.Generator().manual_seed(11))
    assert x.shape == (n, 2) and x.dtype == torch.float64
    with torch.no_grad():
        log_alpha, mu, sigma = m.mixture_params(m.hidden(torch.zeros(1, 2, dtype=torch.float64)))
    w, mu1, s1 = log_alpha[0, 0].exp().numpy(), mu[0, 0].numpy(), sigma[0, 0].numpy()

    def cdf(v):
        return (w * stats.norm.cdf((v[:, None] - mu1) / s1)).sum(1)

    assert stats.kstest(x[:, 0].numpy(), cdf).pvalue > 1e-3
    t, p = _density_grid(m)
    m2 = torch.trapezoid(torch.trapezoid(p * t[None, :], t, dim=1), t)
    v2 = torch.trapezoid(torch.trapezoid(p * t[None, :] ** 2, t, dim=1), t) - m2**2
    z = (x[:, 1].mean() - m2) / torch.sqrt(v2 / n)
    assert abs(float(z)) < stats.norm.isf(0.5e-3)


def test_sample_is_seeded_and_handles_zero():
    m = _random_rnade(d=3, seed=12).float()
    a = m.sample(4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, m.sample(4, generator=torch.Generator().manual_seed(1)))
    assert a.dtype == torch.float32 and m.sample(0).shape == (0, 3)


def test_input_and_config_errors():
    m = _random_rnade(d=3)
    for bad in (torch.zeros(2, 4), torch.tensor([[0.0, float("nan"), 1.0]]), torch.zeros(2, 3,
                dtype=torch.long)):
        with pytest.raises(InputError):
            m.log_prob(bad)
    for kw in ({"n_components": 0}, {"sigma_min": 0.0}, {"n_hidden": 0}, {"activation": "tanh"},
               {"sigma_max": 0.005}, {"sigma_max": -1.0}):
        with pytest.raises(ConfigError):
            RNADEConfig(n_visible=3, **kw)


def _cascading_rnade(sigma_max):
    """ReLU hiddens fed by every earlier x with weight 1 and widths exp(sum_j h_j): one wide
    draw widens every later conditional."""
    m = RNADE(RNADEConfig(n_visible=40, n_hidden=4, n_components=2, sigma_max=sigma_max))
    with torch.no_grad():
        m.W.fill_(1.0)
        m.c.fill_(1.0)
        m.V_sigma.fill_(1.0)
    return m


def test_the_width_cap_keeps_a_cascade_of_wide_draws_finite():
    g = torch.Generator().manual_seed(0)
    assert not torch.isfinite(_cascading_rnade(None).sample(200, generator=g)).all()
    capped = _cascading_rnade(3.0)
    x = capped.sample(200, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(x).all()
    with torch.no_grad():
        _, _, sigma = capped.mixture_params(capped.hidden(x))
        assert float(sigma.max()) <= (3.0 + capped.config.sigma_min) * (1 + 1e-6)
        assert torch.isfinite(capped.log_prob(x)).all()
        # far below the cap the width is exp(s) itself: M / (1 + M e^-s) - e^s ~ e^2s / M
        s = torch.tensor(-4.0)
        assert float(capped._sigma(s) - capped.config.sigma_min - s.exp()) < 1e-4


def test_init_from_data_starts_at_the_marginal_width_under_a_cap():
    x = torch.randn(500, 3, generator=torch.Generator().manual_seed(4)) * torch.tensor([0.5, 1.0,
                                                                                       2.0])
    for cap in (None, 4.0):
        m = RNADE(RNADEConfig(n_visible=3, n_hidden=4, n_components=4, sigma_max=cap))
        m.init_from_data(x)
        with torch.no_grad():
            sigma = m._sigma(m.b_sigma) - m.config.sigma_min
        assert torch.allclose(sigma, (x.std(0) / 2)[:, None].expand(3, 4), rtol=1e-5)


def test_training_on_image_patches_improves_valid_likelihood():
    """200 Adam steps on 4000 patches: the valid log-density rises well above that of the
    initial independent-marginals fit (``init_from_data``)."""
    bundle = load_data(DataConfig(name="image-patches", unit_variance=True, n_train=4000,
                                  n_eval=500))
    torch.manual_seed(0)
    m = RNADE(RNADEConfig(n_visible=63, n_hidden=32, n_components=5),
              generator=torch.Generator().manual_seed(0))
    m.init_from_data(bundle.train.x)
    start = m.validation_metrics(bundle.valid.x)["nll"]
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(200):
        idx = torch.randint(0, len(bundle.train), (100,), generator=g)
        opt.zero_grad()
        m.loss(bundle.train.x[idx])["loss"].backward()
        opt.step()
    end = m.validation_metrics(bundle.valid.x)["nll"]
    # Neighbouring pixels are strongly correlated: even a short run must exploit it.
    assert end < start - 10.0, (start, end)
