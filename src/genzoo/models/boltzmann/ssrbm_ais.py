"""What the evaluators need from the spike-and-slab RBM: the annealing path for AIS (Neal 2001;
Salakhutdinov & Murray 2008) from the ssRBM with no weights.

Notation of :mod:`genzoo.models.boltzmann.ssrbm` (Courville, Bergstra & Bengio 2011), W the
effective (guarded) weights. The base model A is the ssRBM with W_A = 0 and the model's own
Lambda, alpha and spike biases b::

    E_A(v, s, h) = 1/2 v^T Lambda v + 1/2 sum_i alpha_i s_i^2 - b^T h

so v, s and h are independent under A: v ~ N(0, Lambda^{-1}), h_i ~ Bernoulli(sigmoid(b_i)),
s_i ~ N(0, 1 / alpha_i), and

    log Z_A = sum_k 1/2 log(2 pi / Lambda_k) + sum_i [softplus(b_i) + 1/2 log(2 pi / alpha_i)]

(the module's F(v) at W = 0, integrated over v). The path E_beta = (1 - beta) E_A + beta E is

    E_beta(v, s, h) = 1/2 v^T Lambda v - sum_i h_i s_i v^T (beta W_i) + 1/2 sum_i alpha_i s_i^2
                      - b^T h,

the ssRBM with weights beta W. Its spectral norm beta rho is below the model's rho < 1, so every
p_beta is normalisable and its conditionals are proper Gaussians; F_beta(v) is the model's free
energy with W -> beta W::

    F_beta(v) = 1/2 v^T Lambda v
                - sum_i [softplus(b_i + beta^2 (v^T W_i)^2 / (2 alpha_i)) + 1/2 log(2 pi / alpha_i)]

(F_0 is the base's own free energy, constants included; F_1 = F), and the transition at beta is
the model's block Gibbs sweep v -> h -> s -> v with W -> beta W.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from genzoo.core.errors import GenzooError
from genzoo.models.boltzmann._ops import check_zero_weights, softplus
from genzoo.ops.numerics import LOG_2PI

if TYPE_CHECKING:
    from genzoo.models.boltzmann.ssrbm import SSRBM



class SSRBMAnnealingPath:
    """Mixin giving :class:`~genzoo.models.boltzmann.ssrbm.SSRBM` the AIS contract
    (``ais_base``, ``log_partition`` of the base, ``annealed_free_energy``,
    ``annealed_gibbs_step``, the fused ``annealed_step``). Batch methods take v (B, D) and return
    (B,) values in nats."""

    @torch.no_grad()
    def ais_base(self, x_train: torch.Tensor) -> SSRBM:
        """The base model: an ssRBM with W = 0 and this model's Lambda, alpha and b (the path
        needs them shared; the data only checks the input). v ~ N(0, Lambda^{-1}) under it, so
        its samples are exact (sample_burn_in = 0)."""
        self.check_input(x_train, "x_train")
        cfg = self.config.replace(
            n_visible=self.n_visible, init_std=0.0, sample_burn_in=0, persistent=False
        )
        base = type(self)(cfg).to(device=self.W.device, dtype=self.W.dtype)
        for name in ("b", "log_alpha_logit", "log_lambda_logit"):
            getattr(base, name).copy_(getattr(self, name))
        return base

    @torch.no_grad()
    def log_partition(self) -> torch.Tensor:
        """log Z in closed form, valid only when W == 0 (the AIS base): sum_k 1/2 log(2 pi /
        Lambda_k) + sum_i [softplus(b_i) + 1/2 log(2 pi / alpha_i)]. 0-dim tensor."""
        check_zero_weights(self.W)
        alpha, lam = self.alpha, self.lam
        visible = 0.5 * (LOG_2PI - torch.log(lam)).sum()
        return visible + (softplus(self.b) + 0.5 * (LOG_2PI - torch.log(alpha))).sum()

    def _path_parameters(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(W, alpha, Lambda) of the model. Without autograd they are cached while the
        parameters are unchanged: the guarded W needs a spectral norm (an SVD), which would cost
        more than the rest of an AIS step."""
        if torch.is_grad_enabled():
            return self.weight(), self.alpha, self.lam
        params = (self.W, self.log_alpha_logit, self.log_lambda_logit)
        key = tuple((p.data_ptr(), p._version, p.dtype, p.device, p.shape) for p in params)
        cache = self.__dict__.get("_ais_path_cache")
        if cache is None or cache[0] != key:
            # the detached views keep the storage alive, so no other tensor can take its address
            held = tuple(p.detach() for p in params)
            cache = (key, held, (self.weight(), self.alpha, self.lam))
            self.__dict__["_ais_path_cache"] = cache
        return cache[2]

    def _check_base(self, base: SSRBM) -> None:
        check_zero_weights(base.W)
        for name in ("b", "log_alpha_logit", "log_lambda_logit"):
            if not torch.equal(getattr(base, name), getattr(self, name)):
                raise GenzooError(
                    f"the ssRBM annealing path needs a base with this model's {name}; build it "
                    "with model.ais_base(x_train) after the model's last update"
                )

    def annealed_free_energy(self, v: torch.Tensor, beta: float, base: SSRBM) -> torch.Tensor:
        """F_beta(v): the free energy of the ssRBM with weights beta W (module docstring), from
        ``base`` (beta = 0) to this model (beta = 1). v (B, D) -> (B,)."""
        self._check_base(base)
        W, alpha, lam = self._path_parameters()
        return self._free_energy(v, beta * W, alpha, lam)

    @torch.no_grad()
    def annealed_gibbs_step(
        self, v: torch.Tensor, beta: float, base: SSRBM, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One block Gibbs sweep v -> h -> s -> v of the ssRBM with weights beta W, leaving
        p_beta invariant. v (B, D) -> (B, D)."""
        self._check_base(base)
        W, alpha, lam = self._path_parameters()
        return self._gibbs_sweep(beta * (v @ W), beta * W, alpha, lam, 1.0, generator)

    @torch.no_grad()
    def annealed_step(
        self,
        v: torch.Tensor,
        beta_prev: float,
        beta: float,
        base: SSRBM,
        generator: torch.Generator | None = None,
        transition: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused AIS step: (F_{beta_prev}(v) - F_beta(v) (B,), the state after one sweep at
        beta), the same values and draws as the unfused calls with v W computed once. The base
        is checked at the ends of the path only (beta or beta_prev 0), where it enters."""
        if beta == 0.0 or beta_prev == 0.0:
            self._check_base(base)
        W, alpha, lam = self._path_parameters()
        u = v @ W
        inc = self._free_energy(v, None, alpha, lam, u=beta_prev * u) - self._free_energy(
            v, None, alpha, lam, u=beta * u
        )
        if not transition:
            return inc, v
        return inc, self._gibbs_sweep(beta * u, beta * W, alpha, lam, 1.0, generator)
