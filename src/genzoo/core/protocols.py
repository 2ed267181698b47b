"""The contracts between models and the rest of genzoo: one :class:`typing.Protocol` per
capability, and the capability flags a model declares.

The Trainer, the evaluators and the CLI talk to a model only through these methods, and pick an
estimator or a command from the model's ``capabilities`` (strings, so configs and JSON can carry
them), never from ``isinstance`` chains or ``getattr`` probes. :data:`PROTOCOLS` maps each flag
to its Protocol; :func:`conformance_problems` says where a model's methods fail the Protocols of
the capabilities it declares (a missing method, or a signature whose parameters differ), and
the conformance suite (``tests/test_conformance.py``) also checks their behaviour on a tiny
instance, so a flag and its methods cannot drift apart. :class:`genzoo.models.base.GenzooModel`
gives every model the :class:`TrainingHooks` with defaults.

Shapes: a batch x or v is (B, D) with D the model's input width; per-example results are (B,)
in nats; ``generator`` is an explicit :class:`torch.Generator` (None: torch's default).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch

# Capability flags.
ENERGY = "energy"
EXACT_LOG_PARTITION = "exact_log_partition"
AIS = "ais"
VARIATIONAL = "variational_bound"
LATENT = "latent"
EXACT_LIKELIHOOD = "exact_likelihood"
IMPLICIT = "implicit"
CLASSIFIER = "classifier"
INPAINT = "inpaint"
FRAME_RBMS = "frame_rbms"
CONTINUOUS_ENERGY = "continuous_energy"


class Phase(NamedTuple):
    """One parameter group of a model trained in turns (a GAN's discriminator and generator, a
    GMMN+AE's autoencoder and GMMN), as :meth:`TrainingHooks.phases` returns it.

    ``name``: passed to ``model.loss(x, generator=..., phase=name)`` and prefixed to the
    phase's logged figures. ``parameters``: the parameters its optimizer
    steps (disjoint from the other phases'). ``steps``: updates per minibatch, an int >= 0 or a
    function of the number of completed Trainer steps returning one (a phase that runs only
    part of the time, e.g. after a pre-training phase).
    """

    name: str
    parameters: Sequence[torch.nn.Parameter]
    steps: int | Callable[[int], int] = 1


@runtime_checkable
class GenerativeModel(Protocol):
    """Every model that the Trainer trains.

    ``loss(x, generator)`` returns a dict: ``"loss"`` is the scalar the Trainer minimises (a
    surrogate whose gradient is the learning rule, e.g. CD), the other entries are scalar
    figures worth logging. A model with ``needs_labels`` is called ``loss(x, generator, y=y)``
    with y (B,) int64. ``sample(n, generator) -> (n, D)`` draws from the model (a classifier,
    which has no distribution over x, has none).
    """

    capabilities: frozenset[str]

    def loss(
        self, x: torch.Tensor, /, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]: ...


@runtime_checkable
class TrainingHooks(Protocol):
    """What the Trainer may ask of a model besides ``loss``; the base class gives each a
    default, so a model overrides only what it needs.

    ``needs_labels``: the Trainer passes ``y=`` to ``loss``. ``check_input(x, name)`` raises
    :class:`~genzoo.core.errors.InputError` naming the fix. ``init_from_data(x_train,
    generator)`` sets data-dependent starting values once on a fresh run (output biases at the
    data marginals, persistent chains at training examples). ``validation_metrics(x)`` returns
    figures (floats) logged as ``valid_<name>``; an empty dict logs nothing. ``phases()``
    returns the :class:`Phase` groups stepped in turn, or ``[]`` for one loss and one optimizer.
    """

    needs_labels: bool

    def check_input(self, x: torch.Tensor, /, name: str = "x") -> None: ...

    def init_from_data(
        self, x_train: torch.Tensor, /, generator: torch.Generator | None = None
    ) -> None: ...

    def validation_metrics(self, x: torch.Tensor, /) -> dict[str, float]: ...

    def phases(self) -> list[Phase]: ...


@runtime_checkable
class Sampler(Protocol):
    """``sample(n, generator) -> (n, D)``: every generative model (not the classifier)."""

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor: ...


@runtime_checkable
class EnergyModel(Protocol):
    """An undirected model with p(v) = exp(-F(v)) / Z.

    ``energy(v, h) -> (B,)`` is E(v, h); ``free_energy(v) -> (B,)`` is
    F(v) = -log sum_h exp(-E(v, h)); ``gibbs_step(v, beta, generator) -> (B, D)`` is one sweep
    leaving p_beta(v, h) ∝ exp(-beta E(v, h)) invariant.
    """

    def energy(self, v: torch.Tensor, h: Any, /) -> torch.Tensor: ...

    def free_energy(self, v: torch.Tensor, /) -> torch.Tensor: ...

    def gibbs_step(
        self, v: torch.Tensor, /, beta: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor: ...


@runtime_checkable
class AnnealingPath(Protocol):
    """What annealed importance sampling (Neal 2001; Salakhutdinov & Murray 2008) needs.

    ``ais_base(x_train)`` returns a tractable base model A with ``log_partition()`` (0-dim
    log Z_A) and exact ``sample(n, generator)`` of AIS states. ``annealed_free_energy(s, beta,
    base) -> (B,)`` is -log p*_beta(s) on the path from A (beta = 0, the base's own free energy,
    constants included) to the model (beta = 1). ``annealed_gibbs_step(s, beta, base,
    generator)`` is a transition leaving p_beta invariant. ``annealed_step(s, beta_prev, beta,
    base, generator, transition) -> (log-weight increment (B,), next state)`` is what the AIS
    loop calls: the increment F_{beta_prev}(s) - F_beta(s) fused with the transition at beta
    (skipped when ``transition`` is False, at the last temperature), with the same values and
    draws as the two methods above but sharing their products. The states s are the visible
    units for an RBM, a subset of the layers for a DBM (the others summed out).
    """

    def ais_base(self, x_train: torch.Tensor, /) -> Any: ...

    def annealed_free_energy(self, s: torch.Tensor, /, beta: float, base: Any) -> torch.Tensor: ...

    def annealed_gibbs_step(
        self, s: torch.Tensor, /, beta: float, base: Any, generator: torch.Generator | None = None
    ) -> torch.Tensor: ...

    def annealed_step(
        self, s: torch.Tensor, /, beta_prev: float, beta: float, base: Any,
        generator: torch.Generator | None = None, transition: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


@runtime_checkable
class EnumerablePartition(Protocol):
    """Exact log Z by enumeration: ``enumerable_free_energy() -> (F_other, n_units)`` where
    F_other maps the (M, n_units) binary states of the smaller set of units to (M,) free
    energies with the other units summed out, so log Z = logsumexp over all 2^n_units states
    of -F_other."""

    def enumerable_free_energy(self) -> tuple[Callable[[torch.Tensor], torch.Tensor], int]: ...


@runtime_checkable
class FrameRBMs(Protocol):
    """A model of sequences whose every frame is a binary RBM with weights shared over time and
    biases set by the frames before it (the conditional RBM, the RNN-RBM), so that
    log p(x) = sum_t -F_t(v_t) - log Z_t with each frame's free energy and log partition
    function those of its RBM (:mod:`genzoo.ops.frame_rbm`). ``frame_rbms(x) -> (v, W, b, c)``
    for x (B, D): the frames v (B, T, D_f), the shared weights W (D_f, H) and the frames'
    biases b (B, T, D_f), c (B, T, H)."""

    def frame_rbms(
        self, x: torch.Tensor, /
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]: ...


@runtime_checkable
class VariationalBound(Protocol):
    """A model whose F(v) is intractable but bounded by mean field (a deep Boltzmann machine):
    ``variational_free_energy(v) -> (B,)`` is F_Q(v) = E_Q[E(v, h)] - H(Q) at the optimised Q,
    so log p(v) >= -F_Q(v) - log Z, with log Z from :class:`EnumerablePartition` or
    :class:`AnnealingPath`. ``ais_model_states(n, burn_in, generator)`` gives approximate model
    states (AIS states) to start reverse AIS."""

    def variational_free_energy(self, v: torch.Tensor, /) -> torch.Tensor: ...

    def ais_model_states(
        self, n: int, burn_in: int, generator: torch.Generator | None = None
    ) -> torch.Tensor: ...


@runtime_checkable
class LatentVariableModel(Protocol):
    """What importance sampling needs: ``log_joint(x, z) -> (B,)``, log p(x, z) (also z (S, B,
    *event) for x (B, D) -> (S, B)), and ``proposal(x)``, a :class:`torch.distributions`
    object q(z | x) of batch shape (B,)."""

    def log_joint(self, x: torch.Tensor, z: Any, /) -> torch.Tensor: ...

    def proposal(self, x: torch.Tensor, /) -> Any: ...


@runtime_checkable
class ExactLikelihood(Protocol):
    """``log_prob(x) -> (B,)``: log p(x) in nats, exactly."""

    def log_prob(self, x: torch.Tensor, /) -> torch.Tensor: ...


@runtime_checkable
class ImplicitSampler(Protocol):
    """A model that only samples (GANs, GMMNs, Markov-chain samplers, Hopfield nets): judged by
    sample-based measures (Parzen window, MMD, Fréchet distance).

    In every contract the data tensors (x, v, s, h, z, x_train, observed_mask) are passed by
    position, so a model names them in its own notation; the other parameters are passed by
    name and keep the names given here."""

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor: ...


@runtime_checkable
class Classifier(Protocol):
    """A discriminative model with no distribution over x (the DBM classifier): trained on
    labels (``needs_labels``), ``predict(x) -> (B,)`` int64. Generative models that also
    classify (disc-rbm, mp-dbm) have ``needs_labels`` and ``predict`` without this flag."""

    needs_labels: bool

    def predict(self, x: torch.Tensor, /) -> torch.Tensor: ...


@runtime_checkable
class Inpainter(Protocol):
    """Conditional completion: ``inpaint(x, observed_mask, generator, n_samples, n_steps) ->
    (n_samples, B, D)`` keeps the entries of x (B, D) where ``observed_mask`` ((B, D) or (D,)
    bool) is True and draws the others given them. Values of x at unobserved entries are
    ignored. ``n_steps``: Markov-chain steps or Gibbs sweeps for a model that completes by a
    chain (None: the model's default); an exact sampler (an autoregressive model) ignores it."""

    def inpaint(
        self,
        x: torch.Tensor,
        observed_mask: torch.Tensor,
        /,
        generator: torch.Generator | None = None,
        n_samples: int = 1,
        n_steps: int | None = None,
    ) -> torch.Tensor: ...


@runtime_checkable
class ContinuousEnergy(Protocol):
    """An energy model of real vectors v with p(v) = exp(-F(v)) / Z whose F is differentiable in
    v (the mcRBM, mPoT, the factored three-way RBM): ``free_energy(v) -> (B,)`` in nats, with
    autograd gradients with respect to v. That is all AIS with Hamiltonian Monte Carlo
    transitions needs (:mod:`genzoo.evaluation.hmc_ais`): it anneals from a Gaussian fitted to
    the training data to exp(-F(v))."""

    def free_energy(self, v: torch.Tensor, /) -> torch.Tensor: ...


PROTOCOLS: dict[str, type] = {
    ENERGY: EnergyModel,
    AIS: AnnealingPath,
    EXACT_LOG_PARTITION: EnumerablePartition,
    VARIATIONAL: VariationalBound,
    LATENT: LatentVariableModel,
    EXACT_LIKELIHOOD: ExactLikelihood,
    IMPLICIT: ImplicitSampler,
    CLASSIFIER: Classifier,
    INPAINT: Inpainter,
    FRAME_RBMS: FrameRBMs,
    CONTINUOUS_ENERGY: ContinuousEnergy,
}
CAPABILITIES = frozenset(PROTOCOLS)


def has(model: object, capability: str) -> bool:
    """True when ``model`` declares ``capability``."""
    return capability in getattr(model, "capabilities", frozenset())


def is_classifier(model: object) -> bool:
    """A model that learns from labels and predicts them (``needs_labels`` and ``predict``):
    the DBM classifier, and generative models that also classify (disc-rbm, mp-dbm)."""
    return bool(getattr(model, "needs_labels", False)) and callable(getattr(model, "predict", None))


def _members(protocol: type) -> list[str]:
    own = [
        name
        for name in vars(protocol)
        if not name.startswith("_") and callable(vars(protocol)[name])
    ]
    return own + [name for name in getattr(protocol, "__annotations__", {})]


def _signature_problem(impl: Callable, spec: Callable, unbound: bool) -> str | None:
    """Why ``impl`` cannot be called as ``spec`` is (a parameter of spec missing or in another
    position, or a parameter of impl beyond spec's without a default), else None.
    ``unbound``: impl was read from a class, so its first parameter is ``self``."""
    try:
        have = list(inspect.signature(impl).parameters.values())[1 if unbound else 0 :]
    except (TypeError, ValueError):
        return None  # a builtin or C function: nothing to compare
    want = [p for p in inspect.signature(spec).parameters.values() if p.name != "self"]
    if any(p.kind is p.VAR_POSITIONAL for p in have) and any(
        p.kind is p.VAR_KEYWORD for p in have
    ):
        return None
    names = [p.name for p in have]
    matched: set[str] = set()
    for i, p in enumerate(want):
        if p.kind is p.POSITIONAL_ONLY:
            # The contract passes it by position only, so its name is the model's own.
            if i >= len(have) or have[i].kind not in (have[i].POSITIONAL_ONLY,
                                                      have[i].POSITIONAL_OR_KEYWORD):
                return f"takes no positional parameter at position {i} ({p.name})"
            matched.add(have[i].name)
            continue
        if p.name not in names:
            return f"has no parameter {p.name!r}"
        if names.index(p.name) != i and p.kind is not p.KEYWORD_ONLY:
            return f"takes {p.name!r} at position {names.index(p.name)}, not {i}"
        matched.add(p.name)
    for p in have:
        if p.name not in matched and p.default is p.empty and p.kind in (
            p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_ONLY
        ):
            return f"needs parameter {p.name!r}, which the contract does not pass"
    return None


def conformance_problems(model: object, capabilities: frozenset[str] | None = None) -> list[str]:
    """What keeps ``model`` (an instance or a class) from the Protocols of ``capabilities``
    (default: the ones it declares, plus :class:`GenerativeModel` and :class:`TrainingHooks`
    for every model): unknown flags, missing methods or attributes, and methods whose
    signatures differ from the contract's. An empty list means conformant."""
    caps = frozenset(getattr(model, "capabilities", ())) if capabilities is None else capabilities
    problems = [f"unknown capability {c!r}" for c in sorted(caps - CAPABILITIES)]
    protocols: list[type] = [GenerativeModel, TrainingHooks]
    if CLASSIFIER not in caps:
        protocols.append(Sampler)
    protocols += [PROTOCOLS[c] for c in sorted(caps & CAPABILITIES)]
    for protocol in protocols:
        for name in _members(protocol):
            if not hasattr(model, name):
                problems.append(f"{protocol.__name__}: no {name!r}")
                continue
            spec = vars(protocol).get(name)
            if callable(spec):
                impl = getattr(model, name)
                if not callable(impl):
                    problems.append(f"{protocol.__name__}: {name!r} is not a method")
                    continue
                why = _signature_problem(impl, spec, inspect.isclass(model))
                if why:
                    problems.append(f"{protocol.__name__}.{name} {why}")
    return problems


@runtime_checkable
class LabelConditionalSampler(Protocol):
    """A class-conditional sampler (the conditional GAN): ``n_classes`` C, and
    ``sample(n, generator, y) -> (n, D)`` drawing x ~ p(x | y) for labels y (n,) int64 in
    0..C-1 (None: labels drawn uniformly). ``genzoo sample --label K`` needs it."""

    n_classes: int

    def sample(
        self, n: int, generator: torch.Generator | None = None, y: torch.Tensor | None = None
    ) -> torch.Tensor: ...


def samples_given_labels(model: object) -> bool:
    """True when ``model`` is a :class:`LabelConditionalSampler`: it has ``n_classes`` and its
    ``sample`` takes the labels ``y`` where the contract passes them (checked on the
    signature, as the conformance suite checks the other contracts)."""
    if not isinstance(model, LabelConditionalSampler):
        return False
    return _signature_problem(model.sample, LabelConditionalSampler.sample, False) is None
