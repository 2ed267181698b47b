"""The ``genzoo`` argument parser: every subcommand, its options and its help text.

Kept apart from the commands so ``genzoo --help`` and the parser tests import no torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_USAGE = 2  # argparse's own status for a bad command line, the same as a GenzooError


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the help to read (argparse prints
    the whole usage first); its subcommand parsers are of this class too."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _count(text: str) -> int:
    """An integer count, also written as 1e6 or 1_000 (a whole number either way)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(value)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="genzoo",
        description="The classic deep generative models: train, sample, and evaluate "
        "log-likelihoods honestly (exact, bound, or AIS / importance-sampling estimates).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser("models", help="list every model: name, family, summary, paper",
                   description="List every registered model with its family, a one-line "
                   "summary and the paper it implements.")
    sub.add_parser("data", help="list the data sets and where genzoo looks for their files",
                   description="List the named data sets and the data directory (GENZOO_DATA).")

    train = sub.add_parser(
        "train", help="train a model and write a run directory",
        description="Train MODEL on a data set. The run directory receives config.json (the full "
        "resolved config), model.safetensors, trainer state, metrics.csv, samples.png and "
        "curves.png (its learning curves).",
    )
    train.add_argument("model", metavar="MODEL", help="model name (see `genzoo models`)")
    train.add_argument("--data", default=None, help="data set name (see `genzoo data`), or "
                       "the path of your own .npz, .npy, .csv, .tsv file or folder of images; "
                       "default: the config's data.name (digits)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field, e.g. model.n_hidden=500, train.lr=0.05, "
                       "data.binarize=dynamic (repeatable)")
    train.add_argument("--out", required=True, type=Path, metavar="RUN_DIR",
                       help="run directory to create (or to continue with --resume)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in RUN_DIR from its last checkpoint; only the run "
                       "length (train.epochs, train.max_steps) may be changed with --set")
    train.add_argument("--resume-if-exists", action="store_true",
                       help="resume when RUN_DIR holds a checkpoint, else start the run there "
                       "(for torchrun --max-restarts: a restarted group continues from the "
                       "last checkpoint); the config must match the checkpoint's")
    train.add_argument("--pretrain", type=int, default=None, metavar="EPOCHS",
                       help="dbm, centered-dbm: greedy layerwise pretraining first (a stack of "
                       "RBMs with SH09's weight doubling, EPOCHS epochs each, in "
                       "RUN_DIR/pretrain), then the usual training from the composed weights; "
                       "the same as --set model.pretrain_epochs=EPOCHS, recorded in config.json. "
                       "A resumed run does not pretrain again")

    ev = sub.add_parser(
        "evaluate", help="estimate the test log-likelihood of a trained run",
        description="Print the model's likelihood figure (nats per example) with its estimator, "
        "sample count and standard error.",
    )
    ev.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    ev.add_argument("--split", choices=("train", "valid", "test"), default=None,
                    help="data split (default: the config's eval.split, test)")
    ev.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override an eval.* field, e.g. eval.ais_runs=100, eval.ais_betas=14500; "
                    "a subset of the split: data.n_eval=N (valid/test; data.n_train=N for "
                    "--split train) examples drawn at random with data.subset_seed (stratified "
                    "by label where there are labels); or a model's evaluation choice, e.g. "
                    "model.n_eval_orderings=128 (deep-nade: the ensemble of orderings)")
    ev.add_argument("--task", choices=("auto", "likelihood", "classify"), default=None,
                    help="auto (default): the likelihood figure, plus the classification error "
                    "for models that predict labels; likelihood: skip the classification; "
                    "classify: only the error rate on the split (disc-rbm, mp-dbm, dbm-classifier, "
                    "discriminant-gsn); the same "
                    "as --set eval.task=...")
    ev.add_argument("--allow-changed-data", action="store_true",
                    help="evaluate a run on your own data file even though it changed since "
                    "training (its SHA-256 differs from the one in config.json)")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    ev.add_argument("--out", default=None, metavar="REPORT.json",
                    help="also write the JSON report here (after printing it); checked before "
                    "the evaluation starts")
    _force(ev)
    ev.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")

    sa = _run_command(sub, "sample", "draw samples from a trained run and save a PNG grid",
                      "Draw N samples from the model in RUN_DIR and save them as an image grid.",
                      100, "samples")
    sa.add_argument("--label", type=int, default=None, metavar="K",
                    help="draw every sample from class K, x ~ p(x | y=K) (class-conditional "
                    "models: conditional-gan); other models refuse it")
    _output_seed_device(sa, "output PNG path")

    ip = _run_command(
        sub, "inpaint", "hide part of some images and let the model fill it in (PNG grid)",
        "Take N images of a split, hide the part named by --mask, complete it with the model in "
        "RUN_DIR (models with inpainting, e.g. deep-nade) and save a grid with three rows: "
        "original, masked input (hidden pixels grey), completion. On a hopfield run it recalls "
        "the stored patterns (the train split) from cues whose hidden pixels are random states, "
        "with the network --network names, prints the overlap with the pattern and the "
        "fraction recovered, and the rows are pattern, cue, recall.", 16, "images")
    ip.add_argument("--split", choices=("train", "valid", "test"), default=None,
                    help="data split to take the images from (default test; a hopfield run: "
                    "train, its stored patterns)")
    ip.add_argument("--mask", default="bottom-half", metavar="MASK",
                    help="the part to hide: bottom-half (default), top-half, left-half, "
                    "right-half, or random:P (each pixel hidden with probability P)")
    ip.add_argument("--network", choices=("binary", "continuous", "modern"), default=None,
                    help="hopfield runs: recall with the run's binary network (default), the "
                    "continuous graded-response network on its weights (Hopfield 1984) or the "
                    "modern dense network on its stored patterns (Ramsauer et al. 2021)")
    _output_seed_device(ip, "output PNG path")

    ch = _run_command(
        sub, "chain", "run the model's sampling chain and save it as a GIF or a PNG strip",
        "Run N chains of the model in RUN_DIR for --steps steps (Markov-chain samplers: dae, "
        "cae, gsn; energy models: block Gibbs; deep Boltzmann machines: block Gibbs sweeps over "
        "all layers) and save every --every-th visible state: an animated GIF (--out ending in "
        ".gif) or a PNG strip, one row per chain.", 8, "chains")
    ch.add_argument("--steps", type=_count, default=100, help="chain steps (default 100)")
    ch.add_argument("--every", type=_count, default=5, help="keep every k-th state (default 5)")
    ch.add_argument("--start", choices=("noise", "data"), default="noise",
                    help="start from noise (default: fair coin flips, uniform values in "
                    "the input range of a grey-level model, or standard normal values for a "
                    "real-valued one) or from test examples")
    _output_seed_device(ch, "output .gif or .png path")

    _add_compare(sub)

    fi = _run_command(
        sub, "filters", "save the learned first-layer filters of a run as a PNG grid",
        "Save the first-layer weights of the model in RUN_DIR (a deep Boltzmann machine: its "
        "first layer), one image per hidden unit or convolution kernel, each scaled to [0, 1].",
        100, "filters", most=True)
    fi.add_argument("--out", required=True, help="output PNG path")
    _force(fi)

    # --quiet: no progress bars or per-phase lines on stderr (the results are still printed).
    for command in (train, ev, sa, ip, ch):
        command.add_argument("--quiet", action="store_true",
                             help="show no progress on standard error (bars on a terminal, "
                             "else one line per phase)")
    pl = sub.add_parser(
        "plot", help="draw the learning curves of one or more runs as a PNG",
        description="Draw every figure of each RUN's metrics.csv (training: solid lines, "
        "validation: dashed) against steps or epochs, one panel per figure, several runs "
        "overlaid and named in the legend.",
    )
    pl.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories")
    pl.add_argument("--out", required=True, help="output PNG path")
    pl.add_argument("--x", choices=("step", "epoch"), default="step",
                    help="the horizontal axis: optimizer steps (default) or epochs")
    _force(pl)
    return parser


def _add_compare(sub) -> None:
    """``genzoo compare``: several models, one budget, one leaderboard."""
    co = sub.add_parser(
        "compare", help="train several models at one budget and rank them on the test split",
        description="Train each of --models on --data at the same budget (--epochs N or "
        "--budget TIME) as a genzoo run in OUT/<model>, evaluate each on the test split with "
        "the estimator its capabilities call for, and write OUT/leaderboard.md and .json (NLL "
        "in nats and bits per dimension with standard errors, the AIS bracket, training time, "
        "sample grids, a plot of held-out NLL against training time). Models that cannot "
        "model the data are listed with the reason. Re-running skips finished models and "
        "resumes unfinished runs; under torchrun the models are spread over the processes.",
    )
    co.add_argument("--data", required=True, help="data set name (see `genzoo data`)")
    co.add_argument("--models", required=True, metavar="M1,M2,...",
                    help="comma-separated model names (see `genzoo models`)")
    co.add_argument("--epochs", type=_count, default=None,
                    help="budget: training epochs per model")
    co.add_argument("--budget", default=None, metavar="TIME",
                    help="budget: wall clock per model, e.g. 90s, 10m, 2h")
    co.add_argument("--out", required=True, type=Path, metavar="DIR",
                    help="comparison directory (new, empty, or an earlier comparison to resume)")
    co.add_argument("--set", dest="overrides", action="append", default=[],
                    metavar="[MODEL:]KEY=VALUE",
                    help="override a config field for every model (train.batch_size=50, "
                    "data.n_train=500, eval.ais_runs=20) or for one model "
                    "(rbm:model.n_hidden=50) (repeatable)")
    co.add_argument("--curve-points", type=_count, default=4, metavar="K",
                    help="validation evaluations during training, for the NLL-against-time "
                    "plot (default 4)")
    co.add_argument("--curve-set", action="append", default=[], metavar="KEY=VALUE",
                    help="eval.* overrides for those evaluations only, e.g. eval.ais_betas=1000")


def _run_command(sub, name: str, help: str, description: str, n: int, what: str,
                 most: bool = False) -> argparse.ArgumentParser:
    """A subcommand on a trained run: its RUN_DIR and ``-n``, the number of ``what`` (at most
    that many when ``most``), default ``n``."""
    command = sub.add_parser(name, help=help, description=description)
    command.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    count = "at most this many" if most else "number of"
    command.add_argument("-n", type=_count, default=n, help=f"{count} {what} (default {n})")
    return command


def _output_seed_device(command: argparse.ArgumentParser, out_help: str) -> None:
    """The options every image-writing command shares: where to write, the seed, the device."""
    command.add_argument("--out", required=True, help=out_help)
    _force(command)
    command.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    command.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")


def _force(command: argparse.ArgumentParser) -> None:
    # --out is a string, not a Path, so that a trailing separator ("o/") is still seen.
    command.add_argument("--force", action="store_true",
                         help="replace an existing --out file that genzoo did not write (a run's "
                         "own files are never replaced)")
