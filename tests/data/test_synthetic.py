"""The ring of Gaussians: its means, its draws, and their determinism under a generator."""

from __future__ import annotations

import math

import torch

from genzoo.data.synthetic import ring_means, ring_of_gaussians


def test_the_means_lie_evenly_on_the_circle():
    mu = ring_means(8, 2.0)
    assert mu.shape == (8, 2) and mu.dtype == torch.float32
    torch.testing.assert_close(mu.norm(dim=1), torch.full((8,), 2.0))
    torch.testing.assert_close(mu[2], torch.tensor([0.0, 2.0]), atol=1e-6, rtol=0)
    gaps = (mu - mu.roll(1, 0)).norm(dim=1)
    torch.testing.assert_close(gaps, torch.full((8,), 4 * math.sin(math.pi / 8)))


def test_draws_cover_every_mode_at_its_width_and_repeat_under_a_seed():
    x = ring_of_gaussians(4000, torch.Generator().manual_seed(0))
    assert x.shape == (4000, 2) and x.dtype == torch.float32
    dist, mode = torch.cdist(x, ring_means()).min(1)
    counts = torch.bincount(mode, minlength=8)
    assert (counts > 400).all() and (counts < 600).all()  # 500 each on average
    spread = (x - ring_means()[mode]).std(0)
    torch.testing.assert_close(spread, torch.full((2,), 0.1), atol=0.01, rtol=0)
    assert float(dist.max()) < 0.6
    again = ring_of_gaussians(4000, torch.Generator().manual_seed(0))
    assert torch.equal(x, again)
