"""MADE: normalisation by enumeration (single masks and ensembles), the autoregressive property
under every mask, masks applied in the forward pass only, the ensemble as a log-mean-exp, the
sampler against the exact ensemble probabilities, and the training contract."""

from __future__ import annotations

import math

import pytest
import torch
from test_autoregressive_properties import all_states, assert_chi_square_fit

from genzoo.core.errors import ConfigError, InputError
from genzoo.models.autoregressive._common import bernoulli_log_likelihood
from genzoo.models.autoregressive.made import MADE, MADEConfig


def random_made(d: int, n_masks: int = 1, hidden=(6, 5), seed: int = 0) -> MADE:
    m = MADE(MADEConfig(n_visible=d, hidden=hidden, n_masks=n_masks, mask_seed=seed)).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, 1.0, generator=g)
    return m


@pytest.mark.parametrize("n_masks", [1, 4])
@pytest.mark.parametrize("d", [1, 5, 12])
def test_probabilities_sum_to_one(d, n_masks):
    m = random_made(d, n_masks, seed=d)
    with torch.no_grad():
        log_p = m.log_prob(all_states(d))
        per_mask = m.log_prob_per_mask(all_states(d))
    assert torch.isfinite(log_p).all() and (log_p < 0).all()
    assert abs(float(torch.logsumexp(log_p, 0).exp()) - 1.0) < 1e-6
    for k in range(n_masks):  # every member of the ensemble is a distribution too
        assert abs(float(torch.logsumexp(per_mask[:, k], 0).exp()) - 1.0) < 1e-6


def test_autoregressive_property_under_every_mask():
    d = 8
    m = random_made(d, n_masks=3, hidden=(16, 16), seed=1)
    x = torch.bernoulli(torch.full((3, d), 0.5, dtype=torch.float64),
                        generator=torch.Generator().manual_seed(2))
    upper = torch.ones(d, d, dtype=torch.bool).triu()  # j >= i
    for k in range(3):
        jac = torch.autograd.functional.jacobian(
            lambda v, k=k: m.conditional_logits(v, k).sum(0), x
        ).permute(1, 0, 2)
        assert torch.all(jac[:, upper] == 0.0)
        # the last conditional sees some of its predecessors under every mask
        assert jac[:, -1, :-1].abs().amax() > 0


def test_masks_are_applied_in_forward_and_never_written_into_the_weights():
    m = random_made(6, n_masks=2, seed=3)
    before = [p.detach().clone() for p in m.parameters()]
    x = torch.bernoulli(torch.full((4, 6), 0.5, dtype=torch.float64),
                        generator=torch.Generator().manual_seed(0))
    m.loss(x, generator=torch.Generator().manual_seed(0))["loss"].backward()
    assert all(torch.equal(a, p) for a, p in zip(before, m.parameters()))
    assert all(bool((layer.weight != 0).all()) for layer in m.layers), "weights stay whole"
    # a single-mask loss: masked-out weights get exactly zero gradient
    m.zero_grad()
    (-bernoulli_log_likelihood(m.conditional_logits(x, 1), x).mean()).backward()
    masks = m.masks(1)
    for layer, mask in zip([*m.layers, m.V], masks):
        assert torch.all(layer.weight.grad[~mask] == 0.0)
    # mask sets differ, so the two members are different models
    assert any(not torch.equal(a, b) for a, b in zip(m.masks(0), m.masks(1)))


def test_ensemble_is_the_log_mean_exp_of_its_members():
    m = random_made(7, n_masks=5, seed=4)
    x = all_states(7)[::9]
    with torch.no_grad():
        members = torch.stack(
            [bernoulli_log_likelihood(m.conditional_logits(x, k), x) for k in range(5)], 1
        )
        expected = torch.log(members.exp().mean(1))
        assert torch.allclose(m.log_prob(x), expected, rtol=0, atol=1e-12)
        # ... which is not the likelihood of averaged logits (a bug seen in a peer library)
        avg = torch.stack([m.conditional_logits(x, k) for k in range(5)]).mean(0)
        assert not torch.allclose(bernoulli_log_likelihood(avg, x), expected, atol=1e-3)


def test_samples_match_the_exact_ensemble_distribution():
    """Chi-square of 20,000 ensemble samples over all 2^5 states against the exact mixture
    probabilities (cells expected < 5 times pooled); false-alarm rate 1e-3, fixed seeds."""
    stats = pytest.importorskip("scipy.stats")
    d, n = 5, 20_000
    m = random_made(d, n_masks=3, seed=5)
    states = all_states(d)
    with torch.no_grad():
        p = m.log_prob(states).exp()
    x = m.sample(n, generator=torch.Generator().manual_seed(6))
    assert x.shape == (n, d) and x.dtype == torch.float64
    assert_chi_square_fit(x, p, stats)


def test_loss_uses_one_mask_chosen_by_the_generator():
    m = random_made(6, n_masks=4, seed=7)
    x = torch.bernoulli(torch.full((8, 6), 0.4, dtype=torch.float64),
                        generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        members = -m.log_prob_per_mask(x).mean(0)
    seen = set()
    for s in range(12):
        out = m.loss(x, generator=torch.Generator().manual_seed(s))
        k = int((members - out["loss"].detach()).abs().argmin())
        assert float(out["nll"]) == pytest.approx(float(members[k]), abs=1e-12)
        seen.add(k)
    assert len(seen) > 1, "the generator picks different masks"
    single = random_made(6, n_masks=1, seed=7)
    assert torch.allclose(single.loss(x)["loss"], -single.log_prob(x).mean())


def test_init_from_data_and_sampling_edge_cases():
    m = random_made(4, n_masks=2).float()
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
    x = torch.tensor([[1, 0, 1, 1], [1, 0, 0, 1], [1, 0, 1, 0], [0, 0, 1, 1.0]])
    m.init_from_data(x)
    assert torch.allclose(torch.sigmoid(m.b), torch.tensor([0.75, 1e-3, 0.75, 0.75]))
    assert m.sample(0).shape == (0, 4)
    s = m.sample(30, generator=torch.Generator().manual_seed(0))
    assert s.dtype == torch.float32 and set(s.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(s, m.sample(30, generator=torch.Generator().manual_seed(0)))


def test_input_and_config_errors():
    m = random_made(5).float()
    for bad in (torch.full((2, 5), 0.5), torch.zeros(2, 4), torch.zeros(2, 5, dtype=torch.long)):
        with pytest.raises(InputError):
            m.log_prob(bad)
        with pytest.raises(InputError):
            m.loss(bad)
    with pytest.raises(InputError):
        m.conditional_logits(torch.zeros(1, 5), k=1)
    for kw in ({"n_masks": 0}, {"hidden": ()}, {"hidden": (0,)}, {"init_std": -1.0}):
        with pytest.raises(ConfigError):
            MADEConfig(n_visible=5, **kw)
    with pytest.raises(ConfigError):
        MADE(MADEConfig())


def test_degrees_follow_the_paper():
    """Hidden degrees lie in [min degree of the layer below, D - 1] (section 4.1)."""
    m = MADE(MADEConfig(n_visible=10, hidden=(50, 40), n_masks=6, mask_seed=3))
    low = torch.ones(6, dtype=torch.long)
    for l in range(2):
        deg = getattr(m, f"degrees_{l}")
        assert deg.shape == (6, (50, 40)[l])
        assert torch.all(deg >= low[:, None]) and torch.all(deg <= 9)
        low = deg.min(1).values
    assert math.isclose(float(m.degrees_0.float().mean()), 5.0, abs_tol=1.0)
