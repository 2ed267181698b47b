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
# # An RBM and its AIS bracket
#
# A restricted Boltzmann machine defines \(p(v) = e^{-F(v)} / Z\) with the free energy
# \(F(v) = -b^\top v - \sum_j \operatorname{softplus}(c_j + (v^\top W)_j)\). \(F\) is cheap;
# the partition function \(Z = \sum_v e^{-F(v)}\) is a sum over \(2^D\) states, so the
# test log-likelihood \(-F(v) - \log Z\) hangs on an estimate of \(\log Z\).
#
# genzoo estimates it by annealed importance sampling (AIS, Salakhutdinov & Murray 2008), run
# twice: **forward** from a base-rate model to the RBM, which tends to *underestimate*
# \(\log Z\) (and so flatters the NLL), and **reverse** from samples of the RBM back to the
# base model, which tends to *overestimate* it. The two bracket the true value when the
# chains mix. Here the RBM is small enough (16 hidden units) for \(\log Z\) to be enumerated
# exactly, so we can watch the bracket close on the truth as the number of inverse
# temperatures grows.
#
# Everything runs on scikit-learn's bundled 8x8 digits, binarized afresh each epoch.

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import genzoo
from genzoo.evaluation import EvalConfig, evaluate, exact_log_partition
from genzoo.utils.images import tile_images

torch.set_flush_denormal(True)  # as the command line does (see the README)
runs = Path(tempfile.mkdtemp(prefix="genzoo-tutorial-"))  # one run directory per model

# %% [markdown]
# ## Train a small RBM
#
# 64 visible units, 16 hidden units, PCD-1 with 100 persistent chains, 20 epochs. `genzoo.fit`
# takes the model's name, the data (here the built-in set's name; an array or a file works the
# same way) and the settings of each config section as a dict; it returns the trained model and
# its run, a normal run directory (`genzoo evaluate` works on it). The command line
# `genzoo train rbm --data digits --set model.n_hidden=16 --set model.persistent=true ...`
# trains the same model.

# %%
rbm, run = genzoo.fit(
    "rbm", "digits", out=runs / "rbm",
    model={"n_hidden": 16, "persistent": True},
    data={"binarize": "dynamic"},  # a fresh Bernoulli draw of the grey levels each epoch
    train={"epochs": 20, "lr": 0.05, "optimizer": "sgd", "progress": False},
)
digits = run.bundle
print(f"{digits.n_features} visible units, {rbm.config.n_hidden} hidden units, "
      f"{len(digits.test.x)} test digits")

# %% [markdown]
# Test digits (left) beside samples of the RBM (right), drawn by Gibbs chains started from the
# visible base rates (`rbm.sample`):

# %%
g = torch.Generator().manual_seed(0)
with torch.no_grad():
    samples = rbm.sample(64, generator=g)
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
for ax, (title, x) in zip(axes, [("test digits", digits.test.x[:64]), ("RBM samples", samples)]):
    ax.imshow(tile_images(x, (8, 8), nrow=8), cmap="gray", vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## The truth: \(\log Z\) by enumeration
#
# With the 16 hidden units enumerated (\(2^{16}\) states) and the visible units summed out
# analytically, \(\log Z\) is exact (standard error 0).

# %%
exact = exact_log_partition(rbm)
print(f"exact log Z = {exact.value:.3f} nats over {exact.n_samples} hidden states")

# %% [markdown]
# ## Forward and reverse AIS at several lengths
#
# `eval.exact_max_units=0` forbids enumeration, so `evaluate` estimates \(\log Z\) by forward
# and reverse AIS (100 runs each, the Salakhutdinov & Murray schedule of temperatures,
# reverse runs started from 200 Gibbs steps of fresh chains). Each row prints both estimates
# with their standard errors, and the test NLL that each implies.

# %%
print(f"{'betas':>6} | {'forward log Z':>16} | {'reverse log Z':>16} | {'exact':>8} | "
      f"{'NLL fwd':>7} | {'NLL rev':>7}")
lengths = (10, 30, 100, 300, 1000)
bracket = []  # (forward, reverse) log Z estimates, one pair per length
for n_betas in lengths:
    cfg = EvalConfig(exact_max_units=0, ais_betas=n_betas, ais_runs=100, reverse_burn_in=200)
    r = evaluate(rbm, digits, cfg)
    fwd, rev = r.log_z, r.log_z_reverse
    bracket.append((fwd, rev))
    print(f"{n_betas:>6} | {fwd.value:8.3f} ± {fwd.stderr:5.3f} | {rev.value:8.3f} ± "
          f"{rev.stderr:5.3f} | {exact.value:8.3f} | {r.nll.value:7.2f} | "
          f"{r.nll_reverse.value:7.2f}")
    for w in r.warnings:
        print("   warning:", w[:110], "...")

# %% [markdown]
# The same bracket as a picture: each estimate with one standard error either side, the exact
# value dashed.

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for i, (label, shift) in enumerate((("forward AIS", 0.96), ("reverse AIS", 1.04))):
    values = [pair[i].value for pair in bracket]
    errors = [pair[i].stderr for pair in bracket]
    ax.errorbar([n * shift for n in lengths], values, yerr=errors, fmt="o-", capsize=3,
                label=label)
ax.axhline(exact.value, color="k", ls="--", label="exact (enumeration)")
ax.set(xscale="log", xlabel="number of inverse temperatures", ylabel="log Z (nats)",
       title="forward and reverse AIS against the exact log Z")
ax.legend()
plt.show()

# %% [markdown]
# In expectation the forward estimate lies below the exact value and the reverse one above it;
# a single estimate can land on the other side by a standard error or so, as the table may
# show. The gap to the exact value shrinks as the path gets longer, and so do the standard
# errors. When forward and reverse disagree by more than three combined standard errors (and
# 1 nat), the report carries a warning (printed under its row): an NLL from forward AIS alone
# would then be too good. On a large RBM there is no exact value to compare with, and the
# agreement of the two directions is all there is to go on.

# %% [markdown]
# ## The NLL with the exact \(\log Z\)
#
# With enumeration allowed (the default when the smaller layer has at most 20 units)
# `evaluate` uses the exact value; the NLL's standard error is then only the spread over the
# test examples.

# %%
r = evaluate(rbm, digits, EvalConfig())
print(f"test NLL = {r.nll.value:.2f} ± {r.nll.stderr:.2f} nats ({r.estimator})")
