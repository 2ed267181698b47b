"""Exact log partition function by enumeration, on the device under test (the brute-force
reference on the CPU)."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from support import random_rbm

from genzoo.core.errors import GenzooError
from genzoo.evaluation import exact_log_partition
from genzoo.models.boltzmann.rbm import RBM, RBMConfig


def make_rbm(d, h, scale=1.0, seed=0, device="cpu"):
    return random_rbm(d, h, scale, seed, device=device)


def transpose(m: RBM) -> RBM:
    """The same joint distribution with the layers swapped."""
    t = RBM(RBMConfig(n_visible=m.n_hidden, n_hidden=m.n_visible))
    with torch.no_grad():
        t.W.copy_(m.W.T)
        t.b.copy_(m.c)
        t.c.copy_(m.b)
    return t.to(m.W.device)


def brute_force_log_z(m: RBM) -> float:
    m = copy.deepcopy(m).double().cpu()

    def states(n):
        return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)

    V, H = states(m.n_visible), states(m.n_hidden)
    v, h = V.repeat_interleave(len(H), 0), H.repeat(len(V), 1)
    with torch.no_grad():
        return float(torch.logsumexp(-m.energy(v, h), 0))


@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_matches_joint_enumeration(scale, device):
    m = make_rbm(7, 5, scale, device=device)
    est = exact_log_partition(m)
    assert est.value == pytest.approx(brute_force_log_z(m), abs=1e-9)
    assert est.stderr == 0.0 and est.n_samples == 2**5 and est.estimator == "exact enumeration"
    assert est.diagnostics["n_units"] == 5


def test_visible_and_hidden_enumeration_agree(device):
    m = make_rbm(5, 11, 1.0, seed=3, device=device)  # enumerates the 5 visible units
    t = transpose(m)  # enumerates the 5 hidden units of the swapped model
    v, h = torch.rand(3, 5, device=device).round(), torch.rand(3, 5, device=device).round()
    f_m, n_m = m.enumerable_free_energy()
    f_t, n_t = t.enumerable_free_energy()
    assert n_m == n_t == 5
    assert torch.allclose(f_m(v), m.free_energy(v).detach())  # visible layer enumerated
    assert torch.allclose(f_t(h), t.hidden_free_energy(h).detach())  # hidden layer enumerated
    a, b = exact_log_partition(m).value, exact_log_partition(t).value
    assert a == pytest.approx(b, abs=1e-10)
    assert a == pytest.approx(brute_force_log_z(m), abs=1e-9)


def test_chunking_and_dtype_do_not_change_the_value_or_the_model(device):
    m = make_rbm(9, 8, 1.0, seed=4, device=device)
    w0 = m.W.detach().clone()
    full = exact_log_partition(m).value
    assert exact_log_partition(m, chunk=7).value == pytest.approx(full, abs=1e-10)
    assert exact_log_partition(m, dtype=torch.float32).value == pytest.approx(full, abs=1e-3)
    assert m.W.dtype == torch.float32 and torch.equal(m.W, w0)


def test_refuses_too_many_units():
    with pytest.raises(GenzooError, match="exact_max_units"):
        exact_log_partition(make_rbm(30, 27))
    with pytest.raises(GenzooError, match="AIS"):
        exact_log_partition(make_rbm(12, 10), max_units=8)
