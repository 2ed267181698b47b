"""Order-agnostic deep NADE: normalisation in any ordering and for ensembles, the autoregressive
property by autograd, log-mean-exp ensembles, the order-agnostic training objective (its
rescaling and its expectation), inpainting and conditional probabilities, input errors."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from test_autoregressive_properties import randomize

from genzoo.core.errors import ConfigError, InputError
from genzoo.models.autoregressive import deep_nade as deep_nade_module
from genzoo.models.autoregressive.deep_nade import DeepNADE, DeepNADEConfig
from genzoo.ops.enumeration import binary_states
from genzoo.ops.numerics import softplus
from genzoo.run_config import RunConfig


def random_model(d: int, seed: int = 0, hidden=(7, 5), **kw) -> DeepNADE:
    """float64 model with every parameter ~ N(0, 1): every conditional depends on its inputs."""
    return randomize(DeepNADE(DeepNADEConfig(n_visible=d, hidden=hidden, **kw)), seed)


def all_states(d: int) -> torch.Tensor:
    return binary_states(torch.arange(2**d), d, torch.float64)


def batch(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, d), 0.5, dtype=torch.float64),
                           generator=torch.Generator().manual_seed(seed))


def perm(d: int, seed: int) -> torch.Tensor:
    return torch.randperm(d, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("d", [1, 5, 12])
def test_probabilities_sum_to_one_in_any_ordering_and_for_ensembles(d):
    states = all_states(d)
    m = random_model(d, seed=d, n_eval_orderings=3)
    with torch.no_grad():
        cases = {
            "default": m.log_prob(states, ordering=m.default_ordering),
            "other": m.log_prob(states, ordering=perm(d, 1)),
            "ensemble of 3 (log_prob)": m.log_prob(states),
            "ensemble of 3 (explicit)": m.log_prob_ensemble(
                states, torch.stack([perm(d, s) for s in range(3)])),
        }
    for name, log_p in cases.items():
        assert torch.isfinite(log_p).all() and (log_p <= 0).all(), name
        assert abs(float(torch.logsumexp(log_p, 0).exp()) - 1.0) < 1e-6, name


def test_running_sum_equals_one_masked_pass_per_position():
    """log p_o(x) = sum_d log p(x_{o_d} | x_{o_<d}), each conditional from the network on
    [x * m_d, m_d] directly (D passes), equals the running-sum computation."""
    d = 8
    m = random_model(d, seed=2)
    x, o = batch(16, d, 3), perm(d, 4)
    direct = torch.zeros(16, dtype=torch.float64)
    with torch.no_grad():
        for t in range(d):
            mask = torch.zeros(16, d, dtype=torch.float64)
            mask[:, o[:t]] = 1.0
            logit = m.masked_logits(x, mask)[:, o[t]]
            direct += x[:, o[t]] * logit - softplus(logit)
        fast = m.log_prob(x, ordering=o)
    assert torch.allclose(fast, direct, rtol=0, atol=1e-10)


def test_per_row_orderings_equal_one_ordering_at_a_time():
    """A (B, D) ordering with a different permutation per row (gathered per row) gives each
    row what the shared-ordering path (one (D,) ordering, gathered once) gives it."""
    d = 9
    m = random_model(d, seed=8)
    x = batch(5, d, 9)
    orders = torch.stack([perm(d, 20 + i) for i in range(5)])
    per_row = m.log_prob(x, ordering=orders)
    one_at_a_time = torch.cat([m.log_prob(x[i:i + 1], ordering=orders[i]) for i in range(5)])
    assert torch.allclose(per_row, one_at_a_time, rtol=0, atol=1e-12)
    assert not torch.allclose(per_row, m.log_prob(x, ordering=orders[0]))


def test_blocked_evaluation_without_gradients_equals_the_whole_batch(monkeypatch):
    m = random_model(6, seed=5)
    x = batch(23, 6, 6)
    whole = m.log_prob(x).detach()
    monkeypatch.setattr(deep_nade_module, "_NO_GRAD_BLOCK_ELEMENTS", 6 * 7 * 4)  # 4 rows
    with torch.no_grad():
        blocked = m.log_prob(x)
    assert torch.allclose(blocked, whole, rtol=0, atol=1e-12)


@pytest.mark.parametrize("ordering_seed", [None, 3])
def test_autoregressive_property_by_autograd(ordering_seed):
    d = 7
    m = random_model(d, seed=1)
    o = torch.arange(d) if ordering_seed is None else perm(d, ordering_seed)
    x = batch(3, d, 2)
    # J[b, i, j] = d logit_i / d x_j, logits indexed by variable.
    jac = torch.autograd.functional.jacobian(
        lambda v: m.conditional_logits(v, o).sum(0), x).permute(1, 0, 2)
    jac = jac[:, o][:, :, o]  # reindex by position: row d is o_d's conditional
    later = torch.ones(d, d, dtype=torch.bool).triu()  # positions j >= d
    assert torch.all(jac[:, later] == 0.0)
    assert torch.all(jac[:, ~later].abs().amax(0) > 0)


def test_masked_inputs_get_exactly_zero_gradient():
    m = random_model(6, seed=7)
    x = batch(4, 6, 8).requires_grad_(True)
    mask = batch(4, 6, 9)
    m.masked_logits(x, mask).sum().backward()
    assert torch.all(x.grad[mask == 0] == 0.0) and torch.all(x.grad[mask == 1] != 0.0)


def test_ensemble_is_the_log_mean_exp_of_the_per_ordering_likelihoods():
    d = 6
    m = random_model(d, seed=10)
    x = batch(5, d, 11)
    orderings = torch.stack([perm(d, s) for s in (20, 21, 22, 23)])
    with torch.no_grad():
        per = [m.log_prob(x, ordering=o).tolist() for o in orderings]
        ens = m.log_prob_ensemble(x, orderings)
    for b in range(5):
        hand = math.log(sum(math.exp(per[k][b]) for k in range(4)) / 4)
        assert abs(float(ens[b]) - hand) < 1e-12
    # ... which is not what averaging the conditionals' logits would give.
    with torch.no_grad():
        mean_logits = torch.stack([m.conditional_logits(x, o) for o in orderings]).mean(0)
        averaged = (x * mean_logits - softplus(mean_logits)).sum(-1)
    assert not torch.allclose(ens, averaged, atol=1e-3)


def test_log_prob_uses_the_configured_orderings():
    d = 6
    m = random_model(d, seed=12, ordering_seed=4, n_eval_orderings=3, ensemble_seed=9)
    assert torch.equal(m.default_ordering, perm(d, 4))
    assert m.eval_orderings.shape == (3, d) and torch.equal(m.eval_orderings[0], perm(d, 4))
    x = batch(4, d, 13)
    with torch.no_grad():
        assert torch.equal(m.log_prob(x), m.log_prob_ensemble(x, m.eval_orderings))
        single = random_model(d, seed=12, ordering_seed=4)
        assert torch.equal(single.log_prob(x), m.log_prob(x, ordering=perm(d, 4)))


def _loss_by_hand(m: DeepNADE, x: torch.Tensor, seed: int) -> torch.Tensor:
    """Equation (9) with the draws replayed in loss's order: ordering keys, then d."""
    g = torch.Generator().manual_seed(seed)
    n, d = x.shape
    keys = torch.rand((n, d), generator=g)
    n_obs = torch.randint(0, d, (n,), generator=g)
    total = torch.zeros((), dtype=torch.float64)
    for b in range(n):
        o = keys[b].argsort()
        mask = torch.zeros(1, d, dtype=torch.float64)
        mask[0, o[: n_obs[b]]] = 1.0
        with torch.no_grad():
            logits = m.masked_logits(x[b : b + 1], mask)[0]
        ll = sum(float(x[b, i] * logits[i] - softplus(logits[i])) for i in o[n_obs[b]:].tolist())
        total += -(d / (d - int(n_obs[b]))) * ll
    return total / n


def test_loss_applies_the_rescaling_to_the_unobserved_variables():
    m = random_model(5, seed=14)
    x = batch(9, 5, 15)
    out = m.loss(x, generator=torch.Generator().manual_seed(16))
    assert out["loss"].requires_grad
    assert abs(float(out["loss"].detach()) - float(_loss_by_hand(m, x, 16))) < 1e-10
    assert float(out["nll_estimate"]) == float(out["loss"].detach())


def test_loss_is_unbiased_for_the_nll_averaged_over_orderings():
    """E_{d, o}[loss(x)] = mean over all D! orderings of -log p_o(x). Monte Carlo over 40
    batches of 5,000 draws each; tolerance 5 standard errors of the mean of the batch means
    (false-alarm rate below 1e-6 under a correct objective, deterministic under the seed)."""
    d = 4
    m = random_model(d, seed=17, hidden=(6,))
    x = batch(1, d, 18)
    with torch.no_grad():
        exact = -torch.stack([m.log_prob(x, ordering=torch.tensor(o))
                              for o in itertools.permutations(range(d))]).mean()
        g = torch.Generator().manual_seed(19)
        xs = x.expand(5000, d).contiguous()
        means = torch.stack([m.loss(xs, generator=g)["loss"] for _ in range(40)])
    se = float(means.std()) / math.sqrt(len(means))
    assert abs(float(means.mean()) - float(exact)) < 5 * se
    assert se < 0.05 * abs(float(exact))  # the check has power


def test_sampler_replays_against_the_conditionals():
    """Uniforms u (n, D) are drawn first and x_i = [u_i < p(x_i = 1 | earlier variables)]."""
    m = random_model(9, seed=20, ordering_seed=2)
    x = m.sample(30, generator=torch.Generator().manual_seed(21))
    with torch.no_grad():
        logits = m.conditional_logits(x)
    u = torch.rand((30, 9), generator=torch.Generator().manual_seed(21), dtype=torch.float64)
    assert torch.equal(x, (u < torch.sigmoid(logits)).double())


def test_conditional_log_prob_sums_to_one_over_the_completions():
    d = 7
    m = random_model(d, seed=22)
    observed = torch.tensor([1, 0, 1, 1, 0, 0, 1], dtype=torch.bool)
    x0 = batch(1, d, 23)
    states = all_states(d)
    completions = states[(states[:, observed] == x0[:, observed]).all(1)]
    assert len(completions) == 8
    with torch.no_grad():
        for o in (None, perm(d, 24)):
            lp = m.conditional_log_prob(completions, observed, ordering=o)
            assert abs(float(torch.logsumexp(lp, 0).exp()) - 1.0) < 1e-10
        # Nothing observed: the joint; everything observed: probability one.
        nothing = torch.zeros(d, dtype=torch.bool)
        assert torch.allclose(m.conditional_log_prob(states, nothing), m.log_prob(states),
                              rtol=0, atol=1e-10)
        assert torch.equal(m.conditional_log_prob(states, ~nothing), torch.zeros(2**d,
                                                                                dtype=torch.float64))


def test_inpaint_keeps_observed_pixels_and_fills_the_rest_with_bits():
    d = 10
    m = random_model(d, seed=25)
    x = batch(6, d, 26)
    observed = batch(6, d, 27).bool()
    x_nan = torch.where(observed, x, torch.full_like(x, math.nan))
    out = m.inpaint(x_nan, observed, generator=torch.Generator().manual_seed(28), n_samples=3)
    assert out.shape == (3, 6, d) and out.dtype == torch.float64
    assert torch.equal(out[:, observed], x[observed].expand(3, -1))
    assert torch.all((out == 0) | (out == 1))
    again = m.inpaint(x_nan, observed, generator=torch.Generator().manual_seed(28), n_samples=3)
    assert torch.equal(out, again)
    # The unobserved entries really vary across completions.
    assert bool((out[:, ~observed].std(0) > 0).any())


def test_inpaint_samples_the_conditional_in_a_fixed_ordering():
    """Chi-square test of 20,000 completions of 3 hidden bits against exp(conditional_log_prob)
    in the same ordering; false-alarm rate 1e-3, deterministic under the seed."""
    stats = pytest.importorskip("scipy.stats")
    d = 6
    m = random_model(d, seed=29)
    o = perm(d, 30)
    observed = torch.tensor([0, 1, 0, 1, 1, 0], dtype=torch.bool)
    x = batch(1, d, 31)
    out = m.inpaint(x, observed, generator=torch.Generator().manual_seed(32), n_samples=20_000,
                    ordering=o)[:, 0]
    hidden = out[:, ~observed]
    codes = (hidden.long() << torch.arange(3)).sum(1)
    counts = torch.bincount(codes, minlength=8).double()
    completions = x.repeat(8, 1)
    completions[:, ~observed] = binary_states(torch.arange(8), 3, torch.float64)
    with torch.no_grad():
        p = m.conditional_log_prob(completions, observed, ordering=o).exp()
    assert abs(float(p.sum()) - 1.0) < 1e-10
    chi2 = float(((counts - 20_000 * p) ** 2 / (20_000 * p)).sum())
    assert chi2 < stats.chi2.ppf(1 - 1e-3, 7)


def test_init_from_data_sets_the_output_biases_to_the_marginals():
    m = DeepNADE(DeepNADEConfig(n_visible=4, hidden=(3,), init_std=0.0))
    x = torch.tensor([[1.0, 0, 1, 1], [1, 0, 0, 1], [1, 0, 1, 0], [0, 0, 1, 1]])
    m.init_from_data(x)
    p = torch.sigmoid(m.conditional_logits(x))  # V = 0: every conditional is the marginal
    assert torch.allclose(p, torch.tensor([0.75, 1e-3, 0.75, 0.75]).expand(4, -1), atol=1e-6)


def test_hidden_tuple_parses_from_the_command_line_syntax():
    cfg = RunConfig.default("deep-nade").with_overrides(["model.hidden=16,16",
                                                         "model.n_eval_orderings=4"])
    assert cfg.model.hidden == (16, 16) and cfg.model.n_eval_orderings == 4
    assert RunConfig.default("deep-nade").with_overrides(["model.hidden=8"]).model.hidden == (8,)


def test_input_and_config_errors():
    d = 5
    m = random_model(d, seed=33)
    x = batch(2, d, 34)
    with pytest.raises(InputError, match="permutation"):
        m.log_prob(x, ordering=torch.tensor([0, 1, 1, 2, 3]))
    with pytest.raises(InputError, match="shape"):
        m.log_prob(x, ordering=torch.arange(4))
    with pytest.raises(InputError, match="not binary"):
        m.log_prob(x + 0.5)
    with pytest.raises(InputError, match="observed_mask"):
        m.inpaint(x, torch.ones(3, dtype=torch.bool))
    with pytest.raises(InputError, match="n_samples"):
        m.inpaint(x, torch.ones(d, dtype=torch.bool), n_samples=0)
    with pytest.raises(InputError, match="not binary"):  # observed entries must be bits
        m.inpaint(x + 0.5, torch.ones(d, dtype=torch.bool))
    with pytest.raises(InputError, match="orderings"):
        m.log_prob_ensemble(x, torch.zeros(0, d, dtype=torch.long))
    with pytest.raises(ConfigError, match="model.hidden"):
        DeepNADEConfig(n_visible=d, hidden=()).validate()
    with pytest.raises(ConfigError, match="n_eval_orderings"):
        DeepNADEConfig(n_visible=d, n_eval_orderings=0).validate()


def test_validation_uses_the_cheap_order_agnostic_estimate():
    """Validation is the fixed-seed order-agnostic objective (one network pass), not the exact
    NLL (D passes per ordering): repeatable, and an unbiased estimate of the NLL averaged over
    orderings, so it matches the ensemble average of exact NLLs over many orderings."""
    from genzoo.models.autoregressive.deep_nade import DeepNADE, DeepNADEConfig

    torch.manual_seed(0)
    m = DeepNADE(DeepNADEConfig(n_visible=6, hidden=(5,), init_std=1.0)).double()
    x = torch.bernoulli(torch.full((4000, 6), 0.4, dtype=torch.float64),
                        generator=torch.Generator().manual_seed(1))
    first, again = m.validation_metrics(x), m.validation_metrics(x)
    assert set(first) == {"nll_estimate"} and first == again
    g = torch.Generator().manual_seed(2)
    orderings = [torch.randperm(6, generator=g) for _ in range(200)]
    with torch.no_grad():
        averaged = float(torch.stack([-m.log_prob(x, ordering=o) for o in orderings]).mean())
    assert abs(first["nll_estimate"] - averaged) < 0.1, (first, averaged)
