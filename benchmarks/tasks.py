"""The parts of benchmark rows that are not ``genzoo train`` + ``genzoo evaluate``.

A row names a function here: ``train_with`` (replaces the training step), ``evaluate_with``
(replaces the evaluation; returns what ``run.published`` derives from a typed report:
estimator, value, stderr, extra, data), ``baselines`` (adds figures to ``extra``) or ``task``
(the whole run; returns the result's body, whose ``wall_s`` the runner fills with the task's
seconds unless it times its parts). Each takes the run's plan (``run.plan``: data set,
training and evaluation settings, epochs)."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import statistics
import time
from itertools import product
from pathlib import Path
from typing import Any

import common
import torch
import torch.nn.functional as F

from genzoo import compare
from genzoo.cli import main as genzoo_main
from genzoo.core.registry import get_model_spec
from genzoo.data import DataConfig
from genzoo.data.synthetic import ring_means, ring_of_gaussians
from genzoo.evaluation.baselines import gaussian_baseline_nll
from genzoo.evaluation.frechet import frechet_report, load_classifier
from genzoo.evaluation.importance import importance_log_px
from genzoo.evaluation.mmd import mmd, mmd_permutation_test
from genzoo.evaluation.parzen import training_data_parzen
from genzoo.evaluation.pseudo_likelihood import pseudo_log_likelihood
from genzoo.evaluation.stats import Estimate, mean_stderr
from genzoo.models.hopfield.capacity import capacity_curve, critical_load
from genzoo.models.markov.dae import DAE, DAEConfig
from genzoo.recipes.dbm_pretraining import pretrain_dbm
from genzoo.run_config import RunConfig
from genzoo.training import Trainer
from genzoo.training.checkpoint import load_model
from genzoo.training.curves import metric_points, plot_lines, read_metrics
from genzoo.training.model_calls import init_from_data


def _data(p: dict, *ignored: str, **fields: Any):
    """The plan's data set (never downloaded), with its ``data.*`` settings but those named
    ``ignored``, and ``fields`` (DataConfig fields) over them."""
    conv = {"true": True, "false": False}
    sets = {k.removeprefix("data."): conv.get(str(v).lower(), v) for k, v in p["train"].items()
            if k.startswith("data.") and k.removeprefix("data.") not in ignored}
    return common.offline_data(DataConfig(name=p["data"], **{**sets, **fields}))


# ------------------------------------------------------------------------- train / evaluate


def pretrained_dbm(row: dict, data: str, sets: dict[str, Any], run: Path) -> None:
    """SH09's DBM: greedy layerwise pretraining with the row's ``pretrain`` settings (a
    learning rate and schedule of their own, which ``genzoo train --pretrain`` does not
    take), then the DBM's training from the composed weights, through the Python API."""
    pre = row["pretrain"]
    epochs = 1 if sets.get("train.epochs") == 1 else pre["epochs"]  # smoke: 1
    cfg = RunConfig.default(row["model"]).with_overrides(
        [f"data.name={data}", *common.sets_to_args({**sets, "train.progress": False})[1::2]])
    bundle = common.offline_data(cfg.data)
    model_cfg = cfg.model.replace(n_visible=bundle.n_features)
    train = dataclasses.replace(cfg.train, epochs=epochs, lr=pre["train.lr"],
                                lr_schedule=pre["train.lr_schedule"])
    resume = (run / "config.json").is_file()  # then the pretraining is done
    if resume:
        dbm = load_model(run)[0]
    else:
        dbm, _ = pretrain_dbm(model_cfg, bundle, run.parent / f"{run.name}_pretrain",
                              dataclasses.replace(cfg, model=model_cfg, train=train),
                              rbm_k=pre["rbm_k"])
    Trainer(dbm, dataclasses.replace(cfg, model=dbm.config), bundle, run).fit(resume=resume)


def gaussian_baselines(p: dict) -> dict[str, Any]:
    """Test NLLs (nats per example) of the maximum-likelihood full-covariance and diagonal
    Gaussians fitted to the training data in model space, carried into the space the
    evaluator reports by the same log-Jacobian; they give the scale where no published
    number exists. The diagonal one is a GRBM's AIS base model."""
    bundle = _data(p, "unit_variance")
    y = bundle.test.x.double()
    log_det = bundle.transform.log_det_jacobian(y) if bundle.transform is not None else 0.0
    full, diagonal = gaussian_baseline_nll(bundle.train.x, y, log_det)
    return {"gaussian_nll": full, "diagonal_gaussian_nll": diagonal,
            "gaussian_nll_note": "maximum-likelihood Gaussians fitted to the same training "
                                 "data, in the space the evaluator reports"}


def parzen_baselines(p: dict, n: int = 10_000) -> dict[str, Any]:
    """Two yardsticks for a sample-based score: the Parzen score of the test split when the
    'samples' are ``n`` training examples (bandwidth chosen on the validation split; what a
    copying sampler reaches), and the Frechet distance and class coverage of a mixture of 10
    diagonal Gaussians fitted by EM (a GAN or GMMN should beat it)."""
    from sklearn.mixture import GaussianMixture  # here: importing scikit-learn takes seconds

    bundle = _data(p)
    est = _training_data_parzen(bundle, n)
    out = {"training_data_parzen": {"value": est.value, "stderr": est.stderr,
                                    "sigma": est.diagnostics["sigma"],
                                    "n_samples": est.diagnostics["n_model_samples"]}}
    try:
        classifier = load_classifier(p["data"])
    except Exception:  # noqa: BLE001 - no feature classifier for this data set (digits)
        return out
    gm = GaussianMixture(10, covariance_type="diag", random_state=0, max_iter=100)
    gm.fit(bundle.train.x.double().numpy())
    samples = torch.from_numpy(gm.sample(n)[0]).clamp(0, 1)
    fr = frechet_report(samples, bundle.test.x, classifier)
    out["baseline"] = {"model": "mixture of 10 diagonal Gaussians (EM)",
                       "frechet_distance": fr["frechet_distance"],
                       "classes_covered": fr["classes_covered"]}
    return out


def _training_data_parzen(bundle: Any, n: int) -> Estimate:
    """:func:`training_data_parzen` of the first ``n`` training examples over the GAN paper's
    grid logspace(-1, 0, 10), in float32 as the recorded results have it."""
    return training_data_parzen(bundle.train.x[:n], bundle.valid.x, bundle.test.x,
                                torch.logspace(-1, 0, 10).tolist())


def parzen_ceiling(row: dict, p: dict, out: Path) -> dict[str, Any]:
    """The ceiling of a Parzen table: the test split's Parzen score when the 'samples' are
    ``row["n_samples"]`` (smoke: ``row["smoke"]["n_samples"]``) real training images, through
    the estimator and bandwidth selection of the sample-based rows (no training)."""
    n = int(p["grid"].get("n_samples", 10_000))
    bundle = _data(p)
    t0 = time.perf_counter()
    est = _training_data_parzen(bundle, n)
    return {"data": {"name": p["data"], "binarization": row.get("binarization", "none"),
                     "split": "test", "n_examples": len(bundle.test.x),
                     "description": bundle.description},
            "metric": {"name": "test Parzen log-likelihood", "unit": "nats",
                       "lower_is_better": False, "per": "example"},
            "estimator": {"name": "parzen window (real training images as the samples)",
                          "dtype": "float64", "sigma": est.diagnostics["sigma"],
                          "n_model_samples": est.diagnostics["n_model_samples"]},
            "value": est.value, "stderr": est.stderr, "extra": {"ceiling_for": "parzen"},
            "wall_s": {"task": time.perf_counter() - t0}}


def _mean_se(values: torch.Tensor) -> dict[str, float]:
    return {**dict(zip(("mean", "stderr"), mean_stderr(values))), "n": len(values)}


def conv_rbm_scores(run: Path, p: dict, chunk: int = 250) -> dict[str, Any]:
    """A convolutional RBM's Z is intractable: on the test split, the mean-field
    reconstruction cross-entropy (nats per image) and a stochastic pseudo-log-likelihood
    (``pll_pixels`` random pixels per image, unbiased for the full sum), of the trained model
    and of the exact model the run started from, with paired changes; plus ``genzoo filters``
    and ``genzoo sample`` images beside the result."""
    after, cfg = load_model(run)
    bundle = common.offline_data(cfg.data)
    torch.manual_seed(cfg.train.seed)  # the model `genzoo train` started from
    before = get_model_spec(cfg.model_name).build(cfg.model)
    init_from_data(before, bundle.train_x(0))
    pixels = int(p["evaluate"].get("pll_pixels", 16))

    def recon_ce(model, x):  # logits of P(v = 1 | h = P(h | x)): no log(0)
        img = model.images(x)
        logits = model.visible_input(model.block_probabilities(model.detector_input(img))[0])
        return F.binary_cross_entropy_with_logits(logits, img, reduction="none").flatten(1).sum(-1)

    x, per = bundle.test.x.double(), {}
    with torch.no_grad():
        for name, model in (("before", before.eval().double()), ("after", after.double())):
            g = torch.Generator().manual_seed(0)  # the same pixels for both models
            parts = [(recon_ce(model, x[i:i + chunk]),
                      pseudo_log_likelihood(model, x[i:i + chunk], pixels, g))
                     for i in range(0, len(x), chunk)]
            per[name] = {"recon_ce": torch.cat([a for a, _ in parts]),
                         "pll": torch.cat([b for _, b in parts])}
    images = {}
    n_samples = str(p["evaluate"].get("n_samples", 64))
    for kind, cmd, args in (("filters", "filters", []), ("samples", "sample", ["-n", n_samples])):
        images[kind] = str(run / f"{kind}_eval.png")  # not the run's own samples.png
        if genzoo_main([cmd, str(run), *args, "--out", images[kind]]):
            raise SystemExit(f"genzoo {cmd} failed on {run}")
    stats = {k: {m: _mean_se(v) for m, v in d.items()} for k, d in per.items()}
    change = {m: _mean_se(per["after"][m] - per["before"][m]) for m in ("recon_ce", "pll")}
    return {"estimator": {"name": "mean-field reconstruction, P(v | h = P(h | v)); float64",
                          "dtype": "float64"},
            "value": stats["after"]["recon_ce"]["mean"],
            "stderr": stats["after"]["recon_ce"]["stderr"],
            "extra": {**stats, "change_after_minus_before": change,
                      "pll_pixels_per_image": pixels, "images": images},
            "data": {"split": "test", "n_examples": len(x),
                     "description": getattr(bundle, "description", None)}}


# ---------------------------------------------------------------------------- whole tasks


def hopfield_capacity(row: dict, p: dict, out: Path) -> dict[str, Any]:
    """Recall of the Hebbian Hopfield network against the load P/N for several N: P =
    round(load N) random patterns stored, asynchronous dynamics from each pattern to a fixed
    point, the mean overlap m with its pattern; the critical load is where m first falls
    below ``threshold`` (interpolated). The classical limit is 0.138 as N grows."""
    grid = p["grid"]
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    curves = {n: capacity_curve(n, grid["loads"], n_trials=grid["trials"], generator=g)
              for n in grid["sizes"]}
    critical = {n: critical_load(c, grid["threshold"]) for n, c in curves.items()}
    png = plot_lines({"mean overlap after recall against load P/N": {
        f"N = {n}": [(pt.load, pt.overlap) for pt in c] for n, c in curves.items()}},
        out / f"{row['name']}.png", "Hebbian Hopfield network", marks={0.138: "0.138"})
    n_max = max(grid["sizes"])
    return {"data": {"name": "uniform random +-1 patterns", "binarization": "none",
                     "split": "none (synthetic)"},
            "metric": {"name": f"critical load (overlap < {grid['threshold']}) at N = {n_max}",
                       "unit": "patterns per unit", "lower_is_better": False},
            "estimator": {"name": "recall from each stored pattern, asynchronous T = 0 "
                          "dynamics", "trials": grid["trials"]},
            "value": critical[n_max],
            # The spread over network sizes bounds the finite-size drift, not a sampling error.
            "stderr": _sd(list(critical.values())),
            "extra": {"critical_load_by_n": {str(n): v for n, v in critical.items()},
                      "curves": {str(n): [vars(pt) for pt in c] for n, c in curves.items()},
                      "plot": png.name}}


def _sd(values: list[float]) -> float:
    """The sample standard deviation of ``values``; 0 for a single value."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def dae_walkback_toy(row: dict, p: dict, out: Path) -> dict[str, Any]:
    """The DAE chain on a ring of 8 Gaussians (radius 2, std 0.1): the unbiased MMD^2 between
    pooled chain draws (chains from N(0, 2^2 I), burn-in, thinning) and fresh data, with a
    permutation p-value, for plain training (K = 1) and walkback (K > 1) at the same
    corruption, over seeds and training budgets; the MMD^2 between two data samples of the
    same size is the yardstick."""
    grid, sigmas = p["grid"], (0.1, 0.3, 1.0)
    torch.set_num_threads(1)
    n = grid["chains"] * grid["keep"]
    gd = torch.Generator().manual_seed(12345)
    null = [float(mmd(ring_of_gaussians(n, gd).double(), ring_of_gaussians(n, gd).double(),
                      sigmas)) for _ in range(grid["data_pairs"])]
    rows = []
    for steps, noise, k in product(grid["budgets"], grid["noises"], grid["walkbacks"]):
        per_seed = []
        for seed in grid["seeds"]:
            g = torch.Generator().manual_seed(seed)
            model = DAE(DAEConfig(n_visible=2, n_hidden=grid["n_hidden"], corruption="gaussian",
                                  noise_level=noise, reconstruction="gaussian", walkback=k,
                                  sample_output="draw"), generator=g)
            model.init_from_data(ring_of_gaussians(2000, g))
            opt = torch.optim.Adam(model.parameters(), lr=grid["lr"])
            for _ in range(steps):
                loss = model.loss(ring_of_gaussians(grid["batch"], g), g)["loss"]
                opt.zero_grad()
                loss.backward()
                opt.step()
            last = grid["burn_in"] + grid["thin"] * (grid["keep"] - 1)
            states = model.chain(2.0 * torch.randn(grid["chains"], 2, generator=g), last, g,
                                 output="draw")  # keep every thin-th state after the burn-in
            draws = states[grid["burn_in"]:last + 1:grid["thin"]].reshape(-1, 2)
            est = mmd_permutation_test(draws, ring_of_gaussians(n, gd), sigmas,
                                       grid["permutations"],
                                       generator=torch.Generator().manual_seed(seed))
            # off mode: farther than 4 component stds from every mean
            off = float((torch.cdist(draws, ring_means().to(draws)).min(1).values > 0.4)
                        .to(draws.dtype).mean())
            per_seed.append({"seed": seed, "mmd2": est.value,
                             "p_value": est.diagnostics["p_value"], "off_mode_fraction": off,
                             "recon_sigma": model._log_sigma().exp().tolist()})
        vals = [r["mmd2"] for r in per_seed]
        rows.append({"steps": steps, "noise": noise, "walkback": k,
                     "mmd2_mean": statistics.fmean(vals), "mmd2_sd": _sd(vals),
                     "off_mode_mean": statistics.fmean(r["off_mode_fraction"] for r in per_seed),
                     "seeds": per_seed})
        print(f"steps {steps} noise {noise} K {k}: MMD^2 {rows[-1]['mmd2_mean']:.5f}", flush=True)
    plain = {(r["steps"], r["noise"]): r["mmd2_mean"] for r in rows if r["walkback"] == 1}
    best = min(rows, key=lambda r: r["mmd2_mean"])
    return {"data": {"name": "ring of 8 Gaussians in 2-D (radius 2, std 0.1)",
                     "binarization": "none", "split": "fresh synthetic draws", "n_examples": n},
            "metric": {"name": "unbiased MMD^2, chain draws vs data (best setting)",
                       "unit": "kernel units", "lower_is_better": True},
            "estimator": {"name": "unbiased MMD^2 with permutation test",
                          "kernel_sigmas": list(sigmas), "permutations": grid["permutations"],
                          **{k: grid[k] for k in ("chains", "burn_in", "thin", "keep")}},
            "value": best["mmd2_mean"], "stderr": best["mmd2_sd"],
            "extra": {"best": {k: best[k] for k in ("steps", "noise", "walkback")},
                      "data_vs_data": {"mean": statistics.fmean(null), "values": null,
                                       "sd": _sd(null)},
                      "walkback_minus_plain": {
                          f"steps={r['steps']},noise={r['noise']},K={r['walkback']}":
                              r["mmd2_mean"] - plain[(r["steps"], r["noise"])]
                          for r in rows if r["walkback"] > 1 and (r["steps"], r["noise"]) in plain},
                      "table": rows},
            "training": {"optimizer": "adam", "lr": grid["lr"], "steps": grid["budgets"],
                         "batch": grid["batch"], "n_hidden": grid["n_hidden"],
                         "activation": "tanh", "tied": False}}


def vae_frey_faces(row: dict, p: dict, out: Path) -> dict[str, Any]:
    """Kingma & Welling (2014), figure 2: the SGVB bound per data point on training and
    held-out faces against the examples seen, one VAE (genzoo Trainer) per latent size; the
    final test bound and the importance-sampled log p(x) of the same draws."""
    grid, batch = p["grid"], 100
    bundle = _data(p, seed=0)
    n_train = len(bundle.train.x)
    bpe = math.ceil(n_train / batch)
    full, rest = divmod(grid["examples"], n_train)
    steps = max(1, full * bpe + math.ceil(rest / batch))
    seen = lambda s: (s // bpe) * n_train + min((s % bpe) * batch, n_train)
    every = max(1, steps // 60)
    per_latent, curves, wall = {}, {}, {}
    for j in grid["latents"]:
        cfg = RunConfig.default("vae").with_overrides([
            f"data.name={p['data']}", *common.sets_to_args(
                {**p["train"], "model.n_latent": j, "train.max_steps": steps,
                 "train.log_every": every, "train.validate_every": every})[1::2]])
        cfg = dataclasses.replace(cfg, model=cfg.model.replace(n_visible=bundle.n_features))
        model = get_model_spec("vae").build(cfg.model)
        t0 = time.perf_counter()
        Trainer(model, cfg, bundle, out / "runs" / f"z{j}").fit()
        wall[f"train_z{j}"] = time.perf_counter() - t0
        logged = read_metrics(out / "runs" / f"z{j}")
        curves[j] = {s: [(seen(int(step)), v) for step, v in metric_points(logged, "step", key)]
                     for s, key in (("train", "elbo"), ("valid", "valid_elbo"))}
        t0 = time.perf_counter()
        est = importance_log_px(model, bundle.test.x, grid["eval_draws"],
                                torch.Generator().manual_seed(0))
        rep = est.report()
        per_latent[j] = {"elbo": -rep["elbo_nats"], "elbo_stderr": mean_stderr(est.elbo)[1],
                         "log_px": -rep["nll_nats"], "log_px_stderr": rep["stderr"],
                         "draws": grid["eval_draws"], "n_examples": rep["n_examples"]}
        wall[f"evaluate_z{j}"] = time.perf_counter() - t0
    png = plot_lines({f"N_z = {j}": c for j, c in curves.items()}, out / f"{row['name']}.png",
                     "AEVB: bound per data point (nats) vs training examples seen (train, "
                     "held out)", log_x=True)
    top = per_latent[max(per_latent)]
    return {"data": {"name": p["data"], "binarization": "none (grey levels / 255, "
                     "real-valued; Gaussian decoder)", "split": "test",
                     "n_examples": top["n_examples"]},
            "metric": {"name": f"test ELBO, N_z = {max(per_latent)}", "unit": "nats",
                       "lower_is_better": False, "per": "example"},
            "estimator": {"name": f"SGVB-A bound, mean over {grid['eval_draws']} draws of "
                          "q(z|x) per example (genzoo importance_log_px, float64)",
                          "n_samples": grid["eval_draws"], "dtype": "float64"},
            "value": top["elbo"], "stderr": top["elbo_stderr"],
            "extra": {"per_latent": {str(j): v for j, v in per_latent.items()},
                      "curves": {str(j): {k: [list(x) for x in s] for k, s in c.items()}
                                 for j, c in curves.items()},
                      "plot": png.name},
            "training": {"examples_per_latent": seen(steps), "settings": p["train"],
                         "latents": list(grid["latents"])},
            "wall_s": wall}


# ------------------------------------------------------------------------- genzoo compare


def compare_models(row: dict, p: dict, out: Path) -> dict[str, Any]:
    """``genzoo compare`` over the row's ``grid.models`` at its budget (``grid.budget_s`` of
    wall clock per model, or ``epochs`` when the run names them: one in smoke mode); the
    leaderboard, its plot and the sample grids are copied into ``out`` beside the result.
    The comparison directory is benchmarks/runs/ROW for a full run (resumable), else
    ``out/compare``."""
    grid, name = p["grid"], row["name"]
    full = out.resolve() == common.RESULTS_DIR.resolve()
    where = common.RUNS_DIR / name if full else out / "compare"
    budget = (["--epochs", str(p["epochs"])] if p["epochs"]
              else ["--budget", f"{grid['budget_s']}s"])
    sets = {k: v for k, v in p["train"].items() if k != "train.epochs"}
    per_model = [a for model, s in grid.get("per_model", {}).items()
                 for a in common.sets_to_args({f"{model}:{k}": v for k, v in s.items()})]
    curve = ["--curve-set" if a == "--set" else a
             for a in common.sets_to_args(grid.get("curve_set", {}))]
    rc = genzoo_main(["compare", "--data", p["data"], "--models", ",".join(grid["models"]), *budget,
               "--out", str(where), "--curve-points", str(grid.get("curve_points", 4)),
               *common.sets_to_args({**sets, **p["evaluate"]}), *per_model, *curve])
    if rc:
        raise SystemExit(f"genzoo compare failed ({rc}); its error is printed above")
    board = json.loads((where / compare.LEADERBOARD_JSON).read_text())
    images = {"plot": f"{name}_{compare.CURVE_PNG}"}
    shutil.copyfile(where / compare.CURVE_PNG, out / images["plot"])
    for entry in [*board["likelihood"], *board["sample_only"]]:
        if entry.get("samples"):
            kept = f"{name}_{entry['model']}_samples.png"
            shutil.copyfile(where / entry["samples"], out / kept)
            entry["samples"] = images[f"samples_{entry['model']}"] = kept
    board["plot"] = images["plot"]
    (out / f"{name}_leaderboard.md").write_text(compare.leaderboard_markdown(board))
    best = board["likelihood"][0]
    return {"data": {"name": p["data"], "binarization": row.get("binarization", "none"),
                     "split": "test", "n_examples": best["n_examples"]},
            "metric": dict(row["metric"]),
            "estimator": {"name": f"{best['model']}: {best['estimator']}", "dtype": "float64"},
            "value": best["nll_nats"], "stderr": best["stderr"],
            "extra": {"leaderboard": {k: board[k] for k in
                                      ("budget", "likelihood", "sample_only", "not_compared")},
                      "best_model": best["model"], "images": images,
                      "leaderboard_md": f"{name}_leaderboard.md"},
            "training": {"budget": board["budget"]["text"], "models": list(grid["models"]),
                         "settings": p["train"], "per_model": grid.get("per_model", {})}}
