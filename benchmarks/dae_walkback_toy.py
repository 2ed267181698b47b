"""DAE chain on a 2-D toy: how close the chain's samples come to the data, with and without
walkback (Bengio, Yao, Alain & Vincent 2013, section 4), measured by the unbiased MMD^2.

The toy is a ring of 8 Gaussians (radius 2, component std 0.1; neighbouring means 1.53
apart). The DAE has Gaussian corruption x~ = x + noise * eps and a Gaussian reconstruction
P(x|x~) = N(g(f(x~)), diag sigma^2) with a learned per-unit sigma; it is trained with Adam on
fresh toy draws, plain (K = 1) or with walkback K > 1 at the SAME corruption level. Then
``chains`` parallel chains start from N(0, 2^2 I) (wide, so regions far from the data are
visited), run ``burn_in`` steps, and the draws x_t at ``keep`` times ``thin`` steps apart are
pooled. Their unbiased MMD^2 (genzoo.evaluation.mmd, Gaussian kernels of std 0.1, 0.3, 1) to
a fresh data sample of the same size, with a permutation p-value, is the figure; the MMD^2
between two independent data samples of that size is the yardstick. Each setting is run at
two training budgets (1500 and 8000 steps), since walkback's advantage is one of training
efficiency: the plain DAE's spurious modes also fade with long enough training.

    python benchmarks/dae_walkback_toy.py            # about 15 minutes of one core
    python benchmarks/dae_walkback_toy.py --smoke    # seconds; temp dir
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

BENCHMARK = "dae_walkback_toy"
_BYAV = ("Bengio, Yao, Alain & Vincent (2013), Generalized denoising auto-encoders as "
         "generative models, NIPS")
SIGMAS = (0.1, 0.3, 1.0)
FULL = {"noises": [0.05, 0.1, 0.2, 0.3], "walkbacks": [1, 2, 4], "seeds": [0, 1, 2],
        "budgets": [1500, 8000], "chains": 500, "burn_in": 200, "thin": 20, "keep": 3,
        "n_hidden": 64, "batch": 128, "lr": 3e-3, "permutations": 200, "data_pairs": 10}
SMOKE = {"noises": [0.1], "walkbacks": [1, 2], "seeds": [0], "budgets": [30], "chains": 50,
         "burn_in": 10, "thin": 5, "keep": 2, "n_hidden": 16, "batch": 64, "lr": 3e-3,
         "permutations": 20, "data_pairs": 2}


def ring(n: int, generator, k: int = 8, radius: float = 2.0, std: float = 0.1):
    """(n, 2) draws from the ring of ``k`` equally weighted Gaussians."""
    import torch

    comp = torch.randint(0, k, (n,), generator=generator)
    angle = 2 * math.pi * comp / k
    mu = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
    return mu + std * torch.randn(n, 2, generator=generator)


def train(noise: float, walkback: int, seed: int, grid: dict, steps: int):
    """A DAE trained ``steps`` Adam steps on fresh ring draws; returns (model, generator)."""
    import torch

    from genzoo.models.markov.dae import DAE, DAEConfig

    g = torch.Generator().manual_seed(seed)
    cfg = DAEConfig(n_visible=2, n_hidden=grid["n_hidden"], corruption="gaussian",
                    noise_level=noise, reconstruction="gaussian", walkback=walkback,
                    sample_output="draw")
    model = DAE(cfg, generator=g)
    model.init_from_data(ring(2000, g))
    opt = torch.optim.Adam(model.parameters(), lr=grid["lr"])
    for _ in range(steps):
        loss = model.loss(ring(grid["batch"], g), g)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, g


def chain_draws(model, g, grid: dict):
    """(chains * keep, 2) pooled chain states after burn-in, ``thin`` steps apart."""
    import torch

    x0 = 2.0 * torch.randn(grid["chains"], 2, generator=g)
    last = grid["burn_in"] + grid["thin"] * (grid["keep"] - 1)
    states = model.chain(x0, last, g, output="draw")
    return states[[grid["burn_in"] + grid["thin"] * i for i in range(grid["keep"])]].reshape(-1, 2)


def off_mode_fraction(x, radius: float = 2.0, k: int = 8, within: float = 0.4) -> float:
    """Fraction of the points x (n, 2) farther than ``within`` (4 component stds) from every
    component mean: the mass the chain puts in spurious places."""
    import torch

    angle = 2 * math.pi * torch.arange(k, dtype=x.dtype) / k
    mu = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
    return float((torch.cdist(x, mu).min(1).values > within).to(x.dtype).mean())


def main(argv: list[str] | None = None) -> int:
    import torch

    from genzoo.evaluation.mmd import mmd, mmd_permutation_test

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny sweep; written to a temp dir")
    p.add_argument("--out", type=Path, default=None, help="results directory")
    for key, kind in (("noises", float), ("walkbacks", int), ("budgets", int), ("seeds", int)):
        p.add_argument(f"--{key}", type=lambda v, kind=kind: [kind(a) for a in v.split(",")],
                       default=None, help=f"comma-separated {key} (overrides the grid)")
    args = p.parse_args(argv)
    grid = dict(SMOKE if args.smoke else FULL)
    for key in ("noises", "walkbacks", "budgets", "seeds"):
        if getattr(args, key) is not None:
            grid[key] = getattr(args, key)
    out = args.out or (Path(tempfile.mkdtemp(prefix="genzoo-bench-smoke-")) if args.smoke
                       else _common.RESULTS_DIR)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    n = grid["chains"] * grid["keep"]
    gd = torch.Generator().manual_seed(12345)
    # The yardstick: MMD_u^2 between two independent data samples of the compared size.
    null = [float(mmd(ring(n, gd).double(), ring(n, gd).double(), SIGMAS))
            for _ in range(grid["data_pairs"])]
    rows = []
    for steps, noise, k in [(b, nz, k) for b in grid["budgets"] for nz in grid["noises"]
                            for k in grid["walkbacks"]]:
        per_seed = []
        for seed in grid["seeds"]:
            model, g = train(noise, k, seed, grid, steps)
            draws = chain_draws(model, g, grid)
            est = mmd_permutation_test(draws, ring(n, gd), SIGMAS, grid["permutations"],
                                       generator=torch.Generator().manual_seed(seed))
            per_seed.append({"seed": seed, "mmd2": est.value,
                             "p_value": est.diagnostics["p_value"],
                             "off_mode_fraction": off_mode_fraction(draws),
                             "recon_sigma": model._log_sigma().exp().tolist()})
        vals = [r["mmd2"] for r in per_seed]
        row = {"steps": steps, "noise": noise, "walkback": k, "mmd2_mean": statistics.fmean(vals),
               "mmd2_sd": statistics.stdev(vals) if len(vals) > 1 else 0.0,
               "off_mode_mean": statistics.fmean(r["off_mode_fraction"] for r in per_seed),
               "seeds": per_seed}
        rows.append(row)
        print(f"steps {steps:<5} noise {noise:<5} K {k}: MMD^2 {row['mmd2_mean']:.5f} "
              f"+- {row['mmd2_sd']:.5f}, off-mode {row['off_mode_mean']:.3f}, sigma "
              f"{statistics.fmean(r['recon_sigma'][0] for r in per_seed):.3f} "
              f"(p {[round(r['p_value'], 3) for r in per_seed]})", flush=True)
    wall = time.perf_counter() - t0
    null_mean = statistics.fmean(null)
    null_sd = statistics.stdev(null) if len(null) > 1 else 0.0
    print(f"data vs data: MMD^2 {null_mean:.5f} +- {null_sd:.5f}")
    plain = {(r["steps"], r["noise"]): r["mmd2_mean"] for r in rows if r["walkback"] == 1}
    best = min(rows, key=lambda r: r["mmd2_mean"])
    body = {
        "data": {"name": "ring of 8 Gaussians in 2-D (radius 2, std 0.1)",
                 "binarization": "none", "split": "fresh synthetic draws",
                 "n_examples": n},
        "metric": {"name": "unbiased MMD^2, chain draws vs data (best setting)",
                   "unit": "kernel units", "lower_is_better": True},
        "estimator": {"name": "unbiased MMD^2 with permutation test",
                      "kernel_sigmas": list(SIGMAS), "permutations": grid["permutations"],
                      "chains": grid["chains"], "burn_in": grid["burn_in"],
                      "thin": grid["thin"], "keep": grid["keep"]},
        "value": best["mmd2_mean"],
        "stderr": best["mmd2_sd"],
        "extra": {"best": {"steps": best["steps"], "noise": best["noise"],
                           "walkback": best["walkback"]},
                  "data_vs_data": {"mean": null_mean, "sd": null_sd, "values": null},
                  "walkback_minus_plain": {
                      f"steps={r['steps']},noise={r['noise']},K={r['walkback']}":
                          r["mmd2_mean"] - plain[(r["steps"], r["noise"])]
                      for r in rows if r["walkback"] > 1 and (r["steps"], r["noise"]) in plain},
                  "table": rows},
        "training": {"optimizer": "adam", "lr": grid["lr"], "steps": grid["budgets"],
                     "batch": grid["batch"], "n_hidden": grid["n_hidden"],
                     "activation": "tanh", "tied": False},
    }
    result = _common.likelihood_result(
        benchmark=BENCHMARK, title="DAE chain on a 2-D ring of Gaussians: MMD^2 to the data, "
        "plain vs walkback", steps=None, body=body, references=[], wall={"total": wall},
        smoke=args.smoke,
        notes=[("walkback uses the same corruption level as the plain DAE (Bengio et al. "
                "2013, algorithm 2); spread is the standard deviation over seeds"),
               ("the reconstruction sigma is one learned value per unit, started at the "
                "data's std by init_from_data; long walks (K = 4) inflate it, so the walk "
                "wanders further and the chain spreads over the ring's whole scale"),
               f"source: {_BYAV}"])
    _common.publish(result, out, f"best: steps {best['steps']} noise {best['noise']} "
                    f"K {best['walkback']}: "
                    f"MMD^2 {best['mmd2_mean']:.5f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
