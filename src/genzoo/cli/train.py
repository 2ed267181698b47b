"""``genzoo train``: build a model from its config and run the Trainer (also under torchrun)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from genzoo.core.errors import GenzooError
from genzoo.training.manifest import BEST_DIR


def _resolve_for_data(cfg, bundle):
    """Fill model fields that come from the data (``n_visible``) before the model is built;
    a model config with ``resolve_for_data(bundle)`` (the DBM classifier, whose source run's
    config the recipe reads first) checks and fills its own."""
    from genzoo.models.boltzmann.dbm_classifier import DBMClassifierConfig
    from genzoo.recipes.dbm_classifier import resolve_source

    model_cfg = cfg.model
    if isinstance(model_cfg, DBMClassifierConfig):
        model_cfg = resolve_source(model_cfg)
    resolve = getattr(model_cfg, "resolve_for_data", None)
    if callable(resolve):
        model_cfg = resolve(bundle)
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
_EARLY_RUN_FILES = frozenset({"config.json", "metrics.csv", "samples.png", "pretrain"})


def _pretraining(cfg, epochs: int | None, resume: bool):
    """(config, whether to pretrain now): ``--pretrain EPOCHS`` is model.pretrain_epochs; a fresh
    run with pretrain_epochs > 0 pretrains and keeps the pretrained visible bias
    (model.init_visible_bias=false, recorded in config.json); a resumed run never pretrains."""
    has_field = any(f.name == "pretrain_epochs" for f in dataclasses.fields(cfg.model))
    if epochs is not None:
        if not has_field:
            raise GenzooError(
                f"--pretrain applies to models with greedy layerwise pretraining (dbm, "
                f"centered-dbm), not {cfg.model_name!r}; drop --pretrain"
            )
        cfg = cfg.with_overrides([f"model.pretrain_epochs={epochs}"])
    pretrain = has_field and not resume and cfg.model.pretrain_epochs > 0
    if pretrain:
        cfg = cfg.with_overrides(["model.init_visible_bias=false"])
    return cfg, pretrain


def _cmd_train(args: argparse.Namespace) -> int:
    from genzoo import distributed as gz_dist
    from genzoo.core.registry import get_model_spec
    from genzoo.data import load_data
    from genzoo.run_config import RunConfig
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
            names = {p.name for p in args.out.iterdir() if not p.name.startswith(".")}
            early = names <= _EARLY_RUN_FILES
            # A run that failed before training (e.g. a data check) left only its config:
            # nothing is lost by starting again there.
            untrained = names <= {"config.json", "pretrain"}
            if not (untrained or (args.resume_if_exists and early)):
                raise GenzooError(
                    f"run directory {args.out} exists and is not empty; choose a new --out, "
                    "or add --resume to continue that run"
                )
        cfg = RunConfig.default(spec.name)
        if args.data is not None:
            cfg = cfg.with_overrides([f"data.name={args.data}"])
    cfg = cfg.with_overrides(args.overrides)
    cfg, pretrain = _pretraining(cfg, getattr(args, "pretrain", None), resume)
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
        from genzoo.models.boltzmann.dbm_classifier import DBMClassifier

        if isinstance(model, DBMClassifier) and not resume:
            from genzoo.recipes.dbm_classifier import start_from_run

            start_from_run(model)
        if pretrain:
            from genzoo.recipes.dbm_pretraining import pretrain_run

            if ctx.is_main:
                print(f"genzoo: greedy layerwise pretraining, {cfg.model.pretrain_epochs} "
                      f"epochs per layer, in {args.out / 'pretrain'}", file=sys.stderr)
            # Under torchrun every rank trains the RBMs data-parallel, as the DBM after them.
            pretrain_run(model, cfg, bundle, args.out / "pretrain", distributed=ctx.is_distributed)
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
