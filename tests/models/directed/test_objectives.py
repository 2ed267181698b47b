"""The objectives of genzoo.models.directed.objectives as objects: the config string and the
object give the same numbers, and one implementation of each bound serves the VAE and the DLGM
(diagonal and rank-one posteriors)."""

from __future__ import annotations

import pytest
import torch

from genzoo.core.errors import ConfigError, GenzooError
from genzoo.models.directed.dlgm import DLGM, DLGMConfig
from genzoo.models.directed.objectives import ELBO, IWAE, DReG, iwae_bound
from genzoo.models.directed.vae import VAE, VAEConfig


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def binary(n=6, d=6, seed=1):
    return (torch.rand(n, d, generator=gen(seed)) < 0.4).double()


def vae(obj=None, **kw):
    cfg = VAEConfig(n_visible=6, n_latent=3, hidden=(8,), init_std=0.7, **kw)
    return VAE(cfg, gen(0), objective=obj).double()


def dlgm(obj=None, **kw):
    cfg = DLGMConfig(n_visible=6, latent=(2, 1), hidden=6, init_std=0.5, **kw)
    return DLGM(cfg, gen(0), objective=obj).double()


def loss_and_grads(model, x, seed):
    model.zero_grad()
    out = model.loss(x, gen(seed))
    out["loss"].backward()
    return out, [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("settings, objective", [
    ({"estimator": "sgvb_a", "n_mc": 3}, ELBO("sgvb_a", n_mc=3)),
    ({"free_bits": 0.5}, ELBO(free_bits=0.5)),
    ({"objective": "iwae", "iwae_k": 5}, IWAE(5)),
    ({"objective": "iwae", "iwae_k": 5, "iwae_gradient": "dreg"}, DReG(5)),
])
def test_the_config_string_and_the_object_give_identical_numbers(settings, objective):
    by_config, by_object = vae(**settings), vae(objective)
    assert by_config.objective == objective
    x = binary()
    out_c, g_c = loss_and_grads(by_config, x, 3)
    out_o, g_o = loss_and_grads(by_object, x, 3)
    assert out_c.keys() == out_o.keys()
    assert all(torch.equal(out_c[k], out_o[k]) for k in out_c)
    assert all(torch.equal(a, b) for a, b in zip(g_c, g_o))


@pytest.mark.parametrize("cov", ["diagonal", "rank_one", "rank_one_precision"])
def test_the_dlgm_takes_the_importance_weighted_objectives(cov):
    x = binary()
    # k = 1: the bound is the ELBO with the Monte Carlo KL, value and gradient.
    out_e, g_e = loss_and_grads(dlgm(ELBO("sgvb_a"), posterior_cov=cov), x, 4)
    out_1, g_1 = loss_and_grads(dlgm(IWAE(1), posterior_cov=cov), x, 4)
    assert torch.allclose(out_e["loss"], out_1["loss"])
    assert all(torch.allclose(a, b) for a, b in zip(g_e, g_1))
    # DReG keeps IWAE's value and decoder gradient on the same draws.
    iwae, dreg = dlgm(IWAE(8), posterior_cov=cov), dlgm(DReG(8), posterior_cov=cov)
    out_i, g_i = loss_and_grads(iwae, x, 5)
    out_d, g_d = loss_and_grads(dreg, x, 5)
    for key in ("loss", "iwae", "elbo", "kl"):
        assert torch.allclose(out_i[key].detach(), out_d[key].detach()), key
    for (name, _), a, b in zip(iwae.named_parameters(), g_i, g_d):
        if name.startswith(("transforms", "G")):
            assert torch.allclose(a, b), name
    assert float(out_i["iwae"]) >= float(out_i["elbo"])


def test_the_dlgm_config_names_its_objective():
    assert DLGM(DLGMConfig(n_visible=4, latent=(2,), hidden=4)).objective == ELBO()
    model = DLGM(DLGMConfig(n_visible=4, latent=(2,), hidden=4, objective="iwae", iwae_k=3,
                            iwae_gradient="dreg"))
    assert model.objective == DReG(3)
    with pytest.raises(ConfigError, match="gradient"):
        DLGMConfig(objective="iwae", gradient="bonnet_price")


def test_iwae_bound_is_the_log_mean_of_the_weights():
    log_w = torch.log(torch.tensor([[1.0, 2.0], [3.0, 6.0]], dtype=torch.float64))
    assert torch.allclose(iwae_bound(log_w), torch.log(torch.tensor([2.0, 4.0], dtype=torch.float64)))


def test_objectives_refuse_bad_settings():
    with pytest.raises(GenzooError):
        IWAE(0)
    with pytest.raises(GenzooError):
        ELBO("sgvb_a", gradient="bonnet_price")
    with pytest.raises(ConfigError, match="objective"):
        VAE(VAEConfig(n_visible=4, hidden=(4,), n_latent=2), objective="iwae")
    # Bonnet's and Price's theorems are implemented for a diagonal q only.
    rank_one = dlgm(ELBO(gradient="bonnet_price"), posterior_cov="rank_one")
    with pytest.raises(GenzooError, match="diagonal"):
        rank_one.loss(binary())


# -- exact answers on a linear Gaussian model ----------------------------------------------
# A VAE with no hidden layers, one latent and a Gaussian decoder whose variance does not depend
# on z is the model z ~ N(0, 1), x | z ~ N(W z + b, diag s^2): log p(x) = log N(x; b,
# W W^T + diag s^2), and the posterior p(z|x) is N(m(x), v) with 1/v = 1 + sum_d W_d^2 / s_d^2
# and m(x) = v sum_d W_d (x_d - b_d) / s_d^2, linear in x, so the encoder can represent it.
W = torch.tensor([1.5, -0.7, 0.4], dtype=torch.float64)
B_ = torch.tensor([0.2, -0.1, 0.3], dtype=torch.float64)
S2 = torch.tensor([0.5, 0.8, 0.3], dtype=torch.float64)


def linear_gaussian_vae(exact_posterior: bool = True) -> VAE:
    cfg = VAEConfig(n_visible=3, hidden=(), n_latent=1, decoder="gaussian")
    model = VAE(cfg, gen(0)).double()
    floor = cfg.min_log_var
    v = 1.0 / (1.0 + (W**2 / S2).sum())
    enc, dec = model.encoder[0], model.decoder[0]
    with torch.no_grad():
        # Decoder rows 0..2: the mean W z + b; rows 3..5: a constant log variance log s^2
        # (raw = floor + log(exp(log s^2 - floor) - 1) inverts the softplus floor).
        dec.weight.copy_(torch.cat([W, torch.zeros(3, dtype=torch.float64)]).unsqueeze(1))
        dec.bias.copy_(torch.cat([B_, floor + torch.log(torch.expm1(torch.log(S2) - floor))]))
        # Encoder row 0: m(x) = a^T x + c; row 1: log v.
        a = v * W / S2
        enc.weight.copy_(torch.stack([a, torch.zeros(3, dtype=torch.float64)]))
        enc.bias.copy_(torch.stack([-(a * B_).sum(), torch.log(v)]))
        if not exact_posterior:  # a wrong mean and a too-wide variance
            enc.weight[0].mul_(0.5)
            enc.bias.copy_(torch.stack([enc.bias[0] + 0.8, torch.log(v) + 0.7]))
    return model


def exact_log_px(x: torch.Tensor) -> torch.Tensor:
    cov = torch.outer(W, W) + torch.diag(S2)
    return torch.distributions.MultivariateNormal(B_, cov).log_prob(x)


def gaussian_x(n=5, seed=2):
    return torch.randn(n, 3, generator=gen(seed), dtype=torch.float64) + B_


def test_with_the_exact_posterior_every_bound_is_log_px_for_every_draw():
    model, x = linear_gaussian_vae(), gaussian_x()
    log_px = exact_log_px(x).mean()
    for objective, key in [(ELBO("sgvb_a"), "elbo"), (ELBO("sgvb_a", n_mc=4), "elbo"),
                           (IWAE(1), "iwae"), (IWAE(7), "iwae"), (DReG(7), "iwae")]:
        for seed in range(3):
            out = objective(model, x, gen(seed))
            assert torch.allclose(out[key], log_px, atol=1e-10), (objective, seed)
            assert torch.allclose(out["loss"], -log_px, atol=1e-10), (objective, seed)
    # log w is constant in z, so DReG's encoder gradient is exactly zero (Tucker et al. 2019,
    # section 4: zero variance at the optimum); the decoder's is that of log p(x).
    model.zero_grad()
    DReG(7)(model, x, gen(9))["loss"].backward()
    assert all(torch.allclose(p.grad, torch.zeros_like(p), atol=1e-10)
               for p in model.encoder.parameters())


def test_elbo_and_iwae_against_log_px_and_the_exact_kl_to_the_posterior():
    model, x = linear_gaussian_vae(exact_posterior=False), gaussian_x(n=3)
    log_px = exact_log_px(x)
    # ELBO = log p(x) - KL(q(z|x) || p(z|x)), the KL between two 1-d Gaussians.
    q = model.posterior(x).detach()
    v = 1.0 / (1.0 + (W**2 / S2).sum())
    m = v * ((x - B_) * W / S2).sum(-1)
    m_q, v_q = q.mu[:, 0], torch.exp(q.log_var[:, 0])
    kl_post = 0.5 * (torch.log(v / v_q) + (v_q + (m_q - m) ** 2) / v - 1.0)
    elbo_exact = (log_px - kl_post).mean()
    n = 200_000
    for estimator in ("sgvb_a", "sgvb_b"):
        with torch.no_grad():
            draws = model.elbo_samples(x, n, gen(3), estimator=estimator).mean(-1)  # (n,)
            out = ELBO(estimator, n_mc=n)(model, x, gen(3))
        se = float(draws.std() / n**0.5)
        assert abs(float(draws.mean() - elbo_exact)) < 4 * se, estimator
        assert torch.allclose(out["elbo"], draws.mean())
    # E[L_k] rises with k towards log p(x) (Burda et al. 2016, theorem 1); E[L_k] over 4,000
    # copies of each example.
    xs = x.repeat(4000, 1)
    with torch.no_grad():
        bounds = [float(IWAE(k)(model, xs, gen(k))["iwae"]) for k in (1, 10, 100)]
        # k = 1 is the ELBO's estimator A on the same draw.
        assert bounds[0] == float(ELBO("sgvb_a")(model, xs, gen(1))["elbo"])
    assert bounds[0] < bounds[1] < bounds[2] < float(log_px.mean())
    assert float(log_px.mean()) - bounds[2] < 0.2 * (float(log_px.mean()) - bounds[0])


def test_the_bonnet_price_gradient_serves_the_vae_too():
    # Same draws: the value and the decoder's gradient are those of the reparameterised ELBO.
    x = binary()
    reparam, bonnet = vae(ELBO()), vae(ELBO(gradient="bonnet_price"))
    out_r, g_r = loss_and_grads(reparam, x, 6)
    out_b, g_b = loss_and_grads(bonnet, x, 6)
    assert torch.allclose(out_r["loss"], out_b["loss"])
    for (name, _), a, b in zip(reparam.named_parameters(), g_r, g_b):
        if name.startswith("decoder"):
            assert torch.allclose(a, b), name
