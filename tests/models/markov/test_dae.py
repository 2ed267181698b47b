"""The DAE sampler: walkback loss structure, clamped chains, exact stationary distribution on a
toy binary distribution, and a short training on digits."""

from __future__ import annotations

import pytest
import torch

from genzoo.core.errors import InputError
from genzoo.models.markov.dae import DAE, DAEConfig


def _dae(**kw) -> DAE:
    kw.setdefault("n_visible", 6)
    kw.setdefault("n_hidden", 8)
    return DAE(DAEConfig(**kw), generator=torch.Generator().manual_seed(0)).double()


def _binary(n, d, seed=0):
    return (torch.rand(n, d, generator=torch.Generator().manual_seed(seed)) < 0.4).double()


def test_walkback_has_one_penalty_per_step_scored_against_the_original():
    m = _dae(walkback=4)
    x = _binary(7, 6)
    nll = m.walkback_losses(x, torch.Generator().manual_seed(0))
    assert nll.shape == (4, 7) and bool((nll > 0).all())
    # Row 0 is the plain DAE criterion: the same draws as a K = 1 walk.
    first = m.walkback_losses(x, torch.Generator().manual_seed(0), k=1)
    assert torch.allclose(nll[0], first[0])
    out = m.loss(x, torch.Generator().manual_seed(0))
    assert torch.allclose(out["loss"], nll.mean())
    assert torch.allclose(out["reconstruction"], nll[0].mean())


def test_walkback_gradient_reaches_every_step_but_not_through_the_draws():
    m = _dae(walkback=3)
    x = _binary(5, 6)
    nll = m.walkback_losses(x, torch.Generator().manual_seed(1))
    # Later steps depend on the parameters through their own reconstruction only.
    grads = torch.autograd.grad(nll[2].sum(), [m.W, m.c])
    assert all(bool(g.abs().sum() > 0) for g in grads)


def test_clamped_units_never_change_during_conditional_sampling():
    m = _dae(n_visible=10, sample_steps=7)
    x = _binary(4, 10, seed=2)
    mask = torch.zeros(4, 10, dtype=torch.bool)
    mask[:, :5] = True
    path = m.chain(torch.where(mask, x, 1 - x), 7, torch.Generator().manual_seed(0),
                   observed_mask=mask, output="draw")
    assert torch.equal(path[:, mask], torch.where(mask, x, 1 - x)[mask].expand(8, -1))
    filled = m.inpaint(x, mask, torch.Generator().manual_seed(1), n_samples=3)
    assert filled.shape == (3, 4, 10)
    assert torch.equal(filled[:, mask], x[mask].expand(3, -1))
    # The unobserved half is resampled, not copied.
    assert not torch.equal(filled[:, ~mask], x[~mask].expand(3, -1))


def test_inpaint_refuses_a_bad_mask():
    m = _dae()
    with pytest.raises(InputError, match="bool"):
        m.inpaint(_binary(2, 6), torch.ones(6))


def test_transition_matrix_is_stochastic_and_matches_simulated_steps():
    m = _dae(n_visible=3, noise_level=0.3)
    T = m.transition_matrix()
    assert torch.allclose(T.sum(1), torch.ones(8, dtype=T.dtype))
    # Start 20000 chains at state 5 = (1, 0, 1): one step's empirical law matches row 5.
    x0 = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64).expand(20000, -1)
    x1 = m.chain(x0, 1, torch.Generator().manual_seed(0), output="draw")[-1]
    idx = (x1 * torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)).sum(1).long()
    freq = torch.bincount(idx, minlength=8).double() / len(idx)
    assert torch.allclose(freq, T[5], atol=0.015)


def _stationary(T: torch.Tensor) -> torch.Tensor:
    evals, evecs = torch.linalg.eig(T.T)
    pi = evecs[:, evals.real.argmax()].real
    return pi / pi.sum()


def test_trained_chain_has_a_stationary_distribution_near_the_data():
    # A 3-mode distribution over 6 bits; the exact stationary law of the chain is computed
    # from its 64 x 64 transition matrix and compared in total variation.
    d, g = 6, torch.Generator().manual_seed(0)
    modes = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1], [1, 0, 1, 0, 1, 0]],
                         dtype=torch.float64)
    probs = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    p_data = torch.zeros(2**d, dtype=torch.float64)
    p_data[(modes * 2 ** torch.arange(d - 1, -1, -1)).sum(1).long()] = probs
    m = _dae(n_visible=d, n_hidden=32, noise_level=0.2)
    tv_before = 0.5 * (_stationary(m.transition_matrix()) - p_data).abs().sum()
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    for _ in range(1000):
        x = modes[torch.multinomial(probs, 64, replacement=True, generator=g)]
        loss = m.loss(x, g)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    tv_after = 0.5 * (_stationary(m.transition_matrix()) - p_data).abs().sum()
    # Untrained, the chain is near uniform over 64 states (TV ~ 0.95); trained, the bulk of
    # its mass sits on the three modes.
    assert tv_before > 0.8
    assert tv_after < 0.3


def test_gaussian_dae_samples_follow_the_parameters_dtype():
    m = DAE(DAEConfig(n_visible=4, n_hidden=5, corruption="gaussian", noise_level=0.5,
                      reconstruction="gaussian", sample_steps=3))
    x = torch.randn(6, 4)
    out = m.loss(x, torch.Generator().manual_seed(0))
    out["loss"].backward()
    assert m.log_sigma.grad is not None
    assert m.double().sample(3, torch.Generator().manual_seed(0)).dtype == torch.float64


def test_short_training_on_digits_improves_reconstruction(digits_run):
    _, before, after = digits_run("dae", [
        "model.n_hidden=64", "model.walkback=2", "model.sample_steps=5",
        "train.epochs=10", "train.lr=0.01",
    ])
    # From the marginals only, reconstruction costs about the pixels' entropy; a trained
    # DAE uses the uncorrupted pixels and does far better.
    assert after < 0.8 * before


def test_tied_decoder_uses_the_transposed_encoder_weights():
    m = _dae(tied=True)
    assert m.V is None and "V" not in m.state_dict()
    h = torch.randn(3, 8, dtype=torch.float64)
    assert torch.allclose(m.decode(h), h @ m.W + m.c)


def test_grey_levels_need_the_flag_and_stay_in_the_unit_interval():
    x = torch.rand(4, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.raises(InputError, match="binar"):
        _dae().loss(x)
    m = _dae(grey_levels=True)
    out = m.loss(x, torch.Generator().manual_seed(0))
    assert torch.isfinite(out["loss"])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        m.loss(x + 1.0)
