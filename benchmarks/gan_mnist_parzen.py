"""Parzen-window log-likelihood on MNIST of the implicit generators, beside the published
numbers: GAN 225 +- 2 nats (Goodfellow et al. 2014, table 1), GMMN 147 +- 2 and GMMN+AE
282 +- 2 nats (Li, Swersky & Zemel 2015, table 1, which also lists the GAN's 225 +- 2).

Every result also carries the kernel MMD to the test set (with its permutation p-value), the
feature-space Fréchet distance and class coverage from genzoo's own MNIST classifier (beside
those of a fixed baseline, a 10-component diagonal Gaussian mixture fitted by EM), and the
Parzen score of the *training data themselves* under the same protocol: the reminder that the
Parzen estimate is a weak measure (a sampler that copies the training set beats every model).

The run goes through the command line a user would type (``genzoo train MODEL --data mnist
...`` then ``genzoo evaluate RUN --split test --json``).

    python benchmarks/gan_mnist_parzen.py --model gan        # about 20-40 min on 2 cores
    python benchmarks/gan_mnist_parzen.py --model gmmn       # about 30-60 min on 2 cores
    python benchmarks/gan_mnist_parzen.py --model gmmn-ae    # about 30-60 min on 2 cores
    python benchmarks/gan_mnist_parzen.py --model gan --smoke   # seconds, 8x8 digits, temp dir

Protocol (the GAN paper's): grey-level MNIST in [0, 1] (50k train / 10k valid / 10k test),
10,000 model samples, an isotropic Gaussian window whose sigma is chosen on the validation
split over logspace(-1, 0, 10), mean log density of the 10,000 test digits. Recipes are
genzoo's (Adam, DCGAN's lr 2e-4 and beta1 0.5 for the GAN), not the papers' (maxout
discriminator, SGD with momentum); see ``RECIPES`` and each result's notes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

BENCHMARK = "gan_mnist_parzen"
_GAN = ("Goodfellow et al. (2014), Generative adversarial nets, NIPS, table 1 (MNIST, Parzen "
        "window log-likelihood of test data)")
_GMMN = ("Li, Swersky & Zemel (2015), Generative moment matching networks, ICML, table 1 "
         "(MNIST, Parzen window log-likelihood of test data)")
_NOTE = ("published as mean +- standard error over test examples; number as given in the "
         "genzoo issue and consistent with the GMMN paper's table, which lists GAN 225 +- 2 "
         "beside GMMN 147 +- 2 and GMMN+AE 282 +- 2")
REFERENCES = {
    "gan": [{"label": "Goodfellow et al. 2014 GAN", "value": 225.0, "stderr": 2.0,
             "source": _GAN, "verified": False, "comparable": True, "note": _NOTE}],
    "gmmn": [{"label": "Li et al. 2015 GMMN", "value": 147.0, "stderr": 2.0, "source": _GMMN,
              "verified": False, "comparable": True, "note": _NOTE}],
    "gmmn-ae": [{"label": "Li et al. 2015 GMMN+AE", "value": 282.0, "stderr": 2.0,
                 "source": _GMMN, "verified": False, "comparable": True, "note": _NOTE}],
}
RECIPES = {
    "gan": {"model.n_latent": 100, "model.g_hidden": "1200,1200", "model.d_hidden": "240,240",
            "model.generator_loss": "non_saturating", "train.optimizer": "adam",
            "train.lr": 2e-4, "train.momentum": 0.5, "train.batch_size": 100,
            "train.seed": 0},
    "gmmn": {"model.n_latent": 10, "model.hidden": "64,256,256,1024",
             "model.bandwidths_sq": "2,5,10,20,40,80", "train.optimizer": "adam",
             "train.lr": 1e-3, "train.momentum": 0.9, "train.batch_size": 1000,
             "train.seed": 0},
    "gmmn-ae": {"model.ae_hidden": 1024, "model.n_code": 32, "model.ae_steps": 10000,
                "model.n_latent": 10, "model.hidden": "64,256,256,1024",
                "train.optimizer": "adam", "train.lr": 1e-3, "train.momentum": 0.9,
                "train.batch_size": 500, "train.seed": 0},
}
DEFAULT_EPOCHS = {"gan": 50, "gmmn": 100, "gmmn-ae": 150}
SMOKE = {
    "gan": {"model.n_latent": 8, "model.g_hidden": "16", "model.d_hidden": "16"},
    "gmmn": {"model.n_latent": 4, "model.hidden": "16", "model.bandwidths_sq": "1,4"},
    "gmmn-ae": {"model.n_latent": 4, "model.hidden": "16", "model.ae_hidden": 16,
                "model.n_code": 4, "model.ae_steps": 5},
}
NOTES = [
    ("Data: grey-level MNIST in [0, 1], 50k train / 10k valid / 10k test; 10,000 model samples; "
    "sigma chosen on the validation split over logspace(-1, 0, 10) (the GAN paper's protocol)."),
    ("The Parzen-window estimate is a weak measure (Theis et al. 2016): compare with "
    "extra.training_data_parzen, the score of 10,000 training digits used as 'samples'."),
    ("Deviation: genzoo's recipe (Adam, fixed epochs, final model), not the papers' "
    "architectures and optimisers; the GAN discriminator is a LeakyReLU MLP, not maxout."),
]


def train_command(args: argparse.Namespace, run_dir: Path) -> list[str]:
    sets = {**RECIPES[args.model], "train.epochs": args.epochs, "train.progress": "false",
            "data.binarize": "none"}
    if args.architecture:
        sets["model.architecture"] = args.architecture
    if args.smoke:
        sets.update(SMOKE[args.model])
        sets.update({"train.batch_size": 50, "train.max_steps": 20})
    cmd = _common.genzoo_cmd("train", args.model, "--data", args.data)
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    return cmd + ["--out", str(run_dir)]


def training_data_parzen(data: str, sigmas, n: int = 10_000) -> dict:
    """Parzen score of the test split when the 'samples' are n training examples, bandwidth
    chosen on the validation split: the ceiling a copying sampler reaches."""
    from genzoo.data import load_data
    from genzoo.data.config import DataConfig
    from genzoo.evaluation.parzen import parzen_log_likelihood, select_parzen_bandwidth

    bundle = load_data(DataConfig(name=data))
    train = bundle.train.x[:n]
    sigma, _ = select_parzen_bandwidth(train, bundle.valid.x, sigmas)
    est = parzen_log_likelihood(train, bundle.test.x, sigma)
    return {"value": est.value, "stderr": est.stderr, "sigma": sigma, "n_samples": len(train)}


def baseline_frechet(data: str, n_samples: int = 10_000, n_components: int = 10) -> dict:
    """Fréchet distance and class coverage of a fixed baseline: a mixture of diagonal
    Gaussians fitted by EM (scikit-learn, ``n_components``, seed 0) to the training split,
    its samples clipped to [0, 1]. The issue's bar: a GAN or GMMN should beat it."""
    import torch
    from sklearn.mixture import GaussianMixture

    from genzoo.data import load_data
    from genzoo.data.config import DataConfig
    from genzoo.evaluation.frechet import frechet_report, load_classifier

    bundle = load_data(DataConfig(name=data))
    gm = GaussianMixture(n_components, covariance_type="diag", random_state=0, max_iter=100)
    gm.fit(bundle.train.x.double().numpy())
    samples = torch.from_numpy(gm.sample(n_samples)[0]).clamp(0, 1)
    fr = frechet_report(samples, bundle.test.x, load_classifier(data))
    return {"model": f"mixture of {n_components} diagonal Gaussians (EM)",
            "frechet_distance": fr["frechet_distance"], "classes_covered": fr["classes_covered"]}


def build_result(args, report: dict, steps: list[str], wall: dict, data_parzen: dict,
                 baseline: dict) -> dict:
    notes = list(NOTES)
    if args.smoke:
        notes.insert(0, "SMOKE RUN: 8x8 digits, tiny model, 20 steps; not comparable.")
    elif args.epochs < DEFAULT_EPOCHS[args.model]:
        notes.insert(0, f"Budget run: {args.epochs} epochs, fewer than the recipe's "
                        f"{DEFAULT_EPOCHS[args.model]}.")
    result = {
        "schema_version": _common.SCHEMA_VERSION,
        "benchmark": f"{BENCHMARK}_{args.model}" + (f"_{args.architecture}"
                                                     if args.architecture else ""),
        "title": f"{args.model.upper()} on MNIST: Parzen-window test log-likelihood (with MMD "
                 "and Fréchet distance)",
        "kind": "likelihood",
        "command": _common.command_line(),
        "steps": steps,
        "git": _common.git_info(),
        "date": _common.now_iso(),
        "machine": _common.machine_info(),
        "data": {"name": args.data, "binarization": "none (grey levels in [0, 1])",
                 "split": report.get("split", "test"), "n_examples": report.get("n_examples"),
                 "description": report.get("data_description")},
        "metric": {"name": "test Parzen log-likelihood", "unit": "nats",
                   "lower_is_better": False, "per": "example"},
        "estimator": {"name": report.get("estimator"), "dtype": report.get("dtype"),
                      "sigma": report.get("parzen_sigma"),
                      "n_model_samples": report.get("n_model_samples")},
        "value": report["parzen_log_likelihood"],
        "stderr": report["stderr"],
        "extra": {
            "mmd2": report.get("mmd2"), "mmd_p_value": report.get("mmd_p_value"),
            "mmd_sigmas": report.get("mmd_sigmas"),
            "frechet_distance": report.get("frechet_distance"),
            "classes_covered": report.get("classes_covered"),
            "class_counts": report.get("class_counts"),
            "training_data_parzen": data_parzen,
            "baseline": baseline,
            "warnings": report.get("warnings"),
        },
        "training": {"epochs": args.epochs,
                     "settings": {**RECIPES[args.model], "train.epochs": args.epochs}},
        "references": [dict(r) for r in REFERENCES[args.model]],
        "wall_s": wall,
        "smoke": bool(args.smoke),
        "notes": notes,
    }
    return _common.with_gaps(result)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=sorted(RECIPES), required=True)
    p.add_argument("--architecture", choices=["mlp", "dcgan"], default=None,
                   help="generator/discriminator networks (gan, gmmn; default the recipe's mlp)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--out", type=Path, default=None, help="genzoo run directory")
    p.add_argument("--smoke", action="store_true",
                   help="seconds-long check on the 8x8 digits; nothing written to results")
    args = p.parse_args(argv)
    if args.smoke:
        args.epochs, args.data = 1, "digits"
        tmp = Path(tempfile.mkdtemp(prefix="genzoo-bench-smoke-"))
        run_dir, results_dir = args.out or tmp / "run", tmp
        # The smoke trains its own small digits classifier, away from the user's cache.
        os.environ.setdefault("GENZOO_CACHE", str(tmp / "cache"))
    else:
        args.epochs = args.epochs or DEFAULT_EPOCHS[args.model]
        args.data = "mnist"
        name = f"{BENCHMARK}_{args.model}_e{args.epochs}"
        run_dir = args.out or _common.BENCH_DIR / "runs" / name
        results_dir = _common.RESULTS_DIR
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    log = run_dir.parent / f"{run_dir.name}.log"
    who = f"{BENCHMARK}_{args.model}"
    steps, wall = [], {}
    cmd = train_command(args, run_dir)
    steps.append(_common.display_command(cmd))
    wall["train"] = _common.run_logged(cmd, log, who)
    report_path = run_dir / "eval_test.json"
    cmd = _common.genzoo_cmd("evaluate", str(run_dir), "--split", "test", "--json",
                             "--out", str(report_path))
    steps.append(_common.display_command(cmd))
    wall["evaluate"] = _common.run_logged(cmd, log, who)
    from genzoo.evaluation.parzen import DEFAULT_SIGMAS

    data_parzen = training_data_parzen(args.data, DEFAULT_SIGMAS)
    baseline = baseline_frechet(args.data)
    result = build_result(args, json.loads(report_path.read_text()), steps, wall, data_parzen,
                          baseline)
    path = _common.write_result(result, results_dir)
    print(f"test Parzen log-likelihood = {result['value']:.2f} +/- {result['stderr']:.2f} nats "
          f"(sigma {result['estimator']['sigma']:.3g}); training data themselves: "
          f"{data_parzen['value']:.2f}")
    ex = result["extra"]
    print(f"  MMD^2 = {ex['mmd2']:.4g} (p = {ex['mmd_p_value']:.3g}), Fréchet distance = "
          f"{ex['frechet_distance']:.4g}, classes covered = {ex['classes_covered']}; baseline "
          f"{baseline['model']}: Fréchet {baseline['frechet_distance']:.4g}, "
          f"{baseline['classes_covered']} classes")
    for ref in result["references"]:
        print(f"  vs {ref['label']} {ref['value']:.2f}: {ref['gap_text']}")
    if not args.smoke:
        import make_results

        make_results.main([])
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
