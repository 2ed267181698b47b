"""``genzoo train``: build a model from its config and run the Trainer (also under torchrun).

The command holds the lock of its run directory from before it decides whether to resume
until it ends (:func:`genzoo.training.run_directory.run_lock`). A run with a checkpoint
continues with ``--resume`` or ``--resume-if-exists``; a run stopped before its first
checkpoint starts afresh with the same command, ``--resume`` or ``--resume-if-exists``; a
folder holding files genzoo did not write is refused untouched.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
from pathlib import Path

from genzoo.core.errors import GenzooError
from genzoo.training.manifest import BEST_DIR, PRETRAIN_DIR


def _cmd_train(args: argparse.Namespace) -> int:
    from genzoo.core.registry import get_model_spec
    from genzoo.training.run_directory import run_lock

    spec = get_model_spec(args.model)
    # One writer per run directory. Under torchrun only rank 0 writes (and locks); the others
    # read what it wrote.
    writes = os.environ.get("RANK", "0") == "0"
    try:
        with run_lock(args.out) if writes else contextlib.nullcontext():
            return _train(args, spec, writes)
    except KeyboardInterrupt:
        if writes:
            print(f"genzoo: interrupted; {_what_is_kept(args)}", file=sys.stderr)
        return 130


def _what_is_kept(args: argparse.Namespace) -> str:
    """What an interrupted ``genzoo train`` leaves in its run directory, and how to go on."""
    from genzoo.training.checkpoint import checkpoint_step, has_checkpoint

    again = f"genzoo train {args.model} --out {args.out}"
    step = checkpoint_step(args.out) if has_checkpoint(args.out) else None
    if step is not None:
        return (f"the checkpoint of step {step} in {args.out} is intact; continue with "
                f"`{again} --resume`")
    if has_checkpoint(args.out):
        return (f"the checkpoint in {args.out} does not verify; `{again} --resume` says "
                "what is damaged")
    return (f"no checkpoint had been written in {args.out}, so there is nothing to resume; "
            "run the same command again to start afresh")


def _resume_or_fresh(args: argparse.Namespace, announce: bool) -> bool:
    """Whether this command resumes the run in ``args.out``, decided before anything is
    written, from what every rank of a torchrun group sees alike. A genzoo run with no
    checkpoint yet (stopped before its first one) starts afresh, with ``--resume`` too."""
    from genzoo.training.checkpoint import has_checkpoint
    from genzoo.training.manifest import LOCK_FILE
    from genzoo.training.run_directory import check_fresh

    if has_checkpoint(args.out):
        if args.resume or args.resume_if_exists:
            return True
        check_fresh(args.out)  # raises: the folder holds a checkpoint (the message names --resume)
    if args.resume:
        entries = [n for n in os.listdir(args.out) if n != LOCK_FILE] if args.out.is_dir() else []
        if not entries:
            raise GenzooError(
                f"cannot resume {args.out}: it holds no run; drop --resume to start one there"
            )
        check_fresh(args.out)  # a folder of the user's is not a run to start afresh
        if announce:
            print(f"genzoo: {args.out} has no checkpoint yet (the run stopped before its first "
                  "one): starting it afresh", file=sys.stderr)
    return False


def _default_binarization(cfg, spec, overrides: list[str], announce: bool):
    """A model with binary units on a grey-level data set (digits, the default; mnist;
    frey-faces) whose command line names neither data.binarize nor data.dequantize is trained
    with dynamic binarization, the standard setup for MNIST, recorded in config.json; an
    explicit data.binarize=none keeps the grey levels (and the model refuses them)."""
    from genzoo.data.config import GREY_LEVELS

    named = {o.split("=", 1)[0].strip() for o in overrides}
    if (
        named & {"data.binarize", "data.dequantize"}
        or cfg.data.name not in GREY_LEVELS
        or cfg.data.binarize != "none"
        or not getattr(spec.cls, "takes_binary_input", lambda c: False)(cfg.model)
    ):
        return cfg
    if announce:
        print(f"genzoo: {spec.name} has binary units and {cfg.data.name} has grey levels: "
              "data.binarize=dynamic (a fresh Bernoulli draw each epoch; set data.binarize="
              "threshold or none to choose otherwise)", file=sys.stderr)
    return cfg.with_overrides(["data.binarize=dynamic"])


def _train(args: argparse.Namespace, spec, writes: bool) -> int:
    from genzoo import distributed as gz_dist
    from genzoo.data import load_data
    from genzoo.data.config import is_user_data
    from genzoo.data.user import resolve_path
    from genzoo.facade import check_fits_model, plan_pretraining, resolve_for_data, start_fresh
    from genzoo.run_config import RunConfig
    from genzoo.training import Trainer
    from genzoo.training.checkpoint import read_run_config
    from genzoo.training.data_parallel import agree

    resume = _resume_or_fresh(args, announce=writes)
    if resume:
        cfg = read_run_config(args.out)
        if cfg.model_name != spec.name:
            raise GenzooError(
                f"{args.out} holds a {cfg.model_name!r} run, not {spec.name!r}; "
                f"resume with `genzoo train {cfg.model_name} --out {args.out} --resume`"
            )
        if args.data is not None and resolve_path(args.data) != cfg.data.name:
            raise GenzooError(
                f"{args.out} was trained on {cfg.data.name!r}; a resumed run keeps its data set"
            )
    else:
        cfg = RunConfig.default(spec.name)
        if args.data is not None:  # a built-in name, or a path (made absolute)
            cfg = cfg.with_overrides([f"data.name={resolve_path(args.data)}"])
    cfg = cfg.with_overrides(args.overrides)
    if args.quiet:  # --quiet is train.progress=false, recorded like it
        cfg = cfg.with_overrides(["train.progress=false"])
    if not resume:
        # A path given by --set data.name=... is recorded absolute too.
        cfg = dataclasses.replace(cfg, data=cfg.data.replace(name=resolve_path(cfg.data.name)))
        cfg = _default_binarization(cfg, spec, args.overrides, announce=writes)
    cfg, pretrain = plan_pretraining(cfg, args.pretrain, resume)
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
        cfg = resolve_for_data(cfg, bundle)
        import torch

        # nn.Module initialisers draw from the global generator; seeding it here (application
        # code, not the library) makes the initial parameters a function of train.seed.
        torch.manual_seed(cfg.train.seed)
        from genzoo.utils.memory import check_model_fits

        # Sizes such as model.n_hidden=1e12 are refused with the memory they need, measured on
        # the meta device, before anything is allocated.
        check_model_fits(
            lambda: spec.build(cfg.model),
            f"training {spec.name}",
            "use smaller model.* sizes (model.n_hidden, model.hidden, ...)",
        )
        model = spec.build(cfg.model)
        if is_user_data(cfg.data.name):
            check_fits_model(bundle, model, spec.name, cfg.data.name)
        if not resume:
            from genzoo.evaluation import progress

            if pretrain and ctx.is_main:
                print(f"genzoo: greedy layerwise pretraining, {cfg.model.pretrain_epochs} "
                      f"epochs per layer, in {args.out / PRETRAIN_DIR}", file=sys.stderr)
            with progress.on_stderr(ctx.is_main and cfg.train.progress):
                start_fresh(model, cfg, bundle, args.out, pretrain,
                            distributed=ctx.is_distributed)
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
        if "best_step" in metrics:
            best = Path(args.out) / BEST_DIR
            print(f"best valid_{cfg.train.keep_best} ({metrics['best_value']:.4g}) at step "
                  f"{metrics['best_step']}: {best}  (genzoo evaluate {best})")
    return 0
