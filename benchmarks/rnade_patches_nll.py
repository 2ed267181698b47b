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
import json
import sys
import tempfile
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
    cmd = _common.genzoo_cmd("train", "rnade", "--data", DATA)
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    return cmd + ["--out", str(run_dir)]


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
    notes = list(NOTES)
    if args.smoke:
        notes.insert(0, "SMOKE RUN: tiny model and data; the number means nothing.")
    elif args.epochs < DEFAULT_EPOCHS:
        notes.insert(0, f"Budget run: {args.epochs} epochs, fewer than the recipe's "
                        f"{DEFAULT_EPOCHS}.")
    result = {
        "schema_version": _common.SCHEMA_VERSION,
        "benchmark": BENCHMARK,
        "title": "RNADE on 8x8 natural image patches: exact test NLL (nats per patch)",
        "kind": "likelihood",
        "command": _common.command_line(),
        "steps": steps,
        "git": _common.git_info(),
        "date": _common.now_iso(),
        "machine": _common.machine_info(),
        "data": {"name": DATA, "binarization": "none (real-valued)",
                 "split": report.get("split", "test"), "n_examples": report.get("n_examples"),
                 "description": report.get("data_description"),
                 "likelihood_space": report.get("likelihood_space")},
        "metric": {"name": "test NLL", "unit": "nats", "lower_is_better": True, "per": "patch"},
        "estimator": {"name": report.get("estimator"), "dtype": report.get("dtype")},
        "value": report["nll_nats"],
        "stderr": report["stderr"],
        "extra": {"stderr_examples": report.get("stderr_examples"),
                  "log_det_jacobian_nats": report.get("log_det_jacobian_nats"),
                  "gaussian_nll": gauss,
                  "gaussian_nll_note": "full-covariance Gaussian fitted by maximum likelihood "
                                       "to the same training patches, test NLL, same space"},
        "training": {"epochs": args.epochs, "settings": {**RECIPE, "train.epochs": args.epochs}},
        "references": [dict(r) for r in REFERENCES] if not args.smoke else [],
        "wall_s": wall,
        "smoke": bool(args.smoke),
        "notes": notes,
    }
    return _common.with_gaps(result)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=None,
                   help=f"training epochs (default {DEFAULT_EPOCHS})")
    p.add_argument("--out", type=Path, default=None, help="genzoo run directory")
    p.add_argument("--results-dir", type=Path, default=None,
                   help="where the result JSON goes (default benchmarks/results; smoke: temp)")
    p.add_argument("--smoke", action="store_true",
                   help="seconds-long check on 1000 patches; nothing written to results")
    args = p.parse_args(argv)
    if args.smoke:
        args.epochs = SMOKE["epochs"]
        tmp = Path(tempfile.mkdtemp(prefix="genzoo-bench-smoke-"))
        run_dir, results_dir = args.out or tmp / "run", args.results_dir or tmp
        sizes = (SMOKE["n_train"], SMOKE["n_eval"])
    else:
        args.epochs = args.epochs or DEFAULT_EPOCHS
        run_dir = args.out or _common.BENCH_DIR / "runs" / f"{BENCHMARK}_e{args.epochs}"
        results_dir = args.results_dir or _common.RESULTS_DIR
        sizes = (None, None)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    log = run_dir.parent / f"{run_dir.name}.log"
    steps, wall = [], {}
    cmd = train_command(args, run_dir)
    steps.append(_common.display_command(cmd))
    wall["train"] = _common.run_logged(cmd, log, BENCHMARK)
    report_path = run_dir / "eval_test.json"
    cmd = _common.genzoo_cmd("evaluate", str(run_dir), "--split", "test", "--json",
                             "--out", str(report_path))
    steps.append(_common.display_command(cmd))
    wall["evaluate"] = _common.run_logged(cmd, log, BENCHMARK)
    gauss = gaussian_baseline(*sizes)
    result = build_result(args, json.loads(report_path.read_text()), steps, wall, gauss)
    path = _common.write_result(result, results_dir)
    print(f"test NLL = {result['value']:.2f} +/- {result['stderr']:.2f} nats per patch "
          f"(full-covariance Gaussian: {gauss:.2f})")
    for ref in result["references"]:
        print(f"  vs {ref['label']} {ref['value']:.2f}: {ref['gap_text']} (not comparable)")
    if not args.smoke and results_dir == _common.RESULTS_DIR:
        import make_results

        make_results.main([])
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
