"""Gaussians with diagonal-plus-rank-one structure, per block, in O(K) per block of K units.

Rezende, Mohamed & Wierstra (2014), "Gaussian covariance parameterisation". With
D = diag(d) (d > 0) and u a K-vector, a = u^T D^{-1} u, two forms:

``covariance``: C = D + u u^T. Matrix determinant lemma and Sherman-Morrison::

    log det C = sum log d + log(1 + a)
    C^{-1}    = D^{-1} - D^{-1} u u^T D^{-1} / (1 + a)
    R = D^{1/2} + c u u^T D^{-1/2},  c = (sqrt(1 + a) - 1) / a = 1 / (sqrt(1 + a) + 1)
    tr C = sum d + u^T u

``precision`` (the paper's form, its R, eta and log det C): C^{-1} = D + u u^T,
eta = 1 / (1 + a); Sherman-Morrison gives C::

    C = D^{-1} - eta D^{-1} u u^T D^{-1}
    log det C = log eta - sum log d
    R = D^{-1/2} - [(1 - sqrt(eta)) / a] D^{-1} u u^T D^{-1/2}
    tr C = sum 1/d - eta u^T D^{-2} u

Both R are S (I + c v v^T) with (I + c v v^T)^2 = I + s v v^T, hence R R^T = C: covariance
form S = D^{1/2}, v = D^{-1/2} u, s = +1; precision form S = D^{-1/2}, v = sqrt(eta) D^{-1/2} u,
s = -1 (1 - v^T v = eta > 0). So xi = mu + R eps, eps ~ N(0, I), has covariance C at O(K)
cost. The coefficients are evaluated as 1 / (sqrt(1 + a) + 1) and 1 / (sqrt(1 + a)
(sqrt(1 + a) + 1)), without the 0/0 of the closed forms at a = 0.

KL(N(mu, C) || N(0, I)) = 1/2 (tr C + mu^T mu - K - log det C) and the entropy is
1/2 (K (1 + log 2 pi) + log det C), both in nats, summed over blocks.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import distributions as D

from genzoo.ops.numerics import LOG_2PI

Form = Literal["covariance", "precision"]


class BlockRankOneGaussian(D.Distribution):
    """Gaussian over (..., J) whose covariance is block diagonal, block l (``sizes[l]`` units)
    having the diagonal-plus-rank-one structure of ``form`` (module docstring).

    ``loc``, ``log_d``, ``u``: (..., J), blocks concatenated in the order of ``sizes``;
    d = exp(log_d). Batch shape ``loc.shape[:-1]``, event shape (J,). Reparameterised:
    :meth:`rsample` and :meth:`transform` are differentiable in loc, log_d and u."""

    arg_constraints: ClassVar[dict] = {}  # validate_args is off: no constraints to check
    has_rsample = True
    # importance.draw() calls sample(shape, generator=...) on proposals that set this.
    accepts_generator = True

    def __init__(self, loc: torch.Tensor, log_d: torch.Tensor, u: torch.Tensor,
                 sizes: tuple[int, ...] | list[int], form: Form = "covariance") -> None:
        if form not in ("covariance", "precision"):
            raise ValueError(f"form={form!r}: use 'covariance' or 'precision'")
        if sum(sizes) != loc.shape[-1] or log_d.shape != loc.shape or u.shape != loc.shape:
            raise ValueError("loc, log_d and u must share the shape (..., sum(sizes))")
        self.loc, self.log_d, self.u = loc, log_d, u
        self.sizes, self.form = list(sizes), form
        super().__init__(loc.shape[:-1], loc.shape[-1:], validate_args=False)

    # -- per-block pieces -----------------------------------------------------------------
    def _blocks(self, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return t.split(self.sizes, -1)

    def _a(self) -> list[torch.Tensor]:
        """a_l = u_l^T D_l^{-1} u_l, each (...,)."""
        return [(u**2 * torch.exp(-ld)).sum(-1)
                for u, ld in zip(self._blocks(self.u), self._blocks(self.log_d))]

    def log_det(self) -> torch.Tensor:
        """log det C (batch shape)."""
        sign = 1.0 if self.form == "covariance" else -1.0
        return sign * (self.log_d.sum(-1) + sum(torch.log1p(a) for a in self._a()))

    def trace(self) -> torch.Tensor:
        """tr C (batch shape)."""
        d = torch.exp(self.log_d)
        if self.form == "covariance":
            return d.sum(-1) + (self.u**2).sum(-1)
        w2 = self.u**2 * torch.exp(-2 * self.log_d)
        return (1 / d).sum(-1) - sum(wb.sum(-1) / (1 + a)
                                     for wb, a in zip(self._blocks(w2), self._a()))

    def transform(self, eps: torch.Tensor) -> torch.Tensor:
        """mu + R eps for eps (*S, ..., J) standard normal (the paper's closed-form R)."""
        out = []
        for mu, ld, u, e, a in zip(self._blocks(self.loc), self._blocks(self.log_d),
                                   self._blocks(self.u), self._blocks(eps), self._a()):
            v_eps = (u * torch.exp(-0.5 * ld) * e).sum(-1, keepdim=True)  # (D^{-1/2} u)^T eps
            s = torch.sqrt(1 + a).unsqueeze(-1)
            if self.form == "covariance":
                out.append(mu + torch.exp(0.5 * ld) * e + u * v_eps / (s + 1))
            else:  # (1 - sqrt(eta)) / a = 1 / (s (s + 1)),  s = sqrt(1 + a)
                out.append(mu + torch.exp(-0.5 * ld) * e
                           - u * torch.exp(-ld) * v_eps / (s * (s + 1)))
        return torch.cat(out, -1)

    def factor(self) -> torch.Tensor:
        """R (..., J, J), block diagonal, with R R^T = C (for tests and inspection; O(J^2))."""
        eye = torch.eye(self.loc.shape[-1], dtype=self.loc.dtype, device=self.loc.device)
        cols = eye.expand(*self.batch_shape, -1, -1).movedim(-1, 0)  # (J, ..., J): columns
        zero = BlockRankOneGaussian(torch.zeros_like(self.loc), self.log_d, self.u,
                                    self.sizes, self.form)
        return zero.transform(cols).movedim(0, -1)

    def covariance_matrix_dense(self) -> torch.Tensor:
        """C (..., J, J) formed densely (O(J^2); for tests)."""
        r = self.factor()
        return r @ r.transpose(-1, -2)

    # -- torch.distributions interface ----------------------------------------------------
    @property
    def mean(self) -> torch.Tensor:
        return self.loc

    @property
    def variance(self) -> torch.Tensor:
        """diag C (..., J)."""
        d = torch.exp(self.log_d)
        if self.form == "covariance":
            return d + self.u**2
        w2 = self.u**2 * torch.exp(-2 * self.log_d)
        eta = torch.cat([(1 / (1 + a)).unsqueeze(-1).expand(*a.shape, k)
                         for a, k in zip(self._a(), self.sizes)], -1)
        return 1 / d - eta * w2

    def rsample(self, sample_shape=(),
                generator: torch.Generator | None = None) -> torch.Tensor:
        """mu + R eps, (*sample_shape, ..., J), differentiable in loc, log_d and u."""
        shape = self._extended_shape(torch.Size(sample_shape))
        eps = torch.randn(shape, generator=generator, dtype=self.loc.dtype,
                          device=self.loc.device)
        return self.transform(eps)

    def sample(self, sample_shape=(),
               generator: torch.Generator | None = None) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape, generator)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """log N(value; mu, C) in nats: value (*S, ..., J) -> (*S, ...)."""
        r = value - self.loc
        quad = 0.0
        for rb, ld, u, a in zip(self._blocks(r), self._blocks(self.log_d),
                                self._blocks(self.u), self._a()):
            if self.form == "covariance":
                rd = rb * torch.exp(-ld)
                quad = quad + (rb * rd).sum(-1) - (u * rd).sum(-1) ** 2 / (1 + a)
            else:
                quad = quad + (torch.exp(ld) * rb**2).sum(-1) + (u * rb).sum(-1) ** 2
        k = self.loc.shape[-1]
        return -0.5 * (quad + self.log_det() + k * LOG_2PI)

    def entropy(self) -> torch.Tensor:
        return 0.5 * (self.loc.shape[-1] * (1 + LOG_2PI) + self.log_det())

    def kl_standard_normal(self) -> torch.Tensor:
        """KL(q || N(0, I)) in nats (batch shape)."""
        return 0.5 * (self.trace() + (self.loc**2).sum(-1) - self.loc.shape[-1]
                      - self.log_det())

    # -- what the objectives of genzoo.models.directed.objectives use ---------------------
    # q does not factorise over units, so its KL and log-ratio come as one term (K = 1).
    def kl_terms(self) -> torch.Tensor:
        """KL(q || N(0, I)) (..., 1)."""
        return self.kl_standard_normal().unsqueeze(-1)

    def log_ratio_terms(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z) - log N(z; 0, I) (*S, ..., 1) for z (*S, ..., J)."""
        return (self.log_prob(z) + 0.5 * (z**2 + LOG_2PI).sum(-1)).unsqueeze(-1)

    def detach(self) -> BlockRankOneGaussian:
        """The same distribution with loc, log_d and u cut from the graph."""
        return BlockRankOneGaussian(self.loc.detach(), self.log_d.detach(), self.u.detach(),
                                    self.sizes, self.form)
