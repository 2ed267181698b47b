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
import dataclasses
import tempfile

import torch

from genzoo.core.registry import get_model_spec
from genzoo.data import load_data
from genzoo.evaluation import EvalConfig, evaluate, importance_log_px
from genzoo.run_config import RunConfig
from genzoo.training import Trainer

torch.set_flush_denormal(True)  # as the command line does (see the README)


def train(name, overrides):
    """Train registered model `name` with `--set`-style overrides; return (model, bundle)."""
    cfg = RunConfig.default(name).with_overrides(overrides)
    bundle = load_data(cfg.data)
    cfg = dataclasses.replace(cfg, model=cfg.model.replace(n_visible=bundle.n_features))
    torch.manual_seed(cfg.train.seed)  # nn.Module initialisation draws from the global generator
    model = get_model_spec(name).build(cfg.model)
    Trainer(model, cfg, bundle, tempfile.mkdtemp(prefix="genzoo-")).fit()
    return model.eval(), bundle


# %% [markdown]
# ## Train a VAE and an IWAE
#
# The same small network (64 inputs, one hidden layer of 64 units, 8 latent dimensions) twice:
# once on the ELBO, once on the \(k = 5\) importance-weighted bound
# (`--set model.objective=iwae --set model.iwae_k=5` on the command line).

# %%
common = ["data.name=digits", "data.binarize=dynamic", "model.hidden=64", "model.n_latent=8",
          "train.epochs=25", "train.optimizer=adam", "train.lr=0.003", "train.progress=false"]
vae, digits = train("vae", common)
iwae, _ = train("vae", common + ["model.objective=iwae", "model.iwae_k=5"])
x = digits.test.x
print(f"{len(x)} test digits of {digits.n_features} binary pixels")

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
for name, model in (("VAE", vae), ("IWAE", iwae)):
    for k in (1, 10, 100, 1000):
        est = importance_log_px(model, x, k, g).nll()
        d = est.diagnostics
        mc = f"{d['stderr_mc']:8.3f}" if k > 1 else f"{'-':>8}"
        print(f"{name:>5} {k:>5} | {est.value:7.2f} ± {est.stderr:6.2f} | {mc} | "
              f"{d['elbo_nats']:6.2f} | {d['is_ess']:6.1f}")

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
