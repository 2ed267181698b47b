"""Discriminative / hybrid RBM: p(y | x), F(x, y) and F(x) against enumeration of (y, h), the
Gibbs sweep against the exact marginal p(x) of a tiny model, label handling, and hybrid
training on the digits lowering the classification error."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from genzoo.core.errors import InputError
from genzoo.core.protocols import ENERGY, EnergyModel
from genzoo.core.registry import get_model_spec
from genzoo.data import DataConfig, load_data
from genzoo.models.boltzmann.disc_rbm import DiscRBM, DiscRBMConfig
from genzoo.utils.images import save_image_grid

D, H, C = 4, 3, 3


def states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def tiny(scale=1.0, seed=0, **kw) -> DiscRBM:
    m = DiscRBM(DiscRBMConfig(n_visible=D, n_hidden=H, n_classes=C, **kw)).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return m


def joint_log_weights(m: DiscRBM, x: torch.Tensor) -> torch.Tensor:
    """-E(y, x, h) for every x row, class y and hidden state h: (B, C, 2^H)."""
    Hs = states(H)
    Y = torch.eye(C, dtype=torch.float64)
    hy = torch.cat([Hs.repeat(C, 1), Y.repeat_interleave(len(Hs), 0)], 1)  # (C * 2^H, H + C)
    out = [-m.energy(xi.expand(len(hy), -1), hy).reshape(C, len(Hs)) for xi in x]
    return torch.stack(out)


def test_registered_with_energy_and_labels():
    spec = get_model_spec("disc-rbm")
    m = spec.build(DiscRBMConfig(n_visible=64, n_hidden=5))
    assert spec.cls is DiscRBM and m.capabilities == {ENERGY} and m.needs_labels
    assert isinstance(m, EnergyModel)


@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_p_y_given_x_and_free_energies_match_enumeration(scale):
    m = tiny(scale)
    x = torch.cat(
        [states(D)[[0, 5, 15]], torch.tensor([[0.2, 0.7, 1.0, 0.4]], dtype=torch.float64)]
    )
    logw = joint_log_weights(m, x)
    exact = torch.log_softmax(torch.logsumexp(logw, -1), -1)
    torch.testing.assert_close(m.log_p_y_given_x(x), exact)
    torch.testing.assert_close(m.free_energy(x), -torch.logsumexp(logw.flatten(1), -1))
    for y in range(C):
        onehot = F.one_hot(torch.full((len(x),), y), C).double()
        torch.testing.assert_close(m.joint_free_energy(x, onehot), -torch.logsumexp(logw[:, y], -1))
    assert torch.equal(m.predict(x), exact.argmax(-1))


@pytest.mark.parametrize("beta", [1.0, 0.4])
def test_gibbs_step_leaves_the_marginal_invariant(beta):
    # The transition matrix T(x -> x') of one sweep, by enumeration: sum_x p(x) T(x, x') = p(x').
    m = tiny(1.0)
    X, Hs = states(D), states(H)
    logw = beta * joint_log_weights(m, X)  # (2^D, C, 2^H) tempered
    p_x = torch.softmax(torch.logsumexp(logw.flatten(1), -1), 0)
    # p(y, h | x) then p(x' | h) = prod sigmoid(beta (b + W h))
    p_yh = torch.softmax(logw.flatten(1), -1).reshape(len(X), C, len(Hs)).sum(1)  # (2^D, 2^H)
    q = torch.sigmoid(beta * (m.b + Hs @ m.W.T))  # (2^H, D)
    p_xp_h = torch.exp(X @ torch.log(q).T + (1 - X) @ torch.log1p(-q).T).T  # (2^H, 2^D)
    torch.testing.assert_close(p_x @ (p_yh @ p_xp_h), p_x)
    # and the sampler draws from that kernel: empirical one-step distribution from x = X[6]
    x0 = X[6].expand(40000, -1)
    nxt = m.gibbs_step(x0, beta=beta, generator=torch.Generator().manual_seed(0))
    codes = (nxt * (2 ** torch.arange(D - 1, -1, -1)).double()).sum(1).long()
    freq = torch.bincount(codes, minlength=2**D).double() / len(nxt)
    torch.testing.assert_close(freq, p_yh[6] @ p_xp_h, atol=0.012, rtol=0)


def test_loss_terms_and_label_errors():
    m = tiny(0.1, alpha=0.5)
    x = states(D)[:6]
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    out = m.loss(x, torch.Generator().manual_seed(0), y=y)
    nll = -m.log_p_y_given_x(x).gather(1, y[:, None]).mean()
    torch.testing.assert_close(out["nll_y_given_x"], nll.detach())
    torch.testing.assert_close(out["loss"].detach(), nll.detach() + 0.5 * out["free_energy_gap"])
    unsup = m.loss(x, torch.Generator().manual_seed(0))
    assert unsup["loss"].requires_grad and "nll_y_given_x" not in unsup
    with pytest.raises(InputError, match="n_classes"):
        m.loss(x, y=torch.tensor([0, 1, 2, 3, 0, 1]))
    with pytest.raises(InputError, match="int64"):
        m.loss(x, y=y.int())
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        m.loss(x * 2, y=y)


def test_hybrid_training_on_digits_lowers_the_classification_error(tmp_path):
    bundle = load_data(DataConfig(name="digits"))
    torch.manual_seed(0)
    m = DiscRBM(
        DiscRBMConfig(n_visible=64, n_hidden=50, alpha=0.01, init_std=0.05, sample_burn_in=50)
    )
    m.init_from_data(bundle.train.x)
    before = m.classification_error(bundle.test.x, bundle.test.y)
    opt = torch.optim.SGD(m.parameters(), lr=0.5, momentum=0.5)
    g = torch.Generator().manual_seed(0)
    x, y = bundle.train.x, bundle.train.y
    for _ in range(300):
        idx = torch.randint(len(x), (50,), generator=g)
        opt.zero_grad()
        m.loss(x[idx], g, y=y[idx])["loss"].backward()
        opt.step()
    after = m.classification_error(bundle.test.x, bundle.test.y)
    print(f"disc-rbm digits test error {before:.4f} -> {after:.4f}")
    assert before > 0.5 and after < 0.1, (before, after)
    s = m.sample_class(torch.arange(10), steps=50, generator=torch.Generator().manual_seed(1))
    save_image_grid(s, (8, 8), tmp_path / "per_class.png")
    assert m.sample(4, torch.Generator().manual_seed(2)).shape == (4, 64)
