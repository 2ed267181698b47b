"""The typed result of :func:`genzoo.evaluation.evaluate`, and the JSON and text derived from it.

An :class:`EvaluationReport` holds :class:`~genzoo.evaluation.stats.Estimate` objects: the
negative log-likelihood -log p(x) in nats per example (the mean over the split, with its
standard error), the log partition function where the model has one, the classification error
of a model that predicts labels, and the sample-based measures of a model that only samples.
``nll_nats`` only ever holds a negative log-likelihood: a model with no density has none, and
its Parzen-window score has its own name (``parzen_log_likelihood``, a log-likelihood in nats
per example, higher is better, with ``parzen_stderr``).
:meth:`EvaluationReport.to_dict` is the JSON that ``genzoo evaluate --json`` prints (a figure
that does not apply to the model is absent from it, never null) and
:meth:`EvaluationReport.from_dict` reads it back; the report also reads as a read-only mapping
of that JSON (``report["nll_nats"]``), and :meth:`EvaluationReport.to_text` is the
human-readable report of ``genzoo evaluate``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from genzoo.evaluation.stats import Estimate

# The JSON keys of the NLL's diagnostics, as the estimators name them.
NLL_DIAGNOSTICS = (
    "stderr_examples", "stderr_mc", "elbo_nats", "is_ess", "variational_free_energy",
    "nll_nats_per_frame", "n_frames",
)
# The keys ``genzoo evaluate`` adds about the run itself (not part of the report).
RUN_KEYS = ("model", "data", "data_description", "run_dir", "world_size")
NLL_UNIT = "nats per example"


@dataclasses.dataclass(frozen=True, eq=False)
class SampleMeasures:
    """What the samples of a model without a likelihood (``IMPLICIT``) say about it.

    ``parzen``: mean log-density of the split under a Gaussian Parzen window of the samples
    (nats per example, higher is better; never an NLL, so the report has no ``nll``;
    diagnostics ``sigma``); ``parzen_valid_scores``: that figure on the
    validation split for each bandwidth tried. ``mmd2``: the unbiased kernel MMD^2 between
    ``mmd_points`` samples and as many split points (diagnostics ``p_value``, ``sigmas``).
    ``frechet_distance``, ``classes_covered``, ``class_counts``,
    ``reference_classes_covered``: feature-space statistics, None without a feature classifier
    for the data set. ``n_model_samples``: samples drawn.
    """

    parzen: Estimate
    parzen_valid_scores: dict[str, float]
    mmd2: Estimate
    mmd_points: int
    n_model_samples: int
    frechet_distance: float | None = None
    classes_covered: int | None = None
    class_counts: list[int] | None = None
    reference_classes_covered: int | None = None


_FEATURE_KEYS = ("frechet_distance", "classes_covered", "class_counts", "reference_classes_covered")


@dataclasses.dataclass(frozen=True, eq=False)
class EvaluationReport(Mapping[str, Any]):
    """The evaluation of one model on one split.

    ``estimator``: the name of the estimator (``"exact enumeration"``, ``"AIS (forward)"``,
    ``"importance sampling (k=5000)"``, ...). ``n_examples``: N, the examples evaluated.
    ``nll``: -log p(x) averaged over the split, in nats per example (an upper bound when
    ``bound`` says so); ``stderr`` combines the spread over examples with the estimator's own
    error, ``n_samples`` is the Monte Carlo samples behind it (AIS runs, proposal draws per
    example; None when computed exactly), ``diagnostics`` holds the figures reported beside it
    under their JSON names (``stderr_examples``, ``stderr_mc``, ``elbo_nats``, ``is_ess``,
    ``variational_free_energy``; ``nll_nats_per_frame`` and ``n_frames`` for sequences).
    ``nll_reverse``: the NLL with the reverse-AIS log Z.
    ``log_z`` / ``log_z_reverse``: log Z of an energy model (exact, or forward / reverse AIS;
    the reverse diagnostics carry ``start``, how its runs were started; a sequence model
    has a log Z per frame and no single one, so its reverse NLL stands without them). ``classification``:
    the error fraction of ``predict`` with its binomial standard error (``n_samples`` = the
    examples classified). ``samples``: the sample-based measures of an implicit model,
    which has no ``nll``.
    ``split``, ``dtype`` (evaluation precision), ``wall_s``, ``warnings``. ``data_space``: the
    figures a data transform adds when the model lives on transformed data (the NLL is then
    the density of the data space, see :meth:`in_data_space`).

    The NLL figures are in nats per example (``Estimate.unit``), log Z in nats. A field that
    does not apply is None, and its keys are absent from the JSON.

    Mapping access (``report["nll_nats"]``, ``get``, ``keys``, ``in``, ``items``, ``dict(report)``)
    is read-only access to the JSON view :meth:`to_dict`; so is ``==``, which compares that view
    with another mapping.
    """

    estimator: str
    n_examples: int
    nll: Estimate | None = None
    nll_reverse: Estimate | None = None
    log_z: Estimate | None = None
    log_z_reverse: Estimate | None = None
    bound: str | None = None
    classification: Estimate | None = None
    samples: SampleMeasures | None = None
    split: str | None = None
    dtype: str | None = None
    wall_s: float | None = None
    warnings: tuple[str, ...] = ()
    data_space: dict[str, Any] | None = None

    # -- the JSON view ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The report as ``genzoo evaluate --json`` prints it (before the CLI adds the run's
        model, data, run_dir and world_size): a new dict of plain values."""
        return copy.deepcopy(self._json)

    @functools.cached_property
    def _json(self) -> dict[str, Any]:
        # A figure that does not apply to the model is absent, never null.
        d: dict[str, Any] = {"estimator": self.estimator}
        if self.nll is not None:
            d.update(nll_nats=self.nll.value, stderr=self.nll.stderr, **self.nll.diagnostics)
            if self.nll.n_samples is not None:
                d["n_samples"] = self.nll.n_samples
        if self.bound is not None:
            d["bound"] = self.bound
        if self.log_z is not None:
            d.update(self._log_z_json())
        elif self.nll_reverse is not None:  # per-frame reverse AIS: no single log Z
            d.update(nll_nats_reverse=self.nll_reverse.value,
                     stderr_reverse=self.nll_reverse.stderr)
        if self.samples is not None:
            d.update(self._samples_json())
        d["n_examples"] = self.n_examples
        if self.dtype is not None:
            d["dtype"] = self.dtype
        if self.warnings:
            d["warnings"] = list(self.warnings)
        if self.wall_s is not None:
            d["wall_s"] = self.wall_s
        if self.classification is not None:
            c = self.classification
            d.update(classification_error=c.value, classification_stderr=c.stderr,
                     n_classified=c.n_samples)
        if self.split is not None:
            d["split"] = self.split
        d.update(self.data_space or {})
        return d

    def _log_z_json(self) -> dict[str, Any]:
        z, rev = self.log_z, self.log_z_reverse
        d = {"log_z": z.value, "stderr_log_z": z.stderr}
        if "n_betas" in z.diagnostics:  # AIS: its temperatures and effective sample size
            d.update(n_betas=z.diagnostics["n_betas"], ais_ess=z.diagnostics["ess"])
        if rev is not None:
            d.update(log_z_reverse=rev.value, stderr_log_z_reverse=rev.stderr,
                     reverse_start=rev.diagnostics["start"], ais_ess_reverse=rev.diagnostics["ess"])
        if self.nll_reverse is not None:
            d["nll_nats_reverse"] = self.nll_reverse.value
        return d

    def _samples_json(self) -> dict[str, Any]:
        s = self.samples
        return {
            "n_model_samples": s.n_model_samples,
            "parzen_log_likelihood": s.parzen.value,
            "parzen_stderr": s.parzen.stderr,
            "parzen_sigma": s.parzen.diagnostics["sigma"],
            "parzen_valid_scores": s.parzen_valid_scores,
            "mmd2": s.mmd2.value,
            "mmd_p_value": s.mmd2.diagnostics["p_value"],
            "mmd_sigmas": s.mmd2.diagnostics["sigmas"],
            "mmd_points": s.mmd_points,
            **{
                key: getattr(s, key)
                for key in _FEATURE_KEYS
                if getattr(s, key) is not None
            },
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvaluationReport:
        """The report whose :meth:`to_dict` is ``d`` (a report's JSON, e.g. read back from
        ``genzoo evaluate --out``): ``from_dict(r.to_dict()).to_dict() == r.to_dict()``. The
        run's keys that the CLI adds (model, data, data_description, run_dir, world_size) are
        not part of a report and are left out; keys no field accounts for go to
        ``data_space``. Figures the JSON does not carry (AIS log weights, timings of log Z)
        are not restored. A report written before the Parzen score had its own standard error
        (``parzen_stderr``) carried it as ``stderr`` beside ``nll_nats`` = -Parzen: that pair
        is read as the Parzen score's, and the report has no NLL."""
        used = {"estimator", "n_examples", "bound", "split", "dtype", "wall_s", "warnings",
                *RUN_KEYS}
        get = d.get
        name, n = d["estimator"], get("n_samples")
        nll = log_z = log_z_reverse = nll_reverse = classification = samples = None

        def take(*keys: str) -> dict[str, Any]:
            used.update(keys)
            return {k: d[k] for k in keys if k in d}

        if "log_z" in d:
            ais = take("n_betas", "ais_ess")
            log_z = Estimate(
                d["log_z"], d["stderr_log_z"], n, name,
                {"n_betas": ais["n_betas"], "ess": ais["ais_ess"]} if ais else {}, "nats",
            )
            used.update(("log_z", "stderr_log_z"))
        if "log_z_reverse" in d:
            rev = take("log_z_reverse", "stderr_log_z_reverse", "reverse_start", "ais_ess_reverse")
            log_z_reverse = Estimate(
                rev["log_z_reverse"], rev["stderr_log_z_reverse"], n, "AIS (reverse)",
                {"start": rev["reverse_start"], "ess": rev["ais_ess_reverse"]}, "nats",
            )
        if "parzen_log_likelihood" in d:
            p = take("parzen_log_likelihood", "parzen_sigma", "parzen_valid_scores", "mmd2",
                     "mmd_p_value", "mmd_sigmas", "mmd_points", "n_model_samples",
                     *_FEATURE_KEYS)
            if "parzen_stderr" not in d:  # the old JSON: nll_nats = -Parzen, no NLL at all
                used.update(("nll_nats", "stderr"))
            parzen_se = take("parzen_stderr").get("parzen_stderr", get("stderr"))
            samples = SampleMeasures(
                parzen=Estimate(p["parzen_log_likelihood"], parzen_se, d["n_examples"],
                                "parzen", {"sigma": p["parzen_sigma"]}, NLL_UNIT),
                parzen_valid_scores=p["parzen_valid_scores"],
                mmd2=Estimate(p["mmd2"], math.nan, p["mmd_points"], "mmd",
                              {"p_value": p["mmd_p_value"], "sigmas": p["mmd_sigmas"]}),
                mmd_points=p["mmd_points"],
                n_model_samples=p["n_model_samples"],
                **{k: p[k] for k in _FEATURE_KEYS if k in p},
            )
        if "nll_nats" in d and "nll_nats" not in used:
            diagnostics = take(*NLL_DIAGNOSTICS)
            nll = Estimate(d["nll_nats"], d["stderr"], n, name, diagnostics, NLL_UNIT)
            used.update(("nll_nats", "stderr", "n_samples"))
        if "nll_nats_reverse" in d:
            used.update(("nll_nats_reverse", "stderr_reverse"))
            stderr = (d["stderr_reverse"] if log_z_reverse is None else
                      math.hypot(log_z_reverse.stderr, nll.diagnostics["stderr_examples"]))
            nll_reverse = Estimate(d["nll_nats_reverse"], stderr, n, "AIS (reverse)", {},
                                   NLL_UNIT)
        if "classification_error" in d:
            c = take("classification_error", "classification_stderr", "n_classified")
            classification = Estimate(c["classification_error"], c["classification_stderr"],
                                      c["n_classified"], "classification error", {},
                                      "fraction of examples")
        return cls(
            estimator=name,
            n_examples=d["n_examples"],
            nll=nll,
            nll_reverse=nll_reverse,
            log_z=log_z,
            log_z_reverse=log_z_reverse,
            bound=get("bound"),
            classification=classification,
            samples=samples,
            split=get("split"),
            dtype=get("dtype"),
            wall_s=get("wall_s"),
            warnings=tuple(get("warnings", ())),
            data_space={k: v for k, v in d.items() if k not in used} or None,
        )

    def __getitem__(self, key: str) -> Any:
        return self._json[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._json)

    def __len__(self) -> int:
        return len(self._json)

    # -- derived reports ----------------------------------------------------------------------
    def replace(self, **changes: Any) -> EvaluationReport:
        """A copy with ``changes`` to its fields (the report itself is immutable)."""
        return dataclasses.replace(self, **changes)

    def in_data_space(self, transform: Any, y: torch.Tensor) -> EvaluationReport:
        """The report of a model evaluated on transformed data y (N, D), turned into the
        density of the data space by ``transform.to_data_space`` (genzoo.data.transforms):
        -log p_data(x) = -log p_model(y) - log|det dy/dx|. The NLL figures and their standard
        errors take the transform's values; the figures it adds (mean log-Jacobian, the
        space's description, bits per dimension) go to ``data_space``."""
        before = self.to_dict()
        after = transform.to_data_space(before, y)
        changes: dict[str, Any] = {"data_space": {k: after[k] for k in after if k not in before}}
        if self.nll is not None:
            diagnostics = dict(self.nll.diagnostics)
            if "stderr_examples" in diagnostics:
                diagnostics["stderr_examples"] = after["stderr_examples"]
            changes["nll"] = dataclasses.replace(
                self.nll, value=after["nll_nats"], stderr=after["stderr"], diagnostics=diagnostics
            )
        if self.nll_reverse is not None:
            # The reverse figure moves with the forward one: same Jacobian, same error bound.
            changes["nll_reverse"] = dataclasses.replace(
                self.nll_reverse,
                value=after["nll_nats_reverse"],
                stderr=self.nll_reverse.stderr + (after["stderr"] - before["stderr"]),
            )
        return dataclasses.replace(self, **changes)

    # -- the text view ------------------------------------------------------------------------
    def to_text(self, title: str) -> str:
        """The human-readable report under the heading ``"<title> (<split> split, <N>
        examples)"`` (``genzoo evaluate``'s title is "<model> on <data>")."""
        lines = [f"{title} ({self.split} split, {self.n_examples} examples)"]
        if self.samples is not None:
            lines += self._samples_text()
        elif self.nll is not None:
            relation = "<=" if self.bound else "="
            n_betas = self.log_z.diagnostics.get("n_betas") if self.log_z else None
            runs = f", {self.nll.n_samples} runs x {n_betas} temperatures" if n_betas else ""
            lines.append(
                f"  NLL {relation} {self.nll.value:.3f} +/- {self.nll.stderr:.3f} nats per "
                f"example  [{self.estimator}{runs}, {self.dtype or 'float64'}]"
            )
        if self.nll is not None and self.nll.diagnostics.get("nll_nats_per_frame") is not None:
            lines.append(
                f"  = {self.nll.diagnostics['nll_nats_per_frame']:.3f} nats per frame "
                f"({self.nll.diagnostics['n_frames']} frames per sequence)"
            )
        space = self.data_space or {}
        if space.get("bits_per_dim") is not None:
            lines.append(
                f"  {space['bits_per_dim']:.4f} bits per dimension "
                f"({space.get('likelihood_space', 'data space')})"
            )
        if self.classification is not None:
            c = self.classification
            lines.append(
                f"  classification error = {100 * c.value:.2f}% +/- {100 * c.stderr:.2f}% "
                f"({c.n_samples} examples)"
            )
        if self.nll is not None and self.nll.diagnostics.get("elbo_nats") is not None:
            lines.append(
                f"  negative ELBO = {self.nll.diagnostics['elbo_nats']:.3f} nats per example "
                "(the bound the importance-sampled NLL improves on)"
            )
        if self.log_z is not None:
            ess = self.log_z.diagnostics.get("ess")
            lines.append(
                f"  log Z = {self.log_z.value:.3f} +/- {self.log_z.stderr:.3f}"
                + (f"  (AIS effective sample size {ess:.1f})" if ess is not None else "")
            )
        if self.nll_reverse is not None and self.log_z_reverse is None:
            lines.append(
                f"  reverse AIS per frame: NLL = {self.nll_reverse.value:.3f} +/- "
                f"{self.nll_reverse.stderr:.3f}  (forward tends to under-, reverse to "
                "over-estimate each log Z_t: the true NLL most likely lies between)"
            )
        if self.log_z_reverse is not None:
            lines.append(
                f"  reverse AIS: log Z = {self.log_z_reverse.value:.3f}, NLL = "
                f"{self.nll_reverse.value:.3f}  (forward tends to under-, reverse to "
                "over-estimate log Z: the true NLL most likely lies between)"
            )
        lines += [f"  warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)

    def _samples_text(self) -> list[str]:
        s = self.samples
        lines = [
            (
                f"  Parzen log-likelihood = {s.parzen.value:.3f} +/- {s.parzen.stderr:.3f} nats "
                f"per example (higher is better; not an NLL)  [sigma {s.parzen.diagnostics['sigma']:.4g} chosen on the "
                f"validation split, {s.n_model_samples} samples]"
            ),
            f"  MMD^2 = {s.mmd2.value:.4g} (permutation p = {s.mmd2.diagnostics['p_value']:.3g})",
        ]
        if s.frechet_distance is not None:
            lines.append(
                f"  Frechet distance = {s.frechet_distance:.3f}; classes covered = "
                f"{s.classes_covered} of 10"
            )
        return lines
