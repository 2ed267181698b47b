"""Reweighted wake-sleep on a tiny SBN against brute-force enumeration of its exact posterior:
with many draws the surrogate's gradients are E_{p(h|x)}[grad log p(x, h)] = grad log p(x)
for the generative parameters and E_{p(h|x)}[grad log q(h|x)] for the recognition ones (the
wake-phase q update, importance weights normalised per example); the sleep-phase term is
E_{p(x, h)}[grad log q(h|x)]; ``rws_sleep_every`` N puts it on every N-th training batch with
N times the dreams and weight N."""

from __future__ import annotations

import pytest
import torch

from genzoo.core.errors import ConfigError
from genzoo.models.directed.sbn import SBN, SBNConfig
from genzoo.ops.enumeration import binary_states


def _tiny(seed: int = 0, **kw) -> SBN:
    # D = 3, h_1 (2,), h_2 (1,): 2^3 latent states; init_std 1 gives a posterior far from q.
    cfg = SBNConfig(n_visible=3, hidden=(2, 1), training="rws", init_std=1.0, **kw)
    return SBN(cfg, torch.Generator().manual_seed(seed)).double()


def _grads(model: SBN, value: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    value.backward()
    return {k: torch.zeros_like(p) if p.grad is None else p.grad.clone()
            for k, p in model.named_parameters()}


def _exact_rws_direction(model: SBN, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """-(mean over x of grad log p(x) for theta and E_{p(h|x)}[grad log q(h|x)] for phi), by
    enumerating the 2^H latent states: the limit of the RWS surrogate's gradient."""
    n_h = sum(model.sizes)
    z = binary_states(torch.arange(2**n_h), n_h, torch.float64)  # (S, H)
    z = z.unsqueeze(1).expand(-1, len(x), -1)  # (S, B, H)
    log_joint = model.log_joint(x, z)  # (S, B)
    posterior = torch.softmax(log_joint.detach(), 0)
    log_q = model.proposal(x).log_prob(z)  # (S, B)
    target = torch.logsumexp(log_joint, 0).mean() + (posterior * log_q).sum(0).mean()
    return _grads(model, -target)


def test_rws_gradient_converges_to_the_exact_posterior_expectations():
    model = _tiny(rws_k=200_000, rws_sleep=False)
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    exact = _exact_rws_direction(model, x)
    got = _grads(model, model.loss(x, torch.Generator().manual_seed(3))["loss"])
    for k, v in exact.items():
        # Monte Carlo error of K = 2e5 draws: well under 1e-2 of gradients of order 0.1-1.
        assert torch.allclose(got[k], v, atol=1e-2, rtol=2e-2), (k, got[k], v)
    # The recognition gradient is not the gradient of log p (it is q's own update).
    assert not torch.allclose(exact["recognition.0.bias"], torch.zeros(2, dtype=torch.float64),
                              atol=1e-3)


def test_sleep_term_is_the_expectation_of_grad_log_q_under_the_model():
    model = _tiny()
    n_h = sum(model.sizes)
    z = binary_states(torch.arange(2**n_h), n_h, torch.float64)  # (S, H)
    xs = binary_states(torch.arange(2**3), 3, torch.float64)  # (X, D)
    zz = z.unsqueeze(1).expand(-1, len(xs), -1)
    with torch.no_grad():
        joint = torch.softmax(model.log_joint(xs, zz).reshape(-1), 0).reshape(len(z), len(xs))
    exact = _grads(model, (joint * model.proposal(xs).log_prob(zz)).sum())
    got = _grads(model, model._sleep_term(400_000, torch.Generator().manual_seed(5)))
    for k in ("recognition.0.weight", "recognition.0.bias", "recognition.1.weight"):
        assert torch.allclose(got[k], exact[k], atol=1e-2), (k, got[k], exact[k])
    assert all(float(got[k].abs().max()) == 0 for k in got if not k.startswith("recognition"))


def _q_grads(model: SBN, x: torch.Tensor, seed: int) -> torch.Tensor:
    g = _grads(model, model.loss(x, torch.Generator().manual_seed(seed))["loss"])
    return torch.cat([g[k].flatten() for k in sorted(g) if k.startswith("recognition")])


def test_sleep_every_n_puts_the_sleep_term_on_every_nth_training_batch_with_weight_n():
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
    every = _tiny(rws_k=4, rws_sleep_every=2)
    wake_only = _tiny(rws_k=4, rws_sleep=False)
    each = _tiny(rws_k=4)
    # Batch 1: no sleep term, the wake update alone.
    assert torch.equal(_q_grads(every, x, 0), _q_grads(wake_only, x, 0))
    assert int(every.rws_batches) == 1
    # Batch 2: wake + 2 * (mean of log q over 2 * B dreams), the dreams drawn after the wake
    # draws from the same stream, as for N = 1 with 2 * B dreams.
    g = torch.Generator().manual_seed(1)
    q = every.proposal(x)
    z = q.sample((4,), g)
    with torch.no_grad():
        w = torch.softmax(every.log_joint(x, z) - q.log_prob(z), 0)
    expected = _grads(every, -((w * q.log_prob(z)).sum(0).mean()
                               + 2 * every._sleep_term(2 * len(x), g)))
    got = _grads(every, every.loss(x, torch.Generator().manual_seed(1))["loss"])
    assert int(every.rws_batches) == 2
    for k, v in expected.items():
        if k.startswith("recognition"):
            assert torch.allclose(got[k], v, atol=1e-12), k
    # Validation (eval mode, no gradients) neither counts a batch nor dreams.
    every.eval()
    with torch.no_grad():
        every.loss(x, torch.Generator().manual_seed(2))
    assert int(every.rws_batches) == 2
    # N = 1 keeps no counter (old checkpoints load) and dreams on every batch.
    assert "rws_batches" not in dict(each.named_buffers())
    assert not torch.equal(_q_grads(each, x, 0), _q_grads(wake_only, x, 0))


def test_sleep_every_is_validated():
    with pytest.raises(ConfigError, match="rws_sleep_every"):
        SBNConfig(rws_sleep_every=0)


def test_nll_iwae_is_minus_the_valid_samples_bound_and_nears_the_exact_nll():
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]],
                     dtype=torch.float64).repeat(20, 1)  # (60, 3)
    five = _tiny().validation_metrics(x)
    assert five["nll_iwae"] == pytest.approx(-five["iwae_5"])
    model = _tiny(valid_samples=20_000)  # 20,000 draws: 10 examples per chunk, 6 chunks
    figures = model.validation_metrics(x)
    n_h = sum(model.sizes)
    z = binary_states(torch.arange(2**n_h), n_h, torch.float64).unsqueeze(1).expand(-1, 60, -1)
    with torch.no_grad():
        exact_nll = -float(torch.logsumexp(model.log_joint(x, z), 0).mean())
    assert exact_nll <= figures["nll_iwae"] < exact_nll + 0.01  # a bound, tight with 2e4 draws
    assert figures["nll_iwae"] < -figures["iwae_5"]  # more draws, a tighter bound
    with pytest.raises(ConfigError, match="valid_samples"):
        SBNConfig(valid_samples=0)
