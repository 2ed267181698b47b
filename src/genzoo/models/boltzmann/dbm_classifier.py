"""A deep Boltzmann machine turned into a feed-forward classifier for discriminative fine-tuning.

Salakhutdinov & Hinton (2009), "Deep Boltzmann machines", sec. 5 (fig. 4); Salakhutdinov & Hinton
(2012), sec. 5. The mean-field posterior of the top-down layer is computed once per example with
the trained DBM and kept fixed; the MLP takes the input augmented with it, (v, q_2), and starts
from the DBM's weights::

    h_1 = sigmoid(b_1 + v^T W_1 + q_2^T W_2^T)         (the DBM's mean-field update of layer 1)
    h_l = sigmoid(b_l + h_{l-1}^T W_l),  l = 2..L     (bottom-up, as in the recognition pass)
    p(y | v) = softmax(d + h_L^T U)                     (U, d new, zero-initialised)

and every weight is then trained by back-propagation of -log p(y | v). With one hidden layer
there is no q_2 and the MLP is the RBM's recognition network.

Fine-tuning goes through the one genzoo Trainer: the classifier learns from labels
(``needs_labels``), its ``loss(v, y=...)`` computes q_2 with a frozen copy of the DBM (mean
field is deterministic, so this is the fixed feature of SH09, recomputed rather than stored),
and ``predict`` gives the labels for ``classification_error``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.errors import GenzooError
from genzoo.models.boltzmann.dbm import DBM


@torch.no_grad()
def dbm_features(dbm: DBM, v: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """q_2(v): the converged mean-field posterior of the second hidden layer (N, n_2), the
    extra input of :class:`DBMClassifier` (an empty (N, 0) tensor for a one-layer DBM)."""
    p = dbm.b[0]
    if dbm.n_layers < 2:
        return v.new_zeros(len(v), 0)
    return torch.cat(
        [dbm.mean_field(v[s : s + batch_size].to(p))[0][1] for s in range(0, len(v), batch_size)]
    )


class DBMClassifier(nn.Module):
    """MLP initialised from a DBM; ``forward(v, q2)`` returns class logits (B, K). Not a
    generative model (and not registered): fine-tune it with the Trainer (``needs_labels``;
    ``loss(v, y=y)``) or with any optimiser on ``loss(v, q2, y)``. The submodule ``dbm`` is a
    frozen copy of the DBM (``requires_grad`` False, so no optimiser built from the trainable
    parameters moves it) that gives q_2 when it is not passed; the caller's DBM is not kept."""

    needs_labels = True

    def __init__(self, dbm: DBM, n_classes: int) -> None:
        super().__init__()
        if n_classes < 2:
            raise GenzooError(f"n_classes={n_classes} must be >= 2")
        self.dbm = copy.deepcopy(dbm).requires_grad_(False).eval()
        with torch.no_grad():
            self.W = nn.ParameterList([nn.Parameter(W.detach().clone()) for W in dbm.W])
            self.b = nn.ParameterList(
                [nn.Parameter(dbm.bias(l).detach().clone()) for l in range(1, dbm.n_layers + 1)]
            )
        top = dbm.W[-1].shape[1]
        self.U = nn.Parameter(torch.zeros(top, n_classes, dtype=dbm.W[0].dtype))
        self.d = nn.Parameter(torch.zeros(n_classes, dtype=dbm.W[0].dtype))

    def hidden(self, v: torch.Tensor, q2: torch.Tensor) -> list[torch.Tensor]:
        """[h_1, ..., h_L] of the MLP for v (B, D) and the fixed features q2 (B, n_2)."""
        a = self.b[0] + v @ self.W[0]
        if len(self.W) > 1:
            a = a + q2 @ self.W[1].T
        h = [torch.sigmoid(a)]
        for l in range(1, len(self.W)):
            h.append(torch.sigmoid(self.b[l] + h[-1] @ self.W[l]))
        return h

    def forward(self, v: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
        """Class logits (B, K)."""
        return self.d + self.hidden(v, q2)[-1] @ self.U

    def features(self, v: torch.Tensor) -> torch.Tensor:
        """q_2(v) (B, n_2) from the frozen DBM, in the classifier's dtype and device."""
        return dbm_features(self.dbm, v.to(self.W[0]))

    def loss(
        self,
        v: torch.Tensor,
        q2: torch.Tensor | None = None,
        y: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """``loss``: mean -log p(y | v) (nats per example); ``error``: batch error rate. v (B, D)
        binary, y (B,) int64 labels (required), q2 (B, n_2) the fixed features (default:
        :meth:`features`). Deterministic: ``generator`` is accepted for the Trainer, not used."""
        if y is None:
            raise GenzooError("DBMClassifier.loss needs the labels y (B,) of the batch")
        v = v.to(self.W[0])
        logits = self(v, self.features(v) if q2 is None else q2)
        return {
            "loss": F.cross_entropy(logits, y),
            "error": (logits.argmax(-1) != y).to(logits.dtype).mean(),
        }

    @torch.no_grad()
    def predict(self, v: torch.Tensor) -> torch.Tensor:
        """Most probable class (B,) int64 of each row of v (B, D)."""
        v = v.to(self.W[0])
        return self(v, self.features(v)).argmax(-1)
