"""Checks shared by the tests of the directed latent-variable models (VAE, DLGM)."""

from __future__ import annotations

import torch

from genzoo.evaluation import importance_log_px


def fit_then_check_importance_estimate(model, x: torch.Tensor, params, exact: torch.Tensor,
                                       n_samples: int, seed: int) -> None:
    """Fit ``params`` for 150 Adam steps on ``x`` (so the proposal q(z|x) is a trained one: at
    random initialisation it can miss a narrow posterior, and importance sampling needs a
    proposal that covers it), then check the importance-sampled log p(x) against ``exact``
    (B,): within 4 Monte-Carlo standard errors on average, 0.05 nats per example, and above the
    ELBO of the same draws."""
    opt = torch.optim.Adam(params, lr=0.05)
    for step in range(150):
        opt.zero_grad()
        model.loss(x, torch.Generator().manual_seed(step))["loss"].backward()
        opt.step()
    est = importance_log_px(model, x, n_samples, torch.Generator().manual_seed(seed))
    se_mc = est.nll().diagnostics["stderr_mc"]
    diff = est.log_px - exact
    assert abs(float(diff.mean())) < 4 * se_mc + 1e-3, (diff, se_mc)
    assert float(diff.abs().max()) < 0.05
    assert bool((est.elbo < exact).all())
