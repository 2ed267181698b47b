"""Pieces shared by the Boltzmann machines: Bernoulli and Gaussian draws, a float64-accurate
softplus, data-marginal logits, bounded parameterisations, the contrastive free-energy surrogate
with a closed-form backward (the CD / PCD learning rule), the persistent-chain bookkeeping (chain
starts and updates, sampling), and :class:`RBMFamily`, the base of the RBMs over a (D, H) weight
matrix trained by CD-k / PCD-k (binary, Gaussian-Bernoulli and spike-and-slab), with its config
:class:`RBMFamilyConfig` and the annealing path that AIS runs for all three.

The annealing path (Neal 2001; Salakhutdinov & Murray 2008). Each model anneals from a base
model A with W_A = 0, whose log Z_A is closed-form (``log_partition``) and whose samples are
exact, to itself: p_beta ∝ exp(-F_beta(v)), F_0 the base's own free energy (constants included),
F_1 = F. A model supplies F_beta and a transition leaving p_beta invariant, both from the
products of v that they share (``_path_input``); :class:`AnnealedFromProducts` (the base of
:class:`RBMFamily` and of the convolutional RBM) turns them into the
:class:`~genzoo.core.protocols.AnnealingPath` contract, the fused step computing those
products once per temperature."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from genzoo.core.config import check, check_nonnegative
from genzoo.core.errors import GenzooError
from genzoo.core.protocols import AIS, ENERGY, EXACT_LOG_PARTITION
from genzoo.models.base import GenzooModel, VisibleConfig, trusted_input

# Re-exported: the Boltzmann machines take every numerical piece from this module.
from genzoo.ops.numerics import (  # noqa: F401
    data_logits,
    softplus,
    softplus_increment,
    softplus_threshold,
)

# Gibbs steps that a copy of the persistent chains runs in ``sample`` under the current
# parameters (the training chains themselves are left untouched).
PERSISTENT_SAMPLE_STEPS = 10


def bernoulli(p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    # u < p with u uniform draws the same law as torch.bernoulli, several times faster on CPU;
    # the in-place comparison writes 0./1. into u without another allocation.
    u = torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype)
    return u.lt_(p)


def widen(x: Any) -> Any:
    """``x`` (a tensor, or a tuple of tensors and other values) with every floating tensor
    narrower than float64 cast to float64: where the AIS log-weight increments are computed
    from the products of a float32 model (mixed-precision evaluation)."""
    if isinstance(x, tuple):
        return tuple(widen(t) for t in x)
    if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != torch.float64:
        return x.to(torch.float64)
    return x


def randn(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal draws of ``like``'s shape, device and dtype."""
    return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)


def bounded(logit: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """lo + (hi - lo) * sigmoid(logit): a smooth parameterisation of a quantity (a log variance
    or log precision) that must stay inside [lo, hi] whatever the optimiser does."""
    return lo + (hi - lo) * torch.sigmoid(logit)


def bounded_logit(value: torch.Tensor, lo: float, hi: float, eps: float = 1e-6) -> torch.Tensor:
    """The inverse of :func:`bounded`, with ``value`` first clipped to just inside [lo, hi] so
    the logit is finite."""
    u = ((value - lo) / (hi - lo)).clamp(eps, 1.0 - eps)
    return torch.log(u) - torch.log1p(-u)


class ContrastiveFreeEnergy(torch.autograd.Function):
    """Returns the precomputed ``value`` of mean F(v_pos) - mean F(v_neg); its backward gives the
    gradient with respect to (W, b, c) in closed form from the hidden statistics s = p(h | v)
    (dF/dW = -v s^T, dF/db = -v, dF/dc = -s)::

        dW = (v_neg^T s_neg / N_neg - v_pos^T s_pos / N_pos),  db, dc likewise

    Two products, accumulated in place, instead of autograd's two products plus a sum of two
    (D, H) gradients and the graph of two free energies."""

    @staticmethod
    def forward(ctx, W, b, c, value, v_pos, s_pos, v_neg, s_neg):
        ctx.save_for_backward(v_pos, s_pos, v_neg, s_neg)
        return value.clone()

    @staticmethod
    def backward(ctx, grad):
        v_pos, s_pos, v_neg, s_neg = ctx.saved_tensors
        # The 1/N scalings ride on the GEMM's alpha and beta, so no (B, H) pass scales s.
        g = float(grad)
        a_neg, a_pos = g / v_neg.shape[0], g / v_pos.shape[0]
        g_W = torch.mm(v_neg.T, s_neg).addmm_(v_pos.T, s_pos, beta=a_neg, alpha=-a_pos)
        g_b = v_neg.sum(0).mul_(a_neg).sub_(v_pos.sum(0), alpha=a_pos)
        g_c = s_neg.sum(0).mul_(a_neg).sub_(s_pos.sum(0), alpha=a_pos)
        return g_W, g_b, g_c, None, None, None, None, None


def check_sparsity_config(config, example_target: float) -> None:
    """Checks of Hinton's sparsity penalty fields ``sparsity_target`` (in (0, 1) or None) and
    ``sparsity_cost`` (>= 0, and > 0 only with a target; the message suggests
    ``example_target``)."""
    check(
        config.sparsity_target is None or 0.0 < config.sparsity_target < 1.0,
        f"model.sparsity_target={config.sparsity_target} must be in (0, 1) or none",
    )
    check_nonnegative(config.sparsity_cost, "model.sparsity_cost")
    check(
        config.sparsity_cost == 0.0 or config.sparsity_target is not None,
        f"model.sparsity_cost > 0 needs model.sparsity_target (e.g. {example_target})",
    )


def layer_parameters(sizes: tuple[int, ...]) -> tuple[nn.ParameterList, nn.ParameterList]:
    """Zero weights W_l (n_{l-1}, n_l), l = 1..L, and biases b_l (n_l,), l = 0..L, of a layered
    Boltzmann machine with layer sizes ``sizes`` = (n_0 = D, n_1, ..., n_L)."""
    W = nn.ParameterList(
        [nn.Parameter(torch.zeros(sizes[l - 1], sizes[l])) for l in range(1, len(sizes))]
    )
    b = nn.ParameterList([nn.Parameter(torch.zeros(n)) for n in sizes])
    return W, b


def register_chains(module: nn.Module, persistent: bool, n_chains: int, n_visible: int) -> None:
    """PCD: register the persistent chains (n_chains, D) as the buffer ``module.chains`` (so
    checkpoints carry them); CD (not ``persistent``): ``module.chains = None``."""
    if persistent:
        module.register_buffer("chains", torch.zeros(n_chains, n_visible))
    else:
        module.chains = None


@torch.no_grad()
def start_chains_at_data(
    chains: torch.Tensor, x_train: torch.Tensor, generator: torch.Generator | None
) -> None:
    """Overwrite the persistent chains (n_chains, D) with random rows of x_train (N, D), drawn
    with ``generator`` (None: a CPU generator seeded 0, so a fresh run is reproducible)."""
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    idx = torch.randint(len(x_train), (len(chains),), generator=generator, device=generator.device)
    chains.copy_(x_train[idx.to(x_train.device)].to(chains))


@torch.no_grad()
def advance_chains(
    chains: torch.Tensor,
    gibbs_step: Callable[..., torch.Tensor],
    k: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """PCD: run the persistent chains (n_chains, D) ``k`` steps of ``gibbs_step(v,
    generator=...)``, store the result in ``chains`` in place, and return it."""
    v = chains
    for _ in range(k):
        v = gibbs_step(v, generator=generator)
    chains.copy_(v)
    return v


@torch.no_grad()
def sample_chains(
    model,
    n: int,
    fresh: Callable[[int], torch.Tensor],
    burn_in: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """n visible vectors (n, D) from an RBM with optional persistent ``model.chains``: a copy of
    the first n chains after PERSISTENT_SAMPLE_STEPS Gibbs steps when there are that many, else
    ``fresh(n)`` run ``burn_in`` Gibbs steps of ``model.gibbs_step``."""
    if n < 0:
        raise GenzooError(f"sample(n={n}): n must be >= 0")
    if model.chains is not None and n <= model.config.n_chains:
        v, steps = model.chains[:n].clone(), PERSISTENT_SAMPLE_STEPS
    else:
        v, steps = fresh(n), burn_in
    with trusted_input():  # the chain's own states: no check per step
        for _ in range(steps):
            v = model.gibbs_step(v, generator=generator)
    return v


def check_zero_weights(W: torch.Tensor) -> None:
    """GenzooError unless W == 0: a closed-form log Z exists only for the AIS base model."""
    if bool(W.any()):
        raise GenzooError(
            "log_partition() is closed-form only for W == 0 (the AIS base model); use "
            "genzoo.evaluation.exact_log_partition or ais_log_partition"
        )


@dataclasses.dataclass(frozen=True)
class RBMFamilyConfig(VisibleConfig):
    """Fields of every RBM over a (D, H) weight matrix trained by CD-k / PCD-k.

    ``n_visible`` is filled from the data by the CLI when left ``None``. ``k``: Gibbs steps per
    update (CD-k, or PCD-k when ``persistent``, with ``n_chains`` persistent chains).
    ``weight_decay``: an L2 penalty 0.5 * weight_decay * ||W||^2 on W only. ``init_std``:
    W ~ N(0, init_std^2). ``sample_burn_in``: Gibbs steps run by fresh chains in ``sample``.
    """

    n_hidden: int = 500
    k: int = 1
    persistent: bool = False
    n_chains: int = 100
    weight_decay: float = 0.0
    init_std: float = 0.01
    sample_burn_in: int = 1000

    def validate(self) -> None:
        super().validate()
        check(self.n_hidden > 0, f"model.n_hidden={self.n_hidden} must be positive")
        check(self.k >= 1, f"model.k={self.k} must be >= 1 (Gibbs steps per update)")
        check(self.n_chains >= 1, f"model.n_chains={self.n_chains} must be >= 1")
        check_nonnegative(self.weight_decay, "model.weight_decay")
        check_nonnegative(self.init_std, "model.init_std")
        check(self.sample_burn_in >= 0, f"model.sample_burn_in={self.sample_burn_in} must be >= 0")


class AnnealedFromProducts(GenzooModel):
    """The :class:`~genzoo.core.protocols.AnnealingPath` contract of a model that gives, for
    its AIS states v, the products both the path's free energy and its transition read
    (module docstring)::

        _path_input(v)                                  -> products of v (B, D) both use
        _path_free_energy(v, ctx, beta, base)           -> F_beta(v) (B,)
        _path_sweep(v, ctx, beta, base, generator)      -> v' (B, D), p_beta invariant

    plus ``ais_base(x_train)`` and the base's closed-form ``log_partition()``; the fused
    :meth:`annealed_step` computes the products once per temperature. A model may override
    :meth:`_path_increment` (a form without cancellation in float32) and
    :meth:`_check_path_base`."""

    def _check_path_base(self, base: Any) -> None:
        """Raise GenzooError when ``base`` is not a base this model's path can start from
        (nothing to check by default)."""

    def _path_input(self, v: torch.Tensor) -> Any:
        raise NotImplementedError

    def _path_free_energy(self, v: torch.Tensor, ctx: Any, beta: float, base: Any) -> torch.Tensor:
        raise NotImplementedError

    def _path_increment(
        self, v: torch.Tensor, ctx: Any, beta_prev: float, beta: float, base: Any
    ) -> torch.Tensor:
        """F_{beta_prev}(v) - F_beta(v) (B,) float64 from the products ``ctx`` of v: by default
        the difference of :meth:`_path_free_energy` at both temperatures evaluated in float64
        (:meth:`_wide_path_input`)."""
        v64, ctx64 = widen(v), self._wide_path_input(ctx)
        return self._path_free_energy(v64, ctx64, beta_prev, base) - self._path_free_energy(
            v64, ctx64, beta, base
        )

    def _wide_path_input(self, ctx: Any) -> Any:
        """The products ``ctx`` as :meth:`_path_free_energy` reads them in float64 (all of
        them by default; a model whose context carries a weight matrix leaves that out)."""
        return widen(ctx)

    def _path_sweep(
        self, v: torch.Tensor, ctx: Any, beta: float, base: Any, generator: torch.Generator | None
    ) -> torch.Tensor:
        raise NotImplementedError

    def annealed_free_energy(self, v: torch.Tensor, beta: float, base: Any) -> torch.Tensor:
        """F_beta(v) = -log p*_beta(v) on the path from ``base`` (beta = 0, W_A = 0) to this
        model (beta = 1); the model's module docstring gives it. v (B, D) -> (B,)."""
        self._check_path_base(base)
        return self._path_free_energy(v, self._path_input(v), beta, base)

    @torch.no_grad()
    def annealed_gibbs_step(
        self, v: torch.Tensor, beta: float, base: Any, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One Gibbs sweep leaving p_beta invariant. v (B, D) -> (B, D)."""
        self._check_path_base(base)
        return self._path_sweep(v, self._path_input(v), beta, base, generator)

    @torch.no_grad()
    def annealed_step(
        self, v: torch.Tensor, /, beta_prev: float, beta: float, base: Any,
        generator: torch.Generator | None = None, transition: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused AIS step: (F_{beta_prev}(v) - F_beta(v) (B,), the state after one sweep at
        beta), the same values and draws as annealed_free_energy twice and annealed_gibbs_step
        with the products of v computed once. The base is checked at the ends of the path only
        (beta or beta_prev 0), where it enters.

        Mixed precision: the products and the sweep run in the model's dtype; the increment,
        a difference of two free energies of hundreds of nats that differ by a fraction of a
        nat, is computed in float64 from those products (:func:`widen`), so a float32 model
        loses nothing to cancellation (float32 resolves 6e-5 nats at 1000)."""
        if beta == 0.0 or beta_prev == 0.0:
            self._check_path_base(base)
        ctx = self._path_input(v)
        inc = self._path_increment(v, ctx, beta_prev, beta, base)
        if not transition:
            return inc, v
        return inc, self._path_sweep(v, ctx, beta, base, generator)


class RBMFamily(AnnealedFromProducts):
    """Base of the RBMs with weights ``W`` (D, H) (registered first, zero; the model sets the
    rest of its parameters and optional persistent ``chains``): their sizes, their capabilities
    (energy, AIS, exact log Z for a small hidden layer), and the AIS contract built from three
    methods a model implements (module docstring)::

        _path_input(v)                                  -> products of v (B, D) both use
        _path_free_energy(v, ctx, beta, base)           -> F_beta(v) (B,)
        _path_sweep(v, ctx, beta, base, generator)      -> v' (B, D), p_beta invariant

    plus ``ais_base(x_train)`` (usually through :meth:`_zero_weight_base`) and the base's
    closed-form ``log_partition()``. ``enumerable_free_energy`` defaults to enumerating the
    hidden states through ``hidden_free_energy(h)``.
    """

    capabilities = frozenset({ENERGY, AIS, EXACT_LOG_PARTITION})
    test_overrides = ("model.n_hidden=8", "model.sample_burn_in=10")
    chains: torch.Tensor | None

    def __init__(self, config: RBMFamilyConfig) -> None:
        super().__init__(config)
        self.W = nn.Parameter(torch.zeros(config.n_visible, config.n_hidden))

    @property
    def n_visible(self) -> int:
        return self.W.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.W.shape[1]

    # -- the annealing path ----------------------------------------------------------------------

    @torch.no_grad()
    def _zero_weight_base(self, x_train: torch.Tensor, **changes: Any) -> RBMFamily:
        """A model of this class and size with W = 0, no persistent chains and exact samples
        (no burn-in), on this model's device and dtype; ``changes`` set other config fields.
        x_train (N, D) was checked by the caller's ``ais_base`` (:func:`checks_input`), which
        sets the base's data-dependent parameters."""
        cfg = self.config.replace(
            n_visible=self.n_visible, init_std=0.0, sample_burn_in=0, persistent=False, **changes
        )
        return type(self)(cfg).to(device=self.W.device, dtype=self.W.dtype)

    def log_partition(self) -> torch.Tensor:
        """log Z in closed form, valid only when W == 0 (the AIS base). 0-dim tensor."""
        raise NotImplementedError

    def hidden_free_energy(self, h: torch.Tensor) -> torch.Tensor:
        """F(h) = -log sum_v exp(-E(v, h)) (an integral for real visibles). h (B, H) -> (B,)."""
        raise NotImplementedError

    def enumerable_free_energy(self) -> tuple[Callable[[torch.Tensor], torch.Tensor], int]:
        """(F(h), n_hidden): :meth:`hidden_free_energy` computed without gradients; Z = sum over
        the 2^H hidden states of exp(-F(h))."""

        @torch.no_grad()
        def free_energy(h: torch.Tensor) -> torch.Tensor:
            return self.hidden_free_energy(h)

        return free_energy, self.n_hidden
