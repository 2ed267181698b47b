"""``genzoo evaluate``: the likelihood report of a trained run, as text or JSON (both derived
from :class:`genzoo.evaluation.EvaluationReport`)."""

from __future__ import annotations

import argparse
import json

from genzoo.core.errors import GenzooError
from genzoo.utils.io import json_safe

# The data settings an evaluation may change: which examples of the split it scores (a seeded
# random subset, see genzoo.data.datasets.subset_indices), never what the data are.
EVALUATE_DATA_KEYS = ("data.n_eval", "data.n_train", "data.subset_seed")


def _format_report(report, title: str) -> str:
    """The text of ``genzoo evaluate``: the report's own (EvaluationReport.to_text)."""
    return report.to_text(title)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from genzoo import distributed as gz_dist
    from genzoo.data import load_data
    from genzoo.evaluation import evaluate, progress
    from genzoo.training.checkpoint import load_model
    from genzoo.utils.devices import resolve_device
    from genzoo.utils.io import atomic_write_text, check_output_path

    # Checked before the (possibly hour-long) evaluation, so that it is never lost to a bad path.
    device = resolve_device(args.device)
    out = None if args.out is None else check_output_path(args.out, (".json",), force=args.force)
    # Under torchrun every rank runs this; AIS runs and importance-sampling chunks are shared
    # out, every rank gets the one-process report, and only rank 0 prints and writes.
    ctx = gz_dist.init_from_env(device)
    try:
        overrides = [item.strip() for item in args.overrides]
        model_sets = [item for item in overrides if item.startswith("model.")]
        overrides = [item for item in overrides if not item.startswith("model.")]
        if args.split is not None:
            overrides.append(f"eval.split={args.split}")
        if args.task is not None:
            overrides.append(f"eval.task={args.task}")
        for item in overrides:
            if not item.startswith("eval.") and item.partition("=")[0].strip() not in EVALUATE_DATA_KEYS:
                raise GenzooError(
                    f"--set {item!r}: evaluate takes eval.* overrides, the subset settings "
                    f"{', '.join(EVALUATE_DATA_KEYS)}, and model.* for a model's evaluation "
                    "choices"
                )
        model, cfg = load_model(args.run_dir, device=ctx.device, model_overrides=model_sets)
        cfg = cfg.with_overrides(overrides)
        # A run on the user's own data refuses a file changed since training, unless told.
        bundle = load_data(cfg.data, allow_changed=args.allow_changed_data)
        # The estimators' progress on stderr (genzoo.evaluation.progress): bars on a terminal,
        # one line per phase otherwise; rank 0 reports for the whole torchrun group.
        with progress.on_stderr(ctx.is_main and not args.quiet):
            report = evaluate(model, bundle, cfg.eval, distributed=ctx.is_distributed)
        doc = report.to_dict()
        doc["model"] = cfg.model_name
        doc["data"] = cfg.data.name
        doc["data_description"] = bundle.description
        doc["run_dir"] = str(args.run_dir)
        doc["world_size"] = ctx.world_size
        doc = json_safe(doc)
        if ctx.is_main:
            # Printed first: the figure is on the screen even if the write then fails.
            title = f"{cfg.model_name} on {cfg.data.name}"
            print(json.dumps(doc) if args.json else _format_report(report, title), flush=True)
            if out is not None:
                atomic_write_text(out, json.dumps(doc, indent=2) + "\n")
    finally:
        gz_dist.destroy()
    return 0
