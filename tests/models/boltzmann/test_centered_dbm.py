"""The centered DBM: the energy is the centered one up to a constant, moving the offsets
leaves the distribution exactly unchanged, the SML gradient is the centered statistic, and the
model trains on digits from random initialisation without pretraining."""

from __future__ import annotations

import dataclasses

import torch
from support import dbm_digits_config, started_dbm_batch

from genzoo.data import load_data
from genzoo.evaluation.exact import exact_log_partition
from genzoo.models.boltzmann.centered_dbm import CenteredDBM, CenteredDBMConfig
from genzoo.ops.enumeration import binary_states


def random_centered(d: int, hidden: tuple[int, ...], seed: int = 0, **cfg) -> CenteredDBM:
    g = torch.Generator().manual_seed(seed)
    m = CenteredDBM(CenteredDBMConfig(n_visible=d, hidden=hidden, init_std=1.0, **cfg),
                    generator=g).double()
    with torch.no_grad():
        for b in m.b:
            b.normal_(0.0, 0.5, generator=g)
        m.set_offsets([torch.rand(n, generator=g, dtype=torch.float64) for n in m.sizes])
    return m


def _states(m):
    n = sum(m.sizes)
    s = binary_states(torch.arange(2**n), n, torch.float64)
    return list(torch.split(s, list(m.sizes), dim=-1))


def _log_probs(m) -> torch.Tensor:
    x = _states(m)
    with torch.no_grad():
        lp = -m.energy(x[0], x[1:])
    return lp - torch.logsumexp(lp, 0)


def test_energy_is_the_centered_energy_up_to_a_constant():
    m = random_centered(3, (3, 2))
    x = _states(m)
    mu = m.offsets
    with torch.no_grad():
        centered = -sum((x[l] - mu[l]) @ m.b[l] for l in range(3))
        for l in range(1, 3):
            centered = centered - (((x[l - 1] - mu[l - 1]) @ m.W[l - 1]) * (x[l] - mu[l])).sum(-1)
        diff = m.energy(x[0], x[1:]) - centered
    torch.testing.assert_close(diff, diff[0].expand_as(diff), atol=1e-12, rtol=0)


def test_moving_the_offsets_leaves_the_distribution_exactly_unchanged():
    m = random_centered(4, (3, 2, 2), seed=1)
    before = _log_probs(m)
    b_before = [b.detach().clone() for b in m.b]
    v = binary_states(torch.arange(16), 4, torch.float64)
    with torch.no_grad():
        f_before = m.exact_free_energy(v) + exact_log_partition(m).value
        q_before, _ = m.mean_field(v, tol=1e-12, max_iters=1000)
    m.set_offsets([torch.rand(n, generator=torch.Generator().manual_seed(9),
                              dtype=torch.float64) for n in m.sizes])
    assert any(not torch.equal(a, b) for a, b in zip(b_before, m.b))  # biases did move
    torch.testing.assert_close(_log_probs(m), before, atol=1e-12, rtol=0)
    with torch.no_grad():
        f_after = m.exact_free_energy(v) + exact_log_partition(m).value
        q_after, _ = m.mean_field(v, tol=1e-12, max_iters=1000)
    torch.testing.assert_close(f_after, f_before, atol=1e-10, rtol=0)
    for a, b in zip(q_after, q_before):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_loss_moves_offsets_towards_data_means_without_changing_the_model():
    m = random_centered(4, (3, 2), seed=2, offset_rate=0.1, n_chains=6)
    g = torch.Generator().manual_seed(0)
    x = torch.bernoulli(torch.full((10, 4), 0.7, dtype=torch.float64), generator=g)
    m.start_chains(x, g)
    mu0 = m.offsets[0].clone()
    before = _log_probs(m)
    m.loss(x, generator=g)
    torch.testing.assert_close(m.offsets[0], 0.9 * mu0 + 0.1 * x.mean(0))
    torch.testing.assert_close(_log_probs(m), before, atol=1e-12, rtol=0)


def test_gradient_is_the_centered_statistic():
    m = random_centered(5, (4, 3), seed=3, offset_rate=0.0, n_chains=7)
    g, x, q = started_dbm_batch(m, 8)
    m.loss(x, generator=g)["loss"].backward()
    mu, pos, neg = m.offsets, [x, *q], m.chains
    for l in range(2):
        data = (pos[l] - mu[l]).T @ (pos[l + 1] - mu[l + 1]) / 8
        model = (neg[l] - mu[l]).T @ (neg[l + 1] - mu[l + 1]) / 7
        torch.testing.assert_close(m.W[l].grad, -(data - model))
    for l in range(3):
        torch.testing.assert_close(m.b[l].grad, -(pos[l].mean(0) - neg[l].mean(0)))


def test_trains_on_digits_from_random_initialisation(tmp_path):
    from genzoo.training import Trainer

    cfg = dbm_digits_config("12,6", 300, ["model.init_std=0.1", "train.epochs=1000",
                                          "train.lr=0.1"], model="centered-dbm")
    bundle = load_data(cfg.data)
    cfg = dataclasses.replace(cfg, model=cfg.model.replace(n_visible=bundle.n_features))
    torch.manual_seed(0)
    model = CenteredDBM(cfg.model)
    model.init_from_data(bundle.train.x)

    def bound() -> float:
        md = model.double()
        with torch.no_grad():
            value = float(md.variational_free_energy(bundle.valid.x.double()).mean())
        value += exact_log_partition(md).value
        model.float()
        return value

    before = bound()
    Trainer(model, cfg, bundle, tmp_path / "run").fit()
    after = bound()
    assert after < before - 1.0, (before, after)
    # The hidden offsets have followed the mean-field activities away from 0.5.
    assert float((model.offsets[1] - 0.5).abs().max()) > 0.01
