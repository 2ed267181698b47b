"""Generative moment matching network in the code space of an auto-encoder (GMMN+AE).

Li, Swersky & Zemel (2015), "Generative moment matching networks", ICML, section 3.2 and
figure 1(b): first train an auto-encoder (encoder f, decoder d, sigmoid code h = f(x)); then
train a GMMN generator h~ = g(z) to match the codes of the data by minimising sqrt MMD^2
between {g(z_j)} and {f(x_i)} (eq. 2, see :mod:`genzoo.models.implicit.gmmn`); sample by
decoding, x = d(g(z)).

The auto-encoder is the authors' MNIST one (their released ``train.py``,
``mnist_mmd_code_space``): 784-1024-32 with sigmoid units on both sides, dropout on the
encoder's input (their 0.2) and on its hidden layer (their 0.5), no dropout in the decoder,
trained on the Bernoulli cross-entropy -sum_d [x_d log x^_d + (1 - x_d) log(1 - x^_d)]
(computed on logits). Dropout is inverted (kept units scaled by 1 / (1 - p) in training, none
at test), which is the authors' scheme (weights scaled by 1 - p at test) up to that factor.
Before the whole auto-encoder is trained it may be pre-trained layer-wise as they did: layer 1
as the one-layer auto-encoder x -> h1 = sigmoid(W1 x~ + b1) -> x^ = sigmoid(W4 h1 + b4) (x~: x
with input dropout; W4 the decoder's output layer), then layer 2 on the codes of the trained
layer 1, h1 = sigmoid(W1 x + b1) (no dropout) -> h = sigmoid(W2 h1~ + b2) -> h1^ =
sigmoid(W3 h + b3), each on the cross-entropy of its own input. The GMMN on the codes uses one
Gaussian kernel of variance 1 (their ``mmd_sigma=1``), the default of ``bandwidths_sq``.

Training contract: two phases with their own optimizers. "ae" updates the auto-encoder for the
first 2 ``pretrain_steps`` + ``ae_steps`` Trainer steps: its objective is layer 1's for the
first ``pretrain_steps``, layer 2's for the next ``pretrain_steps``, the whole auto-encoder's
for the last ``ae_steps`` (:meth:`GMMNAE.ae_objective_at`). Then "gmmn" updates the generator
on the codes of the (now fixed) encoder, without dropout, for the rest of the run.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.config import check
from genzoo.core.protocols import Phase
from genzoo.core.registry import register_model
from genzoo.models.base import checks_input, train_recipe
from genzoo.models.implicit.dcgan import MLPGenerator
from genzoo.models.implicit.generator import Labels
from genzoo.models.implicit.gmmn import MomentMatchingConfig, MomentMatchingGenerator

AEObjective = Literal["layer1", "layer2", "whole"]


@dataclasses.dataclass(frozen=True)
class GMMNAEConfig(MomentMatchingConfig):
    """Hyperparameters of GMMN+AE.

    ``ae_hidden``: auto-encoder hidden size (paper 1024), ``n_code``: code size H (paper 32).
    ``ae_input_dropout``, ``ae_hidden_dropout``: probability of dropping each input pixel and
    each hidden unit of the encoder while it trains (paper 0.2 and 0.5; 0 = none).
    ``pretrain_steps``: Trainer steps of layer-wise pre-training for each of the two encoder
    layers (paper 3000; 0 = none). ``ae_steps``: Trainer steps then spent on the whole
    auto-encoder before the generator trains (> 0; paper 3000).
    ``n_latent``, ``prior``, ``hidden``: the code generator (paper, bottom-up: 10 -> 64, 256,
    256, 1024 -> H). ``bandwidths_sq``: code-space kernel variances sigma^2 (paper: one, 1).
    ``init``: "lecun" (the authors', the default) or "normal" (N(0, init_std^2)); see
    :class:`~genzoo.models.implicit.gmmn.MomentMatchingConfig`.
    """

    ae_hidden: int = 1024
    n_code: int = 32
    ae_input_dropout: float = 0.0
    ae_hidden_dropout: float = 0.0
    pretrain_steps: int = 0
    # A short run must leave the generator steps of its own: 10 epochs of 1197 digits at batch
    # 20 are 600 steps (the paper's 3000 are a benchmark setting, see benchmarks/rows).
    ae_steps: int = 300
    bandwidths_sq: tuple[float, ...] = (1.0,)
    # Sigmoid layers of 1024 units barely move from DCGAN's N(0, 0.02^2) in a short run.
    init: Literal["normal", "lecun"] = "lecun"

    def validate(self) -> None:
        super().validate()
        check(self.ae_hidden > 0 and self.n_code > 0, "model.ae_hidden and model.n_code must be > 0")
        for name in ("ae_input_dropout", "ae_hidden_dropout"):
            p = getattr(self, name)
            check(0 <= p < 1, f"model.{name}={p} must be in [0, 1) (a dropout probability)")
        check(self.pretrain_steps >= 0, "model.pretrain_steps must be >= 0 (0 = no pre-training)")
        check(self.ae_steps > 0, "model.ae_steps must be > 0 (the auto-encoder trains first)")


def _dropout(x: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Inverted dropout of x: each entry zeroed with probability p, the rest scaled by
    1 / (1 - p), so the expectation is x; masks drawn from ``generator``."""
    if p == 0:
        return x
    keep = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) >= p
    return x * keep / (1 - p)


def _cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-sum_k [t_k log s(l_k) + (1 - t_k) log(1 - s(l_k))], mean over the batch (nats per
    example), for logits l and targets t in [0, 1] of shape (B, K)."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1).mean()


@register_model("gmmn-ae", family="implicit", paper="Li, Swersky & Zemel 2015")
class GMMNAE(MomentMatchingGenerator):
    """GMMN matching moments in a trained auto-encoder's code space, samples decoded.

    Auto-encoder (``encoder``, ``decoder``) and code generator ``G``; x (B, D) in [0, 1].
    Device and dtype follow the parameters.

    ``ae_objective``: what the "ae" phase's loss trains, "layer1" or "layer2" (layer-wise
    pre-training) or "whole"; the "ae" phase's schedule sets it from the Trainer's step count
    before each update (:meth:`ae_objective_at`), a caller of ``loss`` may set it directly."""

    config: GMMNAEConfig
    config_class = GMMNAEConfig
    train_defaults = train_recipe(optimizer="adam", lr=0.001)
    test_overrides = ("model.ae_hidden=8", "model.n_code=4", "model.hidden=8", "model.ae_steps=2")

    def __init__(self, config: GMMNAEConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        d, a, h = config.n_visible, config.ae_hidden, config.n_code
        # encoder[0] is W1, encoder[2] W2; decoder[0] is W3, decoder[2] W4 (the layer-wise
        # pre-training pairs W1 with W4 and W2 with W3). Dropout is applied between them in
        # _encode, so the layer indices (and checkpoints) do not depend on it.
        self.encoder = nn.Sequential(nn.Linear(d, a), nn.Sigmoid(), nn.Linear(a, h), nn.Sigmoid())
        # The decoder ends in logits so the reconstruction loss is computed on them.
        self.decoder = nn.Sequential(nn.Linear(h, a), nn.Sigmoid(), nn.Linear(a, d))
        self.G = MLPGenerator(config.n_latent, config.hidden, h)
        self.reset_parameters(generator)
        self.ae_objective: AEObjective = self.ae_objective_at(0) or "whole"

    def ae_objective_at(self, step: int) -> AEObjective | None:
        """The "ae" phase's objective after ``step`` completed Trainer steps: "layer1" for the
        first ``pretrain_steps``, "layer2" for the next ``pretrain_steps``, "whole" for the
        ``ae_steps`` after them, None once the generator trains."""
        p, n = self.config.pretrain_steps, self.config.ae_steps
        if step < p:
            return "layer1"
        if step < 2 * p:
            return "layer2"
        return "whole" if step < 2 * p + n else None

    def phases(self) -> list[Phase]:
        """("ae", auto-encoder parameters, 1 update while step < 2 pretrain_steps + ae_steps,
        its objective set from the step), then ("gmmn", generator parameters, 1 update after)."""
        ae = [*self.encoder.parameters(), *self.decoder.parameters()]

        def ae_updates(step: int) -> int:
            objective = self.ae_objective_at(step)
            if objective is not None:
                self.ae_objective = objective
            return int(objective is not None)

        return [
            Phase("ae", ae, ae_updates),
            Phase("gmmn", list(self.G.parameters()),
                  lambda step: int(self.ae_objective_at(step) is None)),
        ]

    def _encode(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(h1 (B, A), h (B, H)): the encoder's hidden units and codes for x (B, D), with
        dropout on x and on h1 in training mode (masks from ``generator``), none in eval."""
        p_in, p_hid = (self.config.ae_input_dropout, self.config.ae_hidden_dropout) \
            if self.training else (0.0, 0.0)
        h1 = torch.sigmoid(self.encoder[0](_dropout(x, p_in, generator)))
        return h1, torch.sigmoid(self.encoder[2](_dropout(h1, p_hid, generator)))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes h = f(x) (B, H) in (0, 1) for x (B, D), without dropout."""
        return self.encoder(x)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """Decoder means (B, D) in (0, 1) for codes h (B, H)."""
        return torch.sigmoid(self.decoder(h))

    def _reconstruction(
        self, x: torch.Tensor, objective: AEObjective = "whole",
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The cross-entropy (nats per example, mean over the batch x (B, D)) that
        ``objective`` minimises: "whole", of x given d(f(x)); "layer1", of x given W4's
        reconstruction from h1; "layer2", of the dropout-free h1 given W3's reconstruction
        from the code (see the module docstring). Dropout as :meth:`_encode`."""
        if objective == "layer1":
            h1, _ = self._encode(x, generator)
            return _cross_entropy(self.decoder[2](h1), x)
        if objective == "layer2":
            with torch.no_grad():
                target = torch.sigmoid(self.encoder[0](x))
            p = self.config.ae_hidden_dropout if self.training else 0.0
            h = torch.sigmoid(self.encoder[2](_dropout(target, p, generator)))
            return _cross_entropy(self.decoder[0](h), target)
        return _cross_entropy(self.decoder(self._encode(x, generator)[1]), x)

    def _phase_loss(
        self, x: torch.Tensor, phase: str | None, generator: torch.Generator | None, y: Labels
    ) -> dict[str, torch.Tensor]:
        """"ae" (the default): the reconstruction cross-entropy of ``ae_objective``, nats per
        example; "gmmn": sqrt MMD_b between B generated codes and the dropout-free codes of x
        (encoder fixed), kernel units."""
        if phase == "ae":
            return {"loss": self._reconstruction(x, self.ae_objective, generator)}
        with torch.no_grad():
            h = self.encode(x)
        return {"loss": self.moment_matching_loss(h, generator)}

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """``reconstruction``: cross-entropy of held-out x (B, D) given d(f(x)) without dropout,
        nats per example; ``code_mmd2``: unbiased MMD^2 between up to 1000 held-out codes and
        as many generated codes (fixed seed)."""
        x = x[:1000].to(self._ref())
        out = {"reconstruction": float(_cross_entropy(self.decoder(self.encode(x)), x))}
        code_mmd2 = self.held_out_mmd2(self.encode(x))
        return out if code_mmd2 is None else {**out, "code_mmd2": code_mmd2}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, D) decoded generated codes d(g(z)), values in (0, 1)."""
        return self._samples(n, lambda m: self.decode(self.G(self.noise(m, generator))))
