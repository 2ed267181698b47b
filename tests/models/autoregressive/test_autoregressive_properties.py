"""Properties every binary autoregressive model must have, checked on small random models:
normalisation by enumeration, the autoregressive property by autograd, the sampler against the
model's own exact probabilities, input and config errors, and the training contract."""

from __future__ import annotations

import pytest
import torch

from genzoo.core.errors import ConfigError, InputError
from genzoo.core.protocols import EXACT_LIKELIHOOD, has
from genzoo.core.registry import get_model_spec
from genzoo.ops.enumeration import binary_states

# name -> extra config fields making a small but non-trivial model.
MODELS: dict[str, dict] = {
    "fvsbn": {},
    "nade": {"n_hidden": 5},
    "nan": {"hidden_per_group": 2},
    "deep-nade": {"hidden": (5, 4)},
}


def randomize(model, seed: int = 0, scale: float = 1.0):
    """``model`` in float64 with every parameter drawn from N(0, scale^2) (seeded): far from
    the trivial model, so every conditional depends on its inputs."""
    model = model.double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, scale, generator=g)
    return model


def random_model(name: str, d: int, seed: int = 0, scale: float = 1.0):
    """The registered model ``name`` over d variables (:data:`MODELS`), randomised by
    :func:`randomize`."""
    spec = get_model_spec(name)
    return randomize(spec.build(spec.config_cls(n_visible=d, **MODELS[name])), seed, scale)


def assert_chi_square_fit(x: torch.Tensor, p: torch.Tensor, stats) -> None:
    """Chi-square goodness of fit of binary samples ``x`` (n, d) to the exact probabilities
    ``p`` (2^d,) of all states in binary_states order (``stats`` is scipy.stats); the false-alarm
    rate is 1e-3 under a correct sampler."""
    n, d = x.shape
    codes = (x.long() << torch.arange(d)).sum(1)  # the inverse of binary_states
    counts = torch.bincount(codes, minlength=2**d).double()
    expected = n * p
    # The chi-square law holds only for cells with enough expected counts: pool the states
    # expected fewer than 5 times into one cell (random models put near-zero mass on some).
    small = expected < 5
    if small.any():
        counts = torch.cat([counts[~small], counts[small].sum().reshape(1)])
        expected = torch.cat([expected[~small], expected[small].sum().reshape(1)])
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert stats.chi2.sf(chi2, len(counts) - 1) > 1e-3, chi2


def assert_sampler_fits(x: torch.Tensor, p: torch.Tensor, stats) -> None:
    """Binary samples ``x`` (n, d) against the exact probabilities ``p`` (2^d,) of all states:
    the chi-square fit, and every marginal within a Bonferroni-corrected normal bound
    (false-alarm rate 1e-3 for each check)."""
    n, d = x.shape
    assert_chi_square_fit(x, p, stats)
    marginals = (p[:, None] * all_states(d)).sum(0)
    z = stats.norm.isf(1e-3 / (2 * d))
    bound = z * torch.sqrt(marginals * (1 - marginals) / n)
    assert torch.all((x.mean(0) - marginals).abs() < bound)


def all_states(d: int) -> torch.Tensor:
    return binary_states(torch.arange(2**d), d, torch.float64)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("d", [1, 5, 12])
def test_probabilities_sum_to_one(name, d):
    model = random_model(name, d, seed=d)
    with torch.no_grad():
        log_p = model.log_prob(all_states(d))
    assert torch.isfinite(log_p).all() and (log_p < 0).all()
    assert abs(float(torch.logsumexp(log_p, 0).exp()) - 1.0) < 1e-6


@pytest.mark.parametrize("name", MODELS)
def test_autoregressive_property_by_autograd(name):
    d = 7
    model = random_model(name, d, seed=1)
    x = torch.bernoulli(torch.full((3, d), 0.5, dtype=torch.float64),
                        generator=torch.Generator().manual_seed(2))
    # J[b, i, j] = d logit_i(x_b) / d x_bj, taken at each example of the batch.
    jac = torch.autograd.functional.jacobian(
        lambda v: model.conditional_logits(v).sum(0), x
    ).permute(1, 0, 2)
    upper = torch.ones(d, d, dtype=torch.bool).triu()  # j >= i
    assert torch.all(jac[:, upper] == 0.0)
    # ... and the conditionals really depend on the preceding variables.
    assert torch.all(jac[:, ~upper].abs().amax(0) > 0)


@pytest.mark.parametrize("name", MODELS)
def test_samples_match_the_exact_distribution(name):
    """Chi-square goodness of fit of 20,000 samples over all 2^6 states against the model's own
    exact probabilities, plus each marginal against its exact value (binomial, Bonferroni over
    the 6 marginals). False-alarm rate 1e-3 per check under a correct sampler; the seeds are
    fixed, so the test is deterministic."""
    stats = pytest.importorskip("scipy.stats")
    d, n = 6, 20_000
    model = random_model(name, d, seed=3)
    with torch.no_grad():
        p = model.log_prob(all_states(d)).exp()
    x = model.sample(n, generator=torch.Generator().manual_seed(4))
    assert x.shape == (n, d) and x.dtype == torch.float64
    assert_sampler_fits(x, p, stats)


# The order-agnostic deep NADE trains on a random-ordering estimate of the NLL, not on the
# exact NLL of its default ordering; test_deep_nade.py checks its loss.
@pytest.mark.parametrize("name", [m for m in MODELS if m != "deep-nade"])
def test_loss_is_the_mean_nll_and_its_gradient_flows(name):
    model = random_model(name, 10, seed=5).float()
    x = torch.bernoulli(torch.full((16, 10), 0.3), generator=torch.Generator().manual_seed(0))
    out = model.loss(x)
    assert torch.allclose(out["loss"], -model.log_prob(x).mean())
    assert not out["nll"].requires_grad and float(out["nll"]) == float(out["loss"].detach())
    out["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.validation_metrics(x)["nll"] == pytest.approx(float(out["nll"]), rel=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_init_from_data_sets_the_output_biases_to_the_marginals(name):
    model = random_model(name, 4)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    x = torch.tensor([[1, 0, 1, 1], [1, 0, 0, 1], [1, 0, 1, 0], [0, 0, 1, 1]], dtype=torch.float64)
    model.init_from_data(x)
    p = torch.tensor([0.75, 1e-3, 0.75, 0.75], dtype=torch.float64)  # 0 clamped to 1e-3
    assert torch.allclose(torch.sigmoid(model.b), p)
    # With every weight zero the model is the independent-Bernoulli fit of the marginals.
    independent = (x * p.log() + (1 - x) * (1 - p).log()).sum(1)
    with torch.no_grad():
        assert torch.allclose(model.log_prob(x), independent)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    "bad",
    [
        torch.full((2, 5), 0.5),  # grey levels
        torch.zeros(2, 4),  # wrong width
        torch.zeros(5),  # not a batch
        torch.tensor([[0.0, 1.0, float("nan"), 0.0, 1.0]]),
        torch.zeros(2, 5, dtype=torch.long),
    ],
    ids=["grey", "width", "1d", "nan", "long"],
)
def test_bad_input_raises_input_error(name, bad):
    model = random_model(name, 5).float()
    with pytest.raises(InputError):
        model.log_prob(bad)
    with pytest.raises(InputError):
        model.loss(bad)
    with pytest.raises(InputError):
        model.init_from_data(bad)


@pytest.mark.parametrize("name", MODELS)
def test_bad_config_raises_config_error(name):
    spec = get_model_spec(name)
    with pytest.raises(ConfigError):
        spec.config_cls(n_visible=0)
    with pytest.raises(ConfigError):
        spec.config_cls(n_visible=4, init_std=-1.0)
    with pytest.raises(ConfigError):
        spec.cls(spec.config_cls())  # n_visible not set
    with pytest.raises(ConfigError):
        spec.config_cls.from_dict({"n_visible": 4, "no_such_key": 1})


@pytest.mark.parametrize("name", MODELS)
def test_sample_edge_cases_and_capabilities(name):
    model = random_model(name, 5).float()
    assert has(model, EXACT_LIKELIHOOD)
    assert model.sample(0).shape == (0, 5)
    x = model.sample(50, generator=torch.Generator().manual_seed(0))
    assert x.dtype == torch.float32 and set(x.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(Exception, match="n must be"):
        model.sample(-1)
