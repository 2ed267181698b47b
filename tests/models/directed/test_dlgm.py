"""DLGM: the Gaussian-backpropagation identities (Bonnet, Price) against exact expectations
and against autograd through the reparameterisation, and the likelihood against numerical
integration."""

from __future__ import annotations

import math

import pytest
import torch
from _directed_checks import fit_then_check_importance_estimate

from genzoo.core.errors import ConfigError, InputError
from genzoo.models.directed.dlgm import DLGM, DLGMConfig, gaussian_backprop_surrogate


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# f(xi) = sum_j a_j xi_j^4 + xi^T A xi (A symmetric). Under xi ~ N(mu, diag s):
#   E f = sum_j a_j (mu_j^4 + 6 mu_j^2 s_j + 3 s_j^2) + mu^T A mu + sum_j A_jj s_j
#   dE/dmu = a (4 mu^3 + 12 mu s) + 2 A mu,   dE/ds = a (6 mu^2 + 6 s) + diag A
J = 3
a = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
M = torch.tensor([[1.0, 0.4, -0.3], [0.4, -0.5, 0.2], [-0.3, 0.2, 0.8]], dtype=torch.float64)


def f(xi, quartic=True):
    quad = ((xi @ M) * xi).sum(-1)
    return quad + (a * xi**4).sum(-1) if quartic else quad


def exact_grads(mu, s, quartic=True):
    aa = a if quartic else torch.zeros_like(a)
    d_mu = aa * (4 * mu**3 + 12 * mu * s) + 2 * M @ mu
    d_s = aa * (6 * mu**2 + 6 * s) + M.diagonal()
    return d_mu, d_s * s  # the second with respect to log_var = log s


def per_draw_grads(method, mu0, log_var0, eps, quartic=True):
    """Gradients (n, J) of f w.r.t. mu and log_var for each of the n draws."""
    mu = mu0.expand(len(eps), -1).clone().requires_grad_(True)
    log_var = log_var0.expand(len(eps), -1).clone().requires_grad_(True)
    if method == "reparam":
        value = f(mu + torch.exp(0.5 * log_var) * eps, quartic)
    else:
        value = gaussian_backprop_surrogate(lambda xi: f(xi, quartic), mu, log_var,
                                            eps.unsqueeze(0))[0]
    value.sum().backward()
    return mu.grad, log_var.grad, value.detach()


MU = torch.tensor([0.5, -1.0, 0.2], dtype=torch.float64)
LOG_VAR = torch.log(torch.tensor([0.3, 1.5, 0.8], dtype=torch.float64))


@pytest.mark.parametrize("method", ["reparam", "bonnet_price"])
def test_both_estimators_are_unbiased_for_a_quartic(method):
    n = 200_000
    eps = torch.randn(n, J, generator=gen(1), dtype=torch.float64)
    d_mu, d_lv, value = per_draw_grads(method, MU, LOG_VAR, eps)
    ex_mu, ex_lv = exact_grads(MU, LOG_VAR.exp())
    for est, exact in ((d_mu, ex_mu), (d_lv, ex_lv)):
        se = est.std(0) / math.sqrt(n)
        assert bool(((est.mean(0) - exact).abs() < 5 * se + 1e-9).all()), (est.mean(0), exact, se)
    s = LOG_VAR.exp()
    e_f = (a * (MU**4 + 6 * MU**2 * s + 3 * s**2)).sum() + MU @ M @ MU + (M.diagonal() * s).sum()
    assert abs(float(value.mean() - e_f)) < 5 * float(value.std()) / math.sqrt(n)


def test_bonnet_matches_reparam_per_draw_and_price_is_exact_for_a_quadratic():
    eps = torch.randn(50, J, generator=gen(2), dtype=torch.float64)
    r_mu, r_lv, r_val = per_draw_grads("reparam", MU, LOG_VAR, eps)
    b_mu, b_lv, b_val = per_draw_grads("bonnet_price", MU, LOG_VAR, eps)
    assert torch.allclose(r_val, b_val)  # the surrogate's value is f itself
    assert torch.allclose(r_mu, b_mu)  # Bonnet's estimator is grad_xi f at the same draw
    assert not torch.allclose(r_lv, b_lv)  # different covariance estimators
    # For a quadratic the Hessian is constant, so Price's estimator is exact on every draw,
    # while the reparameterised covariance gradient scatters around it.
    _, q_lv, _ = per_draw_grads("bonnet_price", MU, LOG_VAR, eps, quartic=False)
    _, qr_lv, _ = per_draw_grads("reparam", MU, LOG_VAR, eps, quartic=False)
    _, ex_lv = exact_grads(MU, LOG_VAR.exp(), quartic=False)
    assert torch.allclose(q_lv, ex_lv.expand_as(q_lv))
    assert float(qr_lv.var(0).sum()) > 1e-3


def make(latent=(2, 1), d=5, seed=0, **kw) -> DLGM:
    kw.setdefault("init_std", 0.5)
    kw.setdefault("hidden", 6)
    return DLGM(DLGMConfig(n_visible=d, latent=latent, **kw), gen(seed))


def binary(n=6, d=5, seed=1):
    return (torch.rand(n, d, generator=gen(seed)) < 0.4).float()


def test_the_two_estimators_give_the_same_decoder_gradient_per_draw():
    x = binary()
    grads = {}
    for method in ("reparam", "bonnet_price"):
        model = make(gradient=method).double()
        model.loss(x.double(), gen(3))["loss"].backward()
        grads[method] = {k: p.grad for k, p in model.named_parameters()}
    for k, g in grads["reparam"].items():
        if k.startswith(("transforms", "G")):
            assert torch.allclose(g, grads["bonnet_price"][k]), k
    assert any(not torch.allclose(g, grads["bonnet_price"][k])
               for k, g in grads["reparam"].items() if k.startswith("heads"))


def test_importance_estimate_matches_numerical_integration_with_two_1d_layers():
    model = make(latent=(1, 1)).double()
    x = binary().double()
    grid = torch.linspace(-9, 9, 601, dtype=torch.float64)
    xi = torch.cartesian_prod(grid, grid)  # (G^2, 2)
    with torch.no_grad():
        lj = model.log_joint(x, xi.unsqueeze(1).expand(-1, len(x), -1))
    exact = torch.logsumexp(lj, 0) + 2 * math.log(float(grid[1] - grid[0]))
    fit_then_check_importance_estimate(
        model, x, [*model.trunk.parameters(), *model.heads.parameters()], exact, 4000, seed=4)


@pytest.mark.parametrize("method", ["reparam", "bonnet_price"])
def test_training_lowers_the_free_energy(method):
    # Two prototypes with 5% of the bits flipped: structure the model must learn (uniform is
    # 5 log 2 = 3.47 nats, the data's entropy about 1.7).
    proto = torch.tensor([[1.0, 1, 1, 0, 0], [0.0, 0, 1, 1, 1]])
    flips = (torch.rand(30, 5, generator=gen(5)) < 0.05).float()
    x = ((proto[torch.arange(30) % 2] + flips) % 2).double()
    model = make(gradient=method, init_std=0.1).double()
    first = float(model.loss(x, gen(0))["loss"].detach())
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for step in range(60):
        opt.zero_grad()
        model.loss(x, gen(step))["loss"].backward()
        opt.step()
    last = sum(float(model.loss(x, gen(1000 + i))["loss"].detach()) for i in range(10)) / 10
    assert last < first - 1.0, (first, last)


def test_shapes_sampling_and_errors():
    model = make(latent=(3, 2))
    x = binary()
    q = model.proposal(x)
    assert q.batch_shape == (6,) and q.event_shape == (5,)
    assert model.log_joint(x, torch.zeros(4, 6, 5)).shape == (4, 6)
    s = model.sample(4, gen(0))
    assert s.shape == (4, 5) and bool(((s > 0) & (s < 1)).all())
    with pytest.raises(InputError, match="binarize"):
        model.loss(torch.full((2, 5), 0.5))
    with pytest.raises(ConfigError, match="latent"):
        DLGMConfig(latent=())
    with pytest.raises(ConfigError, match="gradient"):
        DLGMConfig(gradient="score")
    with pytest.raises(ConfigError, match="n_visible"):
        DLGM(DLGMConfig())
