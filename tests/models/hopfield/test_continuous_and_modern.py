"""The graded-response Hopfield network and the modern Hopfield retrieval / layer."""

from __future__ import annotations

import torch

from genzoo.models.hopfield.continuous_hopfield import ContinuousHopfield
from genzoo.models.hopfield.modern_hopfield import HopfieldLayer, energy, retrieve


def test_continuous_dynamics_decrease_the_energy_and_recall_a_pattern():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(3, 50, generator=g) < 0.5).double()
    net = ContinuousHopfield.from_patterns(x, gain=5.0)
    xi = 2 * x - 1
    u0 = 0.1 * torch.where(torch.rand(3, 50, generator=g) < 0.2, -xi, xi)
    path = net.run(u0, n_steps=400, dt=0.02)
    E = net.energy(net.output(path.reshape(-1, 50))).reshape(401, 3)
    assert bool((E[1:] <= E[:-1] + 1e-9).all())
    V = net.output(path[-1])
    assert bool(((V.sign() * xi).mean(1) > 0.99).all())


def test_modern_retrieval_returns_the_nearest_pattern_in_one_step():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(20, 64, generator=g, dtype=torch.float64)
    query = X[:5] + 0.3 * torch.randn(5, 64, generator=g, dtype=torch.float64)
    out = retrieve(query, X, beta=2.0)
    assert torch.allclose(out, X[:5], atol=1e-6)
    # The update never increases the energy.
    assert bool((energy(out, X, 2.0) <= energy(query, X, 2.0) + 1e-9).all())


def test_small_beta_gives_a_metastable_average():
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    out = retrieve(torch.tensor([0.6, 0.4], dtype=torch.float64), X, beta=1e-6)
    assert torch.allclose(out, torch.tensor([0.5, 0.5], dtype=torch.float64), atol=1e-5)


def test_layer_defaults_are_plain_retrieval():
    g = torch.Generator().manual_seed(2)
    Y = torch.randn(10, 8, generator=g)
    R = torch.randn(3, 8, generator=g)
    layer = HopfieldLayer(8, beta=4.0)
    assert torch.allclose(layer(R, Y), retrieve(R, Y, 4.0))
    projected = HopfieldLayer(8, beta=4.0, projections=True, normalize=True, d_hidden=4)
    assert projected(R, Y).shape == (3, 8)
    assert torch.allclose(projected.retrieve(R, Y), retrieve(R, Y, 4.0))
