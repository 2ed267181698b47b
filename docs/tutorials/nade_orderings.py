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
import dataclasses
import math
import tempfile

import torch

from genzoo.core.registry import get_model_spec
from genzoo.data import load_data
from genzoo.evaluation import EvalConfig, evaluate
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


def nll(log_px):
    """Mean NLL in nats and its standard error over the examples."""
    return float(-log_px.mean()), float(log_px.std() / math.sqrt(len(log_px)))


# %% [markdown]
# ## A NADE in index order, and an order-agnostic deep NADE
#
# Both on the binarized 8x8 digits, trained with Adam for a few epochs.

# %%
common = ["data.name=digits", "data.binarize=dynamic", "train.optimizer=adam",
          "train.lr=0.003", "train.progress=false"]
nade, digits = train("nade", common + ["model.n_hidden=32", "train.epochs=10"])
deep, _ = train("deep-nade", common + ["model.hidden=32,32", "train.epochs=20"])
x = digits.test.x.double()

r = evaluate(nade, digits, EvalConfig())
print(f"NADE, index order:    test NLL = {r.nll.value:.2f} ± {r.nll.stderr:.2f} nats "
      f"({r.estimator})")

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
for k in (1, 2, 4, 8, 16):
    with torch.no_grad():
        ens = deep.log_prob_ensemble(x, orderings[:k])
    value, se = nll(ens)
    gain, gain_se = nll(first - ens)
    print(f"{k:>3} | {value:6.2f} ± {se:5.2f} | {gain:8.3f} ± {gain_se:5.3f} nats")

# %% [markdown]
# `genzoo evaluate RUN --set model.n_eval_orderings=K` reports the same ensemble for a trained
# run (the default ordering first, then K - 1 drawn from `model.ensemble_seed`); Uria et al.
# report ensembles of 128 orderings.
