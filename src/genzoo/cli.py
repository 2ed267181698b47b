"""The ``genzoo`` command line: list models and data sets, train, evaluate, sample.

Errors a user can cause (:class:`~genzoo.core.errors.GenzooError`) print one line naming the
fix and exit with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Sequence

from genzoo.core.errors import CheckpointError, GenzooError

EXIT_USER_ERROR = 2


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
        "resolved config), model.safetensors, trainer state, metrics.csv and samples.png.",
    )
    train.add_argument("model", metavar="MODEL", help="model name (see `genzoo models`)")
    train.add_argument("--data", default=None, help="data set name (see `genzoo data`); "
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

    ev = sub.add_parser(
        "evaluate", help="estimate the test log-likelihood of a trained run",
        description="Print the model's likelihood figure (nats per example) with its estimator, "
        "sample count and standard error.",
    )
    ev.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    ev.add_argument("--split", choices=("train", "valid", "test"), default=None,
                    help="data split (default: the config's eval.split, test)")
    ev.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override an eval.* field, e.g. eval.ais_runs=100, eval.ais_betas=14500")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    ev.add_argument("--out", type=Path, default=None, help="also write the JSON report here")
    ev.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")

    sa = sub.add_parser("sample", help="draw samples from a trained run and save a PNG grid",
                        description="Draw N samples from the model in RUN_DIR and save them as "
                        "an image grid.")
    sa.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    sa.add_argument("-n", type=int, default=100, help="number of samples (default 100)")
    sa.add_argument("--out", type=Path, required=True, help="output PNG path")
    sa.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sa.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")

    ip = sub.add_parser(
        "inpaint", help="hide part of some images and let the model fill it in (PNG grid)",
        description="Take N images of a split, hide the part named by --mask, complete it with "
        "the model in RUN_DIR (models with inpainting only, e.g. deep-nade) and save a grid "
        "with three rows: original, masked input (hidden pixels grey), completion.",
    )
    ip.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    ip.add_argument("--split", choices=("train", "valid", "test"), default="test",
                    help="data split to take the images from (default test)")
    ip.add_argument("-n", type=int, default=16, help="number of images (default 16)")
    ip.add_argument("--mask", default="bottom-half", metavar="MASK",
                    help="the part to hide: bottom-half (default), top-half, left-half, "
                    "right-half, or random:P (each pixel hidden with probability P)")
    ip.add_argument("--out", type=Path, required=True, help="output PNG path")
    ip.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ip.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")

    ch = sub.add_parser(
        "chain", help="run the model's sampling chain and save it as a GIF or a PNG strip",
        description="Run N chains of the model in RUN_DIR for --steps steps (Markov-chain "
        "samplers: dae, cae, gsn; energy models: block Gibbs) and save every --every-th state: "
        "an animated GIF (--out ending in .gif) or a PNG strip, one row per chain.",
    )
    ch.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    ch.add_argument("-n", type=int, default=8, help="number of chains (default 8)")
    ch.add_argument("--steps", type=int, default=100, help="chain steps (default 100)")
    ch.add_argument("--every", type=int, default=5, help="keep every k-th state (default 5)")
    ch.add_argument("--start", choices=("noise", "data"), default="noise",
                    help="start from uniform binary noise (default) or from test examples")
    ch.add_argument("--out", type=Path, required=True, help="output .gif or .png path")
    ch.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ch.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")

    fi = sub.add_parser(
        "filters", help="save the learned first-layer filters of a run as a PNG grid",
        description="Save the first-layer weights of the model in RUN_DIR, one image per "
        "hidden unit or convolution kernel, each scaled to [0, 1].",
    )
    fi.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    fi.add_argument("-n", type=int, default=100, help="at most this many filters (default 100)")
    fi.add_argument("--out", type=Path, required=True, help="output PNG path")
    return parser


def _cmd_models(_: argparse.Namespace) -> int:
    from genzoo.core.registry import list_models

    rows = [(s.name, s.family, s.summary, s.paper) for s in list_models()]
    width = [max(len(r[i]) for r in rows + [("name", "family", "", "")]) for i in range(2)]
    print(f"{'name':<{width[0]}}  {'family':<{width[1]}}  summary [paper]")
    for name, family, summary, paper in rows:
        print(f"{name:<{width[0]}}  {family:<{width[1]}}  {summary} [{paper}]")
    return 0


def _cmd_data(_: argparse.Namespace) -> int:
    from genzoo.data import data_dir, describe_datasets

    print(f"data directory: {data_dir()} (set GENZOO_DATA to change it)")
    for name, text in describe_datasets():
        print(f"  {name:<20} {text}")
    return 0


def _resolve_for_data(cfg, bundle):
    """Fill model fields that come from the data (``n_visible``) before the model is built."""
    model_cfg = cfg.model
    if any(f.name == "n_visible" for f in dataclasses.fields(model_cfg)):
        if model_cfg.n_visible is None:
            model_cfg = model_cfg.replace(n_visible=bundle.n_features)
        elif model_cfg.n_visible != bundle.n_features:
            raise GenzooError(
                f"model.n_visible={model_cfg.n_visible} but data set {cfg.data.name!r} has "
                f"{bundle.n_features} features; drop the override or pick matching data"
            )
    return dataclasses.replace(cfg, model=model_cfg)


# What a run writes before its first checkpoint: a restarted run may start over on these.
_EARLY_RUN_FILES = frozenset({"config.json", "metrics.csv", "samples.png"})


def _cmd_train(args: argparse.Namespace) -> int:
    from genzoo import distributed as gz_dist
    from genzoo.core.registry import get_model_spec
    from genzoo.core.run_config import RunConfig
    from genzoo.data import load_data
    from genzoo.training import Trainer
    from genzoo.training.checkpoint import has_checkpoint, read_run_config
    from genzoo.training.data_parallel import agree

    spec = get_model_spec(args.model)
    # Decided before anything is written, so every rank of a torchrun group decides alike.
    resume = args.resume or (args.resume_if_exists and has_checkpoint(args.out))
    if resume:
        cfg = read_run_config(args.out)
        if cfg.model_name != spec.name:
            raise GenzooError(
                f"{args.out} holds a {cfg.model_name!r} run, not {spec.name!r}; "
                f"resume with `genzoo train {cfg.model_name} --out {args.out} --resume`"
            )
        if args.data is not None and args.data != cfg.data.name:
            raise GenzooError(
                f"{args.out} was trained on {cfg.data.name!r}; a resumed run keeps its data set"
            )
    else:
        if args.out.exists() and any(args.out.iterdir()):
            early = all(
                p.name in _EARLY_RUN_FILES or p.name.startswith(".") for p in args.out.iterdir()
            )
            if not (args.resume_if_exists and early):
                raise GenzooError(
                    f"run directory {args.out} exists and is not empty; choose a new --out, "
                    "or add --resume to continue that run"
                )
        cfg = RunConfig.default(spec.name)
        if args.data is not None:
            cfg = cfg.with_overrides([f"data.name={args.data}"])
    cfg = cfg.with_overrides(args.overrides)
    device = cfg.train.device
    ctx = gz_dist.init_from_env(None if device == "auto" else device)
    try:
        if ctx.is_distributed and cfg.train.shards == 1:
            # One shard of each global batch per process; recorded in config.json, and a
            # one-process run with this value reproduces the run.
            cfg = cfg.with_overrides([f"train.shards={ctx.world_size}"])
            if ctx.is_main:
                print(f"genzoo: {ctx.world_size} processes: train.shards={ctx.world_size}, "
                      f"global batch train.batch_size={cfg.train.batch_size}, "
                      f"train.lr_scaling={cfg.train.lr_scaling}", file=sys.stderr)
        if ctx.is_distributed and not (agree(resume) or agree(not resume)):
            raise GenzooError(
                f"the processes disagree on whether {args.out} holds a checkpoint; every "
                "machine must see the same run directory (a shared file system)"
            )
        bundle = load_data(cfg.data)
        cfg = _resolve_for_data(cfg, bundle)
        import torch

        # nn.Module initialisers draw from the global generator; seeding it here (application
        # code, not the library) makes the initial parameters a function of train.seed.
        torch.manual_seed(cfg.train.seed)
        model = spec.build(cfg.model)
        if resume and ctx.is_main:
            from genzoo.training.checkpoint import checkpoint_step

            print(f"genzoo: resuming {args.out} from step {checkpoint_step(args.out)}",
                  file=sys.stderr)
        trainer = Trainer(model, cfg, bundle, args.out, distributed=ctx.is_distributed)
        metrics = trainer.fit(resume=resume)
        # Every process leaves the group together: a process tearing down gloo while its
        # peer is still in a collective can abort the peer at exit.
        gz_dist.barrier()
    finally:
        gz_dist.destroy()
    if ctx.is_main:
        summary = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
        )
        print(f"trained {spec.name} on {cfg.data.name}: {summary}")
        print(f"run directory: {args.out}  (next: genzoo evaluate {args.out})")
    return 0


def _format_report(report: dict) -> str:
    lines = [
        f"{report['model']} on {report['data']} ({report['split']} split, "
        f"{report['n_examples']} examples)",
    ]
    if report.get("parzen_log_likelihood") is not None:
        lines.append(
            f"  Parzen log-likelihood = {report['parzen_log_likelihood']:.3f} +/- "
            f"{report['stderr']:.3f} nats per example  [sigma {report['parzen_sigma']:.4g} "
            f"chosen on the validation split, {report['n_model_samples']} samples]"
        )
        if report.get("mmd2") is not None:
            lines.append(
                f"  MMD^2 = {report['mmd2']:.4g} (permutation p = {report['mmd_p_value']:.3g})"
            )
        if report.get("frechet_distance") is not None:
            lines.append(
                f"  Frechet distance = {report['frechet_distance']:.3f}; classes covered = "
                f"{report['classes_covered']} of 10"
            )
    elif report.get("nll_nats") is not None:
        relation = "<=" if report.get("bound") else "="
        lines.append(
            f"  NLL {relation} {report['nll_nats']:.3f} +/- {report['stderr']:.3f} nats per "
            f"example  [{report['estimator']}"
            + (f", {report['n_samples']} runs x {report['n_betas']} temperatures"
               if report.get("n_betas") else "")
            + f", {report.get('dtype', 'float64')}]"
        )
    if report.get("bits_per_dim") is not None:
        lines.append(
            f"  {report['bits_per_dim']:.4f} bits per dimension "
            f"({report.get('likelihood_space', 'data space')})"
        )
    if report.get("classification_error") is not None:
        lines.append(
            f"  classification error = {100 * report['classification_error']:.2f}% +/- "
            f"{100 * report['classification_stderr']:.2f}% ({report['n_classified']} examples)"
        )
    if report.get("elbo_nats") is not None:
        lines.append(
            f"  negative ELBO = {report['elbo_nats']:.3f} nats per example (the bound the "
            "importance-sampled NLL improves on)"
        )
    if report.get("log_z") is not None:
        lines.append(
            f"  log Z = {report['log_z']:.3f} +/- {report.get('stderr_log_z', 0.0):.3f}"
            + (f"  (AIS effective sample size {report['ais_ess']:.1f})"
               if report.get("ais_ess") is not None else "")
        )
    if report.get("log_z_reverse") is not None:
        lines.append(
            f"  reverse AIS: log Z = {report['log_z_reverse']:.3f}, NLL = "
            f"{report['nll_nats_reverse']:.3f}  (forward tends to under-, reverse to "
            "over-estimate log Z: the true NLL most likely lies between)"
        )
    for warning in report.get("warnings", []):
        lines.append(f"  warning: {warning}")
    return "\n".join(lines)


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from genzoo import distributed as gz_dist
    from genzoo.data import load_data
    from genzoo.evaluation import evaluate
    from genzoo.training.checkpoint import load_model

    # Under torchrun every rank runs this; AIS runs and importance-sampling chunks are shared
    # out, every rank gets the one-process report, and only rank 0 prints and writes.
    ctx = gz_dist.init_from_env(args.device)
    try:
        model, cfg = load_model(args.run_dir, device=ctx.device)
        overrides = list(args.overrides)
        if args.split is not None:
            overrides.append(f"eval.split={args.split}")
        for item in overrides:
            if not item.strip().startswith("eval."):
                raise GenzooError(f"--set {item!r}: evaluate takes only eval.* overrides")
        cfg = cfg.with_overrides(overrides)
        bundle = load_data(cfg.data)
        report = dict(evaluate(model, bundle, cfg.eval, distributed=ctx.is_distributed))
        report.setdefault("split", cfg.eval.split)
        report["model"] = cfg.model_name
        report["data"] = cfg.data.name
        report["data_description"] = bundle.description
        report["run_dir"] = str(args.run_dir)
        report["world_size"] = ctx.world_size
        report = _json_safe(report)
        if ctx.is_main:
            if args.out is not None:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(report, indent=2) + "\n")
            print(json.dumps(report) if args.json else _format_report(report))
    finally:
        gz_dist.destroy()
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from genzoo.training.checkpoint import load_model
    from genzoo.utils.images import save_image_grid

    if args.n <= 0:
        raise GenzooError(f"-n {args.n}: the number of samples must be positive")
    from genzoo.data import IMAGE_SHAPES

    model, cfg = load_model(args.run_dir, device=args.device)
    image_shape = IMAGE_SHAPES[cfg.data.name]
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    with torch.no_grad():
        x = model.sample(args.n, generator=generator)
    x = x.float().cpu()
    if cfg.data.dequantize or cfg.data.name == "image-patches":
        # Model space (logits, DC-removed or rescaled patches) back to pixels; the rescaling
        # depends on the training set, so the data are loaded.
        from genzoo.data import load_data

        x = load_data(cfg.data).to_images(x)
    save_image_grid(x.clamp(0, 1), image_shape, args.out)
    print(f"wrote {args.n} samples to {args.out}")
    return 0


_HALF_MASKS = ("bottom-half", "top-half", "left-half", "right-half")


def _hidden_pixels(spec: str, image_shape: tuple[int, int], n: int, generator):
    """Boolean (n, H*W), True where ``spec`` hides a pixel."""
    import torch

    h, w = image_shape
    rows = torch.arange(h).unsqueeze(1).expand(h, w)
    cols = torch.arange(w).unsqueeze(0).expand(h, w)
    halves = {"bottom-half": rows >= h // 2, "top-half": rows < h // 2,
              "left-half": cols < w // 2, "right-half": cols >= w // 2}
    if spec in halves:
        return halves[spec].reshape(1, -1).expand(n, -1)
    if spec.startswith("random:"):
        try:
            p = float(spec.split(":", 1)[1])
        except ValueError:
            p = math.nan
        if not 0.0 <= p <= 1.0:
            raise GenzooError(f"--mask {spec}: P in random:P must be a number in [0, 1]")
        return torch.rand((n, h * w), generator=generator, device=generator.device).cpu() < p
    raise GenzooError(f"--mask {spec!r}: use one of {', '.join(_HALF_MASKS)} or random:P")


def _cmd_inpaint(args: argparse.Namespace) -> int:
    import torch

    from genzoo.data import IMAGE_SHAPES, load_data
    from genzoo.training.checkpoint import load_model
    from genzoo.utils.images import save_image_grid

    if args.n <= 0:
        raise GenzooError(f"-n {args.n}: the number of images must be positive")
    model, cfg = load_model(args.run_dir, device=args.device)
    if not callable(getattr(model, "inpaint", None)):
        raise GenzooError(
            f"model {cfg.model_name!r} cannot inpaint (no conditional of any subset given the "
            "rest); train an order-agnostic model such as deep-nade"
        )
    image_shape = IMAGE_SHAPES[cfg.data.name]
    x = load_data(cfg.data).split(args.split).x[: args.n]
    # One generator for the random mask and the completions, so they use different numbers.
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    hidden = _hidden_pixels(args.mask, image_shape, len(x), generator)
    dtype = next(model.parameters()).dtype
    x = x.to(device=args.device, dtype=dtype)
    with torch.no_grad():
        filled = model.inpaint(x, ~hidden.to(args.device), generator=generator)[0]
    masked = torch.where(hidden.to(args.device), torch.full_like(x, 0.5), x)
    grid = torch.cat([x, masked, filled]).float().cpu().clamp(0, 1)
    save_image_grid(grid, image_shape, args.out, nrow=len(x))
    print(f"wrote {len(x)} inpainted {args.split} images ({args.mask} hidden) to {args.out}: "
          "rows original / masked input / completion")
    return 0


def _cmd_chain(args: argparse.Namespace) -> int:
    import torch

    from genzoo.core.protocols import ENERGY, has
    from genzoo.data import IMAGE_SHAPES, load_data
    from genzoo.training.checkpoint import load_model
    from genzoo.utils.animation import save_chain_gif, save_chain_strip

    for flag, value in (("-n", args.n), ("--steps", args.steps), ("--every", args.every)):
        if value <= 0:
            raise GenzooError(f"{flag} {value}: must be positive")
    model, cfg = load_model(args.run_dir, device=args.device)
    gibbs = has(model, ENERGY) and callable(getattr(model, "gibbs_step", None))
    if not callable(getattr(model, "chain", None)) and not gibbs:
        raise GenzooError(
            f"model {cfg.model_name!r} has no sampling chain; `genzoo chain` runs Markov-chain "
            "samplers (dae, cae, gsn) and energy models with block Gibbs sampling (rbm, ...)"
        )
    image_shape = IMAGE_SHAPES[cfg.data.name]
    dtype = next(model.parameters()).dtype
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    if args.start == "data":
        x0 = load_data(cfg.data).test.x[: args.n]
    else:
        d = image_shape[0] * image_shape[1]
        x0 = torch.rand(args.n, d, generator=torch.Generator().manual_seed(args.seed)).round()
    x0 = x0.to(device=args.device, dtype=dtype)
    with torch.no_grad():
        if callable(getattr(model, "chain", None)):
            states = model.chain(x0, args.steps, generator=generator)
        else:
            states = [x0]
            for _ in range(args.steps):
                states.append(model.gibbs_step(states[-1], generator=generator))
            states = torch.stack(states)
    states = states.float().cpu().clamp(0, 1)
    if args.out.suffix.lower() == ".gif":
        frames = save_chain_gif(states, image_shape, args.out, every=args.every)
        print(f"wrote {args.n} chains, {frames} frames (every {args.every}th of "
              f"{args.steps} steps) to {args.out}")
    else:
        save_chain_strip(states, image_shape, args.out, every=args.every)
        print(f"wrote {args.n} chains (every {args.every}th of {args.steps} steps) to {args.out}")
    return 0


def _cmd_filters(args: argparse.Namespace) -> int:
    import torch

    from genzoo.data import IMAGE_SHAPES
    from genzoo.training.checkpoint import load_model
    from genzoo.utils.images import save_image_grid

    if args.n <= 0:
        raise GenzooError(f"-n {args.n}: the number of filters must be positive")
    model, cfg = load_model(args.run_dir)
    if callable(getattr(model, "filters", None)):
        images, shape = model.filters()
    else:
        image_shape = IMAGE_SHAPES[cfg.data.name]
        d = image_shape[0] * image_shape[1]
        W = getattr(model, "W", None)
        if not isinstance(W, torch.Tensor) or W.dim() != 2 or W.shape[0] != d:
            raise GenzooError(
                f"model {cfg.model_name!r} has no first-layer weight matrix W (D={d}, H) to show; "
                "`genzoo filters` works for RBM-family models and the convolutional RBM"
            )
        images, shape = W.detach().T.float(), image_shape
    images = images[: args.n]
    # Each filter scaled to its own range: the pattern matters, not the magnitude.
    save_image_grid(images.cpu(), shape, args.out, scale=2, normalize=True)
    print(f"wrote {len(images)} filters to {args.out}")
    return 0


_COMMANDS = {
    "models": _cmd_models,
    "data": _cmd_data,
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "sample": _cmd_sample,
    "inpaint": _cmd_inpaint,
    "chain": _cmd_chain,
    "filters": _cmd_filters,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except GenzooError as exc:
        kind = "checkpoint error" if isinstance(exc, CheckpointError) else "error"
        print(f"genzoo: {kind}: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("genzoo: interrupted; the last checkpoint in the run directory is intact "
              "(continue with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
