"""Variational auto-encoder trained by auto-encoding variational Bayes (AEVB), with the
importance-weighted bound as an alternative objective.

Kingma & Welling (2014), "Auto-encoding variational Bayes", ICLR: prior p(z) = N(0, I),
recognition model q_phi(z|x) = N(mu, diag sigma^2) from an MLP (appendix C.2), decoder
p_theta(x|z) Bernoulli (appendix C.1) or Gaussian, reparameterisation z = mu + sigma * eps,
eps ~ N(0, I) (eq. 4), and the two SGVB estimators of the bound L(x), with L draws per
example (``n_mc``)::

    A (eq. 6):  L^A = (1/L) sum_l [log p(x, z_l) - log q(z_l|x)]
    B (eq. 7):  L^B = -KL(q(z|x) || p(z)) + (1/L) sum_l log p(x|z_l),
                -KL = (1/2) sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)    (appendix B)

Both are unbiased for the bound; B replaces the Monte Carlo KL by its exact value, so its KL
part has no sampling noise (the paper's reason to prefer it, section 2.3).

Burda, Grosse & Salakhutdinov (2016), "Importance weighted autoencoders", ICLR, eq. (8): with
``objective="iwae"`` the loss is -log (1/k) sum_i w_i, w_i = p(x, z_i) / q(z_i|x), whose
gradient (eq. 13) is sum_i w~_i grad log w_i with normalised weights w~_i treated as constants;
autograd through logsumexp of reparameterised log w_i gives exactly that. k = 1 is L^A with L = 1.

Doubly reparameterised gradient (``iwae_gradient="dreg"``; Tucker, Lawson, Gu & Maddison
2019, "Doubly reparameterized gradient estimators for Monte Carlo objectives", ICLR, eq. 5):
the encoder's IWAE gradient sum_i w~_i grad_phi log w_i contains a score-function part
(grad_phi log q at fixed z) whose variance grows with k; by the reparameterisation identity it
equals in expectation sum_i w~_i^2 (d log w_i / d z_i)(d z_i / d phi), with q's parameters held
fixed inside log q. The decoder keeps the IWAE gradient sum_i w~_i grad_theta log p(x, z_i).
Same expectation, lower variance for the encoder (Tucker et al., fig. 1).

Convolutional encoder/decoder (``architecture="conv"``, 28x28 images only): two stride-2 4x4
convolutions (28 -> 14 -> 7, ``conv_channels``) and a linear map to (mu, log_var); the decoder
mirrors it with transposed convolutions and adds a per-pixel output bias.

Options of later work: a linear warm-up of the KL weight from 0 to 1 over ``kl_warmup_steps``
training steps (Bowman et al. 2016; Sonderby et al. 2016; the step counter is a buffer, so a
resumed run continues the schedule) and free bits (Kingma et al. 2016, eq. 15): each latent
dimension's batch-mean KL counts at least ``free_bits`` nats in the training objective.
Reported "elbo" and "kl" are always the unmodified bound and KL.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
import torch.func
import torch.nn.functional as F
from torch import distributions as D
from torch import nn

from genzoo.core.config import Config, check, check_nonnegative
from genzoo.core.errors import ConfigError, GenzooError
from genzoo.core.protocols import LATENT
from genzoo.core.registry import register_model
from genzoo.core.validation import check_binary, check_data
from genzoo.models.base import check_n_visible, require_n_visible
from genzoo.models.directed._vae_nets import _CONV_SIDE, _conv_nets, _mlp
from genzoo.ops.numerics import LOG_2PI, bernoulli_log_likelihood, data_logits


@dataclasses.dataclass(frozen=True)
class VAEConfig(Config):
    """Hyperparameters of the VAE.

    ``n_visible`` is filled from the data when None. ``hidden``: sizes of the deterministic
    hidden layers of the encoder, mirrored in the decoder (empty: linear maps). ``n_latent``: J.
    ``decoder``: "bernoulli" (binary data only) or "gaussian" with per-pixel mean and log
    variance, log_var = min_log_var + softplus(raw - min_log_var) so the variance is floored
    smoothly at exp(min_log_var). ``estimator``: "sgvb_a" or "sgvb_b" (see module docstring),
    ``n_mc``: L draws per example. ``objective``: "elbo" or "iwae" with ``iwae_k`` draws (then
    estimator and n_mc are unused). ``kl_warmup_steps`` (0: off) and ``free_bits`` (0: off)
    apply to the "elbo" objective only. ``iwae_gradient``: "iwae" (Burda et al.'s gradient)
    or "dreg" (Tucker et al. 2019), for the "iwae" objective. ``architecture``: "mlp" (layers
    ``hidden``) or "conv" (28x28 images, ``conv_channels``; ``hidden`` unused).
    ``init_std``: MLP weights ~ N(0, init_std^2), biases 0 (Kingma & Welling used 0.01);
    convolutions and the layers next to them use N(0, 1/fan_in).
    """

    n_visible: int | None = None
    hidden: tuple[int, ...] = (200, 200)
    n_latent: int = 50
    activation: Literal["tanh", "relu", "softplus"] = "tanh"
    decoder: Literal["bernoulli", "gaussian"] = "bernoulli"
    min_log_var: float = -6.0
    estimator: Literal["sgvb_a", "sgvb_b"] = "sgvb_b"
    n_mc: int = 1
    objective: Literal["elbo", "iwae"] = "elbo"
    iwae_k: int = 50
    iwae_gradient: Literal["iwae", "dreg"] = "iwae"
    architecture: Literal["mlp", "conv"] = "mlp"
    conv_channels: tuple[int, int] = (32, 64)
    kl_warmup_steps: int = 0
    free_bits: float = 0.0
    init_std: float = 0.01

    def validate(self) -> None:
        check_n_visible(self.n_visible)
        check(all(h > 0 for h in self.hidden), f"model.hidden={self.hidden}: sizes must be > 0")
        check(self.n_latent > 0, f"model.n_latent={self.n_latent} must be positive")
        check(math.isfinite(self.min_log_var), "model.min_log_var must be finite")
        check(self.n_mc >= 1, f"model.n_mc={self.n_mc} must be >= 1")
        check(self.iwae_k >= 1, f"model.iwae_k={self.iwae_k} must be >= 1")
        check(self.kl_warmup_steps >= 0, "model.kl_warmup_steps must be >= 0 (0 turns it off)")
        check_nonnegative(self.free_bits, "model.free_bits")
        check_nonnegative(self.init_std, "model.init_std")
        check(
            self.iwae_gradient == "iwae" or self.objective == "iwae",
            "model.iwae_gradient=dreg needs model.objective=iwae",
        )
        check(
            self.architecture == "mlp" or self.n_visible in (None, _CONV_SIDE**2),
            f"model.architecture=conv takes {_CONV_SIDE}x{_CONV_SIDE} images "
            f"(n_visible={_CONV_SIDE**2}); use architecture=mlp for n_visible={self.n_visible}",
        )
        check(all(c > 0 for c in self.conv_channels), "model.conv_channels must be positive")
        check(
            self.objective == "elbo" or (self.kl_warmup_steps == 0 and self.free_bits == 0),
            "model.kl_warmup_steps and model.free_bits modify the ELBO objective only; set them "
            "to 0 with model.objective=iwae",
        )


@register_model(
    "vae",
    config=VAEConfig,
    family="directed",
    summary="variational auto-encoder (AEVB, SGVB A/B, IWAE objective), IS-evaluated",
    paper="Kingma & Welling 2014; Burda et al. 2016",
)
class VAE(nn.Module):
    """MLP VAE over D visible variables with J Gaussian latents.

    Batch methods take x (B, D) and return per-example values in nats; device and dtype follow
    the parameters. Latent tensors z are (B, J), or (S, B, J) for S draws per example.
    """

    test_overrides = ("model.hidden=16", "model.n_latent=4")

    capabilities = frozenset({LATENT})

    def __init__(self, config: VAEConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(config, VAEConfig):
            raise ConfigError(f"VAE needs a VAEConfig, got {type(config).__name__}")
        require_n_visible(config)
        self.config = config
        d, j, hidden = config.n_visible, config.n_latent, list(config.hidden)
        out = d if config.decoder == "bernoulli" else 2 * d
        if config.architecture == "conv":
            self.encoder, self.decoder = _conv_nets(
                j, out // d, *config.conv_channels, config.activation)
        else:
            self.encoder = _mlp([d, *hidden, 2 * j], config.activation)
            self.decoder = _mlp([j, *hidden[::-1], out], config.activation)
        # Training steps taken, for the KL warm-up; a buffer so checkpoints carry it.
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Weights ~ N(0, init_std^2) (MLP) or N(0, 1/fan_in) (conv architecture), biases 0.
        ``generator=None`` uses torch's default."""
        conv = self.config.architecture == "conv"
        with torch.no_grad():
            for layer in self.modules():
                if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                    w = layer.weight
                    fan_in = w.shape[1] * w[0, 0].numel() if not isinstance(
                        layer, nn.ConvTranspose2d) else w.shape[0] * w[0, 0].numel()
                    std = 1.0 / math.sqrt(fan_in) if conv else self.config.init_std
                    w.normal_(0.0, std, generator=generator)
                    if layer.bias is not None:
                        layer.bias.zero_()

    @property
    def n_visible(self) -> int:
        return self.config.n_visible  # type: ignore[return-value]

    @property
    def n_latent(self) -> int:
        return self.config.n_latent

    def _ref(self) -> torch.Tensor:
        return self.decoder[-1].bias

    def check_input(self, x: torch.Tensor, name: str = "x") -> None:
        """InputError unless x is a finite (B, n_visible) floating tensor, binary for the
        Bernoulli decoder (grey levels would be scored as if they were probabilities)."""
        if self.config.decoder == "bernoulli":
            check_binary(x, self.n_visible, name)
        else:
            check_data(x, self.n_visible, binary=False, name=name)

    # -- the two networks ------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log_var) of q(z|x), each (B, J), for x (B, D)."""
        mu, log_var = self.encoder(x).chunk(2, dim=-1)
        return mu, log_var

    def decode(self, z: torch.Tensor, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Decoder output for z (..., J): Bernoulli logits (..., D), or for the Gaussian
        decoder mean and floored log variance stacked as (2, ..., D). ``params`` replaces the
        decoder's parameters (names as in ``decoder.named_parameters()``)."""
        out = self.decoder(z) if params is None else torch.func.functional_call(
            self.decoder, params, (z,))
        if self.config.decoder == "bernoulli":
            return out
        mean, raw = out.chunk(2, dim=-1)
        floor = self.config.min_log_var
        return torch.stack([mean, floor + F.softplus(raw - floor)])

    def log_likelihood(
        self, x: torch.Tensor, z: torch.Tensor, params: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """log p(x|z) in nats: x (B, D), z (B, J) -> (B,) or z (S, B, J) -> (S, B).
        ``params``: as in :meth:`decode`."""
        out = self.decode(z, params)
        if self.config.decoder == "bernoulli":
            return bernoulli_log_likelihood(out, x)
        mean, log_var = out
        return -0.5 * (LOG_2PI + log_var + (x - mean) ** 2 * torch.exp(-log_var)).sum(-1)

    # -- the latent-variable contract -----------------------------------------------------
    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x, z) = log N(z; 0, I) + log p(x|z) in nats: x (B, D), z (B, J) -> (B,), or
        z (S, B, J) -> (S, B)."""
        self.check_input(x)
        x = x.to(self._ref())
        log_pz = -0.5 * (z**2 + LOG_2PI).sum(-1)
        return log_pz + self.log_likelihood(x, z)

    def proposal(self, x: torch.Tensor) -> D.Distribution:
        """q(z|x) = Independent(Normal(mu, sigma), 1), batch shape (B,), event shape (J,)."""
        self.check_input(x)
        mu, log_var = self.encode(x.to(self._ref()))
        return D.Independent(D.Normal(mu, torch.exp(0.5 * log_var)), 1)

    # -- training --------------------------------------------------------------------------
    def _draws(self, x: torch.Tensor, s: int, generator: torch.Generator | None):
        """S reparameterised draws for x (B, D): returns (z (S, B, J), mu, log_var, per-
        dimension Monte Carlo KL log q(z_j|x) - log p(z_j) (S, B, J), analytic KL (B, J))."""
        self.check_input(x)
        x = x.to(self._ref())
        mu, log_var = self.encode(x)
        eps = torch.randn((s, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)
        z = mu + torch.exp(0.5 * log_var) * eps
        # log q_j - log p_j; the 2 pi terms cancel. Written in z (not eps) for readability;
        # the total derivative is the same.
        kl_mc = 0.5 * (z**2 - (z - mu) ** 2 * torch.exp(-log_var) - log_var)
        kl_an = 0.5 * (mu**2 + torch.exp(log_var) - 1.0 - log_var)
        return x, z, kl_mc, kl_an

    def elbo_samples(
        self,
        x: torch.Tensor,
        n: int,
        generator: torch.Generator | None = None,
        estimator: str | None = None,
    ) -> torch.Tensor:
        """n single-draw estimates of the bound L(x) (n, B) by ``estimator`` ("sgvb_a" or
        "sgvb_b"; default the config's). Each row is unbiased for L(x); their mean over the
        rows is the L = n estimator of the paper."""
        estimator = estimator or self.config.estimator
        if estimator not in ("sgvb_a", "sgvb_b"):
            raise GenzooError(f"estimator={estimator!r}: use 'sgvb_a' or 'sgvb_b'")
        x, z, kl_mc, kl_an = self._draws(x, n, generator)
        kl = kl_mc.sum(-1) if estimator == "sgvb_a" else kl_an.sum(-1)
        return self.log_likelihood(x, z) - kl

    def kl_weight(self) -> float:
        """Weight of the KL term: min(1, (step + 1) / kl_warmup_steps), 1 without warm-up."""
        w = self.config.kl_warmup_steps
        return 1.0 if w == 0 else min(1.0, (int(self.step) + 1) / w)

    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Negative training objective, mean over the batch x (B, D) in nats per example:
        ``loss`` (with gradient), ``elbo`` (the bound's estimate, detached), ``kl`` (mean KL
        of q(z|x) from the prior: analytic for sgvb_b, Monte Carlo otherwise), plus ``iwae``
        (the k-sample bound) for the IWAE objective. A call in training mode with gradients
        enabled counts one step of the KL warm-up."""
        cfg = self.config
        if cfg.objective == "iwae" and cfg.iwae_gradient == "dreg":
            return self._dreg_loss(x, generator)
        if cfg.objective == "iwae":
            x, z, kl_mc, _ = self._draws(x, cfg.iwae_k, generator)
            log_w = self.log_likelihood(x, z) - kl_mc.sum(-1)  # (k, B)
            bound = torch.logsumexp(log_w, 0) - math.log(cfg.iwae_k)
            return {
                "loss": -bound.mean(),
                "iwae": bound.mean().detach(),
                "elbo": log_w.mean().detach(),
                "kl": kl_mc.sum(-1).mean().detach(),
            }
        x, z, kl_mc, kl_an = self._draws(x, cfg.n_mc, generator)
        rec = self.log_likelihood(x, z).mean(0)  # (B,)
        kl_j = kl_mc.mean(0) if cfg.estimator == "sgvb_a" else kl_an  # (B, J)
        kl = kl_j.sum(-1)
        if cfg.free_bits > 0:
            kl_train = kl_j.mean(0).clamp_min(cfg.free_bits).sum()
        else:
            kl_train = kl.mean()
        beta = self.kl_weight()
        if self.training and torch.is_grad_enabled():
            self.step += 1
        return {
            "loss": -(rec.mean() - beta * kl_train),
            "elbo": (rec - kl).mean().detach(),
            "kl": kl.mean().detach(),
        }

    def _dreg_loss(
        self, x: torch.Tensor, generator: torch.Generator | None
    ) -> dict[str, torch.Tensor]:
        """IWAE loss (value -bound) with the DReG gradient: decoder sum_i w~_i grad log p(x, z_i)
        at fixed z_i; encoder sum_i w~_i^2 grad log w_i through z_i only, with log q's
        parameters and the decoder's parameters held fixed. Same draws as the IWAE loss."""
        k = self.config.iwae_k
        self.check_input(x)
        x = x.to(self._ref())
        mu, log_var = self.encode(x)
        eps = torch.randn((k, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)
        z = mu + torch.exp(0.5 * log_var) * eps

        def log_prior(t: torch.Tensor) -> torch.Tensor:  # the 2 pi terms cancel with log q's
            return -0.5 * (t**2).sum(-1)

        mu_, log_var_ = mu.detach(), log_var.detach()
        log_q_stopped = -0.5 * ((z - mu_) ** 2 * torch.exp(-log_var_) + log_var_).sum(-1)
        frozen = {name: p.detach() for name, p in self.decoder.named_parameters()}
        log_w_encoder = log_prior(z) + self.log_likelihood(x, z, frozen) - log_q_stopped
        log_p_decoder = self.log_likelihood(x, z.detach())  # (k, B), theta only
        log_w = log_w_encoder.detach()
        w_tilde = torch.softmax(log_w, 0)
        surrogate = (w_tilde * log_p_decoder + w_tilde**2 * log_w_encoder).sum(0)
        bound = torch.logsumexp(log_w, 0) - math.log(k)
        kl = (log_q_stopped - log_prior(z)).detach()
        return {
            "loss": -(bound + surrogate - surrogate.detach()).mean(),
            "iwae": bound.mean(),
            "elbo": log_w.mean(),
            "kl": kl.mean(),
        }

    @torch.no_grad()
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """{"elbo": SGVB-B bound with one draw per example (a fixed seed, so curves are
        comparable across steps), "kl": mean analytic KL, "active_units": latents whose
        posterior mean varies over x with variance > 0.01 (Burda et al. 2016, section 5.2)}."""
        ref = self._ref()
        g = torch.Generator(device=ref.device).manual_seed(0)
        x_, z, _, kl_an = self._draws(x, 1, g)
        elbo = self.log_likelihood(x_, z)[0] - kl_an.sum(-1)
        return {
            "elbo": float(elbo.mean()),
            "kl": float(kl_an.sum(-1).mean()),
            "active_units": self.active_units(x),
        }

    @torch.no_grad()
    def active_units(self, x: torch.Tensor, threshold: float = 0.01) -> int:
        """Number of latents j with Var_x(E_q[z_j|x]) > threshold over the examples x (B, D)."""
        self.check_input(x)
        mu, _ = self.encode(x.to(self._ref()))
        if len(mu) < 2:
            return 0
        return int((mu.var(0, unbiased=True) > threshold).sum())

    @torch.no_grad()
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """Start the decoder's output bias at the data marginals (logits of the clamped pixel
        means for Bernoulli, means for Gaussian), as Burda et al. do. x_train (N, D)."""
        self.check_input(x_train, "x_train")
        x = x_train.to(self._ref())
        bias = self.decoder[-1].bias
        if self.config.decoder == "bernoulli":
            bias.copy_(data_logits(x))
        else:
            bias[: self.n_visible].copy_(x.mean(0))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, D) decoder means E[x|z] for z ~ N(0, I): Bernoulli probabilities sigmoid(logits)
        or Gaussian means, not draws from p(x|z) (the convention of the papers' sample grids;
        draw x ~ p(x|z) from these yourself for exact samples)."""
        if not isinstance(n, int) or n < 0:
            raise GenzooError(f"sample(n={n!r}): n must be an integer >= 0")
        ref = self._ref()
        z = torch.randn((n, self.n_latent), generator=generator, dtype=ref.dtype, device=ref.device)
        out = self.decode(z)
        return torch.sigmoid(out) if self.config.decoder == "bernoulli" else out[0]
