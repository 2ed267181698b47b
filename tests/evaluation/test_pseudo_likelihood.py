"""The pseudo-log-likelihood against its definition on a tiny RBM whose every visible state
is enumerated, and the unbiasedness of its random-subset estimate."""

from __future__ import annotations

import itertools

import torch
from support import random_rbm

from genzoo.evaluation.pseudo_likelihood import pseudo_log_likelihood


def test_all_units_give_the_sum_of_the_enumerated_conditionals():
    rbm = random_rbm(5, 3, scale=0.8).double()
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=5)), dtype=torch.float64)
    log_p = -rbm.free_energy(states)  # unnormalised: each conditional normalises a pair
    index = {tuple(s.tolist()): i for i, s in enumerate(states)}
    x = states[[3, 17, 30]]
    expected = []
    for v in x:
        total = 0.0
        for i in range(5):
            other = v.clone()
            other[i] = 1 - other[i]
            a, b = log_p[index[tuple(v.tolist())]], log_p[index[tuple(other.tolist())]]
            total += float(a - torch.logaddexp(a, b))
        expected.append(total)
    with torch.no_grad():
        got = pseudo_log_likelihood(rbm, x)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_a_random_subset_of_units_is_unbiased_and_seeded():
    rbm = random_rbm(6, 4, scale=0.8).double()
    x = (torch.rand(4, 6, generator=torch.Generator().manual_seed(1)) < 0.5).double()
    with torch.no_grad():
        full = pseudo_log_likelihood(rbm, x)
        g = torch.Generator().manual_seed(0)
        draws = torch.stack([pseudo_log_likelihood(rbm, x, 2, g) for _ in range(3000)])
        again = pseudo_log_likelihood(rbm, x, 2, torch.Generator().manual_seed(0))
    stderr = draws.std(0) / len(draws) ** 0.5
    assert ((draws.mean(0) - full).abs() < 4 * stderr).all()
    assert torch.equal(again, draws[0])
