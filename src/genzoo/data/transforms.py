"""Real-valued views of a data set: the map from data space x to model space y, its
log-Jacobian, and its inverse for showing samples as images.

Densities of real-valued models are reported in DATA space, never in model space, so that a
number does not depend on the preprocessing chosen for training. By the change of variables
y = f(x), with f acting elementwise,

    log p_X(x) = log p_Y(f(x)) + log |det df/dx|,   log |det df/dx| = sum_i log |f'(x_i)|,

so an NLL measured in model space is turned into one in data space by subtracting
:meth:`ValueTransform.log_det_jacobian` (nats per example).

The f used here, in order (each step optional):

1. dequantisation (grey-level sets): a pixel with level k of L levels becomes x = (k + u) / L,
   u ~ U(0, 1), so x lies in (0, 1) and a density on x lower-bounds the discrete probability of
   the levels (Theis, van den Oord & Bethge 2016). This step defines the data space; it has no
   Jacobian. A density on [0, 1]^D converts to one on [0, L)^D by subtracting D log L nats.
2. logit: s = alpha + (1 - 2 alpha) x, y = log s - log(1 - s), with
   dy/dx = (1 - 2 alpha) / (s (1 - s)). alpha = 1e-6 is the convention of Papamakarios,
   Pavlakou & Murray (2017, MAF) for MNIST; Dinh et al. (2017, Real NVP) use 0.05 on natural
   images.
3. scale: y = x / scale, with dy/dx = 1 / scale (``data.unit_variance`` on image patches).
4. per-unit standardisation: y_i = (x_i - m_i) / s_i with m, s (D,) the mean and standard
   deviation of each unit's training values after the steps above (``data.standardize``), so
   dy_i/dx_i = 1 / s_i and the log-Jacobian gains the constant -sum_i log s_i. Models that
   assume centred, unit-scale inputs (the Gaussian-Bernoulli RBM: Hinton 2010, "A practical
   guide to training restricted Boltzmann machines", section 13.2) need it on MNIST logits,
   where ~600 background pixels sit at -2.9 with a spread of 0.02 (their dequantisation noise)
   and the rest spread over several units.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from genzoo.core.errors import DataError


@dataclasses.dataclass(frozen=True)
class ValueTransform:
    """y = f(x) for real-valued data; see the module docstring.

    ``levels``: number of grey levels L the data were dequantised from (None: not dequantised;
    kept for reporting). ``logit_alpha``: alpha of the logit step, None to skip it. ``scale``:
    the divisor of the last step (1.0 skips it). ``space``: a one-line description of the data
    space that reported likelihoods refer to. ``bits_per_dim``: whether reports add the
    bits per dimension of the discrete levels, (NLL + D log L) / (D log 2), the figure flow
    papers quote (true for dequantised grey-level images, false for DC-removed patches).
    ``unit_mean`` / ``unit_std``: m and s (D,) of step 4 (None skips it; float64).
    """

    levels: int | None = None
    logit_alpha: float | None = None
    scale: float = 1.0
    space: str = ""
    bits_per_dim: bool = False
    unit_mean: torch.Tensor | None = dataclasses.field(default=None, compare=False, repr=False)
    unit_std: torch.Tensor | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def is_identity(self) -> bool:
        return self.logit_alpha is None and self.scale == 1.0 and self.unit_std is None

    def standardized(self, y: torch.Tensor) -> ValueTransform:
        """This transform followed by step 4, with m and s the per-unit mean and (population)
        standard deviation of ``y`` (N, D), the training values after this transform."""
        y = y.to(torch.float64)
        std = y.std(0, unbiased=False)
        if not bool((std > 0).all()):
            raise DataError(
                f"cannot standardise: {int((std <= 0).sum())} unit(s) are constant in the "
                "training data (a density needs a spread on every unit); dequantise the data"
            )
        return dataclasses.replace(self, unit_mean=y.mean(0), unit_std=std)

    def _standardize(self, y: torch.Tensor) -> torch.Tensor:
        if self.unit_std is None:
            return y
        return (y - self.unit_mean.to(y)) / self.unit_std.to(y)

    def _unstandardize(self, y: torch.Tensor) -> torch.Tensor:
        if self.unit_std is None:
            return y
        return y * self.unit_std.to(y) + self.unit_mean.to(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Model-space y (N, D) of data-space x (N, D); dtype follows x."""
        y = x
        if self.logit_alpha is not None:
            s = self.logit_alpha + (1.0 - 2.0 * self.logit_alpha) * y
            y = torch.log(s) - torch.log1p(-s)
        return self._standardize(y / self.scale if self.scale != 1.0 else y)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Data-space x (N, D) of model-space y (N, D): the inverse of :meth:`forward`."""
        y = self._unstandardize(y)
        x = y * self.scale if self.scale != 1.0 else y
        if self.logit_alpha is not None:
            x = (torch.sigmoid(x) - self.logit_alpha) / (1.0 - 2.0 * self.logit_alpha)
        return x

    def log_det_jacobian(self, y: torch.Tensor) -> torch.Tensor:
        """log |det df/dx| (N,) in nats, float64, at the data-space point x = f^-1(y), given the
        MODEL-space y (N, D) (what models and evaluators hold).

        Computed from y because log s + log(1 - s) = -softplus(-z) - softplus(z) with z the
        logit, which stays finite where s rounds to 0 or 1 in floating point.
        """
        y = self._unstandardize(y.to(torch.float64))
        d = y.shape[1]
        log_scale = d * math.log(self.scale)
        if self.unit_std is not None:
            log_scale += float(torch.log(self.unit_std.double()).sum())
        out = torch.full((y.shape[0],), -log_scale, dtype=torch.float64, device=y.device)
        if self.logit_alpha is not None:
            z = y * self.scale
            log_s_1ms = -F.softplus(-z) - F.softplus(z)
            out = out + d * math.log1p(-2.0 * self.logit_alpha) - log_s_1ms.sum(dim=1)
        return out

    def to_data_space(self, report: dict, y: torch.Tensor) -> dict:
        """``report`` of an evaluator run on model-space data y (N, D), turned into data space.

        The NLL keys (``nll_nats``, ``nll_nats_reverse``) lose the mean log-Jacobian. The
        per-example NLL in data space is the model-space one minus log|det df/dx|, and the
        std of a difference is at most the sum of the stds, so the data-space standard errors
        are bounded by ``stderr`` + stderr(log-Jacobian): that bound is what is reported (it is
        exact when the log-Jacobian is constant). Adds ``log_det_jacobian_nats`` (the mean),
        ``likelihood_space`` and, when ``bits_per_dim`` is set, ``bits_per_dim`` (and
        ``bits_per_dim_reverse`` from ``nll_nats_reverse``, the reverse-AIS figure).
        """
        ld = self.log_det_jacobian(y)
        mean = float(ld.mean())
        se = float(ld.std() / math.sqrt(len(ld))) if len(ld) > 1 else 0.0
        out = dict(report)
        for key in ("nll_nats", "nll_nats_reverse"):
            if out.get(key) is not None:
                out[key] = out[key] - mean
        for key in ("stderr", "stderr_examples"):
            if out.get(key) is not None:
                out[key] = out[key] + se
        out["log_det_jacobian_nats"] = mean
        out["likelihood_space"] = self.space
        if self.bits_per_dim:
            d = y.shape[1]
            for key, bpd_key in (("nll_nats", "bits_per_dim"),
                                 ("nll_nats_reverse", "bits_per_dim_reverse")):
                if out.get(key) is not None:
                    out[bpd_key] = (out[key] + d * math.log(self.levels)) / (d * math.log(2))
        return out


def dequantize(levels: torch.Tensor, n_levels: int, generator: torch.Generator) -> torch.Tensor:
    """(k + u) / L, float32 (N, D) in (0, 1), for integer grey levels ``levels`` (N, D) in
    0..L-1 and u ~ U(0, 1) drawn from ``generator`` (CPU)."""
    u = torch.rand(levels.shape, generator=generator, dtype=torch.float32)
    return (levels.to(torch.float32) + u).div_(n_levels)
