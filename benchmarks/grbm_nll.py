"""Gaussian-Bernoulli RBM on natural-image patches: test NLL by annealed importance sampling.

A GRBM (Cho, Ilin & Raiko 2011 energy, learned variances bounded in [min_std, max_std]) is
trained by PCD-1 (Tieleman 2008) at genzoo's default learning rate on the ``image-patches`` data
set (8x8 patches of scikit-learn's two sample images, dequantised, DC removed, D = 63) scaled to
unit variance, and its test log-likelihood is estimated by forward and reverse AIS from the
data-Gaussian base model. The evaluator adds the Jacobian of the unit-variance scaling, so the
reported NLL is the density of the DC-removed patches in pixels / 256, nats per patch. The whole
run goes through the command line a user would type::

    genzoo train grbm --data image-patches --set data.unit_variance=true ... --out RUN
    genzoo evaluate RUN --split test --json --set eval.ais_runs=100 --set eval.ais_betas=14500

References. No published number exists for these images (they are not a standard patch
benchmark), so the result has no reference row. For scale the script also fits a maximum-
likelihood full-covariance Gaussian to the same training patches and reports its test NLL in
the same space (``extra.gaussian_nll``, computed here, not published).

    python benchmarks/grbm_nll.py              # the full run (a few minutes on 2 cores)
    python benchmarks/grbm_nll.py --smoke      # seconds; writes only to a temp dir
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

BENCHMARK = "grbm_nll"
DATA = "image-patches"

RECIPE = {
    "data.unit_variance": True,
    "model.n_hidden": 256,
    "model.k": 1,
    "model.persistent": True,
    "train.batch_size": 100,
    "train.optimizer": "sgd",
    "train.seed": 0,
}
RECIPE_NOTES = [
    ("PCD-1, not CD-1: in a 20-epoch trial on these patches a CD-1 GRBM (256 hiddens, learned "
     "variances) had forward-AIS test NLL +12.5 nats per patch, PCD-1 -65.9 (14,500 "
     "temperatures each), most likely because CD's one-step chains never reach the sharp "
     "modes far from the data that the model grows (not investigated further)."),
    ("Trained at genzoo's default learning rate (train.lr = 0.01, SGD, momentum 0.5 -> 0.9) "
     "on unit-variance data, with learned visible variances bounded by model.min_std / "
     "model.max_std: the run checks that this trains without NaN."),
    ("No published reference: GRBM likelihoods in the literature are on other patch sets "
     "(e.g. van Hateren, BSDS300) and other preprocessing; extra.gaussian_nll (a full-"
     "covariance Gaussian fitted here to the same training patches) gives the scale."),
    ("Evaluation: forward AIS (stochastic lower bound on log Z, so on the NLL) and reverse AIS "
     "from Gibbs chains (an upper bound only as far as the chains mixed), SM08 schedule."),
]

SMOKE = {"epochs": 1, "n_hidden": 20, "n_train": 1000, "n_eval": 200, "ais_runs": 10,
         "ais_betas": 100, "reverse_burn_in": 10}


def _sets_to_args(sets: dict) -> list[str]:
    out = []
    for key, value in sets.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        out += ["--set", f"{key}={text}"]
    return out


def train_command(args: argparse.Namespace, run_dir: Path) -> list[str]:
    sets = {**RECIPE, "model.n_hidden": args.n_hidden, "train.epochs": args.epochs,
            "train.progress": False}
    if args.lr is not None:
        sets["train.lr"] = args.lr
    if args.smoke:
        sets.update({"data.n_train": SMOKE["n_train"], "data.n_eval": SMOKE["n_eval"]})
    return (_common.genzoo_cmd("train", "grbm", "--data", DATA) + _sets_to_args(sets)
            + ["--out", str(run_dir)])


def evaluate_command(args: argparse.Namespace, run_dir: Path, report: Path) -> list[str]:
    sets = {"eval.ais_runs": args.ais_runs, "eval.ais_betas": args.ais_betas,
            "eval.reverse": True}
    if args.smoke:
        # 20 hiddens would be enumerated exactly; the smoke run must exercise AIS.
        sets.update({"eval.exact_max_units": 0, "eval.reverse_burn_in": SMOKE["reverse_burn_in"]})
    return (_common.genzoo_cmd("evaluate", str(run_dir), "--split", "test", "--json")
            + _sets_to_args(sets) + ["--out", str(report)])


def gaussian_baseline(n_train: int | None, n_eval: int | None) -> tuple[float, float]:
    """Test NLLs (nats per patch) of the maximum-likelihood full-covariance and diagonal
    Gaussians fitted to the training patches, in the space the evaluator reports (patches in
    pixels / 256). The diagonal one is the GRBM's AIS base model (W = 0, c = 0) up to the
    hidden units' constant."""
    import torch

    from genzoo.data import load_data
    from genzoo.data.config import DataConfig

    bundle = load_data(DataConfig(name=DATA, n_train=n_train, n_eval=n_eval))
    x, y = bundle.train.x.double(), bundle.test.x.double()
    mean = x.mean(0)
    cov = torch.cov(x.T, correction=0)
    full = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)
    diag = torch.distributions.Normal(mean, torch.diagonal(cov).sqrt())
    return float(-full.log_prob(y).mean()), float(-diag.log_prob(y).sum(-1).mean())


def build_result(args, report: dict, steps: list[str], wall: dict, gauss: tuple) -> dict:
    notes = list(RECIPE_NOTES)
    if args.smoke:
        notes.insert(0, "SMOKE RUN: tiny model and data; the number means nothing.")
    notes.append(f"For scale: Gaussians fitted by maximum likelihood to the same training "
                 f"patches have test NLL {gauss[0]:.2f} (full covariance) and {gauss[1]:.2f} "
                 "(diagonal) nats per patch (computed by this script, not published numbers).")
    if "ais" not in str(report.get("estimator", "")).lower():
        notes.append(f"genzoo evaluated with {report.get('estimator')!r}, not AIS")
    settings = {**RECIPE, "model.n_hidden": args.n_hidden, "train.epochs": args.epochs,
                **({"train.lr": args.lr} if args.lr is not None else {})}
    result = {
        "schema_version": _common.SCHEMA_VERSION,
        "benchmark": BENCHMARK,
        "title": f"Gaussian-Bernoulli RBM ({args.n_hidden} hidden, PCD-1), 8x8 natural-image "
                 "patches: test NLL by AIS",
        "kind": "likelihood",
        "command": _common.command_line(),
        "steps": steps,
        "git": _common.git_info(),
        "date": _common.now_iso(),
        "machine": _common.machine_info(),
        "data": {
            "name": DATA,
            "binarization": "none (real-valued: dequantised, DC removed, unit-variance scaling "
                            "undone by the evaluator's Jacobian)",
            "split": report.get("split", "test"),
            "n_examples": report.get("n_examples"),
            "description": report.get("data_description"),
            "likelihood_space": report.get("likelihood_space"),
        },
        "metric": {"name": "test NLL", "unit": "nats", "lower_is_better": True,
                   "per": "example (63-dimensional patch)"},
        "estimator": {
            "name": report.get("estimator"),
            "ais_runs": report.get("n_samples"),
            "ais_betas": report.get("n_betas"),
            "schedule": "sm08",
            "reverse": report.get("log_z_reverse") is not None,
            "dtype": report.get("dtype"),
        },
        "value": report["nll_nats"],
        "stderr": report["stderr"],
        "extra": {
            "value_reverse": report.get("nll_nats_reverse"),
            "log_z": report.get("log_z"),
            "stderr_log_z": report.get("stderr_log_z"),
            "log_z_reverse": report.get("log_z_reverse"),
            "stderr_log_z_reverse": report.get("stderr_log_z_reverse"),
            "ais_ess": report.get("ais_ess"),
            "ais_ess_reverse": report.get("ais_ess_reverse"),
            "log_det_jacobian_nats": report.get("log_det_jacobian_nats"),
            "gaussian_nll": gauss[0],
            "diagonal_gaussian_nll": gauss[1],
            "gaussian_nll_note": "full-covariance and diagonal Gaussians fitted by maximum "
                                 "likelihood to the same training patches, computed by this "
                                 "script",
        },
        "training": {"k": 1, "persistent": True, "epochs": args.epochs, "n_hidden": args.n_hidden,
                     "settings": settings},
        "references": [],
        "wall_s": wall,
        "smoke": bool(args.smoke),
        "notes": notes,
    }
    return _common.with_gaps(result)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=50, help="training epochs (default 50)")
    p.add_argument("--n-hidden", type=int, default=RECIPE["model.n_hidden"])
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: genzoo's default, 0.01)")
    p.add_argument("--ais-runs", type=int, default=100)
    p.add_argument("--ais-betas", type=int, default=14500)
    p.add_argument("--out", type=Path, default=None,
                   help="genzoo run directory (default benchmarks/runs/grbm_nll_h{H}_e{E}; a "
                   "temporary one with --smoke)")
    p.add_argument("--results-dir", type=Path, default=None,
                   help="where the result JSON goes (default benchmarks/results; a temporary "
                   "directory with --smoke)")
    p.add_argument("--evaluate-only", action="store_true",
                   help="skip training; evaluate the finished run in --out")
    p.add_argument("--smoke", action="store_true",
                   help="seconds-long check: 1000 patches, 1 epoch, 20 hidden units, 100 betas, "
                   "10 runs; nothing is written to benchmarks/results")
    args = p.parse_args(argv)
    if args.smoke:
        args.epochs, args.n_hidden = SMOKE["epochs"], SMOKE["n_hidden"]
        args.ais_runs, args.ais_betas = SMOKE["ais_runs"], SMOKE["ais_betas"]
        tmp = Path(tempfile.mkdtemp(prefix="genzoo-bench-smoke-"))
        run_dir = args.out or tmp / "run"
        results_dir = args.results_dir or tmp
        if results_dir.resolve() == _common.RESULTS_DIR.resolve():
            p.error("--smoke results are never written to benchmarks/results")
    else:
        run_dir = args.out or (_common.BENCH_DIR / "runs"
                               / f"{BENCHMARK}_h{args.n_hidden}_e{args.epochs}")
        results_dir = args.results_dir or _common.RESULTS_DIR

    run_dir.parent.mkdir(parents=True, exist_ok=True)
    log = results_dir / f"{BENCHMARK}.log" if args.smoke else run_dir.parent / f"{run_dir.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    steps, wall = [], {}
    if not args.evaluate_only:
        cmd = train_command(args, run_dir)
        steps.append(_common.display_command(cmd))
        print(f"training: {_common.display_command(cmd)}", flush=True)
        wall["train"] = _common.run_logged(cmd, log, BENCHMARK)
    report_path = run_dir / "eval_test.json"
    cmd = evaluate_command(args, run_dir, report_path)
    steps.append(_common.display_command(cmd))
    print(f"evaluating: {_common.display_command(cmd)}", flush=True)
    wall["evaluate"] = _common.run_logged(cmd, log, BENCHMARK)
    report = json.loads(report_path.read_text())
    if report.get("wall_s") is not None:
        wall["evaluate_reported_by_genzoo"] = report["wall_s"]
    n = (SMOKE["n_train"], SMOKE["n_eval"]) if args.smoke else (None, None)
    gauss = gaussian_baseline(*n)
    if not math.isfinite(report["nll_nats"]):
        print("grbm_nll: the evaluation returned a non-finite NLL", file=sys.stderr)

    result = build_result(args, report, steps, wall, gauss)
    path = _common.write_result(result, results_dir)
    print(f"test NLL = {result['value']:.2f} +/- {result['stderr']:.2f} nats per patch "
          f"({result['estimator']['name']}, {result['estimator']['ais_runs']} runs x "
          f"{result['estimator']['ais_betas']} betas); reverse AIS: "
          f"{result['extra']['value_reverse']}; Gaussians: {gauss[0]:.2f} (full), "
          f"{gauss[1]:.2f} (diagonal)")
    if not args.smoke and results_dir.resolve() == _common.RESULTS_DIR.resolve():
        import make_results

        make_results.main([])
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
