"""RNADE (Uria, Murray & Larochelle 2013) on 8x8 natural image patches: exact test NLL in nats
per patch.

The data are genzoo's ``image-patches``: patches of scikit-learn's two sample images, prepared
as in the paper's BSDS300 experiment (grey levels dequantised and divided by 256, DC removed,
last pixel dropped: D = 63). The model trains on patches divided by their training std
(``data.unit_variance``); the evaluator adds the log-Jacobian of that scaling, so the reported
NLL is a density of the unscaled patches, the space the paper reports in.

The run goes through the command line a user would type (``genzoo train rnade ...`` then
``genzoo evaluate RUN --split test --json``) and writes
``benchmarks/results/rnade_patches_nll.json``:

    python benchmarks/rnade_patches_nll.py              # about 10 min on 1 CPU core
    python benchmarks/rnade_patches_nll.py --smoke      # seconds; temp dir, results untouched

The published numbers are on BSDS300 (other images, a million training patches), so they are
context, not a target: ``comparable`` is false. ``extra.gaussian_nll`` is the test NLL of a
full-covariance Gaussian fitted to the same training patches (computed here), the baseline any
patch model must beat.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

BENCHMARK = "rnade_patches_nll"
DATA = "image-patches"
_U13 = ("Uria, Murray & Larochelle (2013), RNADE: the real-valued neural autoregressive "
        "density-estimator, NIPS, table of BSDS300 results (8x8 patches, 63 dims, test)")
# The paper reports log-likelihoods; the benchmark metric is the NLL, so the values are negated.
REFERENCES = [
    {"label": "Uria et al. 2013 RNADE-MoG (BSDS300)", "value": -152.1, "source": _U13,
     "verified": False, "comparable": False,
     "note": "recalled, not re-read: the paper's table could not be retrieved in this session; "
             "BSDS300 patches, not the scikit-learn sample images used here"},
]
RECIPE = {"model.n_hidden": 100, "model.n_components": 10, "model.activation": "relu",
          "data.unit_variance": "true", "train.optimizer": "adam", "train.lr": 0.001,
          "train.lr_schedule": "linear", "train.lr_final_factor": 0.1, "train.batch_size": 100,
          "train.seed": 0}
DEFAULT_EPOCHS = 30
SMOKE = {"epochs": 1, "n_train": 1000, "n_eval": 200, "n_hidden": 8, "n_components": 2}
NOTES = [
    ("Data: image-patches (genzoo), 40000/5000/5000 patches from disjoint column blocks of "
    "scikit-learn's china.jpg and flower.jpg; BSDS300-style preprocessing (dequantised /256, "
    "DC removed, 63 dims). Densities are of the patches in pixels/256 (log-Jacobian of the "
    "unit-variance scaling added by the evaluator)."),
    ("Recipe: Adam with a linearly decaying learning rate for a fixed number of epochs, final "
    "model reported; the paper used minibatch SGD with early stopping on a validation set."),
]


def train_command(args: argparse.Namespace, run_dir: Path) -> list[str]:
    sets = {**RECIPE, "train.epochs": args.epochs, "train.progress": "false"}
    if args.smoke:
        sets.update({"data.n_train": SMOKE["n_train"], "data.n_eval": SMOKE["n_eval"],
                     "model.n_hidden": SMOKE["n_hidden"],
                     "model.n_components": SMOKE["n_components"]})
    return _common.train_cmd("rnade", DATA, sets, run_dir)


def gaussian_baseline(n_train: int | None, n_eval: int | None) -> float:
    """Test NLL (nats per patch) of the maximum-likelihood full-covariance Gaussian of the
    training patches, in the space the evaluator reports (patches in pixels / 256)."""
    import torch

    from genzoo.data import DataConfig, load_data

    bundle = load_data(DataConfig(name=DATA, n_train=n_train, n_eval=n_eval))
    x, y = bundle.train.x.double(), bundle.test.x.double()
    cov = torch.cov(x.T, correction=0)
    gauss = torch.distributions.MultivariateNormal(x.mean(0), covariance_matrix=cov)
    return float(-gauss.log_prob(y).mean())


def build_result(args, report: dict, steps: list[str], wall: dict, gauss: float) -> dict:
    notes = _common.with_run_notes(
        NOTES, args.smoke, "SMOKE RUN: tiny model and data; the number means nothing.",
        args.epochs, DEFAULT_EPOCHS, budget_why=False)
    body = {
        "data": _common.report_data(report, DATA, "none (real-valued)",
                                    likelihood_space=report.get("likelihood_space")),
        "metric": {**_common.NLL_METRIC, "per": "patch"},
        "estimator": {"name": report.get("estimator"), "dtype": report.get("dtype")},
        "value": report["nll_nats"],
        "stderr": report["stderr"],
        "extra": {"stderr_examples": report.get("stderr_examples"),
                  "log_det_jacobian_nats": report.get("log_det_jacobian_nats"),
                  "gaussian_nll": gauss,
                  "gaussian_nll_note": "full-covariance Gaussian fitted by maximum likelihood "
                                       "to the same training patches, test NLL, same space"},
        "training": {"epochs": args.epochs, "settings": {**RECIPE, "train.epochs": args.epochs}},
    }
    return _common.likelihood_result(
        benchmark=BENCHMARK,
        title="RNADE on 8x8 natural image patches: exact test NLL (nats per patch)",
        steps=steps, body=body, references=REFERENCES if not args.smoke else [], wall=wall,
        smoke=args.smoke, notes=notes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=None,
                   help=f"training epochs (default {DEFAULT_EPOCHS})")
    _common.add_output_args(p, "seconds-long check on 1000 patches")
    args = p.parse_args(argv)
    _common.set_epochs(args, SMOKE["epochs"], DEFAULT_EPOCHS)
    dirs = _common.run_dirs(p, args, f"{BENCHMARK}_e{args.epochs}")
    report, steps = _common.train_and_evaluate(dirs, BENCHMARK, train_command(args, dirs.run))
    sizes = (SMOKE["n_train"], SMOKE["n_eval"]) if args.smoke else (None, None)
    gauss = gaussian_baseline(*sizes)
    result = build_result(args, report, steps.steps, steps.wall, gauss)
    result = _common.with_run_config(result, dirs.run)
    _common.publish(result, dirs.results,
                    f"test NLL = {result['value']:.2f} +/- {result['stderr']:.2f} nats per patch "
                    f"(full-covariance Gaussian: {gauss:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
