"""The small contracts every model honours, and the capability flags that say which one.

The CLI, the Trainer and the evaluators talk to models only through these methods, and choose
an estimator from :attr:`capabilities` rather than ``isinstance`` chains.

Every model (an ``nn.Module``)
    ``loss(x, generator=None) -> dict[str, Tensor]``: ``"loss"`` is the scalar the Trainer
    minimises (a surrogate whose gradient is the learning rule, e.g. CD); the other entries are
    scalar figures worth logging. ``sample(n, generator=None) -> Tensor (n, D)``.
    A model that learns from labels sets ``needs_labels = True``; the Trainer then calls
    ``loss(x, generator=..., y=y)`` with ``y`` the (B,) int64 labels of the batch.

Energy model (``ENERGY``)
    ``energy(v, h) -> (B,)`` is E(v, h); ``free_energy(v) -> (B,)`` is
    F(v) = -log sum_h exp(-E(v, h)), so p(v) = exp(-F(v)) / Z. Gibbs conditionals and
    ``gibbs_step``. For AIS (``AIS``): ``ais_base(x_train)`` returns a tractable base model with
    ``log_partition()`` and ``sample(n, generator)``; ``annealed_free_energy(v, beta, base)`` is
    -log p*_beta(v) of the path from the base (beta=0, equal to the base's own free energy,
    constants included) to the model (beta=1); ``annealed_gibbs_step(v, beta, base, generator)``
    is a transition that leaves p_beta invariant; the base's ``log_partition()`` gives log Z_A.
    Optionally ``annealed_step(v, beta_prev, beta, base, generator)`` fuses the weight increment
    F_{beta_prev}(v) - F_beta(v) with the transition (same values and draws, one product fewer);
    the AIS loop uses it when present. With ``EXACT_LOG_PARTITION`` the model also has
    ``enumerable_free_energy()`` returning ``(F_other, n_units)``, a callable giving the free
    energy of the smaller layer's states summed over the other layer, used to enumerate Z.

Variational-bound model (``VARIATIONAL``)
    A model whose free energy F(v) is intractable but bounded by mean field (a deep Boltzmann
    machine): ``variational_free_energy(v) -> (B,)`` is F_Q(v) = E_Q[E(v, h)] - H(Q) at its
    optimised posterior Q, so log p(v) >= -F_Q(v) - log Z. log Z comes from
    ``enumerable_free_energy()`` (with ``EXACT_LOG_PARTITION``) or the AIS contract above, whose
    states may then be a subset of the layers (the other layers summed out analytically);
    ``ais_model_states(n, burn_in, generator)`` gives approximate model states to start reverse
    AIS.

Latent-variable model (``LATENT``)
    ``log_joint(x, z) -> (B,)`` and ``proposal(x)`` (a ``torch.distributions`` object,
    batch shape (B,)). ``log_joint`` also takes draws z (S, B, *event) for x (B, D) and returns
    (S, B), as importance sampling calls it.

Exact-likelihood model (``EXACT_LIKELIHOOD``)
    ``log_prob(x) -> (B,)`` in nats.

Classifier (``CLASSIFIER``)
    A discriminative model trained by the Trainer but with no distribution over x, so no
    ``sample`` (the DBM classifier): ``needs_labels = True``, ``loss(x, y=y)`` and
    ``predict(x) -> (B,)`` int64 labels. The evaluator reports its classification error only.
    Generative models that also classify (disc-rbm, mp-dbm) do not carry this flag.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

# Capability flags (strings, so configs and JSON can carry them).
ENERGY = "energy"
EXACT_LOG_PARTITION = "exact_log_partition"
AIS = "ais"
LATENT = "latent"
EXACT_LIKELIHOOD = "exact_likelihood"
IMPLICIT = "implicit"
VARIATIONAL = "variational_bound"
CLASSIFIER = "classifier"


@runtime_checkable
class GenerativeModel(Protocol):
    capabilities: frozenset[str]

    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]: ...

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor: ...


@runtime_checkable
class EnergyModel(GenerativeModel, Protocol):
    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor: ...

    def free_energy(self, v: torch.Tensor) -> torch.Tensor: ...

    def gibbs_step(
        self, v: torch.Tensor, beta: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor: ...


def is_classifier(model: object) -> bool:
    """A model that learns from labels and predicts them (``needs_labels`` and ``predict``):
    the DBM classifier, and generative models that also classify (disc-rbm, mp-dbm)."""
    return bool(getattr(model, "needs_labels", False)) and callable(getattr(model, "predict", None))


def has(model: object, capability: str) -> bool:
    """True when ``model`` declares ``capability``."""
    return capability in getattr(model, "capabilities", frozenset())
