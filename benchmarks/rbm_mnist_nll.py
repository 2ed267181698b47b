"""Reproduce Salakhutdinov & Murray (2008): test NLL of a 500-hidden-unit RBM trained by CD-25
on binarized MNIST, estimated by annealed importance sampling, forward and reverse.

The whole run goes through the command line a user would type::

    genzoo train rbm --data binarized-mnist --set model.n_hidden=500 --set model.k=25 ... --out RUN
    genzoo evaluate RUN --split test --json --set eval.ais_runs=100 --set eval.ais_betas=14500

and the evaluation report becomes ``benchmarks/results/rbm_mnist_nll.json`` beside the
published numbers (then ``RESULTS.md`` is regenerated).

Recipe. SM08 trained their CD25(500) RBM on MNIST with mini-batches of 100 and, as the paper
is usually described (not re-read here), the number of Gibbs steps increased from 1 to 25
during learning. genzoo's resume refuses any config change
but the run length, so an increasing-k schedule is not expressible through the CLI: this
benchmark trains with a constant CD-k (k = 25 by default) from the start, which costs more
compute per epoch than a ramp and is documented as a deviation. The other settings (learning
rate, momentum 0.5 -> 0.9, weight decay 2e-4, linear learning-rate decay) follow Hinton's
practical guide; see ``RECIPE`` and benchmarks/README.md for what could not be matched.

    python benchmarks/rbm_mnist_nll.py                 # the full run (hours on 2 cores)
    python benchmarks/rbm_mnist_nll.py --smoke         # seconds; writes only to a temp dir
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

BENCHMARK = "rbm_mnist_nll"

# Published numbers: SM08's 500-hidden-unit RBMs on MNIST, AIS with 14,500 temperatures and
# 100 runs. SM08 report the average test log-probability; an NLL is its negative.
_SM08 = "Salakhutdinov & Murray (2008), On the quantitative analysis of deep belief networks, ICML"
_VERIFY_NOTE = (
    "not re-read from the paper in this session (the search tools returned no copy of its "
    "text); check against the paper's table of 500-hidden-unit RBMs before quoting"
)
REFERENCES = [
    {
        "label": "SM08 RBM CD25(500)",
        "value": 86.34,
        "source": f"{_SM08}, table of MNIST RBM results, row CD25(500), test",
        "verified": False,
        "comparable": True,
        "note": "the reference this benchmark reproduces; " + _VERIFY_NOTE,
    },
    {
        "label": "SM08 RBM CD3(500)",
        "value": 105.50,
        "source": f"{_SM08}, same table, row CD3(500), test",
        "verified": False,
        "comparable": False,
        "note": "trained with CD-3, shown for scale; " + _VERIFY_NOTE,
    },
    {
        "label": "SM08 RBM CD1(500)",
        "value": 125.53,
        "source": f"{_SM08}, same table, row CD1(500), test",
        "verified": False,
        "comparable": False,
        "note": "trained with CD-1, shown for scale; " + _VERIFY_NOTE,
    },
]

# The training recipe: what this benchmark sets, and how it relates to SM08.
RECIPE = {
    "model.n_hidden": 500,
    "model.persistent": False,
    "model.weight_decay": 2e-4,
    "train.batch_size": 100,
    "train.optimizer": "sgd",
    "train.lr": 0.05,
    "train.lr_schedule": "linear",
    "train.lr_final_factor": 0.1,
    "train.initial_momentum": 0.5,
    "train.momentum": 0.9,
    "train.momentum_warmup_epochs": 5,
    "train.seed": 0,
}
RECIPE_NOTES = [
    ("Matched: 500 hidden units, CD-25 negative phase, mini-batches of 100, AIS with 14,500 "
     "temperatures (the SM08 schedule) and 100 runs on the 10,000 test images."),
    ("Deviation: constant k (default 25) from the first update; SM08 increased the number of "
     "Gibbs steps from 1 to 25 during learning. genzoo's --resume accepts only run-length "
     "changes, so a k ramp cannot be chained through the CLI."),
    ("The SM08 details in these notes (k ramp, 60,000 training images) are as the paper is "
     "usually described; they were not re-read from the paper in this session."),
    ("Deviation: trained on the 50,000-image train split of the fixed binarization (the "
     "valid split is held out); SM08 trained on all 60,000 MNIST training images."),
    ("Not matched from the paper: learning rate, its decay, momentum, weight decay and the "
     "number of epochs could not be read from SM08 in this session; the values used are "
     "genzoo's, after Hinton's practical guide (lr 0.05 decayed linearly to 0.005, momentum "
     "0.5 then 0.9 after 5 epochs, L2 weight decay 2e-4 on W)."),
    ("Evaluation adds reverse AIS (started from Gibbs chains) so the true value is bracketed; "
     "SM08 report forward AIS only."),
]

SMOKE = {
    "epochs": 1,
    "n_hidden": 20,
    "k": 25,
    "n_train": 1000,
    "n_eval": 200,
    "ais_runs": 10,
    "ais_betas": 100,
    "reverse_burn_in": 10,
}


def train_command(args: argparse.Namespace, run_dir: Path) -> list[str]:
    if args.resume:
        # Resume accepts only length changes; everything else comes from the saved config.
        return _common.genzoo_cmd("train", "rbm", "--out", str(run_dir), "--resume",
                          "--set", f"train.epochs={args.epochs}", "--set", "train.progress=false")
    sets = {**RECIPE, "model.n_hidden": args.n_hidden, "model.k": args.k,
            "train.epochs": args.epochs, "train.progress": False}
    if args.lr is not None:
        sets["train.lr"] = args.lr
    eval_sets = {"eval.ais_runs": args.ais_runs, "eval.ais_betas": args.ais_betas,
                 "eval.reverse": True}
    if args.smoke:
        sets.update({"data.n_train": SMOKE["n_train"], "data.n_eval": SMOKE["n_eval"]})
        # n_hidden=20 would be enumerated exactly; the smoke run must exercise AIS as the full
        # run does.
        eval_sets.update({"eval.exact_max_units": 0,
                          "eval.reverse_burn_in": SMOKE["reverse_burn_in"]})
    sets.update(eval_sets)
    cmd = _common.genzoo_cmd("train", "rbm", "--data", "binarized-mnist")
    for key, value in sets.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        cmd += ["--set", f"{key}={text}"]
    return cmd + ["--out", str(run_dir)]


def evaluate_command(args: argparse.Namespace, run_dir: Path, report: Path) -> list[str]:
    cmd = _common.genzoo_cmd("evaluate", str(run_dir), "--split", "test", "--json",
                     "--set", f"eval.ais_runs={args.ais_runs}",
                     "--set", f"eval.ais_betas={args.ais_betas}",
                     "--set", "eval.reverse=true", "--out", str(report))
    if args.smoke:
        cmd += ["--set", "eval.exact_max_units=0",
                "--set", f"eval.reverse_burn_in={SMOKE['reverse_burn_in']}"]
    return cmd


def build_result(args: argparse.Namespace, report: dict, steps: list[str], wall: dict) -> dict:
    refs = [dict(r) for r in REFERENCES]
    notes = list(RECIPE_NOTES)
    if args.smoke:
        notes.insert(0, "SMOKE RUN: tiny model and data; the number is not comparable to the "
                     "references.")
    if "ais" not in str(report.get("estimator", "")).lower():
        notes.append(f"genzoo evaluated with {report.get('estimator')!r}, not AIS")
    result = {
        "schema_version": _common.SCHEMA_VERSION,
        "benchmark": BENCHMARK,
        "title": "RBM 500 hidden units, CD-25, binarized MNIST: test NLL (SM08 reproduction)",
        "kind": "likelihood",
        "command": _common.command_line(),
        "steps": steps,
        "git": _common.git_info(),
        "date": _common.now_iso(),
        "machine": _common.machine_info(),
        "data": {
            "name": "binarized-mnist",
            "binarization": "fixed (Larochelle & Murray 2011 file; the stochastic binarization "
                            "of SM08)",
            "split": report.get("split", "test"),
            "n_examples": report.get("n_examples"),
            "description": report.get("data_description"),
        },
        "metric": {"name": "test NLL", "unit": "nats", "lower_is_better": True,
                   "per": "example"},
        "estimator": {
            "name": report.get("estimator"),
            "ais_runs": report.get("n_samples"),
            "ais_betas": report.get("n_betas"),
            "schedule": "sm08" if not args.smoke else "sm08 (smoke: 100 betas)",
            "reverse": report.get("log_z_reverse") is not None,
            "dtype": report.get("dtype"),
        },
        "value": report["nll_nats"],
        "stderr": report["stderr"],
        "extra": {
            "log_z": report.get("log_z"),
            "stderr_log_z": report.get("stderr_log_z"),
            "log_z_reverse": report.get("log_z_reverse"),
            "stderr_log_z_reverse": report.get("stderr_log_z_reverse"),
            "value_reverse": report.get("nll_nats_reverse"),
            "stderr_examples": report.get("stderr_examples"),
            "ais_ess": report.get("ais_ess"),
            "ais_ess_reverse": report.get("ais_ess_reverse"),
            "warnings": report.get("warnings", []),
        },
        "training": {
            "k": args.k,
            "k_schedule": "constant",
            "epochs": args.epochs,
            "n_hidden": args.n_hidden,
            "settings": {**RECIPE, "model.n_hidden": args.n_hidden, "model.k": args.k,
                         "train.epochs": args.epochs,
                         **({"train.lr": args.lr} if args.lr is not None else {})},
        },
        "references": refs,
        "wall_s": wall,
        "smoke": bool(args.smoke),
        "notes": notes,
    }
    return _common.with_gaps(result)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=100, help="training epochs (default 100)")
    p.add_argument("--k", type=int, default=25, help="Gibbs steps per update, constant (25)")
    p.add_argument("--n-hidden", type=int, default=500)
    p.add_argument("--lr", type=float, default=None,
                   help=f"learning rate (default {RECIPE['train.lr']})")
    p.add_argument("--ais-runs", type=int, default=100)
    p.add_argument("--ais-betas", type=int, default=14500)
    p.add_argument("--out", type=Path, default=None,
                   help="genzoo run directory (default benchmarks/runs/rbm_mnist_nll_k{K}_e{E}; "
                   "a temporary one with --smoke)")
    p.add_argument("--results-dir", type=Path, default=None,
                   help="where the result JSON goes (default benchmarks/results; a temporary "
                   "directory with --smoke)")
    p.add_argument("--resume", action="store_true",
                   help="continue the training in --out (only --epochs may change)")
    p.add_argument("--evaluate-only", action="store_true",
                   help="skip training; evaluate the finished run in --out")
    p.add_argument("--smoke", action="store_true",
                   help="seconds-long check: 1000 examples, 1 epoch, 20 hidden units, 100 betas, "
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
        run_dir = args.out or _common.BENCH_DIR / "runs" / f"{BENCHMARK}_k{args.k}_e{args.epochs}"
        results_dir = args.results_dir or _common.RESULTS_DIR
    if "GENZOO_DATA" not in os.environ:
        print("rbm_mnist_nll: GENZOO_DATA is not set; genzoo will look in its default data "
              "directory (and may try to download)", file=sys.stderr)

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

    result = build_result(args, report, steps, wall)
    path = _common.write_result(result, results_dir)
    print(f"test NLL = {result['value']:.2f} +/- {result['stderr']:.2f} nats "
          f"({result['estimator']['name']}, {result['estimator']['ais_runs']} runs x "
          f"{result['estimator']['ais_betas']} betas); reverse AIS: "
          f"{result['extra']['value_reverse']}")
    for ref in result["references"]:
        print(f"  vs {ref['label']} {ref['value']:.2f}: {ref['gap_text']}")
    if not args.smoke and results_dir.resolve() == _common.RESULTS_DIR.resolve():
        import make_results

        make_results.main([])
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
