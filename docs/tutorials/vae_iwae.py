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
# # VAE, IWAE and the importance-sampled likelihood
#
# A variational auto-encoder (Kingma & Welling 2014) has a prior \(p(z) = \mathcal N(0, I)\), a
# decoder \(p_\theta(x \mid z)\) (Bernoulli pixels here) and an encoder
# \(q_\phi(z \mid x) = \mathcal N(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x))\). It is
# trained on the evidence lower bound
#
# \[
# \log p(x) \ge \mathcal L_1(x) = \mathbb E_{q(z \mid x)}
#   \left[\log p(x, z) - \log q(z \mid x)\right].
# \]
#
# The importance-weighted auto-encoder (Burda, Grosse & Salakhutdinov 2016) trains the same
# model on a tighter bound, with \(w_i = p(x, z_i) / q(z_i \mid x)\) and
# \(z_1, \dots, z_k \sim q(z \mid x)\):
#
# \[
# \mathcal L_k(x) = \mathbb E\left[\log \frac{1}{k} \sum_{i=1}^k w_i\right],
# \qquad \mathcal L_1 \le \mathcal L_k \le \log p(x).
# \]
#
# The same average, with many draws, is how genzoo *evaluates* every latent-variable model: the
# reported NLL is \(-\log \frac1k \sum_i w_i\) with \(k = 5000\) by default
# (`eval.is_samples`), beside the negative ELBO it can only improve on.

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import genzoo
from genzoo.evaluation import EvalConfig, evaluate, importance_log_px
from genzoo.utils.images import tile_images

torch.set_flush_denormal(True)  # as the command line does (see the README)
runs = Path(tempfile.mkdtemp(prefix="genzoo-tutorial-"))  # one run directory per model


# %% [markdown]
# ## Train a VAE and an IWAE
#
# The same small network (64 inputs, one hidden layer of 64 units, 8 latent dimensions) twice:
# once on the ELBO, once on the \(k = 5\) importance-weighted bound
# (`--set model.objective=iwae --set model.iwae_k=5` on the command line).

# %%
binary = {"binarize": "dynamic"}  # a fresh Bernoulli draw of the grey levels each epoch
net = {"hidden": (64,), "n_latent": 8}
adam = {"epochs": 25, "optimizer": "adam", "lr": 0.003, "progress": False}
vae, run = genzoo.fit("vae", "digits", out=runs / "vae", data=binary, model=net, train=adam)
iwae, _ = genzoo.fit("vae", "digits", out=runs / "iwae", data=binary,
                     model={**net, "objective": "iwae", "iwae_k": 5}, train=adam)
digits = run.bundle
x = digits.test.x
print(f"{len(x)} test digits of {digits.n_features} binary pixels")

# %% [markdown]
# Samples of each: \(z \sim p(z)\), then the decoder's pixel probabilities
# \(p_\theta(x = 1 \mid z)\) shown as grey levels (a binary sample would draw each pixel
# from them).

# %%
z = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
fig, axes = plt.subplots(1, 3, figsize=(12, 4))
with torch.no_grad():
    grids = [("test digits", x[:64]), ("VAE", vae.decoder_mean(z)),
             ("IWAE, k = 5", iwae.decoder_mean(z))]
for ax, (title, images) in zip(axes, grids):
    ax.imshow(tile_images(images, (8, 8), nrow=8), cmap="gray", vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## The estimate as k grows
#
# `importance_log_px` returns, per test example, \(\log \hat p(x)\), the ELBO and the effective
# sample size of the weights. `.nll()` averages them: its standard error is the spread over the
# test examples; `stderr_mc` in its diagnostics is the Monte Carlo error of the average itself
# (by the delta method), which is what more draws reduce.

# %%
g = torch.Generator().manual_seed(0)
print(f"{'model':>5} {'k':>5} | {'NLL (nats)':>16} | {'MC error':>8} | {'-ELBO':>6} | "
      f"{'ESS':>6}")
ks = (1, 3, 10, 30, 100, 300, 1000)
curves = {}  # model name -> one estimate per k
for name, model in (("VAE", vae), ("IWAE", iwae)):
    curves[name] = []
    for k in ks:
        est = importance_log_px(model, x, k, g).nll()
        curves[name].append(est)
        d = est.diagnostics
        mc = f"{d['stderr_mc']:8.3f}" if k > 1 else f"{'-':>8}"
        print(f"{name:>5} {k:>5} | {est.value:7.2f} ± {est.stderr:6.2f} | {mc} | "
              f"{d['elbo_nats']:6.2f} | {d['is_ess']:6.1f}")

# %% [markdown]
# As a picture: the estimated NLL against \(k\), with its Monte Carlo error (the test-set
# spread, the same for every point of a curve, is left out), and each model's \(-\)ELBO
# dotted.

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for name, ests in curves.items():
    mc = [e.diagnostics.get("stderr_mc", 0.0) if k > 1 else 0.0 for k, e in zip(ks, ests)]
    line = ax.errorbar(ks, [e.value for e in ests], yerr=mc, fmt="o-", capsize=3, label=name)
    ax.axhline(ests[0].diagnostics["elbo_nats"], color=line[0].get_color(), ls=":",
               label=f"{name} -ELBO")
ax.set(xscale="log", xlabel="importance samples k", ylabel="test NLL estimate (nats)",
       title="the importance-sampled NLL as k grows")
ax.legend()
plt.show()

# %% [markdown]
# With \(k = 1\) the estimate is the ELBO itself. Each tenfold increase in \(k\) lowers the
# estimated NLL, quickly at first: \(\log \frac1k \sum w_i\) is a *stochastic lower bound* on
# \(\log p(x)\) (Jensen), so in expectation the NLL estimate is an upper bound that tightens as
# \(k\) grows. The effective sample size shows how far the encoder is from the true posterior:
# the IWAE, trained to make *some* of its \(k\) draws good rather than all of them, tends to
# have the lower ESS and the looser ELBO, yet the better likelihood.
#
# Differences between the two models that are small against the test-set standard error are
# not findings; compare models on the *same* examples, where most of that spread is shared.

# %% [markdown]
# ## What `genzoo evaluate` reports
#
# `evaluate` picks importance sampling from the model's capabilities; `eval.is_samples=5000`
# is the default (the k of the published numbers), 500 here to keep the tutorial quick.

# %%
r = evaluate(iwae, digits, EvalConfig(is_samples=500))
print(f"{r.estimator}: test NLL = {r.nll.value:.2f} ± {r.nll.stderr:.2f} nats, "
      f"-ELBO = {r.nll.diagnostics['elbo_nats']:.2f}")
