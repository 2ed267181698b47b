"""Issue 25's floors: forward and reverse AIS of a 784-500 RBM and importance sampling (k
draws) of a 784-200-200-50 VAE at eval.dtype=mixed against float64 and against the bare float32
products each needs; Trainer steps of that VAE (ELBO, and the IWAE bound with k = 5) at batch
20 against a plain PyTorch loop and Pyro's SVI on the same networks. Four results
(``estimator_floors_ais``, ``_is``, ``_step``, ``_step_iwae``); the row says what is timed.

    python benchmarks/run.py estimator_floors -- --ais-betas 1000 --n-test 1000   # minutes
    python benchmarks/run.py estimator_floors --smoke                             # seconds"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator

import common
import torch
from speed.vae_pyro_comparison import pyro_trainer

from genzoo.data import DataConfig
from genzoo.evaluation import EvalConfig, ais_log_partition, importance_nll, sm08_schedule
from genzoo.evaluation.ais import reverse_ais_log_partition
from genzoo.models.boltzmann.rbm import RBM, RBMConfig
from genzoo.models.directed.vae import VAE, VAEConfig
from genzoo.training.timing import timed_fit
from genzoo.utils.provenance import busy_notes
from genzoo.utils.timing import interleaved_medians, limit_threads, median_ratios

GOALS = {"ais": {"bare products": 1.5}, "is": {"bare products": 1.5},  # genzoo / peer at most
         **{k: {"plain loop": 1.3, "pyro": 1.0} for k in ("step", "step_iwae")}}  # issue 25


def _ais(args, x, figures):
    g = torch.Generator().manual_seed(args.seed)
    m = RBM(RBMConfig(n_visible=784, n_hidden=500, init_std=0.05), generator=g)
    m.init_from_data(x, g)
    base, betas, n = m.ais_base(x), sm08_schedule(args.ais_betas), args.ais_runs
    v, h, W, s = x[:n].contiguous(), torch.rand(n, 500), m.W.detach(), EvalConfig(ais_runs=n)

    def estimator(dtype):  # in the shards of genzoo evaluate (eval.ais_shard)
        def go():
            g = torch.Generator().manual_seed(args.seed)
            f = ais_log_partition(m, base, betas, n, g, dtype, s.ais_shard)
            r = reverse_ais_log_partition(m, base, betas, base.sample(n, g), g, dtype, s.ais_shard)
            figures[f"log_z_{dtype}".replace("torch.", "")] = [f.value, f.stderr, r.value, r.stderr]
        return go

    def products():
        for _ in range(2 * (len(betas) - 1)):
            torch.mm(v, W), torch.mm(h, W.T)
    return {"genzoo": estimator(torch.float32), "genzoo-float64": estimator(torch.float64),
            "bare products": products}


def _is(args, x, figures):
    m = VAE(VAEConfig(n_visible=784, hidden=(200, 200), n_latent=50),
            generator=torch.Generator().manual_seed(args.seed))
    xt, k = x[:args.n_test], args.is_samples
    rows = max(1, 2000 // min(len(xt), 1000)) * min(len(xt), 1000)  # the estimator's blocks
    z = torch.randn(rows, 50)

    def estimator(dtype):
        def go():
            r = importance_nll(m, xt, EvalConfig(is_samples=k, dtype=dtype, seed=args.seed))
            figures[f"nll_{dtype}"] = [r["nll_nats"], r["stderr_mc"]]
        return go

    @torch.no_grad()
    def products():
        m.encoder(xt)
        for _ in range(-(-len(xt) * k // rows)):
            m.decoder(z)
    return {"genzoo": estimator("mixed"), "genzoo-float64": estimator("float64"),
            "bare products": products}


def _steps(args, x, figures, k=1):
    data = DataConfig(name="digits" if args.smoke else "binarized-mnist", n_eval=20,
                      binarize="threshold" if args.smoke else "none", n_train=20 * args.n_steps)
    bundle = common.offline_data(data)
    x = bundle.train.x.float()
    objective = {} if k == 1 else {"objective": "iwae", "iwae_k": k}

    def make():
        return VAE(VAEConfig(n_visible=x.shape[1], hidden=(200, 200), n_latent=50, **objective),
                   generator=torch.Generator().manual_seed(args.seed))

    def genzoo():
        return timed_fit(make(), "vae", data, bundle, tempfile.mkdtemp(), epochs=1, seed=args.seed,
                         batch_size=20, lr=1e-3, optimizer="adam", validate_every=10**9)[0]

    def plain():
        m = make()
        opt, g = torch.optim.Adam(m.parameters(), lr=1e-3), torch.Generator().manual_seed(0)
        for xb in x.split(20):
            opt.zero_grad()
            m.loss(xb, g)["loss"].backward()
            opt.step()

    def pyro():  # Pyro's example model with these layers; its own epoch loop times itself
        ns = argparse.Namespace(seed=args.seed, latent=50)
        return pyro_trainer(x, ns, (200, 200), torch.nn.Tanh, batch=20, k=k)[0][0]()
    return {"genzoo": genzoo, "plain loop": plain, "pyro": pyro}


def run(row: dict, args: argparse.Namespace, dirs: common.RunDirs) -> Iterator[dict]:
    limit_threads(args.threads)
    x, data = common.binarized_mnist_rows(max(args.n_test, 20 * args.n_steps, 1000), args.smoke,
                                          args.seed)
    for kind, jobs in (("ais", _ais), ("is", _is), ("step", _steps),
                       ("step_iwae", lambda *a: _steps(*a, k=5))):
        figures: dict = {}
        timings = interleaved_medians(jobs(args, x, figures), args.repetitions, row["descriptions"])
        for name, t in timings.items():
            t["dtype"] = "float64" if "float64" in name else "float32"
        ratios = {peer: r for n, r in median_ratios(timings).items()
                  if (peer := n.removeprefix("genzoo / ")) in GOALS[kind]}
        why = [f"{n} did not run ({t['reason']})" for n, t in timings.items() if "reason" in t]
        why += [f"genzoo / {n} = {r:.2f} > {g}" for n, r in ratios.items() if r > (g := GOALS[kind][n])]
        yield common.speed_result(
            row, args, f"estimator_floors_{kind}", f"{row['title']}: {kind}", timings,
            common.acceptance(" and ".join(f"genzoo / {n} <= {g}" for n, g in GOALS[kind].items()),
                              why, ratio=max(ratios.values(), default=None)),
            busy_notes("during the run", "compare the ratios only"), data=data, extra=figures)
