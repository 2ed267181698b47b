"""The capacity experiment of the Hebbian Hopfield network: store P random patterns in N
units, start the asynchronous dynamics at each stored pattern and measure the overlap
m = (1/N) sum_i xi_i s_i of the fixed point reached with the pattern. Below the critical load
alpha_c = P/N ~ 0.138 (Amit, Gutfreund & Sompolinsky 1985, "Storing infinite numbers of
patterns in a spin-glass model of neural networks", PRL 55) retrieval states have m close to
1 (about 0.97 at alpha_c); above it they vanish and m falls to the overlap of spin-glass states.
"""

from __future__ import annotations

import dataclasses
import itertools

import torch

from genzoo.core.errors import InputError
from genzoo.models.hopfield.hopfield import HopfieldConfig, HopfieldNetwork


@dataclasses.dataclass(frozen=True)
class CapacityPoint:
    """One load: ``n_units`` N, ``n_patterns`` P, ``load`` P/N, ``overlap`` mean final
    overlap over patterns and trials, ``overlap_stderr`` its standard error over trials,
    ``retrieved`` fraction of patterns recalled with overlap >= 0.95, ``stable`` fraction of
    patterns that are exact fixed points."""

    n_units: int
    n_patterns: int
    load: float
    overlap: float
    overlap_stderr: float
    retrieved: float
    stable: float


def recall_overlaps(
    n_units: int,
    n_patterns: int,
    generator: torch.Generator | None = None,
    rule: str = "hebbian",
    max_sweeps: int = 30,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Store ``n_patterns`` uniform random patterns in a fresh network of ``n_units`` units
    and recall each from itself; returns (overlaps (P,), stable (P,) bool: the pattern is a
    fixed point)."""
    if n_units < 2 or n_patterns < 1:
        raise InputError("need n_units >= 2 and n_patterns >= 1")
    net = HopfieldNetwork(HopfieldConfig(n_visible=n_units, rule=rule)).to(dtype)
    x = (torch.rand((n_patterns, n_units), generator=generator, dtype=dtype) < 0.5).to(dtype)
    net.store(x)
    xi = 2 * x - 1
    stable = ((xi @ net.W) * xi > 0).all(1)
    s = net.recall(xi, max_sweeps=max_sweeps, generator=generator, update="async")
    return (s * xi).mean(1), stable


def capacity_curve(
    n_units: int,
    loads: list[float],
    n_trials: int = 3,
    generator: torch.Generator | None = None,
    rule: str = "hebbian",
    max_sweeps: int = 30,
) -> list[CapacityPoint]:
    """Recall quality against the load P/N for ``loads`` (P = max(1, round(load N)))."""
    out = []
    for load in loads:
        p = max(1, round(load * n_units))
        per_trial, retrieved, stable = [], [], []
        for _ in range(n_trials):
            m, st = recall_overlaps(n_units, p, generator, rule, max_sweeps)
            per_trial.append(float(m.mean()))
            retrieved.append(float((m >= 0.95).double().mean()))
            stable.append(float(st.double().mean()))
        t = torch.tensor(per_trial, dtype=torch.float64)
        se = float(t.std() / len(t) ** 0.5) if len(t) > 1 else float("nan")
        out.append(CapacityPoint(n_units, p, p / n_units, float(t.mean()), se,
                                 sum(retrieved) / n_trials, sum(stable) / n_trials))
    return out


def critical_load(points: list[CapacityPoint], threshold: float = 0.9) -> float:
    """The load at which the mean overlap first falls below ``threshold``, linearly
    interpolated between the neighbouring measured loads (NaN if it never does)."""
    pts = sorted(points, key=lambda p: p.load)
    for a, b in itertools.pairwise(pts):
        if a.overlap >= threshold > b.overlap:
            return a.load + (a.overlap - threshold) / (a.overlap - b.overlap) * (b.load - a.load)
    if pts and pts[0].overlap < threshold:
        return pts[0].load
    return float("nan")
