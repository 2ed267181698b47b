"""The (deep) GSN: walkback structure, noise injection, clamped chains, and a short training on
digits."""

from __future__ import annotations

import torch

from genzoo.models.markov.gsn import GSN, GSNConfig


def _gsn(**kw) -> GSN:
    kw.setdefault("n_visible", 10)
    kw.setdefault("hidden", (8, 6))
    return GSN(GSNConfig(**kw), generator=torch.Generator().manual_seed(0)).double()


def _x(n=5, d=10, seed=0):
    return (torch.rand(n, d, generator=torch.Generator().manual_seed(seed)) < 0.4).double()


def test_default_walkback_is_twice_the_depth_and_every_step_is_penalised():
    m = _gsn(hidden=(8, 6, 4))
    assert m.walkback == 6
    nll = m.walkback_losses(_x(), torch.Generator().manual_seed(0))
    assert nll.shape == (6, 5) and bool((nll > 0).all())
    out = m.loss(_x(), torch.Generator().manual_seed(0))
    assert torch.allclose(out["loss"], nll.mean())
    # The top layer only reaches x through the unrolled chain: step 1 sees h^1 computed
    # with h^2 = 0, so its reconstruction does not depend on W_3; later steps do.
    W3 = m.weights[2]
    g_first = torch.autograd.grad(nll[0].sum(), W3, allow_unused=True, retain_graph=True)[0]
    assert g_first is None or bool(g_first.abs().sum() == 0)
    assert bool(torch.autograd.grad(nll[-1].sum(), W3)[0].abs().sum() > 0)


def test_noise_enters_before_and_after_the_activation():
    m = _gsn(hidden=(8,), pre_noise=0.0, post_noise=0.0, noise_level=0.0)
    x = _x()
    state = m.initial_state(x)
    new, _, _ = m.step(state, torch.Generator().manual_seed(0))
    assert torch.allclose(new[1], torch.tanh(m._pre_activation(state, 1)))
    noisy = _gsn(hidden=(8,), pre_noise=0.0, post_noise=3.0, noise_level=0.0, noiseless_h1=False)
    with torch.no_grad():
        new, _, _ = noisy.step(noisy.initial_state(x), torch.Generator().manual_seed(0))
    assert float(new[1].abs().max()) > 1.0  # post-activation noise leaves tanh's range


@torch.no_grad()
def test_noiseless_h1_keeps_the_first_layer_clean_and_noises_the_others():
    """The authors' default: no hidden noise in h^1, pre- and post-noise in h^2 and above."""
    m = _gsn(hidden=(8, 6), pre_noise=0.0, post_noise=3.0, noise_level=0.0)
    assert m.config.noiseless_h1
    state = m.initial_state(_x())
    new, _, _ = m.step(state, torch.Generator().manual_seed(0))
    # odd layers first: h^1 from x and h^2 = 0, deterministic; then h^2 from the new h^1
    assert torch.allclose(new[1], torch.tanh(m._pre_activation(state, 1)))
    clean_h2 = torch.tanh(m._pre_activation(new, 2))
    assert float((new[2] - clean_h2).abs().max()) > 1.0


def test_clamped_units_never_change_during_conditional_sampling():
    m = _gsn(sample_steps=6)
    x = _x(4)
    mask = torch.rand(10, generator=torch.Generator().manual_seed(3)) < 0.5
    path = m.chain(x, 6, torch.Generator().manual_seed(0), observed_mask=mask)
    assert torch.equal(path[:, :, mask], x[:, mask].expand(7, -1, -1))
    filled = m.inpaint(x, mask, torch.Generator().manual_seed(1), n_samples=2)
    assert torch.equal(filled[:, :, mask], x[:, mask].expand(2, -1, -1))


def test_samples_are_deterministic_and_in_the_unit_interval():
    m = _gsn(sample_steps=4)
    a = m.sample(6, torch.Generator().manual_seed(5))
    b = m.sample(6, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == (6, 10)
    assert bool(((a >= 0) & (a <= 1)).all())


def test_short_training_on_digits_improves_reconstruction(digits_run):
    _, before, after = digits_run("gsn", [
        "model.hidden=32,32", "model.walkback=3", "model.sample_steps=5",
        "model.pre_noise=0.5", "model.post_noise=0.5", "model.noise_level=0.2",
        "train.epochs=10", "train.lr=0.01",
    ])
    assert after < 0.85 * before


def test_chain_states_carry_no_gradient_to_the_reconstruction_sigma():
    # With a Gaussian P(x | h^1), the draw w + sigma * eps that becomes the next visible state
    # is an input of the following steps, never a function of log sigma (walkback treats the
    # chain's samples as data); only the reconstruction terms reach log sigma.
    m = _gsn(reconstruction="gaussian", corruption="gaussian", noise_level=0.3)
    x = torch.randn(5, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    state, w, x_draw = m.step(m.initial_state(x), g)
    assert w.requires_grad and not x_draw.requires_grad and not state[0].requires_grad
    nll = m.walkback_losses(x, torch.Generator().manual_seed(0))
    (grad,) = torch.autograd.grad(nll[-1].sum(), [m.log_sigma])
    assert bool(torch.isfinite(grad).all())
