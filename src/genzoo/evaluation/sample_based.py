"""Evaluation of models without a likelihood (``IMPLICIT``): everything is computed from
samples.

:func:`sample_based_report` draws S = 10,000 samples (the GAN paper's count) and reports, on
the evaluation split:

- the Parzen-window log-likelihood (:mod:`genzoo.evaluation.parzen`), bandwidth chosen on the
  validation split over Goodfellow et al.'s grid, with its warning that it is a weak measure;
- the unbiased kernel MMD^2 between (up to ``mmd_points``) samples and as many test points
  drawn at random, with a permutation-test p-value (:mod:`genzoo.evaluation.mmd`); the Gaussian bandwidths are
  0.5, 1 and 2 times the median pairwise distance of the test points (the median heuristic of
  Gretton et al. 2012), so the number is scale-free across data sets;
- for MNIST and the digits, the feature-space Fréchet distance to the test split and the
  number of the 10 classes the samples cover (:mod:`genzoo.evaluation.frechet`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from genzoo.core.errors import DataError, GenzooError
from genzoo.evaluation import progress
from genzoo.evaluation.mmd import mmd_permutation_test
from genzoo.evaluation.parzen import (
    DEFAULT_SIGMAS,
    PARZEN_WARNING,
    parzen_log_likelihood,
    select_parzen_bandwidth,
)
from genzoo.evaluation.report import EvaluationReport, SampleMeasures

N_SAMPLES = 10_000


@torch.no_grad()
def draw_samples(model: Any, n: int, generator: torch.Generator | None,
                 batch_size: int = 1000) -> torch.Tensor:
    """n samples (n, D) of ``model`` in eval mode, drawn ``batch_size`` at a time, float64 on
    the CPU."""
    was = model.training
    model.eval()
    out = []
    try:
        with progress.Stage("drawing samples", n, "samples") as st:
            for i in range(0, n, batch_size):
                out.append(model.sample(min(batch_size, n - i), generator=generator).double().cpu())
                st.advance(len(out[-1]))
    finally:
        model.train(was)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def median_heuristic_sigmas(x: torch.Tensor, max_points: int = 1000) -> list[float]:
    """[0.5, 1, 2] x the median pairwise Euclidean distance of the first ``max_points`` rows
    of x (N, D)."""
    x = x[:max_points].double()
    d = torch.cdist(x, x)
    iu = torch.triu_indices(len(x), len(x), 1)
    med = float(d[iu[0], iu[1]].median()) if len(x) > 1 else 1.0
    med = med if med > 0 else 1.0
    return [0.5 * med, med, 2.0 * med]


def sample_based_report(
    model: Any,
    bundle: Any,
    eval_config: Any,
    generator: torch.Generator | None = None,
    n_samples: int = N_SAMPLES,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    mmd_points: int = 2000,
    n_permutations: int = 200,
    classifier: Any = None,
) -> EvaluationReport:
    """The sample-based report of ``model`` on ``bundle.split(eval_config.split)``: its
    :class:`~genzoo.evaluation.report.SampleMeasures` (``samples``); the report has no ``nll``
    (the model has no density), the Parzen log-likelihood is ``samples.parzen``.
    ``warnings``: the Parzen warning always; a bandwidth at the edge of the grid; mode collapse
    when the samples cover fewer classes than the data. ``classifier``: a
    :class:`~genzoo.evaluation.frechet.FeatureClassifier` to use instead of the cached one for
    ``bundle.name``."""
    if generator is None:
        p = next(model.parameters(), None)  # model.sample draws on the parameters' device
        generator = torch.Generator(device=p.device if p is not None else "cpu")
        generator.manual_seed(eval_config.seed)
    x = bundle.split(eval_config.split).x
    x_valid = bundle.valid.x
    if len(x_valid) == 0:
        raise DataError("the Parzen bandwidth is chosen on the validation split, which is empty")
    samples = draw_samples(model, n_samples, generator, eval_config.batch_size)
    if not bool(torch.isfinite(samples).all()):
        raise GenzooError("the model's samples contain NaN or Inf; the model has diverged")
    sigma, scores = select_parzen_bandwidth(samples, x_valid, sigmas, eval_config.batch_size)
    parzen = parzen_log_likelihood(samples, x, sigma, eval_config.batch_size)
    if not math.isfinite(parzen.value):
        raise GenzooError("the Parzen estimate is not finite; check the samples")
    warnings = [PARZEN_WARNING]
    if sigma in (min(sigmas), max(sigmas)):
        warnings.append(f"the Parzen bandwidth {sigma:.4g} is at the edge of the grid")
    m = min(mmd_points, len(x), len(samples))
    g_mmd = torch.Generator().manual_seed(eval_config.seed)
    # A random subset: data files are often ordered (MNIST's test halves differ in writers).
    x_m = x[torch.randperm(len(x), generator=g_mmd)[:m]]
    test = mmd_permutation_test(samples[:m], x_m, median_heuristic_sigmas(x_m), n_permutations,
                                g_mmd)
    features: dict[str, Any] = {}
    name = getattr(bundle, "name", None)
    if classifier is None:
        from genzoo.evaluation.frechet import CLASSIFIER_SOURCES, load_classifier

        if name in CLASSIFIER_SOURCES:
            classifier = load_classifier(name)
    if classifier is not None:
        from genzoo.evaluation.frechet import frechet_report

        features = frechet_report(samples, x, classifier)
        if features["classes_covered"] < features["reference_classes_covered"]:
            warnings.append(
                f"mode collapse: samples cover {features['classes_covered']} of the "
                f"{features['reference_classes_covered']} classes the {eval_config.split} data "
                "cover"
            )
    else:
        warnings.append(f"no feature classifier for data set {name!r}: no Fréchet distance")
    name = "parzen window (sample-based)"
    return EvaluationReport(
        estimator=name,
        n_examples=parzen.n_samples,
        samples=SampleMeasures(
            parzen=parzen,
            parzen_valid_scores={f"{k:.6g}": v for k, v in scores.items()},
            mmd2=test,
            mmd_points=m,
            n_model_samples=len(samples),
            **features,
        ),
        dtype="float64",
        warnings=tuple(warnings),
    )


__all__ = ["N_SAMPLES", "draw_samples", "median_heuristic_sigmas", "sample_based_report"]
