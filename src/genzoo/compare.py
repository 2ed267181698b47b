"""Which model fits a data set best: train several models at one budget, evaluate each with its
honest estimator on the same test split, and write a leaderboard (``genzoo compare``).

Layout of a comparison directory ``OUT``::

    OUT/compare.json         what is compared: data, models, budget, settings (the marker that
                             makes OUT a comparison directory; a re-run must match it)
    OUT/<model>/             a normal genzoo run directory (``genzoo evaluate OUT/<model>``)
    OUT/results/<model>.json that model's entry: status, the test report, its training time,
                             the held-out curve; written as it goes, so a re-run skips finished
                             models and resumes unfinished runs
    OUT/leaderboard.md, OUT/leaderboard.json, OUT/nll_vs_time.png

The budget is the same for every model: ``epochs`` passes over the training data, or a wall
clock per model, turned into a number of steps by a timed probe of 10 steps (a fixed step
count keeps the learning-rate schedule and resumption exact; the time each model really
trained is reported beside it). Each model is evaluated by the estimator ``genzoo evaluate``
picks from its capabilities (:func:`genzoo.evaluation.evaluate`): exact, the mean-field bound
or F(x) + log Z with forward and reverse AIS (the bracket), importance sampling, or for
implicit models MMD and the Fréchet distance, with the Parzen window as a labelled weak
measure. While it trains, ``curve_points`` evaluations on the validation split give the curve
of held-out NLL against training time (their time is not counted as training).

Every model sees the same data settings (the common ``data.*`` overrides). On grey-level data
with no binarization named, the models are compared on dynamically binarized data when any of
them has binary units, as ``genzoo train`` does for one model. A model that cannot model the
data is listed with the reason rather than dropped: its own input check refuses the data (a
Bernoulli model on grey levels), it is a continuous density on binary data (its figure would
be a density, not comparable with the probabilities of the others), it has no estimator, or
its partition function is too large to enumerate and it has no AIS path.

Under ``torchrun`` the models are spread over the processes: rank r takes models r, r + W,
...; each trains in one process; rank 0 writes the leaderboard once every entry is finished.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from genzoo.core import protocols
from genzoo.core.errors import ConfigError, GenzooError
from genzoo.core.registry import get_model_spec
from genzoo.data import load_data
from genzoo.data.config import GREY_LEVELS
from genzoo.evaluation import estimator_for, evaluate
from genzoo.facade import resolve_for_data
from genzoo.run_config import RunConfig
from genzoo.training import Trainer
from genzoo.training.callbacks import Callback
from genzoo.training.checkpoint import checkpoint_step, has_checkpoint, load_model
from genzoo.training.curves import plot_lines
from genzoo.utils.io import atomic_write_text, json_safe

MANIFEST = "compare.json"
RESULTS_DIR = "results"
LEADERBOARD_MD = "leaderboard.md"
LEADERBOARD_JSON = "leaderboard.json"
CURVE_PNG = "nll_vs_time.png"
FINISHED = ("done", "refused", "failed")
PROBE_STEPS = 10
NOTES = (
    ("NLL: -log p(x) in nats per example on the test split, by the estimator each model's "
     "capabilities call for (genzoo evaluate); bits per dimension = NLL / (D ln 2). stderr: "
     "the standard error over examples and of the estimator."),
    ("AIS: forward AIS tends to under-estimate log Z (flattering the model), reverse AIS to "
     "over-estimate it; the true NLL most likely lies in the bracket."),
    ("Sample-only models have no likelihood: MMD^2 and the Frechet distance compare their "
     "samples with the test split; the Parzen-window score is a weak measure, shown only for "
     "reference."),
    ("Training time: the Trainer's wall clock at its last step (its own validation included; "
     "the held-out curve's evaluations, the closing checkpoint and the sample grid excluded)."),
)
LIKELIHOOD_HEADER = ("| rank | model | test NLL (nats) | bits/dim | estimator | AIS bracket "
                     "(forward, reverse) | training time | samples |")
SAMPLE_ONLY_HEADER = ("| model | MMD^2 (p) | Frechet distance | Parzen log-lik. (weak) | "
                      "training time | samples |")
CURVE_TEXT = ("Validation-split NLL at points during training (the same estimator as the test "
              "figure).")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclasses.dataclass(frozen=True)
class Budget:
    """The training budget of every model: ``epochs`` passes over the training data, or
    ``seconds`` of wall clock per model (exactly one of them)."""

    epochs: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if (self.epochs is None) == (self.seconds is None):
            raise GenzooError("give the budget as --epochs N or as --budget TIME (e.g. 10m), "
                              "not both and not neither")
        if self.epochs is not None and self.epochs < 1:
            raise GenzooError(f"--epochs {self.epochs}: the budget must be at least one epoch")
        if self.seconds is not None and not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise GenzooError(f"--budget: {self.seconds} s is not a positive time")

    @classmethod
    def parse(cls, budget: str | None, epochs: int | None) -> Budget:
        """From the command line: ``budget`` like ``90s``, ``10m``, ``1.5h`` (a bare number is
        seconds), ``epochs`` a whole number."""
        if budget is None:
            return cls(epochs=epochs)
        if epochs is not None:
            raise GenzooError("give the budget as --epochs N or as --budget TIME, not both")
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", budget)
        if match is None:
            raise GenzooError(f"--budget {budget!r} is not a time; write it as 90s, 10m or 2h")
        return cls(seconds=float(match.group(1)) * _UNITS[match.group(2) or "s"])

    def describe(self) -> str:
        if self.epochs is not None:
            return f"{self.epochs} epoch{'s' if self.epochs != 1 else ''} per model"
        s = self.seconds
        text = f"{s / 3600:g} h" if s >= 3600 else f"{s / 60:g} min" if s >= 60 else f"{s:g} s"
        return f"{text} of wall clock per model (steps fixed by a timed {PROBE_STEPS}-step probe)"

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "seconds": self.seconds, "text": self.describe()}


@dataclasses.dataclass(frozen=True)
class CompareSettings:
    """What one comparison is: the data set (a name or a path), the models in order, the
    budget, the ``--set`` overrides for every model (``common``) and for one model
    (``per_model[name]``), the evaluation overrides of the curve points, and how many."""

    data: str
    models: tuple[str, ...]
    budget: Budget
    common: tuple[str, ...] = ()
    per_model: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    curve_sets: tuple[str, ...] = ()
    curve_points: int = 4

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "models": list(self.models), "budget": self.budget.to_dict(),
                "common": list(self.common),
                "per_model": {k: list(v) for k, v in self.per_model.items()},
                "curve_sets": list(self.curve_sets), "curve_points": self.curve_points}


def parse_models(text: str) -> tuple[str, ...]:
    """``"rbm,nade"`` -> ("rbm", "nade"): registered names, each once; an unknown name is a
    ConfigError listing the models."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise GenzooError("--models names no model; e.g. --models rbm,nade,vae,made")
    for name in names:
        get_model_spec(name)
    return names


def split_overrides(items: Sequence[str], models: Sequence[str]
                    ) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """``--set`` items into those for every model and those for one: ``MODEL:key=value``
    applies to MODEL only. Data settings are common (every model sees the same split)."""
    common: list[str] = []
    per_model: dict[str, list[str]] = {}
    for item in items:
        key, eq, _ = item.partition("=")
        if not eq:
            raise ConfigError(f"--set {item!r}: expected key=value or MODEL:key=value")
        model, colon, dotted = key.partition(":")
        if not colon:
            common.append(item.strip())
            continue
        model = model.strip()
        if model not in models:
            raise GenzooError(f"--set {item!r} names model {model!r}, which is not compared "
                              f"(--models {','.join(models)})")
        if dotted.strip().startswith("data."):
            raise GenzooError(f"--set {item!r}: data settings are the same for every model "
                              "(one test split); drop the model name")
        per_model.setdefault(model, []).append(item[len(model) + 1:].strip())
    return tuple(common), {k: tuple(v) for k, v in per_model.items()}


def partition(models: Sequence[str], rank: int, world_size: int) -> list[str]:
    """The models process ``rank`` of ``world_size`` trains: models r, r + W, r + 2W, ..."""
    if not 0 <= rank < world_size:
        raise GenzooError(f"rank {rank} is not in a group of {world_size} processes")
    return list(models[rank::world_size])


# ---------------------------------------------------------------------- the directory


def prepare_out(out: Path, settings: CompareSettings, writes: bool, wait_s: float = 300.0) -> None:
    """Make ``out`` a comparison directory for ``settings``, or check that it is one: an
    empty or new folder gets the manifest (from the process that ``writes``; the others wait
    for it); a comparison of the same data, budget and settings is continued (its model list
    may differ); anything else is refused."""
    manifest = out / MANIFEST
    want = settings.to_dict()
    if not manifest.is_file():
        if out.exists() and not out.is_dir():
            raise GenzooError(f"--out {out} is a file; name a folder for the comparison")
        if out.is_dir() and any(out.iterdir()) and writes:
            raise GenzooError(f"--out {out} is not empty and holds no comparison ({MANIFEST}); "
                              "name a new or empty folder")
        if writes:
            (out / RESULTS_DIR).mkdir(parents=True, exist_ok=True)
            atomic_write_text(manifest, json.dumps(want, indent=2) + "\n")
            return
        deadline = time.monotonic() + wait_s
        while not manifest.is_file():
            if time.monotonic() > deadline:
                raise GenzooError(f"rank 0 did not create {manifest}; every process must see "
                                  "the same --out (a shared file system)")
            time.sleep(0.5)
    try:
        held = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise GenzooError(f"{manifest} cannot be read ({exc}); name another --out") from None
    keys = ("data", "budget", "common", "curve_sets", "curve_points")
    differ = [k for k in keys if held.get(k) != want[k]]
    differ += [f"per_model[{m}]" for m in settings.models
               if m in held.get("models", []) and held.get("per_model", {}).get(m, [])
               != want["per_model"].get(m, [])]
    if differ:
        raise GenzooError(f"{out} holds a comparison with other settings ({', '.join(differ)}); "
                          "re-run it with the same ones, or name another --out")
    if writes:
        (out / RESULTS_DIR).mkdir(exist_ok=True)
        merged = {**want, "models": list(dict.fromkeys([*held.get("models", []),
                                                        *settings.models]))}
        atomic_write_text(manifest, json.dumps(merged, indent=2) + "\n")


def entry_path(out: Path, model: str) -> Path:
    return out / RESULTS_DIR / f"{model}.json"


def read_entry(out: Path, model: str) -> dict[str, Any] | None:
    path = entry_path(out, model)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None  # a torn write cannot happen (atomic), but a hand-edited file can


def _write_entry(out: Path, entry: dict[str, Any]) -> None:
    text = json.dumps(json_safe(entry), indent=2) + "\n"
    atomic_write_text(entry_path(out, entry["model"]), text)


# ---------------------------------------------------------------------- one model


def run_config_for(model: str, settings: CompareSettings):
    """The RunConfig of ``model`` in this comparison, before the data fill it in: its
    defaults, the data set, the common and its own overrides (progress bars off unless
    asked for), and the uniform binarization."""
    cfg = RunConfig.default(model).with_overrides(
        [f"data.name={settings.data}", "train.progress=false", *settings.common,
         *settings.per_model.get(model, ())])
    return dataclasses.replace(cfg, data=_shared_data(settings).data)


def _shared_data(settings: CompareSettings):
    """The data settings every model gets: the common overrides, and data.binarize=dynamic
    on grey-level data when no binarization is named and any model has binary units."""
    first = settings.models[0]
    data_sets = [s for s in settings.common if s.split("=", 1)[0].strip().startswith("data.")]
    cfg = RunConfig.default(first).with_overrides([f"data.name={settings.data}", *data_sets])
    named = {s.split("=", 1)[0].strip() for s in data_sets}
    binary_units = any(
        getattr(get_model_spec(m).cls, "takes_binary_input", lambda c: False)(
            RunConfig.default(m).with_overrides(list(settings.per_model.get(m, ()))).model)
        for m in settings.models)
    if (not named & {"data.binarize", "data.dequantize"} and cfg.data.name in GREY_LEVELS
            and cfg.data.binarize == "none" and binary_units):
        cfg = cfg.with_overrides(["data.binarize=dynamic"])
    return cfg


def check_settings(settings: CompareSettings) -> None:
    """Every model's config can be built from the overrides: a bad ``--set`` is an error of
    the command, found before anything trains."""
    for model in settings.models:
        run_config_for(model, settings)
    RunConfig.default(settings.models[0]).with_overrides(list(settings.curve_sets))


def refusal(model, cfg, bundle) -> str | None:
    """Why ``model`` cannot be compared on ``bundle``, or None."""
    if protocols.CLASSIFIER in model.capabilities:
        return "a classifier: it has no distribution over x to compare"
    entry = estimator_for(model)
    if entry is None:
        return ("no likelihood estimator and no sample-based measure applies to its "
                f"capabilities ({', '.join(sorted(model.capabilities)) or 'none'})")
    try:
        model.check_input(bundle.train_x(0)[:512].to(next(model.parameters()).dtype), "data")
    except GenzooError as exc:
        return f"it cannot model these data: {exc}"
    if bundle.binary and not model.binary_input and entry.capability != protocols.IMPLICIT:
        return ("a continuous density on binary data: its NLL would be a density, not "
                "comparable with the probabilities of the other models; compare it on "
                "real-valued data (e.g. --set data.binarize=none --set data.dequantize=true)")
    if (entry.capability in (protocols.ENERGY, protocols.VARIATIONAL)
            and protocols.has(model, protocols.EXACT_LOG_PARTITION)
            and not protocols.has(model, protocols.AIS)):
        _, n_units = model.enumerable_free_energy()
        if n_units > cfg.eval.exact_max_units:
            return (f"its log Z needs enumerating 2^{n_units} states (eval.exact_max_units="
                    f"{cfg.eval.exact_max_units}) and it has no AIS path")
    return None


class _CurvePoints(Callback):
    """A Trainer callback: at each step of ``at`` evaluate the model on the validation split
    and record (step, training seconds, figures); the time the evaluation takes is kept apart
    from training time, and the model is left in the mode it was in."""

    def __init__(self, at: set[int], evaluate_valid: Callable[[Any], dict[str, Any]],
                 points: list[dict[str, Any]], save: Callable[[], None]) -> None:
        self.at, self.evaluate_valid, self.points, self.save = at, evaluate_valid, points, save

    def on_step_end(self, trainer, loss: float) -> None:
        if trainer.step not in self.at:
            return
        # A resumed run replays the steps after its checkpoint: their points are redone.
        del self.points[len([p for p in self.points if p["step"] < trainer.step]):]
        train_s = trainer.figures.wall() - sum(p["eval_s"] for p in self.points)
        t0 = time.perf_counter()
        training = trainer.model.training
        try:
            figures = self.evaluate_valid(trainer.model)
        finally:
            trainer.model.train(training)
        bpe = math.ceil(trainer.bundle.train.x.shape[0] / trainer.cfg.batch_size)
        self.points.append({"step": trainer.step, "epoch": trainer.step / bpe,
                            "train_s": train_s, **figures, "eval_s": time.perf_counter() - t0})
        self.save()


def _figures(report) -> dict[str, Any]:
    """The curve's figure of a report: its NLL (nats per example), or for an implicit model
    its Parzen score (weak) and MMD^2."""
    if report.samples is not None:
        return {"parzen": report.samples.parzen.value, "mmd2": report.samples.mmd2.value}
    return {"nll": report.nll.value if report.nll is not None else math.nan}


def compare_one(model_name: str, settings: CompareSettings, out: Path,
                note: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Train and evaluate one model of the comparison (or list why it cannot be compared),
    resuming what an earlier call left, and return its entry (also written to
    ``OUT/results/<model>.json``)."""
    held = read_entry(out, model_name)
    if held is not None and held.get("status") in FINISHED:
        note(f"{model_name}: {held['status']} earlier, skipped (to redo it, delete "
             f"{entry_path(out, model_name)} and {out / model_name})")
        return held
    spec = get_model_spec(model_name)
    run = out / model_name
    entry: dict[str, Any] = {"model": model_name, "family": spec.family, "status": "training",
                             "run_dir": model_name, "curve": [], **(held or {})}
    entry["status"] = "training"

    def save() -> None:
        _write_entry(out, entry)

    try:
        cfg = run_config_for(model_name, settings)
        bundle = load_data(cfg.data)
        cfg = resolve_for_data(cfg, bundle)
        model = _build(spec, cfg)
        reason = refusal(model, cfg, bundle)
    except GenzooError as exc:
        reason = f"{type(exc).__name__}: {exc}"
    if reason is not None:
        entry.update(status="refused", reason=reason)
        note(f"{model_name}: not compared: {reason}")
        save()
        return entry
    entry["estimator_kind"] = estimator_for(model).what
    bpe = math.ceil(len(bundle.train.x) / cfg.train.batch_size)
    try:
        total = _steps(entry, settings.budget, spec, cfg, bundle, out, bpe, note)
        save()
        cfg = cfg.with_overrides(_length(total, bpe))
        k = max(1, min(settings.curve_points, total))
        every = math.ceil(total / k)
        cfg = cfg.with_overrides([f"train.checkpoint_every={every}"])
        curve_cfg = cfg.with_overrides(["eval.split=valid", *settings.curve_sets])
        resume = has_checkpoint(run)
        if resume:
            done = checkpoint_step(run) or 0
            entry["curve"] = [p for p in entry["curve"] if p["step"] <= done]
            model = _build(spec, cfg)  # fresh parameters; the Trainer loads the checkpoint
            note(f"{model_name}: resuming {run} from step {done} of {total}")
        else:
            entry["curve"] = []
            note(f"{model_name}: training {total} step{'s' if total != 1 else ''} "
                 f"({settings.budget.describe()})")
        points = entry["curve"]
        at = {min(total, i * every) for i in range(1, k + 1)}

        def valid_figures(m) -> dict[str, Any]:
            return _figures(evaluate(m, bundle, curve_cfg.eval))

        trainer = Trainer(model, cfg, bundle, run)
        trainer.add_callback(_CurvePoints(at, valid_figures, points, save))
        metrics = trainer.fit(resume=resume)
        # The Trainer's clock at the last step (the last curve point is there), without the
        # curve's evaluations; the closing checkpoint and sample grid are not training.
        last = points[-1] if points and points[-1]["step"] == total else None
        train_s = (last["train_s"] if last is not None
                   else metrics["wall_s"] - sum(p["eval_s"] for p in points))
        note(f"{model_name}: trained in {train_s:.1f} s; evaluating on the test split")
        trained, run_cfg = load_model(run)
        t0 = time.perf_counter()
        report = evaluate(trained, bundle, run_cfg.eval)
        entry.update(status="done", train_s=train_s, steps=int(metrics["step"]),
                     epochs=float(metrics["epoch"]), eval_s=time.perf_counter() - t0,
                     n_features=bundle.n_features, report=report.to_dict(),
                     samples=f"{model_name}/samples.png"
                     if (run / "samples.png").is_file() else None)
    except GenzooError as exc:
        entry.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
        note(f"{model_name}: failed: {exc}")
    save()
    return entry


def _build(spec, cfg):
    """The model of ``cfg``, its initial parameters a function of train.seed (nn.Module
    initialisers draw from torch's global generator, seeded inside a forked state)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        return spec.build(cfg.model)


def _length(steps: int, bpe: int) -> list[str]:
    """The overrides that make a run exactly ``steps`` optimizer steps long."""
    return [f"train.epochs={math.ceil(steps / bpe)}", f"train.max_steps={steps}"]


class _Clock(Callback):
    """The Trainer's wall clock at the end of every step."""

    def __init__(self) -> None:
        self.walls: list[float] = []

    def on_step_end(self, trainer, loss: float) -> None:
        self.walls.append(trainer.figures.wall())


def _steps(entry: dict[str, Any], budget: Budget, spec, cfg, bundle, out: Path, bpe: int,
           note: Callable[[str], None]) -> int:
    """The optimizer steps of this model's run: ``epochs`` x batches per epoch, or the steps
    that fit in the wall-clock budget at the rate of a timed probe run of
    ``PROBE_STEPS + 1`` steps (measured once, kept in the entry)."""
    if budget.epochs is not None:
        return budget.epochs * bpe
    if entry.get("planned_steps"):
        return int(entry["planned_steps"])
    probe = out / RESULTS_DIR / f".probe-{spec.name}"
    shutil.rmtree(probe, ignore_errors=True)
    probe_cfg = cfg.with_overrides([*_length(PROBE_STEPS + 1, bpe), "train.grid_samples=0"])
    clock = _Clock()
    try:
        trainer = Trainer(_build(spec, probe_cfg), probe_cfg, bundle, probe)
        trainer.add_callback(clock)
        trainer.fit()
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    # From the end of the first step to the end of the last: the set-up, the step-0
    # validation and the first step's warm-up are not the rate of a long run.
    per_step = max(clock.walls[-1] - clock.walls[0], 1e-6) / PROBE_STEPS
    planned = max(1, int(budget.seconds / per_step))
    entry.update(planned_steps=planned, probe_s_per_step=per_step)
    note(f"{spec.name}: {per_step * 1000:.1f} ms per step: {planned} steps fit the budget")
    return planned


# ---------------------------------------------------------------------- the leaderboard


def wait_for(out: Path, models: Sequence[str], poll_s: float = 2.0,
             note: Callable[[str], None] = lambda _: None) -> list[dict[str, Any]]:
    """The entries of ``models``, once every one is finished (the other processes of a
    torchrun group write theirs)."""
    waiting_since = time.monotonic()
    said = False
    while True:
        entries = [read_entry(out, m) for m in models]
        if all(e is not None and e.get("status") in FINISHED for e in entries):
            return entries  # type: ignore[return-value]
        if not said and time.monotonic() - waiting_since > 10:
            left = [m for m, e in zip(models, entries)
                    if e is None or e.get("status") not in FINISHED]
            note(f"waiting for the other processes: {', '.join(left)}")
            said = True
        time.sleep(poll_s)


def leaderboard(entries: Sequence[dict[str, Any]], settings: CompareSettings,
                data_description: str | None = None) -> dict[str, Any]:
    """The leaderboard as JSON: models with a likelihood ranked by test NLL (nats per
    example, lowest first), then the sample-only models, then those not compared."""
    rows, implicit, other = [], [], []
    for e in entries:
        if e.get("status") != "done":
            other.append({"model": e["model"], "status": e.get("status"),
                          "reason": e.get("reason", "")})
            continue
        r = e["report"]
        d = e.get("n_features") or 1
        row = {"model": e["model"], "family": e.get("family"), "estimator": r.get("estimator"),
               "train_s": e.get("train_s"), "steps": e.get("steps"), "epochs": e.get("epochs"),
               "run_dir": e.get("run_dir"), "samples": e.get("samples"),
               "curve": [{k: p.get(k) for k in ("step", "epoch", "train_s", "nll", "parzen",
                                                 "mmd2") if k in p} for p in e.get("curve", [])],
               "split": r.get("split"), "n_examples": r.get("n_examples")}
        if "nll_nats" in r and "parzen_log_likelihood" not in r:
            nll = r["nll_nats"]
            bpd = r.get("bits_per_dim", nll / (d * math.log(2)) if nll is not None else None)
            row.update(nll_nats=nll, stderr=r.get("stderr"), bits_per_dim=bpd,
                       bits_per_dim_stderr=(r.get("stderr") or 0.0) / (d * math.log(2)),
                       bound=r.get("bound"), elbo_nats=r.get("elbo_nats"))
            if "nll_nats_reverse" in r:
                row["ais"] = {"nll_forward": nll, "nll_reverse": r["nll_nats_reverse"],
                              "log_z": r.get("log_z"), "log_z_reverse": r.get("log_z_reverse"),
                              "stderr_log_z": r.get("stderr_log_z"),
                              "stderr_log_z_reverse": r.get("stderr_log_z_reverse"),
                              "bracket": sorted([nll, r["nll_nats_reverse"]])}
            rows.append(row)
        else:
            row.update(mmd2=r.get("mmd2"), mmd_p_value=r.get("mmd_p_value"),
                       frechet_distance=r.get("frechet_distance"),
                       parzen_log_likelihood=r.get("parzen_log_likelihood"),
                       parzen_stderr=r.get("parzen_stderr", r.get("stderr")))
            implicit.append(row)
    rows.sort(key=lambda x: (x["nll_nats"] is None, x["nll_nats"]))
    for i, row in enumerate(rows, 1):
        row["rank"] = i
    return {"data": {"name": settings.data, "description": data_description,
                     "split": "test"},
            "budget": settings.budget.to_dict(), "settings": settings.to_dict(),
            "likelihood": rows, "sample_only": implicit, "not_compared": other,
            "plot": CURVE_PNG,
            "notes": list(NOTES)}


def _fmt(value: Any, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def leaderboard_markdown(board: dict[str, Any]) -> str:
    """The leaderboard as Markdown (paths relative to the comparison directory)."""
    data = board["data"]
    about = (f"Data: {data.get('description') or data['name']}; test split. "
             f"Budget: {board['budget']['text']}.")
    lines = [f"# genzoo compare: {data['name']}", "", about, ""]
    if board["likelihood"]:
        lines += ["## Likelihood (lower is better)", "", LIKELIHOOD_HEADER,
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in board["likelihood"]:
            bound = " (upper bound)" if r.get("bound") else ""
            ais = r.get("ais")
            bracket = (f"[{ais['bracket'][0]:.2f}, {ais['bracket'][1]:.2f}]" if ais else "-")
            samples = f"![{r['model']}]({r['samples']})" if r.get("samples") else "-"
            lines.append(
                f"| {r['rank']} | {r['model']} | {_fmt(r['nll_nats'])} +/- "
                f"{_fmt(r['stderr'])}{bound} | {_fmt(r['bits_per_dim'], '.4f')} +/- "
                f"{_fmt(r['bits_per_dim_stderr'], '.4f')} | {r['estimator']} | {bracket} | "
                f"{_fmt(r['train_s'], '.1f')} s ({r['steps']} steps) | {samples} |")
        lines.append("")
    if board["sample_only"]:
        lines += ["## Sample-only models (no likelihood)", "", SAMPLE_ONLY_HEADER,
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in board["sample_only"]:
            samples = f"![{r['model']}]({r['samples']})" if r.get("samples") else "-"
            lines.append(
                f"| {r['model']} | {_fmt(r['mmd2'], '.4g')} ({_fmt(r['mmd_p_value'], '.3g')}) | "
                f"{_fmt(r['frechet_distance'])} | {_fmt(r['parzen_log_likelihood'])} +/- "
                f"{_fmt(r['parzen_stderr'])} (weak) | {_fmt(r['train_s'], '.1f')} s "
                f"({r['steps']} steps) | {samples} |")
        lines.append("")
    if board["not_compared"]:
        lines += ["## Not compared", "", "| model | status | reason |", "| --- | --- | --- |"]
        for r in board["not_compared"]:
            reason = " ".join(str(r["reason"]).split()).replace("|", "\\|")
            lines.append(f"| {r['model']} | {r['status']} | {reason} |")
        lines.append("")
    lines += ["## Held-out NLL against training time", "", f"![NLL against time]({board['plot']})",
              "", CURVE_TEXT, "", "## Notes", ""]
    lines += [f"- {n}" for n in board["notes"]]
    return "\n".join(lines) + "\n"


def plot_curves(board: dict[str, Any], path: Path) -> None:
    """One plot: the validation NLL of every likelihood model against its training time."""
    series = {r["model"]: [(p["train_s"], p["nll"]) for p in r["curve"] if p.get("nll") is not None]
              for r in board["likelihood"]}
    title = (f"{board['data']['name']}: held-out NLL against training time "
             f"({board['budget']['text']})")
    plot_lines({title: series}, path, xlabel="training time (s)",
               ylabel="validation NLL (nats per example)", marker="o")


def write_leaderboard(out: Path, settings: CompareSettings,
                      entries: Sequence[dict[str, Any]], data_description: str | None = None
                      ) -> dict[str, Any]:
    """Write leaderboard.json, leaderboard.md and the plot into ``out``; return the JSON."""
    board = leaderboard(entries, settings, data_description)
    plot_curves(board, out / CURVE_PNG)
    atomic_write_text(out / LEADERBOARD_JSON, json.dumps(json_safe(board), indent=2) + "\n")
    atomic_write_text(out / LEADERBOARD_MD, leaderboard_markdown(board))
    return board


def run_compare(settings: CompareSettings, out: Path, rank: int = 0, world_size: int = 1,
                note: Callable[[str], None] = lambda _: None) -> dict[str, Any] | None:
    """The whole comparison as process ``rank`` of ``world_size`` sees it: its share of the
    models, then (rank 0) the leaderboard, which it returns; the other ranks return None."""
    check_settings(settings)
    prepare_out(out, settings, writes=rank == 0)
    for model in partition(settings.models, rank, world_size):
        compare_one(model, settings, out, note)
    if rank != 0:
        return None
    entries = wait_for(out, settings.models, note=note)
    description = None
    try:
        description = load_data(run_config_for(settings.models[0], settings).data).description
    except GenzooError:
        pass
    return write_leaderboard(out, settings, entries, description)
