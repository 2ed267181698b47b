"""The binary RBM: energies and conditionals against enumeration, Gibbs samplers against the
exact distributions they must leave invariant, the CD / PCD update against its textbook form,
the cost of CD-1, configuration and input errors."""

from __future__ import annotations

import collections
import itertools
import math

import pytest
import torch
from scipy import stats
from support import random_rbm
from torch.utils._python_dispatch import TorchDispatchMode

from genzoo.core.errors import ConfigError, GenzooError, InputError
from genzoo.core.protocols import AIS, ENERGY, EXACT_LOG_PARTITION, EnergyModel
from genzoo.core.registry import get_model_spec
from genzoo.models.boltzmann.rbm import RBM, RBMConfig

D, H = 6, 4


def all_states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def make_rbm(d=D, h=H, scale=1.0, seed=0, **kw) -> RBM:
    return random_rbm(d, h, scale, seed, **kw).double()


def binary_data(n, d=D, p=0.4, seed=1, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, d, generator=g) < p).to(dtype)


@torch.no_grad()
def joint_log_weights(m: RBM, beta: float = 1.0):
    """All (v, h) pairs and their unnormalised log-probabilities -beta E(v, h)."""
    V, Hs = all_states(m.n_visible), all_states(m.n_hidden)
    v = V.repeat_interleave(len(Hs), 0)
    h = Hs.repeat(len(V), 1)
    return V, Hs, (-beta * m.energy(v, h)).reshape(len(V), len(Hs))


def chi_square_pvalue(samples: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson chi-square goodness of fit of binary rows ``samples`` to ``probs`` over all
    2^D states (lexicographic order, as all_states); cells with expected count < 5 are pooled."""
    d = samples.shape[1]
    codes = (samples.long() * (2 ** torch.arange(d - 1, -1, -1))).sum(1)
    observed = torch.bincount(codes, minlength=2**d).double()
    expected = probs * len(samples)
    small = expected < 5
    obs = torch.cat([observed[~small], observed[small].sum().reshape(1)])
    exp = torch.cat([expected[~small], expected[small].sum().reshape(1)])
    keep = exp > 0
    chi2 = float((((obs - exp) ** 2)[keep] / exp[keep]).sum())
    return float(stats.chi2.sf(chi2, int(keep.sum()) - 1))


# A correct sampler fails a test at this p-value threshold with probability 1e-4 (the chi-square
# approximation is accurate with expected counts >= 5); a wrong sampler with the sample sizes
# used here yields p-values many orders of magnitude smaller (checked in test_chi_square_power).
P_FALSE_ALARM = 1e-4


# -- registry, config, construction ----------------------------------------------------------


def test_registered_with_capabilities():
    spec = get_model_spec("rbm")
    assert spec.cls is RBM and spec.config_cls is RBMConfig and spec.family == "boltzmann"
    m = spec.build(RBMConfig(n_visible=5, n_hidden=3))
    assert {ENERGY, AIS, EXACT_LOG_PARTITION} <= m.capabilities
    assert isinstance(m, EnergyModel)
    assert set(m.state_dict()) == {"W", "b", "c"}
    assert m.W.shape == (5, 3) and m.b.shape == (5,) and m.c.shape == (3,)
    p = RBM(RBMConfig(n_visible=5, n_hidden=3, persistent=True, n_chains=7))
    assert set(p.state_dict()) == {"W", "b", "c", "chains"} and p.chains.shape == (7, 5)


@pytest.mark.parametrize(
    "kw",
    [
        {"n_hidden": 0},
        {"n_visible": 0},
        {"k": 0},
        {"n_chains": 0},
        {"weight_decay": -1.0},
        {"weight_decay": float("inf")},
        {"sparsity_target": 0.0},
        {"sparsity_target": 1.5},
        {"sparsity_cost": -0.1, "sparsity_target": 0.1},
        {"sparsity_cost": 0.1},  # cost without a target
        {"init_std": -0.01},
        {"sample_burn_in": -1},
        {"n_hidden": 2.5},
        {"persistent": "yes"},
    ],
)
def test_bad_config_raises(kw):
    with pytest.raises(ConfigError):
        RBMConfig(**kw)


def test_n_visible_none_rejected_by_model():
    RBMConfig()  # valid as a config: the CLI fills n_visible from the data
    with pytest.raises(ConfigError, match="n_visible"):
        RBM(RBMConfig())


def test_config_override_roundtrip():
    cfg = RBMConfig(n_visible=4).with_override("persistent", "true", "model")
    assert cfg.persistent is True
    assert RBMConfig.from_dict(cfg.to_dict()) == cfg


def test_init_deterministic_under_generator():
    a = RBM(RBMConfig(n_visible=5, n_hidden=3), generator=torch.Generator().manual_seed(4))
    b = RBM(RBMConfig(n_visible=5, n_hidden=3), generator=torch.Generator().manual_seed(4))
    assert torch.equal(a.W, b.W) and a.W.abs().sum() > 0
    assert float(a.W.detach().std()) == pytest.approx(0.01, rel=0.5)


# -- energies and conditionals against enumeration ------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 60.0])
def test_free_energy_matches_enumeration(scale):
    m = make_rbm(scale=scale)
    V, _, logw = joint_log_weights(m)
    expected = -torch.logsumexp(logw, 1)
    f = m.free_energy(V)
    assert torch.isfinite(f).all()
    assert torch.allclose(f, expected, rtol=1e-12, atol=1e-10)
    Hs = all_states(H)
    f_h = m.hidden_free_energy(Hs)
    assert torch.allclose(f_h, -torch.logsumexp(logw, 0), rtol=1e-12, atol=1e-10)


def test_free_energy_float32_large_weights_finite():
    m = make_rbm(scale=1e3).float()
    f = m.free_energy(all_states(D).float())
    assert torch.isfinite(f).all()


def test_energy_definition():
    m = make_rbm()
    v, h = binary_data(5), binary_data(5, H, seed=3)
    manual = -torch.einsum("bi,ij,bj->b", v, m.W, h) - v @ m.b - h @ m.c
    assert torch.allclose(m.energy(v, h), manual)


def test_conditionals_match_joint():
    m = make_rbm(scale=2.0)
    V, Hs, logw = joint_log_weights(m)
    p_joint = torch.softmax(logw.flatten(), 0).reshape(logw.shape)
    p_h_v = p_joint / p_joint.sum(1, keepdim=True)  # (2^D, 2^H)
    assert torch.allclose(m.p_h_given_v(V), p_h_v @ Hs, atol=1e-12)
    p_v_h = p_joint / p_joint.sum(0, keepdim=True)
    assert torch.allclose(m.p_v_given_h(Hs), p_v_h.T @ V, atol=1e-12)


def test_sample_shapes_dtype_and_determinism():
    m = make_rbm(sample_burn_in=5)
    for sampler in (m.sample, m.sample_exact):
        s1 = sampler(11, torch.Generator().manual_seed(9))
        s2 = sampler(11, torch.Generator().manual_seed(9))
        assert s1.shape == (11, D) and s1.dtype == m.W.dtype
        assert torch.equal(s1, s2)
        assert bool(((s1 == 0) | (s1 == 1)).all())
    assert m.sample(0).shape == (0, D)


# -- samplers against the exact distributions ----------------------------------------------


def exact_p_v(m: RBM, beta: float = 1.0) -> torch.Tensor:
    _, _, logw = joint_log_weights(m, beta)
    return torch.softmax(torch.logsumexp(logw, 1), 0)


@torch.no_grad()
def gibbs_kernel(m: RBM, beta: float) -> torch.Tensor:
    """T[v, v'] = sum_h p_beta(h | v) p_beta(v' | h), by enumeration."""
    V, Hs = all_states(D), all_states(H)
    ph = m.p_h_given_v(V, beta)
    p_h = torch.exp(Hs @ torch.log(ph).T + (1 - Hs) @ torch.log1p(-ph).T).T  # (2^D, 2^H)
    pv = m.p_v_given_h(Hs, beta)
    p_v = torch.exp(V @ torch.log(pv).T + (1 - V) @ torch.log1p(-pv).T).T  # (2^H, 2^D)
    return p_h @ p_v


@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_gibbs_step_stationary_distribution(beta):
    """Chains started uniformly and run n steps have the law pi_0 T^n exactly; that law is
    within 1e-6 in total variation of p_beta (so the test is about stationarity) and the
    chain's empirical distribution must fit it."""
    m = make_rbm(scale=1.0, seed=2)
    p = exact_p_v(m, beta)
    T = gibbs_kernel(m, beta)
    assert torch.allclose(p @ T, p, atol=1e-14)  # the kernel leaves p_beta invariant
    n_steps, n_chains = 30, 20000
    law = torch.full((2**D,), 2.0**-D, dtype=torch.float64) @ torch.linalg.matrix_power(T, n_steps)
    assert 0.5 * float((law - p).abs().sum()) < 1e-6
    g = torch.Generator().manual_seed(5)
    v = (torch.rand(n_chains, D, generator=g) < 0.5).double()
    for _ in range(n_steps):
        v = m.gibbs_step(v, beta=beta, generator=g)
    assert chi_square_pvalue(v, law) > P_FALSE_ALARM


def test_chi_square_power():
    """The same test rejects samples from the wrong temperature."""
    m = make_rbm(scale=1.0, seed=2)
    g = torch.Generator().manual_seed(5)
    v = (torch.rand(20000, D, generator=g) < 0.5).double()
    for _ in range(30):
        v = m.gibbs_step(v, beta=0.5, generator=g)
    assert chi_square_pvalue(v, exact_p_v(m, 1.0)) < 1e-12


def test_sample_exact_distribution():
    m = make_rbm(scale=1.0, seed=3)
    s = m.sample_exact(20000, torch.Generator().manual_seed(1))
    assert chi_square_pvalue(s, exact_p_v(m)) > P_FALSE_ALARM


def test_sample_exact_float32_model():
    m = make_rbm(scale=1.0, seed=3).float()
    s = m.sample_exact(20000, torch.Generator().manual_seed(1))
    assert s.dtype == torch.float32
    assert chi_square_pvalue(s.double(), exact_p_v(make_rbm(scale=1.0, seed=3))) > P_FALSE_ALARM


def test_sample_exact_refuses_large_hidden_layer():
    with pytest.raises(GenzooError, match="n_hidden"):
        RBM(RBMConfig(n_visible=3, n_hidden=21)).sample_exact(2)


def test_sample_fresh_chains_distribution():
    m = make_rbm(scale=1.0, seed=6, sample_burn_in=40)
    s = m.sample(20000, torch.Generator().manual_seed(2))
    assert chi_square_pvalue(s, exact_p_v(m)) > P_FALSE_ALARM


def test_annealed_gibbs_step_invariant():
    """annealed_gibbs_step leaves p_beta(v) ∝ exp(-F_beta(v)) invariant (enumerated)."""
    m = make_rbm(scale=1.5, seed=4)
    base = m.ais_base(binary_data(50, seed=8))
    with torch.no_grad():
        base.c.normal_(generator=torch.Generator().manual_seed(0))  # exercise c_A too
    beta = 0.4
    V = all_states(D)
    with torch.no_grad():
        p = torch.softmax(-m.annealed_free_energy(V, beta, base), 0)
    g = torch.Generator().manual_seed(11)
    v = V[torch.multinomial(p, 20000, replacement=True, generator=g)]
    for _ in range(3):
        v = m.annealed_gibbs_step(v, beta, base, g)
    assert chi_square_pvalue(v, p) > P_FALSE_ALARM
    # ...and the same samples do not fit the model itself (the path matters)
    assert chi_square_pvalue(v, exact_p_v(m)) < 1e-12


def test_annealed_free_energy_endpoints_and_fused_step():
    m = make_rbm(scale=1.0, seed=5)
    x = binary_data(40, seed=9)
    base = m.ais_base(x)
    v = binary_data(7, seed=10)
    assert torch.allclose(m.annealed_free_energy(v, 0.0, base), base.free_energy(v))
    assert torch.allclose(m.annealed_free_energy(v, 1.0, base), m.free_energy(v))
    # base-rate model: W = 0, c = 0, b = clamped data logits, exact closed-form log Z
    p = x.mean(0).clamp(1e-3, 1 - 1e-3)
    assert not base.W.any() and not base.c.any()
    assert torch.allclose(base.b, torch.log(p / (1 - p)))
    log_z = torch.logsumexp(-base.free_energy(all_states(D)).detach(), 0)
    assert float(base.log_partition()) == pytest.approx(float(log_z), abs=1e-10)
    with pytest.raises(GenzooError, match="W == 0"):
        m.log_partition()
    # the fused AIS step draws the same numbers as the two contract methods
    inc, v1 = m.annealed_step(v, 0.3, 0.35, base, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    inc2 = m.annealed_free_energy(v, 0.3, base) - m.annealed_free_energy(v, 0.35, base)
    assert torch.allclose(inc, inc2) and torch.equal(v1, m.annealed_gibbs_step(v, 0.35, base, g))


# -- learning rule ------------------------------------------------------------------------


def _textbook_negative_samples(m: RBM, x, seed, chains=None):
    """Replays the negative chain with the public conditionals and the same generator."""
    g = torch.Generator().manual_seed(seed)
    k = m.config.k
    if chains is not None:
        v = chains
        for _ in range(k):
            v = m.gibbs_step(v, generator=g)
        return v
    h = m.sample_h_given_v(x, g)
    for step in range(k):
        v = m.sample_v_given_h(h, g)
        if step < k - 1:
            h = m.sample_h_given_v(v, g)
    return v


@pytest.mark.parametrize(
    "kw",
    [
        {"k": 1},
        {"k": 3},
        {"persistent": True, "k": 1, "n_chains": 9},
        {"persistent": True, "k": 2, "n_chains": 30},
    ],
)
def test_cd_pcd_gradient_is_textbook(kw):
    """grad of the loss = -(<v p(h|v)^T>_data - <v p(h|v)^T>_model), model statistics taken at
    the negative samples of the chain (started at the data for CD, at the chains for PCD)."""
    m = make_rbm(d=8, h=5, scale=0.5, seed=1, **kw)
    x = binary_data(16, d=8, seed=2)
    if m.chains is not None:
        m.init_from_data(x, torch.Generator().manual_seed(0))
        chains0 = m.chains.clone()
    out = m.loss(x, torch.Generator().manual_seed(7))
    out["loss"].backward()
    v_model = _textbook_negative_samples(m, x, 7, chains0 if m.chains is not None else None)
    if m.chains is not None:
        assert torch.equal(m.chains, v_model)  # chains advanced k steps in place
        assert not torch.equal(m.chains, chains0)
    with torch.no_grad():
        ph_data, ph_model = m.p_h_given_v(x), m.p_h_given_v(v_model)
        dW = x.T @ ph_data / len(x) - v_model.T @ ph_model / len(v_model)
        db = x.mean(0) - v_model.mean(0)
        dc = ph_data.mean(0) - ph_model.mean(0)
        gap = m.free_energy(x).mean() - m.free_energy(v_model).mean()
    assert torch.allclose(m.W.grad, -dW, atol=1e-12)
    assert torch.allclose(m.b.grad, -db, atol=1e-12)
    assert torch.allclose(m.c.grad, -dc, atol=1e-12)
    assert float(out["loss"].detach()) == pytest.approx(float(gap), abs=1e-12)
    assert float(out["free_energy_gap"]) == pytest.approx(float(gap), abs=1e-12)
    assert out["loss"].requires_grad and out["loss"].dim() == 0
    for key in ("recon_error", "free_energy_gap"):
        assert not out[key].requires_grad and out[key].dim() == 0


def test_weight_decay_and_sparsity_gradients():
    kw = {"d": 8, "h": 5, "scale": 0.5, "seed": 1}
    x = binary_data(16, d=8, seed=2)
    plain = make_rbm(**kw)
    plain.loss(x, torch.Generator().manual_seed(7))["loss"].backward()
    wd = make_rbm(weight_decay=0.1, **kw)
    wd.loss(x, torch.Generator().manual_seed(7))["loss"].backward()
    assert torch.allclose(wd.W.grad - plain.W.grad, 0.1 * wd.W.detach(), atol=1e-12)
    assert torch.allclose(wd.c.grad, plain.c.grad, atol=1e-12)
    t, cost = 0.1, 0.3
    sp = make_rbm(sparsity_target=t, sparsity_cost=cost, **kw)
    out = sp.loss(x, torch.Generator().manual_seed(7))
    out["loss"].backward()
    with torch.no_grad():
        q = sp.p_h_given_v(x).mean(0)
    # Hinton's guide: d penalty / d (input of hidden j) = cost * (q_j - t), per example
    assert torch.allclose(sp.c.grad - plain.c.grad, cost * (q - t), atol=1e-12)
    dW = cost * torch.outer(x.mean(0), q - t)
    assert torch.allclose(sp.W.grad - plain.W.grad, dW, atol=1e-12)
    bce = -(t * torch.log(q) + (1 - t) * torch.log1p(-q)).sum()
    penalty = float(out["loss"].detach() - out["free_energy_gap"])
    assert penalty == pytest.approx(float(cost * bce), rel=1e-10)


class _CountProducts(TorchDispatchMode):
    PRODUCTS = frozenset({"mm", "addmm", "addmm_", "bmm", "baddbmm", "matmul", "mv", "addmv",
                          "addmv_"})

    def __init__(self):
        super().__init__()
        self.counts = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in self.PRODUCTS:
            a = args[1] if name.startswith(("add", "badd")) else args[0]
            b = args[2] if name.startswith(("add", "badd")) else args[1]
            if a.dim() == 2 and b.dim() == 2:
                self.counts["matrix"] += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("kw,expected", [({}, 5), ({"k": 2}, 7), ({"persistent": True}, 7)])
def test_update_costs_the_textbook_matrix_products(kw, expected):
    """CD-1: x W, h0 W^T, v1 W and the two gradient products; each extra CD step adds two.
    PCD-1: 6 for the update plus 1 for the logged reconstruction."""
    m = RBM(RBMConfig(n_visible=20, n_hidden=7, **kw))
    x = binary_data(10, d=20, dtype=torch.float32)
    with _CountProducts() as counter:
        m.loss(x, torch.Generator().manual_seed(0))["loss"].backward()
    assert counter.counts["matrix"] == expected


def test_cd_training_lowers_exact_nll():
    """A few hundred CD-1 steps on a tiny data set lower the exact NLL from the start."""
    m = make_rbm(d=D, h=H, scale=0.01, seed=0)
    V = all_states(D)
    # a data set with structure: two prototypes with flipped bits
    g = torch.Generator().manual_seed(0)
    proto = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=torch.float64)
    x = proto[torch.randint(2, (200,), generator=g)]
    x = (x + (torch.rand(x.shape, generator=g) < 0.05)).remainder(2)

    def nll():
        with torch.no_grad():
            return float(m.free_energy(x).mean() + torch.logsumexp(-m.free_energy(V), 0))

    m.init_from_data(x)
    before = nll()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    for step in range(300):
        batch = x[(step * 20) % 200 : (step * 20) % 200 + 20]
        opt.zero_grad()
        m.loss(batch, g)["loss"].backward()
        opt.step()
    assert nll() < before - 0.5


# -- data-dependent helpers ----------------------------------------------------------------


def test_init_from_data_and_chains():
    m = RBM(RBMConfig(n_visible=D, n_hidden=H, persistent=True, n_chains=12))
    x = binary_data(50, dtype=torch.float32)
    x[:, 0] = 0.0  # a pixel never on: its bias is clamped, not -inf
    m.init_from_data(x, torch.Generator().manual_seed(0))
    p = x.mean(0).clamp(1e-3, 1 - 1e-3)
    assert torch.allclose(m.b, torch.log(p / (1 - p)))
    assert torch.isfinite(m.b).all()
    rows = {tuple(r.tolist()) for r in x}
    assert all(tuple(r.tolist()) in rows for r in m.chains)
    m2 = RBM(RBMConfig(n_visible=D, n_hidden=H, persistent=True, n_chains=12))
    m2.init_from_data(x, torch.Generator().manual_seed(0))
    assert torch.equal(m.chains, m2.chains)


def test_sampling_and_validation_leave_chains_alone():
    m = make_rbm(persistent=True, n_chains=10)
    m.init_from_data(binary_data(30))
    before = m.chains.clone()
    s = m.sample(5, torch.Generator().manual_seed(0))
    assert s.shape == (5, D)
    m.sample(50, torch.Generator().manual_seed(0))  # more than n_chains: fresh chains
    metrics = m.validation_metrics(binary_data(8))
    assert torch.equal(m.chains, before)
    assert set(metrics) == {"free_energy", "recon_error"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    x = binary_data(8)
    assert metrics["free_energy"] == pytest.approx(float(m.free_energy(x).mean().detach()))


@pytest.mark.parametrize(
    "bad,match",
    [
        (torch.zeros(4, D + 1), "shape"),
        (torch.zeros(D), "shape"),
        (torch.full((4, D), 0.5), "binar"),
        (torch.full((4, D), 2.0), "binar"),
        (torch.tensor([[float("nan")] * D]), "NaN"),
        (torch.tensor([[float("inf")] * D]), "NaN or Inf"),
        (torch.zeros(4, D, dtype=torch.long), "dtype"),
        ([[0.0] * D], "torch.Tensor"),
    ],
)
def test_input_errors(bad, match):
    m = RBM(RBMConfig(n_visible=D, n_hidden=H, persistent=True))
    for call in (m.loss, m.validation_metrics, m.init_from_data, m.ais_base):
        with pytest.raises(InputError, match=match):
            call(bad)
