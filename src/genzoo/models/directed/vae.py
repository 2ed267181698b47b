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

Training objectives (``objective``, or an object passed to the constructor): :class:`ELBO`
(estimators A and B, ``n_mc`` draws, optional KL warm-up over ``kl_warmup_steps`` training
steps and free bits), :class:`IWAE` and :class:`DReG` from
:mod:`genzoo.models.directed.objectives`, which the DLGM shares. The step counter of the
warm-up is a buffer, so a resumed run continues the schedule.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.config import check, check_nonnegative
from genzoo.core.errors import GenzooError
from genzoo.core.registry import register_model
from genzoo.models.base import checks_input, train_recipe
from genzoo.models.directed.objectives import (
    ELBO,
    DiagonalGaussian,
    GaussianLatentConfig,
    GaussianLatentModel,
    Objective,
)
from genzoo.ops.numerics import LOG_2PI, bernoulli_log_likelihood, data_logits

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "softplus": nn.Softplus}
_CONV_SIDE = 28


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers sizes[0] -> sizes[1] -> ... with ``activation`` between them (none after
    the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


@torch.no_grad()
def normal_linear_(module: nn.Module, std: float, generator: torch.Generator | None) -> None:
    """Every nn.Linear under ``module``, in ``module.modules()`` order: weights ~
    N(0, std^2), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            m.weight.normal_(0.0, std, generator=generator)
            if m.bias is not None:
                m.bias.zero_()


class _FlatBatch(nn.Module):
    """Applies ``net`` (which wants (N, ...) inputs) to (..., F) by flattening the leading dims."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        out = self.net(t.reshape(-1, t.shape[-1]))
        return out.reshape(*t.shape[:-1], out.shape[-1])


class _PixelBias(nn.Module):
    """Adds a learned bias per output (pixel and channel) to (..., F)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(n))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return t + self.bias


def _conv_nets(j: int, channels: int, c1: int, c2: int, activation: str):
    """(encoder, decoder) for 28x28 images: x (..., 784) -> (..., 2J), z (..., J) ->
    (..., channels * 784) channel-major (so chunk(2, -1) splits Gaussian mean / log variance)."""
    act = ACTIVATIONS[activation]
    s = _CONV_SIDE // 4
    encoder = nn.Sequential(_FlatBatch(nn.Sequential(
        nn.Unflatten(1, (1, _CONV_SIDE, _CONV_SIDE)),
        nn.Conv2d(1, c1, 4, 2, 1), act(),
        nn.Conv2d(c1, c2, 4, 2, 1), act(),
        nn.Flatten(), nn.Linear(c2 * s * s, 2 * j),
    )))
    decoder = nn.Sequential(_FlatBatch(nn.Sequential(
        nn.Linear(j, c2 * s * s), act(), nn.Unflatten(1, (c2, s, s)),
        nn.ConvTranspose2d(c2, c1, 4, 2, 1), act(),
        nn.ConvTranspose2d(c1, channels, 4, 2, 1, bias=False), nn.Flatten(),
    )), _PixelBias(channels * _CONV_SIDE**2))
    return encoder, decoder


@dataclasses.dataclass(frozen=True)
class VAEConfig(GaussianLatentConfig):
    """Hyperparameters of the VAE (the shared fields: :class:`GaussianLatentConfig`).

    ``n_visible`` is filled from the data when None. ``hidden``: sizes of the deterministic
    hidden layers of the encoder, mirrored in the decoder (empty: linear maps). ``n_latent``: J.
    ``decoder``: "bernoulli" (binary data only) or "gaussian" with per-pixel mean and log
    variance, log_var = min_log_var + softplus(raw - min_log_var) so the variance is floored
    smoothly at exp(min_log_var). ``estimator``: "sgvb_a" or "sgvb_b" (see module docstring),
    for the "elbo" objective with ``n_mc`` draws, as are ``kl_warmup_steps`` (0: off) and
    ``free_bits`` (0: off). ``architecture``: "mlp" (layers ``hidden``) or "conv" (28x28
    images, ``conv_channels``; ``hidden`` unused). ``init_std``: MLP weights ~
    N(0, init_std^2), biases 0 (Kingma & Welling used 0.01); convolutions and the layers next
    to them use N(0, 1/fan_in).
    """

    hidden: tuple[int, ...] = (200, 200)
    n_latent: int = 50
    decoder: Literal["bernoulli", "gaussian"] = "bernoulli"
    min_log_var: float = -6.0
    estimator: Literal["sgvb_a", "sgvb_b"] = "sgvb_b"
    architecture: Literal["mlp", "conv"] = "mlp"
    conv_channels: tuple[int, int] = (32, 64)
    kl_warmup_steps: int = 0
    free_bits: float = 0.0

    def validate(self) -> None:
        super().validate()
        check(all(h > 0 for h in self.hidden), f"model.hidden={self.hidden}: sizes must be > 0")
        check(self.n_latent > 0, f"model.n_latent={self.n_latent} must be positive")
        check(math.isfinite(self.min_log_var), "model.min_log_var must be finite")
        check(self.kl_warmup_steps >= 0, "model.kl_warmup_steps must be >= 0 (0 turns it off)")
        check_nonnegative(self.free_bits, "model.free_bits")
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

    def elbo_options(self) -> dict[str, object]:
        return {"estimator": self.estimator, "free_bits": self.free_bits,
                "kl_warmup_steps": self.kl_warmup_steps}


@register_model("vae", family="directed", paper="Kingma & Welling 2014; Burda et al. 2016")
class VAE(GaussianLatentModel):
    """Variational auto-encoder (AEVB, SGVB A/B, IWAE objective), IS-evaluated.

    MLP (or convolutional) VAE over D visible variables with J Gaussian latents.

    Batch methods take x (B, D) and return per-example values in nats; device and dtype follow
    the parameters. Latent tensors z are (B, J), or (S, B, J) for S draws per example.
    ``objective``: an objective of :mod:`genzoo.models.directed.objectives` to train with
    instead of the one the config names (the config, not this object, is saved with a run).
    """

    config_class = VAEConfig
    train_defaults = train_recipe(
        optimizer="adam", lr=0.001, lr_schedule="linear", lr_final_factor=0.1,
    )
    test_overrides = ("model.hidden=16", "model.n_latent=4")

    def __init__(self, config: VAEConfig, generator: torch.Generator | None = None,
                 objective: Objective | None = None) -> None:
        super().__init__(config, objective)
        d, j, hidden = config.n_visible, config.n_latent, list(config.hidden)
        out = d if config.decoder == "bernoulli" else 2 * d
        if config.architecture == "conv":
            self.encoder, self.decoder = _conv_nets(
                j, out // d, *config.conv_channels, config.activation)
        else:
            self.encoder = mlp([d, *hidden, 2 * j], config.activation)
            self.decoder = mlp([j, *hidden[::-1], out], config.activation)
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
    def n_latent(self) -> int:
        return self.config.n_latent

    def _ref(self) -> torch.Tensor:
        return self.decoder[-1].bias

    @property
    def binary_input(self) -> bool:  # type: ignore[override]
        """Binary x for the Bernoulli decoder (grey levels would be scored as if they were
        probabilities); real x for the Gaussian one."""
        return self.config.decoder == "bernoulli"

    # -- the two networks ------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log_var) of q(z|x), each (B, J), for x (B, D)."""
        mu, log_var = self.encoder(x).chunk(2, dim=-1)
        return mu, log_var

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output for z (..., J): Bernoulli logits (..., D), or for the Gaussian
        decoder mean and floored log variance stacked as (2, ..., D)."""
        out = self.decoder(z)
        if self.config.decoder == "bernoulli":
            return out
        mean, raw = out.chunk(2, dim=-1)
        floor = self.config.min_log_var
        return torch.stack([mean, floor + F.softplus(raw - floor)])

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) in nats: x (B, D) (cast to the model's dtype, not checked), z (B, J) ->
        (B,) or z (S, B, J) -> (S, B)."""
        x = x.to(self._ref())
        out = self.decode(z)
        if self.config.decoder == "bernoulli":
            return bernoulli_log_likelihood(out, x)
        mean, log_var = out
        return -0.5 * (LOG_2PI + log_var + (x - mean) ** 2 * torch.exp(-log_var)).sum(-1)

    def decoder_mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z] (..., D) for z (..., J): Bernoulli probabilities sigmoid(logits) or Gaussian
        means."""
        out = self.decode(z)
        return torch.sigmoid(out) if self.config.decoder == "bernoulli" else out[0]

    @checks_input
    def posterior(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z|x) = N(mu, diag sigma^2) for x (B, D): batch shape (B,), event shape (J,)."""
        mu, log_var = self.encode(x.to(self._ref()))
        return DiagonalGaussian(mu, log_var)

    # -- training --------------------------------------------------------------------------
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
        q = self.posterior(x)
        z = q.rsample((n,), generator)
        kl = q.log_ratio_terms(z) if estimator == "sgvb_a" else q.kl_terms()
        return self.log_likelihood(x, z) - kl.sum(-1)

    def kl_weight(self) -> float:
        """Weight of the KL term at this step: min(1, (step + 1) / kl_warmup_steps), 1 without
        warm-up (and for the importance-weighted objectives, which have no KL term)."""
        if isinstance(self.objective, ELBO):
            return self.objective.kl_weight(self.step)
        return 1.0

    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """The objective's figures for x (B, D) (:meth:`GaussianLatentModel.loss`; ``kl`` is
        analytic for sgvb_b, Monte Carlo otherwise). A call in training mode with gradients
        enabled counts one step of the KL warm-up."""
        out = self.objective(self, x, generator, step=self.step)
        if self.training and torch.is_grad_enabled():
            self.step += 1
        return out

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """{"elbo": SGVB-B bound with one draw per example (a fixed seed, so curves are
        comparable across steps), "kl": mean analytic KL, "active_units": latents whose
        posterior mean varies over x with variance > 0.01 (Burda et al. 2016, section 5.2)}."""
        return {**super().validation_metrics(x), "active_units": self.active_units(x)}

    @torch.no_grad()
    def active_units(self, x: torch.Tensor, threshold: float = 0.01) -> int:
        """Number of latents j with Var_x(E_q[z_j|x]) > threshold over the examples x (B, D)."""
        mu = self.posterior(x).mu
        if len(mu) < 2:
            return 0
        return int((mu.var(0, unbiased=True) > threshold).sum())

    @torch.no_grad()
    @checks_input
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """Start the decoder's output bias at the data marginals (logits of the clamped pixel
        means for Bernoulli, means for Gaussian), as Burda et al. do. x_train (N, D)."""
        x = x_train.to(self._ref())
        bias = self.decoder[-1].bias
        if self.config.decoder == "bernoulli":
            bias.copy_(data_logits(x))
        else:
            bias[: self.n_visible].copy_(x.mean(0))
