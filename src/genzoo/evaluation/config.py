"""Evaluation settings (the ``eval`` section of a run config)."""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from genzoo.core.config import Config, check
from genzoo.utils.memory import check_memory, format_bytes

# float64 bytes per AIS chain and state unit: the state and about three temporaries of a sweep.
_CHAIN_BYTES = 4 * 8


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

    ``batch_size``: examples (importance sampling, free energies) or AIS runs (at most
    :attr:`ais_shard`) a shard holds; a process runs its shards side by side on its CPU
    threads (genzoo.evaluation.shards), and an estimate depends on the shards, never on the
    threads or processes that ran them.

    Sizes are checked before the work (:meth:`check_memory`): AIS settings whose memory
    exceeds what the machine has are refused with the number, the memory and the fix.
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

    @property
    def ais_shard(self) -> int:
        """AIS runs a shard anneals together: min(``batch_size``, ceil(``ais_runs`` / 2)), so
        at least two shards, which two cores run side by side (the CPU generator's draws, a
        sixth of an AIS step, are serial within a shard)."""
        return min(self.batch_size, -(-self.ais_runs // 2))

    def ais_memory(self, width: int, units: int) -> dict[str, int]:
        """Bytes that AIS with these settings holds at once, for a model of ``width`` visible and
        about ``units`` hidden units, by the setting that drives each part: ``eval.ais_betas``
        the schedule (16 bytes per temperature: float64, built from numpy parts), ``eval.ais_runs``
        the runs' log-weights (16 bytes per run: each shard's and the gathered ones), and the
        chains the CPU threads step at once, one shard of :attr:`ais_shard` each
        (``_CHAIN_BYTES`` per unit of each chain), named by the smaller of the two settings."""
        shard = self.ais_shard
        at_once = min(self.ais_runs, shard * max(1, torch.get_num_threads()))
        chains = _CHAIN_BYTES * at_once * (width + units)
        by_runs = "eval.ais_runs" if self.ais_runs <= self.batch_size else "eval.batch_size"
        parts = {"eval.ais_betas": 16 * self.ais_betas, "eval.ais_runs": 16 * self.ais_runs}
        parts[by_runs] = parts.get(by_runs, 0) + chains
        return parts

    def check_memory(self, width: int, units: int, available: int | None = None) -> None:
        """Refuse (GenzooError) AIS settings whose memory (:meth:`ais_memory`) exceeds the
        available memory (``available`` bytes, by default what the machine has), naming the
        setting that needs the most, the memory and the fix."""
        parts = self.ais_memory(width, units)
        worst = max(parts, key=parts.__getitem__)
        value = getattr(self, worst.removeprefix("eval."))
        default = getattr(type(self), worst.removeprefix("eval."))
        check_memory(
            sum(parts.values()),
            f"AIS with {worst}={value} ({format_bytes(parts[worst])} of it) for a model of "
            f"{width} visible and about {units} hidden units",
            f"lower {worst} (default {default}) with --set {worst}=N",
            available,
        )
