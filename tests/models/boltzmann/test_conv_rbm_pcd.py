"""The convolutional RBM's persistent-chain option (PCD-k, Tieleman 2008): the chains start at
training images, advance k sweeps per update and are the negative phase; checkpoints carry them;
sample() reads them."""

from __future__ import annotations

import pytest
import torch

from genzoo.core.errors import ConfigError
from genzoo.models.boltzmann.conv_rbm import ConvRBM, ConvRBMConfig


def model(persistent: bool, k: int = 1) -> ConvRBM:
    torch.manual_seed(0)
    return ConvRBM(ConvRBMConfig(n_visible=36, n_filters=3, kernel_size=3, pool_size=2, k=k,
                                 persistent=persistent, n_chains=5, init_std=0.3,
                                 sample_burn_in=3)).double()


def data(n: int = 20) -> torch.Tensor:
    return (torch.rand(n, 36, generator=torch.Generator().manual_seed(1)) < 0.3).double()


def test_chains_start_at_training_images_and_cd_has_none():
    m, x = model(True), data()
    m.init_from_data(x, torch.Generator().manual_seed(2))
    rows = {tuple(r.tolist()) for r in x}
    assert m.chains.shape == (5, 36) and all(tuple(c.tolist()) in rows for c in m.chains)
    assert model(False).chains is None and "chains" not in model(False).state_dict()


def test_the_negative_phase_is_the_chains_advanced_k_sweeps():
    m, x = model(True, k=2), data()
    m.init_from_data(x, torch.Generator().manual_seed(2))
    start = m.chains.clone()
    out = m.loss(x[:4], torch.Generator().manual_seed(3))
    assert not torch.equal(m.chains, start)  # the chains moved, in place
    # ... by exactly k = 2 sweeps of the model's own Gibbs step, with the loss's draws: the
    # data's hidden sample first, then the sweeps
    g = torch.Generator().manual_seed(3)
    m.sample_blocks(m.detector_input(m.images(x[:4])), g)
    v = start
    for _ in range(2):
        v = m.gibbs_step(v, generator=g)
    assert torch.equal(m.chains, v)
    # the loss is mean F(data) - mean F(chains) (no sparsity term here)
    expect = m.free_energy(x[:4]).mean() - m.free_energy(m.chains).mean()
    assert torch.allclose(out["loss"], expect, atol=1e-10)
    out["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_checkpoint_state_carries_the_chains_and_sample_reads_them():
    m, x = model(True), data()
    m.init_from_data(x, torch.Generator().manual_seed(2))
    m.loss(x[:4], torch.Generator().manual_seed(3))
    twin = model(True)
    twin.load_state_dict(m.state_dict())
    assert torch.equal(twin.chains, m.chains)
    before = m.chains.clone()
    s = m.sample(4, torch.Generator().manual_seed(4))
    assert s.shape == (4, 36) and set(s.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(m.chains, before)  # sampling leaves the training chains alone
    assert model(True).sample(7, torch.Generator().manual_seed(4)).shape == (7, 36)  # > n_chains


def test_bad_chain_count_is_refused():
    with pytest.raises(ConfigError, match="n_chains"):
        ConvRBMConfig(n_visible=36, n_chains=0).validate()
