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
