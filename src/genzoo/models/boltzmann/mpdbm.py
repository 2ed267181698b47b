"""Multi-prediction deep Boltzmann machine (MP-DBM).

Goodfellow, Mirza, Courville & Bengio (2013), "Multi-prediction deep Boltzmann machines", NIPS;
Goodfellow, Bengio & Courville (2016), "Deep Learning", sec. 20.4.5.

A DBM over binary visible units v = x_0, binary hidden layers x_1 .. x_L and a one-hot label
y in {0,1}^K attached to the top layer::

    E(v, h, y) = - sum_{l=1..L} x_{l-1}^T W_l x_l - sum_{l=0..L} b_l^T x_l - x_L^T U y - d^T y

Instead of maximum likelihood, mean-field inference is unrolled for ``mf_steps`` iterations as a
recurrent network and trained by back-propagation to predict a random subset S of the inputs
(each visible unit, and the label, is in S with probability ``mask_prob``) from the rest:

    loss = sum_{i in S} -log Q(v_i = x_i) [+ label_weight * -log Q(y) when y in S]   (nats)

Mean-field iterations update the odd layers, then the even ones (hidden layers as in ``dbm.py``;
q_v = sigmoid(b_0 + W_1 q_1) on the units of S, the others clamped to the data; q_y =
softmax(d + q_L^T U) when the label is in S). Classification runs the same inference with v
observed and y unobserved and takes argmax q_y; ``fill_in`` predicts missing pixels.

The MP-DBM is an inference machine: its training never estimates log Z, and Gibbs samples of
the joint (:meth:`MPDBM.sample`) are a by-product, so genzoo reports no likelihood for it.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.config import check
from genzoo.core.errors import GenzooError
from genzoo.core.protocols import IMPLICIT, INPAINT
from genzoo.core.registry import register_model
from genzoo.models.base import check_labels, checks_input, train_recipe
from genzoo.models.boltzmann._ops import bernoulli, data_logits
from genzoo.models.boltzmann.dbm import DeepBoltzmannBase, DeepBoltzmannConfig
from genzoo.nn.init import normal_or_zero_


@dataclasses.dataclass(frozen=True)
class MPDBMConfig(DeepBoltzmannConfig):
    """``hidden``: hidden layer sizes; ``n_classes``: label units (0: no label layer).
    ``mf_steps``: unrolled mean-field iterations (training and prediction). ``mask_prob``:
    probability that a variable is in the predicted subset S. ``label_weight``: weight of the
    label's -log Q in the loss (1: the plain sum over S; the label is one variable against
    about mask_prob * D pixels, so larger weights favour classification). ``init_std``: W, U ~
    N(0, init_std^2). ``sample_burn_in``: Gibbs sweeps of :meth:`MPDBM.sample`."""

    n_classes: int = 10
    mf_steps: int = 10
    mask_prob: float = 0.5
    label_weight: float = 1.0
    init_std: float = 0.05  # overrides the DBMs' 0.01

    def validate(self) -> None:
        super().validate()
        check(self.n_classes >= 0, "model.n_classes must be >= 0 (0: no label layer)")
        check(self.mf_steps >= 1, "model.mf_steps must be >= 1")
        check(0.0 < self.mask_prob < 1.0, "model.mask_prob must be in (0, 1)")
        check(self.label_weight > 0.0, "model.label_weight must be > 0 (1: the plain sum over S)")


@register_model("mp-dbm", family="boltzmann", paper="Goodfellow, Mirza, Courville & Bengio 2013")
class MPDBM(DeepBoltzmannBase):
    """Multi-prediction DBM: unrolled mean field trained to fill in masked inputs/labels.

    MP-DBM. v (B, D) binary, labels (B,) int64; q's are (B, n_l) probabilities.
    """

    test_overrides = ("model.hidden=8,6", "model.mf_steps=2", "model.sample_burn_in=10")

    config_class = MPDBMConfig
    train_defaults = train_recipe(
        optimizer="adam", lr=0.01, lr_schedule="linear", lr_final_factor=0.1,
    )
    capabilities = frozenset({IMPLICIT, INPAINT})
    needs_labels = True
    mean_field_input = True  # mean field reads grey levels as Bernoulli means (data.grey_eval)

    def __init__(self, config: MPDBMConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        self.U = nn.Parameter(torch.zeros(config.hidden[-1], config.n_classes))
        self.d = nn.Parameter(torch.zeros(config.n_classes))
        with torch.no_grad():
            for W in (*self.W, self.U):
                normal_or_zero_(W, config.init_std, generator)

    # -- unrolled mean field ---------------------------------------------------------------------

    def _hidden_input(self, q: list[torch.Tensor], qy: torch.Tensor, l: int) -> torch.Tensor:
        a = self.b[l] + q[l - 1] @ self.W[l - 1]
        if l < self.n_layers:
            a = a + q[l + 1] @ self.W[l].T
        elif self.config.n_classes > 0:
            a = a + qy @ self.U.T
        return a

    def infer(
        self,
        v: torch.Tensor,
        v_observed: torch.Tensor,
        y: torch.Tensor | None = None,
        y_observed: torch.Tensor | None = None,
        n_steps: int | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """Unrolled mean field with the observed variables clamped. v (B, D) (values at
        unobserved units are ignored), v_observed (B, D) bool; y (B,) labels and y_observed (B,)
        bool (None: the label is never observed). Returns (visible logits (B, D) of the last
        visible update, [q_1, ..., q_L], label log-probabilities (B, K)). Differentiable."""
        steps = self.config.mf_steps if n_steps is None else n_steps
        B, K = v.shape[0], self.config.n_classes
        qv = torch.where(v_observed, v, torch.sigmoid(self.b[0]).expand_as(v))
        q = [qv] + [torch.sigmoid(self.b[l]).expand(B, -1) for l in range(1, self.n_layers + 1)]
        y_logp = F.log_softmax(self.d, -1).expand(B, -1)
        if y is not None and y_observed is not None:
            onehot = F.one_hot(y, K).to(v.dtype)
            obs = y_observed.unsqueeze(-1)
        else:
            onehot, obs = None, None
        qy = self._clamp_label(y_logp.exp(), onehot, obs)
        v_logits = torch.zeros_like(v)
        label_parity = (self.n_layers + 1) % 2
        for _ in range(steps):
            for parity in (1, 0):
                for l in range(2 - parity, self.n_layers + 1, 2):
                    q[l] = torch.sigmoid(self._hidden_input(q, qy, l))
                if parity == 0:
                    v_logits = self.b[0] + q[1] @ self.W[0].T
                    q[0] = torch.where(v_observed, v, torch.sigmoid(v_logits))
                if K > 0 and parity == label_parity:
                    y_logp = F.log_softmax(self.d + q[-1] @ self.U, -1)
                    qy = self._clamp_label(y_logp.exp(), onehot, obs)
        return v_logits, q[1:], y_logp

    @staticmethod
    def _clamp_label(qy, onehot, obs):
        return qy if onehot is None else torch.where(obs, onehot, qy)

    # -- training --------------------------------------------------------------------------------

    @checks_input(nonempty=True)
    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None,
             y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Multi-prediction loss on x (B, D) and labels y (B,) (None: inputs only). ``loss``:
        mean over the batch of the summed -log Q of the masked variables (nats per example).
        Logged: ``visible_nll`` and ``label_nll`` (their parts) and ``label_error`` (error of
        argmax q_y on the examples whose label was masked)."""
        x = x.to(self.b[0].dtype)
        p = self.config.mask_prob
        predict_v = bernoulli(torch.full_like(x, p), generator).bool()
        y_obs = None
        if y is not None and self.config.n_classes > 0:
            y = self._labels(y, len(x))
            y_obs = ~bernoulli(torch.full((len(x),), p, dtype=x.dtype, device=x.device),
                               generator).bool()
        v_logits, _, y_logp = self.infer(x, ~predict_v, y, y_obs)
        bce = F.binary_cross_entropy_with_logits(v_logits, x, reduction="none")
        visible = (bce * predict_v).sum(-1).mean()
        out = {"visible_nll": visible.detach()}
        loss = visible
        if y_obs is not None:
            pred_y = (~y_obs).to(x.dtype)
            nll_y = -y_logp.gather(1, y.unsqueeze(1)).squeeze(1)
            label = (nll_y * pred_y).mean()
            wrong = (y_logp.argmax(-1) != y).to(x.dtype)
            out["label_nll"] = label.detach()
            out["label_error"] = (wrong * pred_y).sum() / pred_y.sum().clamp(min=1.0)
            loss = loss + self.config.label_weight * label
        out["loss"] = loss
        return out

    def _labels(self, y: torch.Tensor, n: int) -> torch.Tensor:
        return check_labels(y, n, self.config.n_classes).to(self.b[0].device)

    @torch.no_grad()
    @checks_input
    def init_from_data(self, x_train: torch.Tensor, generator=None) -> None:
        """b_0 := logits of the clamped training marginals. x_train (N, D) binary."""
        self.b[0].copy_(data_logits(x_train.to(self.b[0])))

    # -- prediction ------------------------------------------------------------------------------

    @torch.no_grad()
    @checks_input
    def predict_log_proba(self, v: torch.Tensor) -> torch.Tensor:
        """log Q(y | v) (B, K) by mean field with v observed."""
        if self.config.n_classes == 0:
            raise GenzooError("this MP-DBM has no label layer (model.n_classes=0)")
        v = v.to(self.b[0].dtype)
        return self.infer(v, torch.ones_like(v, dtype=torch.bool))[2]

    def classify(self, v: torch.Tensor) -> torch.Tensor:
        """Predicted labels (B,) int64: argmax of Q(y | v)."""
        return self.predict_log_proba(v).argmax(-1)

    @checks_input
    def predict(self, v: torch.Tensor) -> torch.Tensor:
        """The classifier contract's name for :meth:`classify` (``genzoo evaluate`` reports
        the classification error of models with ``needs_labels`` and ``predict``)."""
        return self.classify(v)

    @torch.no_grad()
    def fill_in(
        self, v: torch.Tensor, observed: torch.Tensor, n_steps: int | None = None
    ) -> torch.Tensor:
        """Q(v_i = 1) for the unobserved units, the data elsewhere, after ``n_steps`` mean-field
        iterations (None: model.mf_steps). v (B, D), observed (B, D) bool -> (B, D)
        probabilities."""
        v = v.to(self.b[0].dtype)
        logits = self.infer(v, observed, n_steps=n_steps)[0]
        return torch.where(observed, v, torch.sigmoid(logits))

    def complete(
        self, x: torch.Tensor, observed: torch.Tensor, n_samples: int, n_steps: int | None,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """For :meth:`inpaint`: draws from the factorised mean-field Q(v_i | observed) after
        ``n_steps`` iterations (None: model.mf_steps). (B, D) -> (n_samples, B, D)."""
        q = self.fill_in(x, observed, n_steps)
        draws = bernoulli(q.expand(n_samples, -1, -1), generator)
        return torch.where(observed, x, draws)

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """Mean -log Q of the bottom half of each image from the top half (nats per example;
        a fill-in figure, not a likelihood)."""
        x = x.to(self.b[0].dtype)
        observed = torch.zeros_like(x, dtype=torch.bool)
        observed[:, : x.shape[1] // 2] = True
        logits = self.infer(x, observed)[0]
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        return {"fill_in_nll": float((bce * ~observed).sum(-1).mean())}

    # -- sampling -------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n visible vectors (n, D) from ``sample_burn_in`` block Gibbs sweeps of the joint
        (v, h, y), started at the visible base rates."""
        if n < 0:
            raise GenzooError(f"sample(n={n}): n must be >= 0")
        K = self.config.n_classes
        x = [bernoulli(torch.sigmoid(self.b[0]).expand(n, -1), generator)]
        x += [torch.zeros(n, self.b[l].shape[0], dtype=self.b[0].dtype, device=self.b[0].device)
              for l in range(1, self.n_layers + 1)]
        y = torch.zeros(n, K, dtype=self.b[0].dtype, device=self.b[0].device)
        for _ in range(self.config.sample_burn_in):
            for parity in (1, 0):
                for l in range(2 - parity, self.n_layers + 1, 2):
                    x[l] = bernoulli(torch.sigmoid(self._hidden_input(x, y, l)), generator)
                if parity == 0:
                    x[0] = bernoulli(torch.sigmoid(self.b[0] + x[1] @ self.W[0].T), generator)
                if K > 0 and parity == (self.n_layers + 1) % 2:
                    probs = torch.softmax(self.d + x[-1] @ self.U, -1)
                    idx = torch.multinomial(probs, 1, generator=generator).squeeze(1)
                    y = F.one_hot(idx, K).to(x[0].dtype)
        return x[0]
