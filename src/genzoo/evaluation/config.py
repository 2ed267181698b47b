"""Evaluation settings (the ``eval`` section of a run config)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from genzoo.core.config import Config, check


@dataclasses.dataclass(frozen=True)
class EvalConfig(Config):
    """How likelihoods are estimated.

    Energy models: the log partition function is enumerated exactly when the smaller layer has
    at most ``exact_max_units`` units; otherwise AIS with ``ais_runs`` runs over ``ais_betas``
    inverse temperatures (``schedule=sm08``: the Salakhutdinov & Murray 2008 schedule, 14,500
    temperatures at the default; ``linear``: evenly spaced), forward and, if ``reverse``, reverse
    AIS started from ``reverse_burn_in`` Gibbs steps of fresh chains so the true value is
    bracketed. Sequence models whose frames are RBMs (crbm, rnn-rbm): each frame's log Z is
    enumerated as above (up to 16 units) or annealed by forward AIS, ``frame_ais_runs`` runs
    over ``frame_ais_betas`` evenly spaced temperatures per frame (each frame RBM is small).
    Latent-variable models: importance sampling with ``is_samples`` proposal draws per example
    (5000, the k of the published VAE/IWAE numbers). ``dtype`` is the evaluation
    precision: ``mixed`` runs the model (products, transitions, proposals, network passes) in
    float32 and accumulates log-weights, log-mean-exps and sums over examples in float64;
    ``float64`` runs everything in float64; ``float32`` is ``mixed`` by its model dtype. ``task``: ``auto`` reports the likelihood figure, plus the classification error
    for models that predict labels; ``likelihood`` the likelihood figure only; ``classify`` the
    classification error only (models that predict labels: disc-rbm, mp-dbm, dbm-classifier).
    """

    split: Literal["train", "valid", "test"] = "test"
    exact_max_units: int = 20
    ais_runs: int = 100
    ais_betas: int = 14500
    schedule: Literal["sm08", "linear"] = "sm08"
    reverse: bool = True
    reverse_burn_in: int = 1000
    dtype: Literal["mixed", "float64", "float32"] = "mixed"
    seed: int = 1234
    batch_size: int = 1000
    is_samples: int = 5000
    frame_ais_runs: int = 16
    frame_ais_betas: int = 1000
    task: Literal["auto", "likelihood", "classify"] = "auto"

    def validate(self) -> None:
        check(0 <= self.exact_max_units <= 26, "eval.exact_max_units must be in [0, 26]")
        check(self.ais_runs >= 2, "eval.ais_runs must be >= 2 (a standard error needs two)")
        check(self.ais_betas >= 2, "eval.ais_betas must be >= 2")
        check(self.reverse_burn_in >= 0, "eval.reverse_burn_in must be >= 0")
        check(self.batch_size > 0, "eval.batch_size must be positive")
        check(self.frame_ais_runs >= 2, "eval.frame_ais_runs must be >= 2")
        check(self.frame_ais_betas >= 2, "eval.frame_ais_betas must be >= 2")
        check(self.is_samples >= 1, "eval.is_samples must be >= 1 (5000 for reported numbers)")
