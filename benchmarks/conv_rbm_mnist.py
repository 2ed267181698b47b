"""Convolutional RBM with probabilistic max pooling (Lee, Grosse, Ranganath & Ng 2009) on MNIST:
the test objective before vs after training, learned filters and samples as images.

Everything a user would type::

    genzoo train conv-rbm --data mnist --set data.binarize=dynamic --set model.n_filters=24 \
        --set model.kernel_size=9 --set model.pool_size=2 --set model.sparsity_target=0.02 ... --out RUN
    genzoo filters RUN --out RUN/filters.png
    genzoo sample RUN -n 64 --out RUN/samples.png

Data: MNIST with dynamic binarization (each training epoch a fresh Bernoulli draw of the grey
levels; the test images are one draw seeded by data.seed, the same for every model), genzoo's
train split (the first 50,000 training digits), all 10,000 test digits.

The partition function of a max-pooling CRBM is intractable (no AIS for it in genzoo), so the
objective is measured by two tractable figures on the test images, for the trained model and for
the model the run started from (rebuilt exactly as ``genzoo train`` builds it: the global seed
set to train.seed, the registry's constructor, then ``init_from_data`` on epoch 0's training
draw; the script checks the rebuild against the step-0 row of the run's metrics.csv):

- the mean-field reconstruction cross-entropy, nats per image: with P(h | v) of the block
  softmax and p = P(v = 1 | h = P(h | v)), -sum_i [v_i log p_i + (1 - v_i) log(1 - p_i)];
  deterministic;
- the pseudo-log-likelihood sum_i log P(v_i | v_-i) = sum_i log sigmoid(F(v with v_i flipped)
  - F(v)), from the exact free energy F (nats per image, higher is better), estimated per image
  from ``--pll-pixels`` pixels drawn without replacement (D / m times their sum: unbiased for
  the full 784-pixel sum); the same pixels for both models, so their difference is paired.

Standard errors are over the test images (for the PLL they include the pixel draw).

    python benchmarks/conv_rbm_mnist.py              # the full run: ~20 minutes on 1 CPU thread
    python benchmarks/conv_rbm_mnist.py --smoke      # seconds; writes only to a temp dir
    python benchmarks/conv_rbm_mnist.py --smoke --data digits   # no data files needed
"""

from __future__ import annotations

import argparse
import csv
import math
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

BENCHMARK = "conv_rbm_mnist"
EPOCHS = 8
RECIPE = {
    "model.n_filters": 24,
    "model.kernel_size": 9,
    "model.pool_size": 2,
    "model.k": 1,
    "model.sparsity_target": 0.02,
    "model.sparsity_cost": 1000.0,
    "model.init_std": 0.01,
    "model.sample_burn_in": 1000,
    "data.binarize": "dynamic",
    "train.batch_size": 100,
    "train.optimizer": "sgd",
    "train.lr": 0.001,
    "train.lr_schedule": "linear",
    "train.lr_final_factor": 0.1,
    "train.initial_momentum": 0.5,
    "train.momentum": 0.9,
    "train.momentum_warmup_epochs": 1,
    "train.grid_samples": 0,
    "train.seed": 0,
}
SMOKE = {"epochs": 1, "n_train": 300, "n_eval": 100, "pll_pixels": 4, "n_samples": 16,
         "model.n_filters": 4, "model.kernel_size": 5, "model.sample_burn_in": 5}
LEE09 = ("Lee, Grosse, Ranganath & Ng (2009), Convolutional deep belief networks for scalable "
         "unsupervised learning of hierarchical representations, ICML")


# -- evaluation ---------------------------------------------------------------------------------


def reconstruction_cross_entropy(model, x):
    """Mean-field reconstruction cross-entropy of binary x (B, D): (B,) nats per image, from
    the logits of P(v = 1 | h = P(h | x)) (no sigmoid round trip, so no log(0))."""
    import torch.nn.functional as F

    img = model.images(x)
    h = model.block_probabilities(model.detector_input(img))[0]
    logits = model.visible_input(h)
    return F.binary_cross_entropy_with_logits(logits, img, reduction="none").flatten(1).sum(-1)


def pseudo_log_likelihood(model, x, n_pixels, generator=None):
    """Stochastic pseudo-log-likelihood of binary x (B, D): (B,) nats per image.

    log P(v_i | v_-i) = log sigmoid(F(v with v_i flipped) - F(v)); ``n_pixels`` = m pixels per
    image drawn without replacement, D / m times their sum (m = D gives the exact PLL)."""
    import torch
    import torch.nn.functional as F

    b, d = x.shape
    m = min(n_pixels, d)
    x = x.to(model.W.dtype)
    idx = torch.rand((b, d), generator=generator).argsort(-1)[:, :m]
    flipped = x.unsqueeze(1).repeat(1, m, 1)
    rows = flipped.gather(-1, idx.unsqueeze(-1))
    flipped.scatter_(-1, idx.unsqueeze(-1), 1.0 - rows)
    f_x = model.free_energy(x)
    f_flip = model.free_energy(flipped.reshape(b * m, d)).reshape(b, m)
    return F.logsigmoid(f_flip - f_x.unsqueeze(-1)).sum(-1) * (d / m)


def _mean_se(values):
    n = len(values)
    sd = float(values.std(unbiased=True)) if n > 1 else math.nan
    return {"mean": float(values.mean()), "stderr": sd / math.sqrt(n), "n": n}


def initial_model(run_config, bundle):
    """The model ``genzoo train`` started from (same seeding and data initialisation)."""
    import torch

    from genzoo.core.registry import get_model_spec

    torch.manual_seed(run_config.train.seed)
    model = get_model_spec(run_config.model_name).build(run_config.model)
    init = getattr(model, "init_from_data", None)
    if callable(init):
        with torch.no_grad():
            init(bundle.train_x(0))
    return model.eval()


def step0_valid_recon(run_dir: Path) -> float | None:
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return None
    with open(path) as fh:
        for row in csv.DictReader(fh):
            if row.get("step") == "0" and row.get("valid_recon_error"):
                return float(row["valid_recon_error"])
    return None


def evaluate_before_after(run_dir: Path, pll_pixels: int, seed: int = 0,
                          chunk: int = 250) -> dict:
    """Both figures on the test split for the initial and the trained model, float64."""
    import torch

    from genzoo.data import load_data
    from genzoo.training.checkpoint import load_model

    after, run_config = load_model(run_dir)
    bundle = load_data(run_config.data)
    before = initial_model(run_config, bundle)
    x = bundle.test.x
    out: dict = {"n": len(x), "description": getattr(bundle, "description", None),
                 "run_config": run_config}
    per_example = {}
    with torch.no_grad():
        valid_check = float(before.validation_metrics(bundle.valid.x)["recon_error"])
        for name, model in (("before", before), ("after", after)):
            model = model.double()
            g = torch.Generator().manual_seed(seed)  # the same pixels for both models
            ce, pll = [], []
            for i in range(0, len(x), chunk):
                xb = x[i:i + chunk].double()
                ce.append(reconstruction_cross_entropy(model, xb))
                pll.append(pseudo_log_likelihood(model, xb, pll_pixels, g))
            per_example[name] = {"recon_ce": torch.cat(ce), "pll": torch.cat(pll)}
            out[name] = {k: _mean_se(v) for k, v in per_example[name].items()}
    out["change"] = {k: _mean_se(per_example["after"][k] - per_example["before"][k])
                     for k in ("recon_ce", "pll")}
    logged = step0_valid_recon(run_dir)
    out["rebuild_check"] = {"valid_recon_error_rebuilt": valid_check,
                            "valid_recon_error_metrics_csv_step0": logged}
    if logged is not None and not math.isclose(valid_check, logged, rel_tol=1e-3, abs_tol=1e-6):
        raise SystemExit(f"{BENCHMARK}: the rebuilt initial model does not match the run's "
                         f"step 0 (valid recon_error {valid_check} vs {logged} in metrics.csv)")
    return out


# -- the run ------------------------------------------------------------------------------------


def recipe(args: argparse.Namespace) -> dict:
    sets = {**RECIPE, "train.epochs": args.epochs, "train.progress": False}
    if args.lr is not None:
        sets["train.lr"] = args.lr
    if args.n_train is not None:
        sets["data.n_train"] = args.n_train
    if args.n_eval is not None:
        sets["data.n_eval"] = args.n_eval
    if args.pcd:
        sets["model.persistent"] = True
    if args.smoke:
        sets.update({k: v for k, v in SMOKE.items() if k.startswith("model.")})
    return sets


def _rule(sets: dict) -> str:
    """"CD-k" or "PCD-k" for the run's settings."""
    return f"{'PCD' if sets.get('model.persistent') else 'CD'}-{sets['model.k']}"


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(_common.REPO_ROOT))
    except ValueError:
        return str(path)


def build_result(args, sets: dict, ev: dict, images: dict, steps: list[str], wall: dict) -> dict:
    b, a, ch = ev["before"], ev["after"], ev["change"]
    n_train = sets.get("data.n_train") or "all 50,000"
    notes = _common.with_run_notes([
        (f"Data: {args.data}, dynamic binarization (fresh Bernoulli draw of the grey levels each "
         f"training epoch; test = one draw seeded by data.seed); train split: {n_train} "
         f"examples; test: {ev['n']} images."),
        (f"Model: {sets['model.n_filters']} filters of {sets['model.kernel_size']}x"
         f"{sets['model.kernel_size']}, {sets['model.pool_size']}x{sets['model.pool_size']} "
         f"probabilistic max pooling, {_rule(sets)}, sparsity target "
         f"{sets['model.sparsity_target']} (cost {sets['model.sparsity_cost']}), "
         f"{args.epochs} epoch(s) of SGD (lr {sets['train.lr']}, momentum 0.5 then 0.9). Sizes in "
         f"the spirit of the first layer of {LEE09} (24 bases, 2x2 pooling, a sparsity "
         "target); the paper's exact MNIST settings were not re-read, and the learning rate "
         "and sparsity cost are genzoo's (higher rates kill the hidden units)."),
        (f"The value is the test mean-field reconstruction cross-entropy (nats per image) of "
         f"the trained model; before training (the same model at its initial parameters, "
         f"rebuilt exactly) it was {b['recon_ce']['mean']:.2f} +/- {b['recon_ce']['stderr']:.2f} "
         f"(paired change {ch['recon_ce']['mean']:+.2f} +/- "
         f"{ch['recon_ce']['stderr']:.2f} nats). Lee et al. publish no likelihood or "
         "reconstruction figure for MNIST, so there is no published reference."),
        (f"Pseudo-log-likelihood (stochastic, {args.pll_pixels} pixels per image, nats per "
         f"image, higher is better): before {b['pll']['mean']:.2f} +/- {b['pll']['stderr']:.2f}, "
         f"after {a['pll']['mean']:.2f} +/- {a['pll']['stderr']:.2f} (paired change "
         f"{ch['pll']['mean']:+.2f} +/- {ch['pll']['stderr']:.2f})."),
        ("Std. errors: the standard deviation of the per-image values over the test images "
         "divided by sqrt(n) (for the PLL including its pixel draw); the paired changes use the "
         "per-image differences. The randomness of training is not in them."),
        (f"Images: learned filters {images['filters']}; samples {images['samples']} "
         f"({images['n_samples']} chains, {sets['model.sample_burn_in']} Gibbs sweeps from the "
         "visible base rate)."),
    ], args.smoke, epochs=args.epochs, default_epochs=EPOCHS, budget_why=False)
    body = {
        "data": {"name": args.data, "binarization": "dynamic", "split": "test",
                 "n_examples": ev["n"], "n_train": sets.get("data.n_train"),
                 "description": ev["description"]},
        "metric": {"name": "test reconstruction cross-entropy", "unit": "nats",
                   "lower_is_better": True, "per": "image"},
        "estimator": {"name": "mean-field reconstruction, P(v | h = P(h | v)); float64",
                      "pll_pixels_per_image": args.pll_pixels, "dtype": "float64"},
        "value": a["recon_ce"]["mean"],
        "stderr": a["recon_ce"]["stderr"],
        "extra": {"before": b, "after": a, "change_after_minus_before": ch,
                  "rebuild_check": ev["rebuild_check"], "images": images},
        "training": {"epochs": args.epochs, "settings": sets},
    }
    return _common.likelihood_result(
        benchmark=args.name,
        title=f"Convolutional RBM (max pooling, {_rule(sets)}), MNIST: test objective before vs after "
              "training",
        steps=steps, body=body, references=[], wall=wall, smoke=args.smoke, notes=notes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=EPOCHS, help=f"training epochs (default {EPOCHS})")
    p.add_argument("--lr", type=float, default=None, help=f"default {RECIPE['train.lr']}")
    p.add_argument("--n-train", type=int, default=None,
                   help="first N training examples (default: the whole train split)")
    p.add_argument("--n-eval", type=int, default=None,
                   help="first N valid and test examples (default: all)")
    p.add_argument("--pll-pixels", type=int, default=16,
                   help="pixels per test image for the stochastic PLL (default 16)")
    p.add_argument("--n-samples", type=int, default=64, help="samples drawn (default 64)")
    p.add_argument("--pcd", action="store_true",
                   help="train by PCD-1 (model.persistent=true: 100 persistent chains) instead "
                   "of CD-1; the result is conv_rbm_mnist_pcd")
    p.add_argument("--data", default="mnist", choices=("mnist", "digits"),
                   help="default mnist; digits (8x8, no data files) only with --smoke")
    _common.add_output_args(p, "seconds-long check: 300 examples, 1 epoch, 4 filters of 5x5",
                            evaluate_only=True)
    args = p.parse_args(argv)
    if args.smoke:
        args.epochs = SMOKE["epochs"]
        args.n_train = args.n_train or SMOKE["n_train"]
        args.n_eval = args.n_eval or SMOKE["n_eval"]
        args.pll_pixels, args.n_samples = SMOKE["pll_pixels"], SMOKE["n_samples"]
    elif args.data != "mnist":
        p.error("the full benchmark is defined on mnist; use --data digits only with --smoke")
    args.name = BENCHMARK + ("_pcd" if args.pcd else "")
    dirs = _common.run_dirs(p, args, f"{args.name}_e{args.epochs}")
    if args.data == "mnist":
        _common.warn_without_data(BENCHMARK)

    sets = recipe(args)
    steps = _common.Steps(dirs.log, args.name, announce=True)
    if not args.evaluate_only:
        steps.run("train", _common.train_cmd("conv-rbm", args.data, sets, dirs.run))
    images = {"filters": dirs.run / "filters.png", "samples": dirs.run / "samples.png"}
    steps.run("filters", _common.genzoo_cmd("filters", str(dirs.run), "--out",
                                            str(images["filters"])))
    steps.run("sample", _common.genzoo_cmd("sample", str(dirs.run), "-n", str(args.n_samples),
                                           "--out", str(images["samples"])))
    # The run directory is scratch (benchmarks/runs is not tracked): the images the result
    # points to are copied beside it, as the other benchmarks' figures are.
    dirs.results.mkdir(parents=True, exist_ok=True)
    kept = {k: dirs.results / f"{args.name}_{k}.png" for k in images}
    for k, path in images.items():
        shutil.copyfile(path, kept[k])
    shown = {k: _shown(v) for k, v in kept.items()} | {"n_samples": args.n_samples}
    t0 = time.perf_counter()
    ev = evaluate_before_after(dirs.run, args.pll_pixels)
    steps.wall["evaluate_before_after"] = time.perf_counter() - t0
    # What the run in --out was trained with (with --evaluate-only it need not be this recipe).
    rc = ev.pop("run_config")
    keys = [*sets, "data.n_train", "data.n_eval"]
    sets = {k: getattr(getattr(rc, k.split(".")[0]), k.split(".")[1]) for k in keys}
    args.epochs = rc.train.epochs
    result = build_result(args, sets, ev, shown, steps.steps, steps.wall)
    a, b = ev["after"]["recon_ce"], ev["before"]["recon_ce"]
    _common.publish(result, dirs.results,
                    f"test recon cross-entropy {b['mean']:.2f} -> {a['mean']:.2f} nats/image "
                    f"(+/- {a['stderr']:.2f}); PLL {ev['before']['pll']['mean']:.2f} -> "
                    f"{ev['after']['pll']['mean']:.2f} ({ev['n']} {args.data} test images)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
