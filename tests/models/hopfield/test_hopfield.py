"""The binary Hopfield network: energy under asynchronous updates, storage and recall,
capacity, Storkey vs Hebbian, and the Trainer's Hebbian surrogate."""

from __future__ import annotations

import pytest
import torch

from genzoo.core.errors import InputError
from genzoo.models.hopfield.capacity import capacity_curve, critical_load
from genzoo.models.hopfield.hopfield import HopfieldConfig, HopfieldNetwork


def _net(n: int, **kw) -> HopfieldNetwork:
    return HopfieldNetwork(HopfieldConfig(n_visible=n, **kw)).double()


def _patterns(p: int, n: int, seed: int = 0) -> torch.Tensor:
    return (torch.rand(p, n, generator=torch.Generator().manual_seed(seed)) < 0.5).double()


def _spins(b: int, n: int, g: torch.Generator) -> torch.Tensor:
    return torch.where(torch.rand(b, n, generator=g) < 0.5, 1.0, -1.0).double()


@pytest.mark.parametrize("seed", range(5))
def test_asynchronous_updates_never_increase_the_energy_on_random_instances(seed):
    g = torch.Generator().manual_seed(seed)
    n = 30
    net = _net(n)
    with torch.no_grad():  # random symmetric couplings, not a memory: frustrated landscapes
        net.W_raw.copy_(torch.randn(n, n, generator=g, dtype=torch.float64))
    s = _spins(8, n, g)
    W = net.W
    for _ in range(3):
        for i in torch.randperm(n, generator=g).tolist():
            before = net.energy(s)
            s = net.async_sweep(s, order=torch.tensor([i]))
            assert bool((net.energy(s) <= before + 1e-12).all())
    assert torch.allclose(W, W.T) and bool((torch.diagonal(W) == 0).all())


def test_asynchronous_recall_ends_in_a_fixed_point():
    g = torch.Generator().manual_seed(1)
    net = _net(40)
    net.store(_patterns(6, 40))
    s = net.recall(_spins(10, 40, g), generator=g)
    assert torch.equal(net.sync_step(s), s)


def test_stored_patterns_are_fixed_points_below_capacity_and_recalled_from_noisy_cues():
    n, p = 200, 10  # load 0.05, far below 0.138
    x = _patterns(p, n)
    net = _net(n)
    net.store(x)
    xi = 2 * x - 1
    assert torch.equal(net.sync_step(xi), xi)
    g = torch.Generator().manual_seed(2)
    flip = torch.rand(p, n, generator=g) < 0.15
    cue = torch.where(flip, -xi, xi)
    assert torch.equal(net.recall(cue, generator=g), xi)
    # Partial cue: half the units unknown (set at random).
    partial = xi.clone()
    partial[:, n // 2:] = _spins(p, n - n // 2, g)
    overlap = (net.recall(partial, generator=g) * xi).mean(1)
    assert bool((overlap > 0.95).all())


def test_synchronous_updates_can_oscillate_where_asynchronous_ones_cannot():
    # Two units coupled antiferromagnetically: (+,+) -> (-,-) -> (+,+) under sync updates.
    net = _net(2)
    with torch.no_grad():
        net.W_raw.copy_(torch.tensor([[0.0, -1.0], [-1.0, 0.0]], dtype=torch.float64))
    s = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    assert torch.equal(net.sync_step(net.sync_step(s)), s) and not torch.equal(net.sync_step(s), s)
    fixed = net.recall(s, update="async", generator=torch.Generator().manual_seed(0))
    assert torch.equal(net.sync_step(fixed), fixed)


def test_capacity_transition_is_near_the_classical_load():
    g = torch.Generator().manual_seed(0)
    pts = capacity_curve(200, [0.05, 0.1, 0.3], n_trials=2, generator=g)
    assert pts[0].overlap > 0.98 and pts[1].overlap > 0.95
    assert pts[2].overlap < 0.7  # well above 0.138 N retrieval is lost
    assert 0.1 < critical_load(pts) < 0.3


def test_storkey_rule_stores_more_than_hebbian():
    n, p = 100, 25  # load 0.25: beyond Hebbian capacity, within Storkey's
    x = _patterns(p, n, seed=3)
    xi = 2 * x - 1
    stable = {}
    for rule in ("hebbian", "storkey"):
        net = _net(n, rule=rule)
        net.store(x)
        stable[rule] = float(((xi @ net.W) * xi > 0).all(1).double().mean())
    assert stable["storkey"] > stable["hebbian"] + 0.3


def test_storkey_of_one_pattern_equals_hebbian():
    x = _patterns(1, 12)
    a, b = _net(12, rule="hebbian"), _net(12, rule="storkey")
    a.store(x)
    b.store(x)
    assert torch.allclose(a.W, b.W)


def test_an_sgd_step_on_the_loss_adds_the_hebbian_increment():
    n = 16
    x = _patterns(5, n)
    net = _net(n)
    loss = net.loss(x)["loss"]
    loss.backward()
    xi = 2 * x - 1
    hebb = xi.T @ xi / len(x)
    hebb.fill_diagonal_(0)
    # d(mean energy)/dW_raw = -1/2 of the batch's Hebbian sum (off the diagonal).
    assert torch.allclose(-net.W_raw.grad, 0.5 * hebb)


def test_partial_fit_accumulates_and_store_resets():
    x = _patterns(6, 20)
    a, b = _net(20), _net(20)
    a.partial_fit(x[:3])
    a.partial_fit(x[3:])
    b.store(x)
    assert torch.allclose(a.W, b.W) and int(a.n_stored) == 6
    a.store(x[:1])
    assert int(a.n_stored) == 1


def test_sampling_at_zero_temperature_lands_on_fixed_points_and_returns_binary_data():
    net = _net(30, sample_sweeps=10)
    net.store(_patterns(3, 30))
    x = net.sample(8, torch.Generator().manual_seed(0))
    assert bool(((x == 0) | (x == 1)).all())
    s = 2 * x - 1
    assert torch.equal(net.sync_step(s), s)


def test_bad_states_are_refused():
    net = _net(4)
    with pytest.raises(InputError, match="-1 and \\+1"):
        net.energy(torch.zeros(2, 4, dtype=torch.float64))
