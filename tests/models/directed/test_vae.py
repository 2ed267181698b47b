"""VAE: likelihood against numerical integration, the SGVB estimators, IWAE, warm-up, free
bits, active units, and the errors a user can cause."""

from __future__ import annotations

import math

import pytest
import torch
from _directed_checks import fit_then_check_importance_estimate

from genzoo.core.errors import ConfigError, InputError
from genzoo.data import load_data
from genzoo.data.config import DataConfig
from genzoo.models.directed.vae import VAE, VAEConfig


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def make(d=6, j=2, seed=0, **kw) -> VAE:
    kw.setdefault("hidden", (8,))
    kw.setdefault("init_std", 0.7)
    return VAE(VAEConfig(n_visible=d, n_latent=j, **kw), gen(seed))


def binary(n=8, d=6, seed=1):
    return (torch.rand(n, d, generator=gen(seed)) < 0.4).float()


@pytest.mark.parametrize("decoder", ["bernoulli", "gaussian"])
def test_importance_estimate_matches_numerical_integration_with_a_1d_latent(decoder):
    model = make(j=1, decoder=decoder).double()
    x = binary() if decoder == "bernoulli" else torch.randn(8, 6, generator=gen(1)).double()
    # p(x) = int N(z; 0, 1) p(x|z) dz on a fine grid (Riemann sum; the integrand is smooth and
    # negligible beyond |z| = 12).
    grid = torch.linspace(-12, 12, 24001, dtype=torch.float64)
    with torch.no_grad():
        log_joint = model.log_joint(x.double(), grid.view(-1, 1, 1).expand(-1, len(x), 1))
    exact = torch.logsumexp(log_joint, 0) + math.log(float(grid[1] - grid[0]))
    # Fit the encoder alone, so p(x) is unchanged and q(z|x) is the proposal of a trained VAE.
    fit_then_check_importance_estimate(model, x, model.encoder.parameters(), exact, 5000, seed=2)


def test_log_joint_takes_one_or_many_draws_per_example():
    model = make(j=3)
    x, z = binary(n=4), torch.randn(5, 4, 3, generator=gen(3))
    many = model.log_joint(x, z)
    assert many.shape == (5, 4)
    assert torch.allclose(many[2], model.log_joint(x, z[2]))
    q = model.proposal(x)
    assert q.batch_shape == (4,) and q.event_shape == (3,)


def test_sgvb_a_and_b_agree_in_expectation():
    model = make(j=3)
    x = binary(n=4)
    n = 20000
    with torch.no_grad():
        a = model.elbo_samples(x, n, gen(4), "sgvb_a")
        b = model.elbo_samples(x, n, gen(5), "sgvb_b")
    se = torch.sqrt(a.var(0) / n + b.var(0) / n)
    assert bool(((a.mean(0) - b.mean(0)).abs() < 4 * se).all()), (a.mean(0) - b.mean(0), se)
    # B's draws vary only through the reconstruction term; on this model they spread 2-15
    # times less than A's (a measurement here, not a theorem).
    assert bool((b.var(0) < a.var(0)).all())


def _grad_variance(model, x, estimator, part, reps=100):
    """Total variance (sum over encoder parameters) of the single-draw gradient of the KL
    part or of the whole bound, over ``reps`` independent draws."""
    grads = []
    for r in range(reps):
        model.zero_grad()
        q = model.posterior(x)
        z = q.rsample((1,), gen(100 + r))
        kl = (q.log_ratio_terms(z)[0] if estimator == "sgvb_a" else q.kl_terms()).sum()
        value = kl if part == "kl" else model.log_likelihood(x, z[0]).sum() - kl
        value.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.encoder.parameters()]))
    return float(torch.stack(grads).var(0).sum())


def test_analytic_kl_removes_the_kl_gradient_noise():
    # Kingma & Welling 2014, section 2.3: B computes the KL exactly, so its KL-part gradient
    # has no sampling noise; the variance of the whole gradient is measured and only checked
    # to be finite (which estimator wins overall depends on the model).
    model = make(j=3)
    x = binary(n=4)
    var_kl_a = _grad_variance(model, x, "sgvb_a", "kl")
    var_kl_b = _grad_variance(model, x, "sgvb_b", "kl")
    assert var_kl_b == 0.0 < var_kl_a
    var_a = _grad_variance(model, x, "sgvb_a", "all")
    var_b = _grad_variance(model, x, "sgvb_b", "all")
    assert math.isfinite(var_a) and math.isfinite(var_b) and var_a > 0 and var_b > 0


def test_iwae_with_one_sample_is_the_elbo_and_the_bound_tightens_with_k():
    x = binary(n=6)
    elbo = make(estimator="sgvb_a", n_mc=1)
    iwae1 = make(objective="iwae", iwae_k=1)
    out_e, out_i = elbo.loss(x, gen(6)), iwae1.loss(x, gen(6))
    assert torch.allclose(out_e["loss"], out_i["loss"], atol=1e-6)
    out_e["loss"].backward()
    out_i["loss"].backward()
    for p, q in zip(elbo.parameters(), iwae1.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-5)
    iwae = make(objective="iwae", iwae_k=20)
    out = iwae.loss(x, gen(7))
    assert float(out["iwae"]) >= float(out["elbo"])
    assert float(out["loss"].detach()) == pytest.approx(-float(out["iwae"]))


def test_iwae_gradient_is_the_self_normalised_weighted_gradient():
    # Burda et al. 2016, eq. (13): grad = sum_i w~_i grad log w_i with w~ held constant.
    model = make(objective="iwae", iwae_k=7)
    x = binary(n=5)
    model.loss(x, gen(12))["loss"].backward()
    auto = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    q = model.posterior(x)
    z = q.rsample((7,), gen(12))
    log_w = model.log_likelihood(x, z) - q.log_ratio_terms(z).sum(-1)
    w_tilde = torch.softmax(log_w.detach(), 0)
    (-(w_tilde * log_w).sum(0).mean()).backward()
    for a, p in zip(auto, model.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-6)


def test_kl_warmup_counts_training_steps_and_survives_a_state_round_trip():
    model = make(kl_warmup_steps=4)
    x = binary()
    weights = []
    for _ in range(5):
        weights.append(model.kl_weight())
        out = model.loss(x, gen(8))
    assert weights == [0.25, 0.5, 0.75, 1.0, 1.0]
    model.eval()
    model.loss(x, gen(8))
    with torch.no_grad():
        model.train().loss(x, gen(8))
    assert int(model.step) == 5  # neither evaluation nor no-grad calls count
    fresh = make(kl_warmup_steps=4)
    fresh.load_state_dict(model.state_dict())
    assert int(fresh.step) == 5
    warm = make(kl_warmup_steps=4)
    out = warm.loss(x, gen(9))  # weight 1/4 at the first step
    assert float(out["loss"].detach()) == pytest.approx(-(float(out["elbo"]) + 0.75 * float(out["kl"])),
                                               rel=1e-5)


def test_free_bits_floor_each_dimension_of_the_kl():
    model = make(j=3, free_bits=5.0)
    x = binary()
    out = model.loss(x, gen(10))
    assert float(out["kl"]) < 5.0  # so every dimension sits at the floor
    assert float(out["loss"].detach()) == pytest.approx(-(float(out["elbo"]) + float(out["kl"])) + 15.0,
                                               rel=1e-5)


def test_active_units_count_latents_whose_posterior_mean_varies():
    model = make(j=3, hidden=())
    with torch.no_grad():
        w = model.encoder[0].weight  # rows 0..2: mu, rows 3..5: log_var
        w[1:3].zero_()
    x = binary(n=50)
    assert model.active_units(x) == 1
    assert model.validation_metrics(x)["active_units"] == 1


def test_sample_returns_decoder_means():
    model = make()
    s = model.sample(7, gen(11))
    assert s.shape == (7, 6) and bool(((s > 0) & (s < 1)).all())
    assert not bool(((s == 0) | (s == 1)).all())


def test_bernoulli_decoder_refuses_grey_data():
    model = make()
    grey = torch.full((3, 6), 0.5)
    for call in (model.loss, model.proposal, model.init_from_data,
                 lambda x: model.log_joint(x, torch.zeros(3, 2))):
        with pytest.raises(InputError, match="binarize"):
            call(grey)
    digits = load_data(DataConfig(name="digits", n_train=20, n_eval=5)).train.x
    grey_model = VAE(VAEConfig(n_visible=digits.shape[1], hidden=(4,), n_latent=2))
    with pytest.raises(InputError, match="binarize"):
        grey_model.loss(digits)
    gaussian = VAE(VAEConfig(n_visible=digits.shape[1], hidden=(4,), n_latent=2,
                             decoder="gaussian"))
    assert torch.isfinite(gaussian.loss(digits, gen())["loss"])


def test_other_input_errors():
    model = make()
    for bad, match in [
        (torch.zeros(3, 5), "expected"),
        (torch.zeros(3, 6, dtype=torch.long), "dtype"),
        (torch.full((3, 6), float("nan")), "NaN"),
    ]:
        with pytest.raises(InputError, match=match):
            model.loss(bad)
    gaussian = make(decoder="gaussian")
    with pytest.raises(InputError, match="NaN"):
        gaussian.loss(torch.full((2, 6), float("inf")))


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"n_latent": 0}, "n_latent"),
        ({"hidden": (8, 0)}, "hidden"),
        ({"n_mc": 0}, "n_mc"),
        ({"iwae_k": 0}, "iwae_k"),
        ({"free_bits": -1.0}, "free_bits"),
        ({"kl_warmup_steps": -1}, "kl_warmup_steps"),
        ({"objective": "iwae", "free_bits": 1.0}, "objective=iwae"),
        ({"decoder": "poisson"}, "decoder"),
        ({"min_log_var": float("inf")}, "min_log_var"),
        ({"n_visible": 0}, "n_visible"),
    ],
)
def test_config_errors(kw, match):
    with pytest.raises(ConfigError, match=match):
        VAEConfig(**kw)


def test_building_needs_n_visible():
    with pytest.raises(ConfigError, match="n_visible"):
        VAE(VAEConfig())
