"""The plug-in's own tests: genzoo's conformance checks, and the likelihood against
enumeration (sum_x p(x) = 1 over all 2^D binary vectors)."""

from __future__ import annotations

import torch
from genzoo_bernoulli_mixture import BernoulliMixture, BernoulliMixtureConfig

import genzoo.testing
from genzoo.ops.enumeration import binary_states


def test_conforms_to_genzoo_contracts(tmp_path):
    genzoo.testing.check_model("bernoulli-mixture", tmp_path)


def test_likelihood_sums_to_one_over_all_binary_vectors():
    d = 6
    model = BernoulliMixture(BernoulliMixtureConfig(n_visible=d, n_components=3)).double()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model.alpha.normal_(generator=g)
        model.logits.normal_(0.0, 2.0, generator=g)
    x = binary_states(torch.arange(2**d), d, torch.float64)  # every binary vector (2^D, D)
    assert abs(float(torch.logsumexp(model.log_prob(x), 0))) < 1e-12
    # Exact inpainting: with everything observed it returns x.
    everything = torch.ones(d, dtype=torch.bool)
    assert torch.equal(model.inpaint(x[:5], everything, g, n_samples=2)[1], x[:5])
