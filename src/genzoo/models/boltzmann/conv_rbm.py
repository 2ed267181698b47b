"""Convolutional RBM with probabilistic max pooling, and its stacking into a convolutional DBN.

Lee, Grosse, Ranganath & Ng (2009), "Convolutional deep belief networks for scalable
unsupervised learning of hierarchical representations", ICML.

Binary visible maps v (C_in, N_V, N_V') with one bias b_c per input channel; K filters
W^k (C_in, r, r) with one hidden bias c_k each; detector maps h^k (N_H, N_H'),
N_H = N_V - r + 1 (valid cross-correlation "*"), partitioned into non-overlapping C x C blocks
B_alpha, each with a pooling unit p^k_alpha. The energy (the paper's eq. for the max-pooling
CRBM)::

    E(v, h) = -sum_k sum_ij h^k_ij (W^k * v)_ij - sum_k c_k sum_ij h^k_ij - sum_c b_c sum v_c
    subject to sum_{(i,j) in B_alpha} h^k_ij <= 1,     p^k_alpha = OR of h^k in B_alpha

so each block is one categorical variable over its C^2 detectors plus "all off". With
I(h^k_ij) = c_k + (W^k * v)_ij and the block's log-normaliser

    L^k_alpha = log(1 + sum_{(i',j') in B_alpha} exp(I(h^k_i'j')))      (logsumexp with a 0 logit)

    P(h^k_ij = 1 | v) = exp(I(h^k_ij) - L^k_alpha),   P(p^k_alpha = 0 | v) = exp(-L^k_alpha)
    P(v_c = 1 | h)    = sigmoid(b_c + sum_k (W^k_c (*)_full h^k))      (full convolution)
    F(v)              = -sum_c b_c sum v_c - sum_{k, alpha} L^k_alpha

Learning: CD-k as the surrogate mean F(v_data) - mean F(v_model) (v_model detached), plus the
paper's sparsity regulariser sparsity_cost * sum_k (target - mean_ij P(h^k_ij = 1 | v))^2,
which (as in Lee et al.) moves only the hidden biases c.

Images: flat inputs (B, C_in * H * W) are reshaped channel-first with the image shape from the
config (``image_height`` / ``image_width``; none = square). A kernel / pool size that does not
tile the detector maps (N_H divisible by C) is a ConfigError at construction.

AIS path (Neal 2001; Salakhutdinov & Murray 2008). The base model A has no weights,
independent visibles with per-pixel biases b_A (the logits of the training marginals) and
independent blocks with hidden biases c_A (the model's own c, so the base's pooling layer is
already as sparse as the model's). The path E_beta(v, h) = (1 - beta) E_A(v, h) + beta E(v, h)
keeps the pooling constraint, so each block stays one softmax, now over the detector inputs
I_beta = (1 - beta) c_A + beta I = c_A + beta (I - c_A)::

    F_beta(v) = -((1 - beta) b_A + beta b)^T v - sum_{k, alpha} log(1 + sum_{B_alpha} exp(I_beta))
    log Z_A   = sum_pixels softplus(b_A) + P P' sum_k log(1 + C^2 exp(c_A,k))

(b here is b_c broadcast over channel c's pixels); F_0 is the base's own free energy, F_1 = F.
Scaling the whole I = c + W * v by beta (a base with uniform blocks) would pass through
distributions where most blocks are on although the model keeps a few per cent on: strongly
negative sparse hidden biases make that path long, and AIS over it far from converged at
thousands of temperatures. The transition samples the blocks from softmax(I_beta) and then
v ~ sigmoid((1 - beta) b_A + beta (b + sum_k W^k (*)_full h^k)). Exact log Z enumerates the
visible images (``enumerable_free_energy``: 2^D states, F(v) summed over the blocks).

Convolutional DBN: :func:`next_layer_config` gives the config of an RBM whose visible layer is
the pooling layer of the one below (K channels of N_H / C maps), and :class:`ConvDBN` passes
data up the stack (P(p = 1 | v) or its samples), the data for training each next layer.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.config import check, check_nonnegative
from genzoo.core.errors import ConfigError, GenzooError
from genzoo.core.protocols import AIS, ENERGY, EXACT_LOG_PARTITION
from genzoo.core.registry import register_model
from genzoo.models.base import VisibleConfig, checks_input, train_recipe
from genzoo.models.boltzmann._ops import (
    AnnealedFromProducts,
    advance_chains,
    bernoulli,
    check_sparsity_config,
    data_logits,
    register_chains,
    sample_chains,
    softplus,
    start_chains_at_data,
)
from genzoo.models.boltzmann._sequences import resolve_image_shape


@dataclasses.dataclass(frozen=True)
class ConvRBMConfig(VisibleConfig):
    """``n_visible`` = in_channels * image_height * image_width (from the data); the image
    shape is inferred as square when ``image_height`` / ``image_width`` are none.
    ``n_filters`` K, ``kernel_size`` r, ``pool_size`` C (C x C blocks). ``k``: CD-k, or with
    ``persistent`` PCD-k (Tieleman 2008) on ``n_chains`` chains started at training images.
    ``sparsity_target`` / ``sparsity_cost``: Lee et al.'s regulariser on the mean detector
    activation. ``init_std``: W ~ N(0, init_std^2). ``sample_burn_in``: Gibbs sweeps of
    :meth:`ConvRBM.sample`."""

    image_height: int | None = None
    image_width: int | None = None
    in_channels: int = 1
    n_filters: int = 24
    kernel_size: int = 5
    pool_size: int = 2
    k: int = 1
    persistent: bool = False
    n_chains: int = 100
    sparsity_target: float | None = None
    sparsity_cost: float = 0.0
    init_std: float = 0.01
    sample_burn_in: int = 1000

    def validate(self) -> None:
        super().validate()
        check(self.in_channels >= 1, "model.in_channels must be >= 1")
        check(self.n_filters >= 1, f"model.n_filters={self.n_filters} must be >= 1")
        check(self.kernel_size >= 1, f"model.kernel_size={self.kernel_size} must be >= 1")
        check(self.pool_size >= 1, f"model.pool_size={self.pool_size} must be >= 1")
        check(self.k >= 1, f"model.k={self.k} must be >= 1")
        check(self.n_chains >= 1, f"model.n_chains={self.n_chains} must be >= 1")
        check_sparsity_config(self, example_target=0.02)
        check_nonnegative(self.init_std, "model.init_std")
        check(self.sample_burn_in >= 0, "model.sample_burn_in must be >= 0")


@register_model("conv-rbm", family="boltzmann", paper="Lee, Grosse, Ranganath & Ng 2009")
class ConvRBM(AnnealedFromProducts):
    """Convolutional RBM with probabilistic max pooling, CD-k on images.

    Batch methods take flat (B, D)
    binary images, D = in_channels * H * W; hidden states are flat (B, K * N_H * N_H')."""

    config_class = ConvRBMConfig
    train_defaults = train_recipe(
        optimizer="sgd", lr=0.005, lr_schedule="linear",
        lr_final_factor=0.1, momentum_warmup_epochs=1,
    )
    test_overrides = ("model.n_filters=4", "model.kernel_size=3", "model.sample_burn_in=5")

    capabilities = frozenset({ENERGY, AIS, EXACT_LOG_PARTITION})

    def __init__(self, config: ConvRBMConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        n_c, r, pool = config.in_channels, config.kernel_size, config.pool_size
        if config.n_visible % n_c:
            raise ConfigError(
                f"model.n_visible={config.n_visible} is not a multiple of model.in_channels={n_c}"
            )
        self.image_shape = resolve_image_shape(
            config.n_visible // n_c, config.image_height, config.image_width
        )
        hv, wv = self.image_shape
        self.detector_shape = (hv - r + 1, wv - r + 1)
        nh, nw = self.detector_shape
        if nh < 1 or nw < 1:
            raise ConfigError(f"model.kernel_size={r} is larger than the {hv}x{wv} images")
        if nh % pool or nw % pool:
            raise ConfigError(
                f"model.pool_size={pool} does not tile the {nh}x{nw} detector maps "
                f"({hv}x{wv} images, kernel {r}): choose kernel_size and pool_size so that "
                f"image_size - kernel_size + 1 is a multiple of pool_size"
            )
        self.pool_shape = (nh // pool, nw // pool)
        self.W = nn.Parameter(torch.zeros(config.n_filters, n_c, r, r))
        self.b = nn.Parameter(torch.zeros(n_c))
        self.c = nn.Parameter(torch.zeros(config.n_filters))
        register_chains(self, config.persistent, config.n_chains, config.n_visible)
        with torch.no_grad():
            if config.init_std > 0:
                self.W.normal_(0.0, config.init_std, generator=generator)

    @property
    def n_hidden(self) -> int:
        return self.config.n_filters * self.detector_shape[0] * self.detector_shape[1]

    @checks_input
    def images(self, x: torch.Tensor) -> torch.Tensor:
        """Flat (B, D) -> (B, C_in, H, W), after the binary input check."""
        return x.to(self.W.dtype).reshape(len(x), self.config.in_channels, *self.image_shape)

    # -- block softmax (probabilistic max pooling) ----------------------------------------------

    def detector_input(self, v: torch.Tensor) -> torch.Tensor:
        """I(h^k_ij) = c_k + (W^k * v)_ij. v (B, C_in, H, W) -> (B, K, N_H, N_H')."""
        return F.conv2d(v, self.W) + self.c.view(1, -1, 1, 1)

    def _blocks(self, a: torch.Tensor) -> torch.Tensor:
        # (B, K, N_H, N_H') -> (B, K, P, P', C*C): the detectors of each pooling block last.
        bsz, k = a.shape[:2]
        (ph, pw), s = self.pool_shape, self.config.pool_size
        return (
            a.reshape(bsz, k, ph, s, pw, s).permute(0, 1, 2, 4, 3, 5).reshape(bsz, k, ph, pw, s * s)
        )

    def _unblocks(self, blocks: torch.Tensor) -> torch.Tensor:
        bsz, k = blocks.shape[:2]
        (ph, pw), s = self.pool_shape, self.config.pool_size
        return (
            blocks.reshape(bsz, k, ph, pw, s, s)
            .permute(0, 1, 2, 4, 3, 5)
            .reshape(bsz, k, ph * s, pw * s)
        )

    def block_log_normaliser(self, a: torch.Tensor) -> torch.Tensor:
        """L = log(1 + sum_block exp(I)), a logsumexp with a zero logit for "off".
        (B, K, N_H, N_H') -> (B, K, P, P')."""
        blocks = self._blocks(a)
        zero = blocks.new_zeros((*blocks.shape[:-1], 1))
        return torch.logsumexp(torch.cat([blocks, zero], dim=-1), dim=-1)

    def block_probabilities(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(P(h = 1 | v) (B, K, N_H, N_H'), P(p = 0 | v) (B, K, P, P')) from detector inputs a;
        each block's detector probabilities plus its "off" probability sum to one."""
        blocks = self._blocks(a)
        zero = blocks.new_zeros((*blocks.shape[:-1], 1))
        probs = torch.softmax(torch.cat([blocks, zero], dim=-1), dim=-1)
        return self._unblocks(probs[..., :-1]), probs[..., -1]

    def sample_blocks(
        self, a: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One categorical draw per block (at most one detector on): (h (B, K, N_H, N_H'),
        p (B, K, P, P')), binary."""
        blocks = self._blocks(a)
        zero = blocks.new_zeros((*blocks.shape[:-1], 1))
        probs = torch.softmax(torch.cat([blocks, zero], dim=-1), dim=-1)
        u = torch.rand((*probs.shape[:-1], 1), generator=generator, device=a.device, dtype=a.dtype)
        idx = (probs.cumsum(-1) < u).sum(-1).clamp_(max=probs.shape[-1] - 1)
        onehot = F.one_hot(idx, probs.shape[-1]).to(a.dtype)
        return self._unblocks(onehot[..., :-1]), 1.0 - onehot[..., -1]

    # -- energies and conditionals ------------------------------------------------------------

    def visible_input(self, h: torch.Tensor) -> torch.Tensor:
        """b_c + sum_k W^k_c (*)_full h^k. h (B, K, N_H, N_H') -> (B, C_in, H, W)."""
        return F.conv_transpose2d(h, self.W) + self.b.view(1, -1, 1, 1)

    @checks_input
    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """E(v, h) for flat v (B, D), h (B, K*N_H*N_H') -> (B,); +inf where a block has more
        than one detector on (those states have probability zero)."""
        img = v.to(self.W.dtype).reshape(len(v), self.config.in_channels, *self.image_shape)
        hm = h.reshape(len(h), self.config.n_filters, *self.detector_shape)
        e = -(hm * self.detector_input(img)).flatten(1).sum(-1) - (img.sum((2, 3)) @ self.b)
        bad = (self._blocks(hm).sum(-1) > 1).flatten(1).any(-1)
        return torch.where(bad, torch.full_like(e, float("inf")), e)

    @checks_input
    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = -sum_c b_c sum v_c - sum L^k_alpha in nats. v (B, D) -> (B,)."""
        return self._free_energy(v)

    def _free_energy(self, v: torch.Tensor) -> torch.Tensor:
        img = v.to(self.W.dtype).reshape(len(v), self.config.in_channels, *self.image_shape)
        a = self.detector_input(img)
        return -(img.sum((2, 3)) @ self.b) - self.block_log_normaliser(a).flatten(1).sum(-1)

    def p_h_given_v(self, v: torch.Tensor) -> torch.Tensor:
        """P(h^k_ij = 1 | v), flat (B, D) -> flat (B, K*N_H*N_H')."""
        img = v.to(self.W.dtype).reshape(len(v), self.config.in_channels, *self.image_shape)
        return self.block_probabilities(self.detector_input(img))[0].flatten(1)

    def p_v_given_h(self, h: torch.Tensor) -> torch.Tensor:
        """P(v = 1 | h), flat (B, K*N_H*N_H') -> flat (B, D)."""
        hm = h.to(self.W.dtype).reshape(len(h), self.config.n_filters, *self.detector_shape)
        return torch.sigmoid(self.visible_input(hm)).flatten(1)

    @torch.no_grad()
    @checks_input
    def gibbs_step(
        self, v: torch.Tensor, beta: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One sweep v -> (h, p) -> v of p_beta ∝ exp(-beta E); flat (B, D) -> (B, D) binary."""
        img = v.to(self.W.dtype).reshape(len(v), self.config.in_channels, *self.image_shape)
        h, _ = self.sample_blocks(beta * self.detector_input(img), generator)
        return bernoulli(torch.sigmoid(beta * self.visible_input(h)), generator).flatten(1)

    # -- learning -----------------------------------------------------------------------------

    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """CD-k / PCD-k surrogate on binary images x (B, D): ``loss`` = mean F(x) - mean F(v_model)
        (+ the sparsity penalty); ``recon_error``: mean squared error of p(v | h0),
        h0 ~ p(h | x); ``free_energy_gap`` in nats."""
        img = self.images(x)
        cfg = self.config
        conv = F.conv2d(img, self.W)
        a = conv + self.c.view(1, -1, 1, 1)
        with torch.no_grad():
            h, _ = self.sample_blocks(a, generator)
            pv = torch.sigmoid(self.visible_input(h))
            recon = ((img - pv) ** 2).mean()
            if self.chains is not None:
                v = advance_chains(self.chains, self.gibbs_step, cfg.k, generator)
            else:
                v = bernoulli(pv, generator)
                for _ in range(cfg.k - 1):
                    v = self.gibbs_step(v.flatten(1), generator=generator).reshape(img.shape)
        f_data = -(img.sum((2, 3)) @ self.b) - self.block_log_normaliser(a).flatten(1).sum(-1)
        gap = f_data.mean() - self.free_energy(v.flatten(1)).mean()
        loss = gap
        if cfg.sparsity_target is not None and cfg.sparsity_cost > 0:
            # Only c moves under the regulariser (Lee et al.), hence the detached convolution.
            q = self.block_probabilities(conv.detach() + self.c.view(1, -1, 1, 1))[0].mean(
                (0, 2, 3)
            )
            loss = loss + cfg.sparsity_cost * ((cfg.sparsity_target - q) ** 2).sum()
        return {"loss": loss, "recon_error": recon, "free_energy_gap": gap.detach()}

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """Mean free energy (nats, not a likelihood) and the mean-field reconstruction error
        of x (B, D)."""
        x = x.to(self.W.dtype)
        recon = ((x - self.p_v_given_h(self.p_h_given_v(x))) ** 2).mean()
        return {"free_energy": float(self.free_energy(x).mean()), "recon_error": float(recon)}

    @torch.no_grad()
    @checks_input
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """b_c = logit of channel c's mean training intensity (clamped); PCD chains start at
        random training images."""
        img = self.images(x_train)
        p = img.mean((0, 2, 3)).clamp(1e-3, 1 - 1e-3)
        self.b.copy_(torch.log(p) - torch.log1p(-p))
        if self.chains is not None:
            start_chains_at_data(self.chains, x_train, generator)

    # -- sampling and pictures ----------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n binary images (n, D): with PCD and n <= n_chains a copy of the persistent chains
        after a few sweeps, else ``sample_burn_in`` Gibbs sweeps from the base rate."""
        base = torch.sigmoid(self.b).repeat_interleave(self.image_shape[0] * self.image_shape[1])
        return sample_chains(self, n, lambda m: bernoulli(base.expand(m, -1), generator),
                             self.config.sample_burn_in, generator)

    @torch.no_grad()
    def filters(self) -> tuple[torch.Tensor, tuple[int, int]]:
        """The K filters as images in [0, 1], each min-max scaled, channels stacked vertically:
        ((K, C_in * r * r), (C_in * r, r))."""
        k, n_c, r, _ = self.W.shape
        w = self.W.detach().float().cpu().reshape(k, -1)
        lo, hi = w.min(1, keepdim=True).values, w.max(1, keepdim=True).values
        return (w - lo) / (hi - lo).clamp_min(1e-12), (n_c * r, r)

    @torch.no_grad()
    def pool_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """P(p^k_alpha = 1 | x), flat (B, D) -> flat (B, K * P * P'): the next layer's input."""
        img = x.to(self.W.dtype).reshape(len(x), self.config.in_channels, *self.image_shape)
        return (1.0 - self.block_probabilities(self.detector_input(img))[1]).flatten(1)

    @torch.no_grad()
    def sample_pool(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Binary pooling states p ~ P(p | x), flat (B, D) -> (B, K * P * P')."""
        img = x.to(self.W.dtype).reshape(len(x), self.config.in_channels, *self.image_shape)
        return self.sample_blocks(self.detector_input(img), generator)[1].flatten(1)


    # -- AIS path and exact log Z -------------------------------------------------------------

    @property
    def n_blocks(self) -> int:
        """K P P', the pooling blocks (each a softmax over C^2 detectors and "off")."""
        return self.config.n_filters * self.pool_shape[0] * self.pool_shape[1]

    def pixel_bias(self) -> torch.Tensor:
        """b_c broadcast over the pixels of channel c, flat (D,)."""
        return self.b.repeat_interleave(self.image_shape[0] * self.image_shape[1])

    @torch.no_grad()
    @checks_input
    def ais_base(self, x_train: torch.Tensor) -> ConvRBMAnnealingBase:
        """Base model A: independent visibles with b_A the logits of the clamped per-pixel
        training marginals (x_train (N, D)), no weights, every block a softmax over the
        model's hidden biases c_A = c (module docstring)."""
        return ConvRBMAnnealingBase(
            data_logits(x_train.to(self.W)), self.c.detach(),
            self.pool_shape[0] * self.pool_shape[1], self.config.pool_size**2,
        )

    def _check_path_base(self, base: ConvRBMAnnealingBase) -> None:
        if (not isinstance(base, ConvRBMAnnealingBase)
                or base.b.shape != (self.config.n_visible,)
                or base.c.shape != (self.config.n_filters,)):
            raise GenzooError("the AIS base of a ConvRBM comes from its own ais_base(x_train)")

    def _path_input(self, v: torch.Tensor) -> torch.Tensor:
        img = v.reshape(len(v), self.config.in_channels, *self.image_shape)
        return self.detector_input(img)  # I = c + W * v, (B, K, N_H, N_H')

    @staticmethod
    def _base_logits(a: torch.Tensor, base: ConvRBMAnnealingBase) -> torch.Tensor:
        """c_A (1, K, 1, 1) in the dtype of the detector inputs a, to broadcast over them."""
        return base.c.to(a.dtype).view(1, -1, 1, 1)

    def _annealed_input(self, a: torch.Tensor, beta: float, base) -> torch.Tensor:
        """I_beta = c_A + beta (I - c_A) (B, K, N_H, N_H') from the detector inputs a = I."""
        c_a = self._base_logits(a, base)
        return c_a + beta * (a - c_a)

    def _path_free_energy(
        self, v: torch.Tensor, a: torch.Tensor, beta: float, base: ConvRBMAnnealingBase
    ) -> torch.Tensor:
        # F_beta(v) (module docstring) from the detector inputs a = I.
        vis = v @ ((1.0 - beta) * base.b + beta * self.pixel_bias()).to(v.dtype)
        return -vis - self.block_log_normaliser(
            self._annealed_input(a, beta, base)).flatten(1).sum(-1)

    def _path_increment(
        self, v: torch.Tensor, a: torch.Tensor, beta_prev: float, beta: float, base
    ) -> torch.Tensor:
        """F_{beta_prev}(v) - F_beta(v) (B,) float64 from the detector inputs a."""
        d = beta - beta_prev
        c_a = self._base_logits(a, base)
        delta = a - c_a  # dI_beta / dbeta
        # A step that moves an input by 2 or more takes the float64 difference: below it the
        # sum 1 + sum_i q_i expm1(.) stays above 1 - (1 - e^-2) = 0.135, so float32 rounding
        # costs at most 6e-8 / 0.135 = 5e-7 nats a block (a large negative step with q near 1
        # would otherwise take the log of a cancelled difference).
        if a.dtype == torch.float64 or bool(d * delta.abs().max() >= 2.0):
            return super()._path_increment(v, a, beta_prev, beta, base)  # float64 difference
        vis = (v @ (self.pixel_bias() - base.b)).to(torch.float64) * d
        # Per block, L(I_beta) - L(I_beta') = log1p(sum_i q_i expm1((beta - beta') delta_i))
        # with q the block softmax at beta' ("off" dropped): float32 keeps its relative
        # precision for the small steps of AIS, where the difference of two L's would cancel.
        blocks = self._blocks(delta)
        prev = self._blocks(c_a + beta_prev * delta)  # I_beta'
        zero = blocks.new_zeros((*blocks.shape[:-1], 1))
        q = torch.softmax(torch.cat([prev, zero], dim=-1), dim=-1)[..., :-1]
        inc = torch.log1p((q * torch.expm1(d * blocks)).sum(-1))
        return vis + inc.flatten(1).sum(-1, dtype=torch.float64)

    def _path_sweep(
        self, v: torch.Tensor, a: torch.Tensor, beta: float, base, generator
    ) -> torch.Tensor:
        # Blocks ~ softmax(I_beta), then v ~ p_beta(v | h).
        h, _ = self.sample_blocks(self._annealed_input(a, beta, base), generator)
        in_v = (1.0 - beta) * base.b + beta * self.visible_input(h).flatten(1)
        return bernoulli(torch.sigmoid(in_v), generator)

    def enumerable_free_energy(self):
        """(F(v), n_visible): the free energy of binary images (M, D), blocks summed out,
        computed without gradients; Z = sum over the 2^D images of exp(-F(v))."""

        @torch.no_grad()
        def free_energy(v: torch.Tensor) -> torch.Tensor:
            return self._free_energy(v)

        return free_energy, self.config.n_visible


class ConvRBMAnnealingBase(nn.Module):
    """The AIS base model of a :class:`ConvRBM`: no weights, independent visibles with
    per-pixel biases ``b`` (D,), and independent pooling blocks, ``blocks_per_filter`` = P P'
    of them per filter k, each a softmax over its ``block_size`` = C^2 detectors at logit
    ``c[k]`` (K,) and "off" at 0."""

    def __init__(
        self, b: torch.Tensor, c: torch.Tensor, blocks_per_filter: int, block_size: int
    ) -> None:
        super().__init__()
        self.register_buffer("b", b.detach().clone())
        self.register_buffer("c", c.detach().clone().to(b.dtype))
        self.blocks_per_filter, self.block_size = blocks_per_filter, block_size

    @torch.no_grad()
    def log_partition(self) -> torch.Tensor:
        """log Z_A = sum_pixels softplus(b_A) + P P' sum_k log(1 + C^2 exp(c_k)), 0-dim."""
        blocks = softplus(self.c + math.log(self.block_size)).sum()  # log(1 + C^2 e^c)
        return softplus(self.b).sum() + self.blocks_per_filter * blocks

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact draws of the visibles (n, D), binary."""
        return bernoulli(torch.sigmoid(self.b).expand(n, -1), generator)


def save_filters(model: ConvRBM, path: str | os.PathLike, nrow: int | None = None) -> None:
    """Write the learned filters of ``model`` as one greyscale PNG grid at ``path``."""
    from genzoo.utils.images import save_image_grid

    images, shape = model.filters()
    save_image_grid(images, shape, path, nrow=nrow, scale=4)


def next_layer_config(lower: ConvRBM, **overrides) -> ConvRBMConfig:
    """Config of a ConvRBM stacked on ``lower``: its visibles are lower's pooling units
    (K channels of P x P' maps). ``overrides`` set the new layer's other fields."""
    ph, pw = lower.pool_shape
    k = lower.config.n_filters
    return ConvRBMConfig(
        **{
            "n_filters": lower.config.n_filters,
            "kernel_size": 3,
            "pool_size": 1,
            **overrides,
            "n_visible": k * ph * pw,
            "in_channels": k,
            "image_height": ph,
            "image_width": pw,
        }
    )


class ConvDBN(nn.Module):
    """A stack of ConvRBMs, each on the pooling layer of the one below (greedy layer-wise
    training: train layer l on ``features(x, upto=l)``, Lee et al. section 3.4). Not a
    registered model: it has no joint sampler of its own."""

    def __init__(self, layers: list[ConvRBM]) -> None:
        super().__init__()
        for lower, upper in itertools.pairwise(layers):
            k = lower.config.n_filters
            if upper.config.in_channels != k or tuple(upper.image_shape) != tuple(lower.pool_shape):
                raise ConfigError(
                    f"layer with in_channels={upper.config.in_channels} and images "
                    f"{upper.image_shape} cannot sit on pooling maps {k} x {lower.pool_shape}; "
                    "build it from next_layer_config(lower)"
                )
        self.layers = nn.ModuleList(layers)

    @torch.no_grad()
    def features(
        self, x: torch.Tensor, upto: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The input of layer ``upto`` (default: the top pooling layer) for flat x (B, D):
        with a generator, binary samples of each pooling layer (training data for the next
        layer); without, the mean-field up-pass of pooling probabilities (features)."""
        upto = len(self.layers) if upto is None else upto
        for layer in self.layers[:upto]:
            x = (
                layer.sample_pool(x, generator)
                if generator is not None
                else layer.pool_probabilities(x)
            )
        return x
