# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # NADE and ensembles of orderings
#
# An autoregressive model writes \(p(x) = \prod_d p(x_{o_d} \mid x_{o_{<d}})\) for an ordering
# \(o\) of the \(D\) variables, so its likelihood is exact: no partition function, no bound.
# NADE (Larochelle & Murray 2011) computes every conditional with one shared hidden layer,
#
# \[
# h_d = \sigma\!\left(c + W_{:, o_{<d}}\, x_{o_{<d}}\right), \qquad
# p(x_{o_d} = 1 \mid x_{o_{<d}}) = \sigma\!\left(b_{o_d} + V_{o_d} h_d\right),
# \]
#
# for one fixed ordering. The order-agnostic deep NADE (Uria, Murray & Larochelle 2014) trains
# one network for *every* ordering at once; each ordering \(o_k\) then gives its own exact
# model \(p_{o_k}\), and their mixture \(p(x) = \frac1K \sum_k p_{o_k}(x)\) is a better one,
# still exact.

# %%
import math
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import genzoo
from genzoo.evaluation import EvalConfig, evaluate
from genzoo.utils.images import tile_images

torch.set_flush_denormal(True)  # as the command line does (see the README)
runs = Path(tempfile.mkdtemp(prefix="genzoo-tutorial-"))  # one run directory per model


def nll(log_px):
    """Mean NLL in nats and its standard error over the examples."""
    return float(-log_px.mean()), float(log_px.std() / math.sqrt(len(log_px)))


# %% [markdown]
# ## A NADE in index order, and an order-agnostic deep NADE
#
# Both on the binarized 8x8 digits, trained with Adam for a few epochs.

# %%
adam = {"optimizer": "adam", "lr": 0.003, "progress": False}
binary = {"binarize": "dynamic"}
nade, run = genzoo.fit("nade", "digits", out=runs / "nade", data=binary,
                       model={"n_hidden": 32}, train={**adam, "epochs": 10})
deep, _ = genzoo.fit("deep-nade", "digits", out=runs / "deep-nade", data=binary,
                     model={"hidden": (32, 32)}, train={**adam, "epochs": 20})
digits = run.bundle
x = digits.test.x.double()

r = evaluate(nade, digits, EvalConfig())
print(f"NADE, index order:    test NLL = {r.nll.value:.2f} ± {r.nll.stderr:.2f} nats "
      f"({r.estimator})")

# %% [markdown]
# Samples are exact too: each pixel is drawn from its conditional given the pixels before it,
# in the model's ordering, one pass and no Markov chain.

# %%
g = torch.Generator().manual_seed(0)
with torch.no_grad():
    grids = [("NADE", nade.sample(64, generator=g)), ("deep NADE", deep.sample(64, generator=g))]
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
for ax, (title, images) in zip(axes, grids):
    ax.imshow(tile_images(images, (8, 8), nrow=8), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"{title} samples")
    ax.axis("off")
plt.show()

# %% [markdown]
# ## One network, many orderings
#
# `log_prob(x, ordering=o)` is the exact log-likelihood in ordering `o`. The order-agnostic
# network was trained on all of them at once, so each ordering is a somewhat different model:

# %%
deep = deep.double()
g = torch.Generator().manual_seed(0)
orderings = torch.stack([torch.arange(digits.n_features)]
                        + [torch.randperm(digits.n_features, generator=g) for _ in range(15)])
with torch.no_grad():
    per_ordering = torch.stack([deep.log_prob(x, ordering=o) for o in orderings])  # (K, N)
single = [nll(lp)[0] for lp in per_ordering]
print(f"deep NADE, 16 single orderings: test NLL from {min(single):.2f} to "
      f"{max(single):.2f} nats (mean {sum(single) / len(single):.2f})")

# %% [markdown]
# ## Ensembles
#
# The ensemble of the first \(K\) orderings is \(\log \frac1K \sum_k p_{o_k}(x)\), computed
# by log-mean-exp (`log_prob_ensemble`): never by averaging the conditionals, which would not be
# a normalised distribution. Since \(\log\) is concave, the ensemble's log-likelihood is at
# least the average of its members'. The gain is measured on the same test examples, so its
# standard error (that of the per-example differences) is far smaller than that of either NLL.

# %%
first = per_ordering[0]
print(f"{'K':>3} | {'ensemble NLL':>15} | {'gain over ordering 1':>22}")
ks = (1, 2, 4, 8, 16)
gains = []  # (gain, its standard error) per K
for k in ks:
    with torch.no_grad():
        ens = deep.log_prob_ensemble(x, orderings[:k])
    value, se = nll(ens)
    gain, gain_se = nll(first - ens)
    gains.append((gain, gain_se))
    print(f"{k:>3} | {value:6.2f} ± {se:5.2f} | {gain:8.3f} ± {gain_se:5.3f} nats")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
ax.errorbar(ks, [gn for gn, _ in gains], yerr=[se for _, se in gains], fmt="o-", capsize=3)
ax.set(xscale="log", xticks=ks, xticklabels=[str(k) for k in ks],
       xlabel="orderings in the ensemble K", ylabel="NLL gain over ordering 1 (nats)",
       title="an ensemble of orderings of one deep NADE")
plt.show()

# %% [markdown]
# `genzoo evaluate RUN --set model.n_eval_orderings=K` reports the same ensemble for a trained
# run (the default ordering first, then K - 1 drawn from `model.ensemble_seed`); Uria et al.
# report ensembles of 128 orderings.
