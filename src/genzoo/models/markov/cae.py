"""Contractive auto-encoder, and its generative process along the learned manifold's tangents.

Rifai, Vincent, Muller, Glorot & Bengio (2011), "Contractive auto-encoders: explicit
invariance during feature extraction", ICML. Encoder h = f(x) = sigmoid(W x + b) (H units),
decoder w = g(h) = W^T h + c (tied weights, as in the paper; untied with ``tied=false``), and
the objective (eq. 7), per example::

    J_CAE(x) = -log P(x | g(f(x))) + lambda ||J_f(x)||_F^2,
    ||J_f(x)||_F^2 = sum_j (h_j (1 - h_j))^2 sum_i W_ji^2                         (eq. 5-6)

since dh_j/dx_i = h_j (1 - h_j) W_ji for the sigmoid encoder, so the penalty costs O(D H) like
the encoder itself. P(x|w) is Bernoulli with logits w (cross-entropy) or Gaussian with mean w.

Rifai, Bengio, Dauphin & Vincent (2012), "A generative process for sampling contractive
auto-encoders", ICML, algorithm 1: the leading singular vectors of J = J_f(x) span the tangent
plane of the data manifold near x and the singular values say how far one may move along
them. One step of the chain perturbs the code along those directions and projects back::

    h_t = f(x_t),  eps ~ N(0, sigma^2 I_H),  h' = h_t + J J^T eps,  x_{t+1} = E[x | g(h')]

J J^T = U S^2 U^T, so the move concentrates on the left singular vectors with large singular
values, i.e. on input-space motion along the right singular vectors (the tangents).
``tangent_rank`` k > 0 keeps only the k leading directions (U_k S_k^2 U_k^T); k = 0 uses the
full J J^T, computed as diag(s) W W^T diag(s) eps with s = h (1 - h) without forming J.
"""

from __future__ import annotations

import dataclasses

import torch

from genzoo.core.config import check, check_nonnegative
from genzoo.core.registry import register_model
from genzoo.models.base import checks_input, train_recipe
from genzoo.models.markov.base import (
    ChainConfig,
    MarkovChainModel,
    autoencoder_parameters,
    check_n,
    init_visible_bias_,
    reconstruction_log_prob,
    reconstruction_mean,
    reset_autoencoder_weights,
)


@dataclasses.dataclass(frozen=True)
class CAEConfig(ChainConfig):
    """Hyperparameters of the CAE (the shared ones: :class:`ChainConfig`; the Gaussian
    reconstruction has unit variance: squared error / 2 plus a constant).

    ``n_hidden``: H sigmoid units. ``contraction``: lambda of the penalty. ``tied``: decoder
    W^T. Sampling: ``sample_sigma`` (sigma of eps), ``tangent_rank`` (0: full J J^T).
    ``init_std`` None: 1/sqrt(D + H).
    """

    n_hidden: int = 500
    contraction: float = 0.1
    tied: bool = True
    sample_sigma: float = 0.1
    tangent_rank: int = 0

    def validate(self) -> None:
        super().validate()
        check(self.n_hidden > 0, f"model.n_hidden={self.n_hidden} must be positive")
        check_nonnegative(self.contraction, "model.contraction")
        check_nonnegative(self.sample_sigma, "model.sample_sigma")
        check(self.tangent_rank >= 0, "model.tangent_rank must be >= 0 (0: the full Jacobian)")


@register_model(
    "cae", family="markov", paper="Rifai et al. 2011; Rifai, Bengio, Dauphin & Vincent 2012"
)
class CAE(MarkovChainModel):
    """Contractive auto-encoder, sampled by moves along the Jacobian's tangent directions.

    Sigmoid CAE over D visible units. Batch methods take x (B, D); device and dtype follow
    the parameters; figures in nats per example. ``sample`` returns reconstruction means, so
    grey levels in [0, 1] for Bernoulli units."""

    config_class = CAEConfig
    train_defaults = train_recipe(
        optimizer="adam", lr=0.0003, lr_schedule="linear", lr_final_factor=0.1,
    )
    test_overrides = ("model.n_hidden=8", "model.sample_steps=3")

    def __init__(self, config: CAEConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        for name, param in autoencoder_parameters(
            config.n_visible, config.n_hidden, config.tied
        ).items():
            self.register_parameter(name, param)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Weights ~ N(0, init_std^2) (default 1/sqrt(D + H)), biases 0."""
        reset_autoencoder_weights(self.W, self.V, self.config.init_std, generator)
        with torch.no_grad():
            self.b.zero_()
            self.c.zero_()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """h = sigmoid(W x + b), (B, H)."""
        return torch.sigmoid(x @ self.W.T + self.b)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """w = V h + c (V = W^T when tied), (B, D): logits or Gaussian means."""
        V = self.W.T if self.V is None else self.V
        return h @ V.T + self.c

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """J_f(x) = dh/dx = diag(h (1 - h)) W for each example, (B, H, D)."""
        h = self.encode(x.to(self.W))
        return (h * (1 - h)).unsqueeze(-1) * self.W

    def contractive_penalty(self, x: torch.Tensor) -> torch.Tensor:
        """||J_f(x)||_F^2 = sum_j (h_j (1 - h_j))^2 ||W_j||^2 per example, (B,)."""
        h = self.encode(x.to(self.W))
        return ((h * (1 - h)) ** 2) @ (self.W**2).sum(1)

    def log_reconstruction(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """log P(x|w) in nats, (B,) (unit variance for the Gaussian reconstruction)."""
        return reconstruction_log_prob(x, w, self.config.reconstruction, torch.zeros_like(self.c))

    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """``loss``: mean of -log P(x|g(f(x))) + lambda ||J_f(x)||_F^2 over x (B, D);
        ``reconstruction`` (nats per example) and ``contraction`` (the mean penalty),
        detached. Deterministic: ``generator`` is unused."""
        x = x.to(self.W)
        h = self.encode(x)
        rec = -self.log_reconstruction(x, self.decode(h))
        pen = ((h * (1 - h)) ** 2) @ (self.W**2).sum(1)
        return {
            "loss": (rec + self.config.contraction * pen).mean(),
            "reconstruction": rec.mean().detach(),
            "contraction": pen.mean().detach(),
        }

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        out = self.loss(x)
        return {"reconstruction": float(out["reconstruction"]),
                "contraction": float(out["contraction"])}

    # -- the generative process ------------------------------------------------------------
    def _tangent_move(self, x: torch.Tensor, h: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """J J^T eps for each example (B, H), full or truncated to ``tangent_rank``."""
        s = h * (1 - h)
        k = self.config.tangent_rank
        if k == 0:
            return s * (((s * eps) @ self.W) @ self.W.T)
        out = []
        # Chunks of 64 examples bound the (B, H, D) Jacobians held at once.
        for s_c, e_c in zip(s.split(64), eps.split(64)):
            U, S, _ = torch.linalg.svd(s_c.unsqueeze(-1) * self.W, full_matrices=False)
            U, S = U[..., :k], S[..., :k]
            coef = S**2 * torch.einsum("bhk,bh->bk", U, e_c)
            out.append(torch.einsum("bhk,bk->bh", U, coef))
        return torch.cat(out)

    @torch.no_grad()
    def chain_step(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x_{t+1} = E[x | g(f(x_t) + J J^T eps)], eps ~ N(0, sample_sigma^2 I), (B, D)."""
        h = self.encode(x)
        eps = self.config.sample_sigma * torch.randn(
            h.shape, generator=generator, dtype=h.dtype, device=h.device
        )
        h_new = h + self._tangent_move(x, h, eps)
        return reconstruction_mean(self.decode(h_new), self.config.reconstruction)

    @torch.no_grad()
    def chain(
        self, x0: torch.Tensor, n_steps: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """States (n_steps + 1, B, D) of the chain from x0 (B, D), x0 first."""
        check_n(n_steps, "n_steps")
        x = x0.to(self.W)
        states = [x]
        for _ in range(n_steps):
            x = self.chain_step(x, generator)
            states.append(x)
        return torch.stack(states)

    @torch.no_grad()
    @checks_input
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """Start the output bias at the data marginals (logits of the clamped means for
        Bernoulli, the means for Gaussian)."""
        init_visible_bias_(self.c, None, x_train.to(self.W), self.config.reconstruction)
