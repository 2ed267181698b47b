"""The contractive auto-encoder: analytic Jacobian and penalty against autograd, the tangent
move of the sampler, and a short training on digits."""

from __future__ import annotations

import torch

from genzoo.models.markov.cae import CAE, CAEConfig


def _cae(**kw) -> CAE:
    kw.setdefault("n_visible", 7)
    kw.setdefault("n_hidden", 5)
    kw.setdefault("init_std", 0.8)
    m = CAE(CAEConfig(**kw), generator=torch.Generator().manual_seed(0)).double()
    with torch.no_grad():
        m.b.normal_(0, 0.5, generator=torch.Generator().manual_seed(1))
    return m


def _x(n=4, d=7, seed=0):
    return (torch.rand(n, d, generator=torch.Generator().manual_seed(seed)) < 0.5).double()


def test_jacobian_and_penalty_match_autograd():
    m = _cae()
    x = _x()
    J = m.jacobian(x)
    for i in range(len(x)):
        ref = torch.autograd.functional.jacobian(lambda v: m.encode(v.unsqueeze(0))[0], x[i])
        assert torch.allclose(J[i], ref)
        assert torch.allclose(m.contractive_penalty(x)[i], (ref**2).sum())


def test_penalty_gradient_matches_autograd_of_the_autograd_jacobian():
    m = _cae()
    x = _x(2)

    def penalty_by_autograd():
        total = 0.0
        for v in x:
            J = torch.autograd.functional.jacobian(
                lambda u: m.encode(u.unsqueeze(0))[0], v, create_graph=True)
            total = total + (J**2).sum()
        return total

    g_ref = torch.autograd.grad(penalty_by_autograd(), [m.W, m.b])
    g = torch.autograd.grad(m.contractive_penalty(x).sum(), [m.W, m.b])
    for a, b in zip(g, g_ref):
        assert torch.allclose(a, b)


def test_loss_is_reconstruction_plus_lambda_penalty():
    m = _cae(contraction=0.7)
    x = _x()
    out = m.loss(x)
    assert torch.allclose(out["loss"], out["reconstruction"] + 0.7 * out["contraction"])


def test_full_tangent_move_is_J_J_transpose_eps_and_truncation_keeps_leading_directions():
    m = _cae(n_hidden=6)
    x = _x(3)
    h = m.encode(x)
    eps = torch.randn(3, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    J = m.jacobian(x)
    full = m._tangent_move(x, h, eps)
    assert torch.allclose(full, torch.einsum("bhd,bkd,bk->bh", J, J, eps))
    m2 = _cae(n_hidden=6, tangent_rank=2)
    move = m2._tangent_move(x, h, eps)
    U, S, _ = torch.linalg.svd(J)
    for i in range(3):
        ref = U[i, :, :2] @ torch.diag(S[i, :2] ** 2) @ U[i, :, :2].T @ eps[i]
        assert torch.allclose(move[i], ref)


def test_sampling_without_noise_is_reconstruction():
    m = _cae(sample_sigma=0.0)
    x = _x()
    step = m.chain_step(x, torch.Generator().manual_seed(0))
    assert torch.allclose(step, torch.sigmoid(m.decode(m.encode(x))))


def test_short_training_on_digits_improves_reconstruction(digits_run):
    _, before, after = digits_run("cae", [
        "model.n_hidden=64", "model.sample_steps=5", "train.epochs=10", "train.lr=0.01",
    ])
    assert after < 0.8 * before
