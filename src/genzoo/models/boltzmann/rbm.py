"""Binary restricted Boltzmann machine (RBM).

Smolensky (1986), "Information processing in dynamical systems: foundations of harmony theory";
Hinton (2002), "Training products of experts by minimizing contrastive divergence" (CD-k);
Tieleman (2008), "Training restricted Boltzmann machines using approximations to the likelihood
gradient" (PCD, also called stochastic maximum likelihood); Hinton (2010), "A practical guide to
training restricted Boltzmann machines" (initialisation, weight decay, sparsity);
Salakhutdinov & Murray (2008), "On the quantitative analysis of deep belief networks" (AIS).

Binary visible units v in {0,1}^D and hidden units h in {0,1}^H, parameters W (D, H),
visible bias b (D,), hidden bias c (H,)::

    E(v, h) = -v^T W h - b^T v - c^T h
    F(v)    = -log sum_h exp(-E(v, h)) = -b^T v - sum_j softplus(c_j + (v^T W)_j)
    p(h_j = 1 | v) = sigmoid(c_j + (v^T W)_j),    p(v_i = 1 | h) = sigmoid(b_i + (W h)_i)
    p(v) = exp(-F(v)) / Z

Learning. The likelihood gradient is <v p(h|v)^T>_data - <v p(h|v)^T>_model. Both CD-k and PCD-k
are written as the surrogate loss ``mean F(v_data) - mean F(v_model)`` with ``v_model`` detached:
its gradient is exactly that difference with the model term taken at the negative samples. CD-k
starts the negative Gibbs chain at the data; PCD-k advances persistent chains (the buffer
``chains``) by k steps per update.

AIS path (Salakhutdinov & Murray 2008). The base model A is the RBM with W_A = 0, c_A = 0 and
b_A the logits of the data marginals; the hidden units are shared along the path, whose energy
is E_beta(v, h) = (1 - beta) E_A(v, h) + beta E(v, h), so::

    F_beta(v) = -((1 - beta) b_A + beta b)^T v
                - sum_j softplus((1 - beta) c_A_j + beta (c_j + (v^T W)_j))

equals the base's own free energy at beta = 0 (-b_A^T v - H log 2, constants included) and F(v)
at beta = 1. Its Gibbs conditionals are sigmoids of the interpolated inputs. Exact log Z
enumerates the smaller layer with the other summed out.
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

from genzoo.core.errors import GenzooError
from genzoo.core.registry import register_model
from genzoo.models.base import checks_input, train_recipe
from genzoo.models.boltzmann._ops import (
    ContrastiveFreeEnergy,
    RBMFamily,
    RBMFamilyConfig,
    advance_chains,
    bernoulli,
    check_sparsity_config,
    check_zero_weights,
    data_logits,
    register_chains,
    sample_chains,
    softplus,
    softplus_increment,
    softplus_threshold,
    start_chains_at_data,
)
from genzoo.nn.init import normal_or_zero_
from genzoo.ops.enumeration import binary_states

# Largest hidden layer for which sample_exact enumerates p(h).
_EXACT_SAMPLE_MAX_HIDDEN = 20


@dataclasses.dataclass(frozen=True)
class RBMConfig(RBMFamilyConfig):
    """Hyperparameters of the binary RBM: those of :class:`RBMFamilyConfig` (``n_visible``,
    ``n_hidden``, ``k``, ``persistent``, ``n_chains``, ``weight_decay``, ``init_std``,
    ``sample_burn_in``) and Hinton's sparsity penalty on the batch-mean hidden probability
    (``sparsity_target`` / ``sparsity_cost``).
    """

    sparsity_target: float | None = None
    sparsity_cost: float = 0.0

    def validate(self) -> None:
        super().validate()
        check_sparsity_config(self, example_target=0.05)


def _mean_squared_error(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Mean of (x - p)^2 over all entries, with one temporary instead of two."""
    return torch.sub(x, p).square_().sum() / p.numel()


def _free_energy_gap(
    v_pos: torch.Tensor, a_pos: torch.Tensor, v_neg: torch.Tensor, a_neg: torch.Tensor, b
) -> torch.Tensor:
    """mean F(v_pos) - mean F(v_neg) from the hidden pre-activations a = v W + c: the visible
    terms meet in one (D,) difference and each softplus sum runs over the whole batch at once,
    which is what the per-batch logging of CD/PCD can afford."""
    n_pos, n_neg = v_pos.shape[0], v_neg.shape[0]
    visible = (v_neg.sum(0) / n_neg - v_pos.sum(0) / n_pos) @ b
    return visible + softplus(a_neg).sum() / n_neg - softplus(a_pos).sum() / n_pos


@register_model(
    "rbm", family="boltzmann", paper="Smolensky 1986; Hinton 2002 (CD); Tieleman 2008 (PCD)"
)
class RBM(RBMFamily):
    """Binary restricted Boltzmann machine trained by CD-k or PCD-k.

    Binary-binary RBM. All batch methods take (B, D) visible / (B, H) hidden tensors and
    return (B,) per-example values in nats; device and dtype follow the parameters."""

    config_class = RBMConfig
    train_defaults = train_recipe(
        optimizer="sgd", lr=0.05, lr_schedule="linear", lr_final_factor=0.1,
    )

    def __init__(self, config: RBMConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)  # W (D, H)
        self.b = nn.Parameter(torch.zeros(self.n_visible))
        self.c = nn.Parameter(torch.zeros(self.n_hidden))
        register_chains(self, config.persistent, config.n_chains, self.n_visible)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """W ~ N(0, init_std^2), biases 0. ``generator=None`` uses torch's default generator,
        as torch.nn layers do."""
        with torch.no_grad():
            normal_or_zero_(self.W, self.config.init_std, generator)
            self.b.zero_()
            self.c.zero_()
            if self.chains is not None:
                self.chains.zero_()

    # -- energies ---------------------------------------------------------------------------

    @checks_input
    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """E(v, h) = -v^T W h - b^T v - c^T h. v (B, D), h (B, H) -> (B,)."""
        return -((v @ self.W) * h).sum(-1) - v @ self.b - h @ self.c

    @checks_input
    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = -b^T v - sum_j softplus(c_j + (v^T W)_j), in nats. v (B, D) -> (B,)."""
        return self._free_energy_from_input(v, self._hidden_input(v))

    def _hidden_input(self, v: torch.Tensor) -> torch.Tensor:
        # c + v W as one fused product (addmm saves a pass over the (B, H) result).
        return torch.addmm(self.c, v, self.W)

    def _visible_input(self, h: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.b, h, self.W.T)

    def _free_energy_from_input(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        # a = v W + c, the hidden pre-activation, passed in so callers can share it.
        return -(v @ self.b) - softplus(a).sum(-1)

    def hidden_free_energy(self, h: torch.Tensor) -> torch.Tensor:
        """F(h) = -c^T h - sum_i softplus(b_i + (W h)_i) = -log sum_v exp(-E(v, h)).
        h (B, H) -> (B,)."""
        return -(h @ self.c) - softplus(self._visible_input(h)).sum(-1)

    # -- conditionals and Gibbs sampling -------------------------------------------------------

    def p_h_given_v(self, v: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        """p(h_j = 1 | v) at inverse temperature beta. v (B, D) -> (B, H)."""
        return torch.sigmoid(beta * self._hidden_input(v))

    def p_v_given_h(self, h: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        """p(v_i = 1 | h) at inverse temperature beta. h (B, H) -> (B, D)."""
        return torch.sigmoid(beta * self._visible_input(h))

    def sample_h_given_v(
        self, v: torch.Tensor, generator: torch.Generator | None = None, beta: float = 1.0
    ) -> torch.Tensor:
        """Binary draw h ~ p(h | v). v (B, D) -> (B, H)."""
        return bernoulli(self.p_h_given_v(v, beta), generator)

    def sample_v_given_h(
        self, h: torch.Tensor, generator: torch.Generator | None = None, beta: float = 1.0
    ) -> torch.Tensor:
        """Binary draw v ~ p(v | h). h (B, H) -> (B, D)."""
        return bernoulli(self.p_v_given_h(h, beta), generator)

    @torch.no_grad()
    @checks_input
    def gibbs_step(
        self, v: torch.Tensor, beta: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One Gibbs sweep v -> h -> v leaving p_beta(v, h) ∝ exp(-beta E(v, h)) invariant
        (beta scales the whole energy). v (B, D) -> (B, D) binary."""
        h = self.sample_h_given_v(v, generator, beta)
        return self.sample_v_given_h(h, generator, beta)

    # -- learning -----------------------------------------------------------------------------

    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """CD-k / PCD-k surrogate loss on a binary batch x (B, D).

        ``loss`` = mean F(x) - mean F(v_model) (+ 0.5 weight_decay ||W||^2, + the sparsity
        penalty); its gradient is the CD / PCD update. ``recon_error``: mean squared error between
        x and p(v | h0), h0 ~ p(h | x). ``free_energy_gap``: mean F(x) - mean F(v_model) (nats).
        PCD advances the buffer ``chains`` by k Gibbs steps in place.

        Cost of CD-1: the 5 matrix products of the textbook update (x W, h0 W^T, v1 W, and the
        two outer-product sums of the gradient); the data pre-activation x W + c is computed
        once and shared by the first hidden sample, F(x) and the gradient.
        """
        x = x.to(dtype=self.W.dtype)
        cfg = self.config
        with torch.no_grad():
            a_data = self._hidden_input(x)
            s_data = torch.sigmoid(a_data)
            if cfg.persistent:
                v = advance_chains(self.chains, self.gibbs_step, cfg.k, generator)
                # Logged only: one product PCD itself does not need.
                h0 = bernoulli(s_data, generator)
                recon = _mean_squared_error(x, self.p_v_given_h(h0))
            else:
                h = bernoulli(s_data, generator)
                for step in range(cfg.k):
                    pv = self.p_v_given_h(h)
                    if step == 0:
                        recon = _mean_squared_error(x, pv)
                    v = bernoulli(pv, generator)
                    if step < cfg.k - 1:
                        h = self.sample_h_given_v(v, generator)
            v_model = v
            a_model = self._hidden_input(v_model)
            gap = _free_energy_gap(x, a_data, v_model, a_model, self.b)
            value = gap
            if cfg.sparsity_target is not None and cfg.sparsity_cost > 0:
                penalty, s_data = self._sparsity(s_data)
                value = value + penalty
        loss = ContrastiveFreeEnergy.apply(
            self.W, self.b, self.c, value, x, s_data, v_model, torch.sigmoid(a_model)
        )
        if cfg.weight_decay > 0:
            loss = loss + 0.5 * cfg.weight_decay * (self.W**2).sum()
        return {"loss": loss, "recon_error": recon, "free_energy_gap": gap}

    def _sparsity(self, s_data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hinton's sparsity penalty (practical guide, sec. 11). Value:
        sparsity_cost * sum_j BCE(target, q_j), q_j the batch-mean p(h_j = 1 | x). Gradient: the
        guide takes sparsity_cost * (q_j - target) as the derivative with respect to unit j's
        total input (not the chain rule through the mean of sigmoids); since dF(x)/da = -p(h|x),
        that is the same as using p(h|x) - sparsity_cost * (q - target) as the positive-phase
        hidden statistics. Returns (penalty value, adjusted statistics)."""
        cfg = self.config
        t = cfg.sparsity_target
        q = s_data.mean(0)
        qc = q.clamp(1e-7, 1 - 1e-7)
        value = -(t * torch.log(qc) + (1 - t) * torch.log1p(-qc)).sum()
        return cfg.sparsity_cost * value, s_data - cfg.sparsity_cost * (q - t)

    @torch.no_grad()
    @checks_input
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """Set b to the logits of the (clamped) training marginals, and start the persistent
        chains at random training examples (``generator=None``: a CPU generator seeded 0).
        Called once by the Trainer on a fresh run. x_train (N, D) binary."""
        self.b.copy_(data_logits(x_train.to(self.b)))
        if self.chains is not None:
            start_chains_at_data(self.chains, x_train, generator)

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """Mean free energy of x (nats, not a likelihood: log Z is missing) and the mean squared
        error of the deterministic mean-field reconstruction p(v | p(h | x)). No chain updates."""
        x = x.to(dtype=self.W.dtype)
        a = self._hidden_input(x)
        f = self._free_energy_from_input(x, a).mean()
        recon = ((x - self.p_v_given_h(torch.sigmoid(a))) ** 2).mean()
        return {"free_energy": float(f), "recon_error": float(recon)}

    # -- sampling -----------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n binary visible vectors (n, D).

        With persistent chains and n <= n_chains: a copy of the first n chains after a few Gibbs
        steps under the current parameters (the training chains are left untouched). Otherwise
        fresh chains from the base rate sigmoid(b) run ``sample_burn_in`` Gibbs steps.
        """
        return sample_chains(
            self,
            n,
            lambda m: bernoulli(torch.sigmoid(self.b).expand(m, -1), generator),
            self.config.sample_burn_in,
            generator,
        )

    @torch.no_grad()
    def sample_exact(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact, independent draws v ~ p(v) (n, D), for n_hidden <= 20: h from its exact
        marginal p(h) ∝ exp(-F(h)) by enumerating the 2^H states (float64), then v ~ p(v | h)."""

        n_h = self.n_hidden
        if n_h > _EXACT_SAMPLE_MAX_HIDDEN:
            raise GenzooError(
                f"sample_exact enumerates 2^n_hidden states and needs n_hidden <= "
                f"{_EXACT_SAMPLE_MAX_HIDDEN} (got {n_h}); use sample() for larger models"
            )
        model = copy.deepcopy(self).to(torch.float64) if self.W.dtype != torch.float64 else self
        free_energy = model._enumeration_free_energy(model.c, model.b, model.W.T)
        n_states, chunk, device = 2**n_h, 2048, model.W.device
        logits = torch.cat(
            [
                -free_energy(
                    binary_states(
                        torch.arange(s, min(s + chunk, n_states), device=device), n_h, model.W.dtype
                    )
                )
                for s in range(0, n_states, chunk)
            ]
        )
        cdf = torch.cumsum(torch.exp(logits - logits.max()), 0)
        u = torch.rand(n, generator=generator, dtype=torch.float64, device=cdf.device)
        idx = torch.searchsorted(cdf, u * cdf[-1], right=True).clamp_(max=n_states - 1)
        h = binary_states(idx, n_h, model.W.dtype)
        v = model.sample_v_given_h(h, generator)
        return v.to(self.W.dtype)

    # -- AIS path (SM08) and exact log Z ------------------------------------------------------

    @torch.no_grad()
    @checks_input
    def ais_base(self, x_train: torch.Tensor) -> RBM:
        """The base-rate model of SM08: an RBM of the same size with W = 0, c = 0 and b the
        logits of the clamped training marginals. Its samples are exact (sample_burn_in = 0)."""
        base = self._zero_weight_base(x_train)
        base.b.copy_(data_logits(x_train.to(self.b)))
        return base

    @torch.no_grad()
    def log_partition(self) -> torch.Tensor:
        """log Z in closed form, valid only when W == 0 (the AIS base model):
        sum_i softplus(b_i) + sum_j softplus(c_j). Returns a 0-dim tensor."""
        check_zero_weights(self.W)
        return softplus(self.b).sum() + softplus(self.c).sum()

    def _path_input(self, v: torch.Tensor) -> torch.Tensor:
        return self._hidden_input(v)  # a = v W + c

    def _path_free_energy(
        self, v: torch.Tensor, a: torch.Tensor, beta: float, base: RBM
    ) -> torch.Tensor:
        vis = v @ ((1.0 - beta) * base.b + beta * self.b).to(v.dtype)  # v float64: widened
        return -vis - softplus(beta * a + (1.0 - beta) * base.c).sum(-1)

    def _path_increment(self, v, a, beta_prev, beta, base):
        if a.dtype == torch.float64:
            return super()._path_increment(v, a, beta_prev, beta, base)
        # F_{beta'}(v) - F_beta(v) = (beta - beta') v^T (b - b_A)
        #     + sum_j softplus(x_j + (beta - beta')(a_j - c_A_j)) - softplus(x_j),
        # x = beta' a + (1 - beta') c_A: float32 products, no cancellation, float64 sums.
        d_beta = beta - beta_prev
        vis = (v @ (self.b - base.b)).to(torch.float64) * d_beta
        x = beta_prev * a + (1.0 - beta_prev) * base.c
        return vis + softplus_increment(x, d_beta * (a - base.c))

    def _path_sweep(self, v, a, beta, base, generator):
        h = bernoulli(torch.sigmoid(beta * a + (1.0 - beta) * base.c), generator)
        in_v = torch.addmm((1.0 - beta) * base.b + beta * self.b, h, self.W.T, alpha=beta)
        return bernoulli(torch.sigmoid(in_v), generator)

    def enumerable_free_energy(self):
        """(F_layer, n_units): the free energy of the smaller layer's states with the other
        layer summed out (F(h) = hidden_free_energy or F(v) = free_energy, computed without
        gradients), and that layer's size; sum over its 2^n_units states of exp(-F_layer) is Z."""
        if self.n_hidden <= self.n_visible:
            return self._enumeration_free_energy(self.c, self.b, self.W.T), self.n_hidden
        return self._enumeration_free_energy(self.b, self.c, self.W), self.n_visible

    def _enumeration_free_energy(self, own_bias, other_bias, weight):
        """F(s) = -own_bias^T s - sum softplus(other_bias + s weight) for blocks of states s,
        writing the (block, other layer) intermediate into one reused buffer per block size:
        enumeration scores millions of states, and a fresh multi-MB tensor per block costs as
        much in page faults as the arithmetic."""
        workspace: dict[int, torch.Tensor] = {}
        threshold = softplus_threshold(weight.dtype)

        @torch.no_grad()
        def free_energy(s: torch.Tensor) -> torch.Tensor:
            buf = workspace.get(s.shape[0])
            if buf is None:
                buf = workspace[s.shape[0]] = s.new_empty(s.shape[0], weight.shape[1])
            torch.addmm(other_bias, s, weight, out=buf)
            torch.ops.aten.softplus.out(buf, 1.0, threshold, out=buf)
            return -(s @ own_bias) - buf.sum(-1)

        return free_energy
