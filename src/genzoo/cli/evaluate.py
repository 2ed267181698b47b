"""``genzoo evaluate``: the likelihood report of a trained run, as text or JSON."""

from __future__ import annotations

import argparse
import json
import math

from genzoo.core.errors import GenzooError


def _format_report(report: dict) -> str:
    lines = [
        (f"{report['model']} on {report['data']} ({report['split']} split, "
         f"{report['n_examples']} examples)"),
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
        overrides = [item.strip() for item in args.overrides]
        model_sets = [item for item in overrides if item.startswith("model.")]
        overrides = [item for item in overrides if not item.startswith("model.")]
        if args.split is not None:
            overrides.append(f"eval.split={args.split}")
        if getattr(args, "task", None) is not None:
            overrides.append(f"eval.task={args.task}")
        for item in overrides:
            if not item.startswith("eval."):
                raise GenzooError(f"--set {item!r}: evaluate takes eval.* overrides (and "
                                  "model.* for a model's evaluation choices)")
        model, cfg = load_model(args.run_dir, device=ctx.device, model_overrides=model_sets)
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
