"""Binary Hopfield network: Hebbian and Storkey storage, asynchronous and synchronous
updates, recall from noisy or partial cues, zero- or finite-temperature sampling.

Hopfield (1982), "Neural networks and physical systems with emergent collective
computational abilities", PNAS 79. N units s_i in {-1, +1}, symmetric weights with zero
diagonal, no thresholds, and the energy (eq. 7)::

    H(s) = -1/2 s^T W s

Asynchronous update of one unit i: s_i <- sgn(h_i), h_i = sum_j W_ij s_j, keeping s_i when
h_i = 0. The energy change is -(s_i' - s_i) h_i <= 0, so asynchronous dynamics never increase
H and end in a fixed point (a local minimum). Synchronous updates s <- sgn(W s) may instead
end in a 2-cycle. At temperature T > 0 (Glauber dynamics) s_i = +1 with probability
sigmoid(2 h_i / T), which leaves exp(-H(s)/T) invariant.

Storage of P patterns xi^mu:
    Hebbian (Hopfield 1982): W = (1/N) sum_mu xi^mu xi^mu^T, diagonal zeroed. The capacity for
    retrieval from the pattern itself is about 0.138 N (Amit, Gutfreund & Sompolinsky 1985).
    Storkey (1997), "Increasing the capacity of a Hopfield network without sacrificing
    functionality", ICANN: pattern by pattern,
    W_ij += (1/N) (xi_i xi_j - xi_i h_ji - h_ij xi_j),  h_ij = sum_{k != i, j} W_ik xi_k.

Data are {0, 1} vectors (as every genzoo data set); s = 2 x - 1 inside, and :meth:`sample`
returns {0, 1}.

The learning rule is not gradient descent on a likelihood. :meth:`store` / :meth:`partial_fit`
apply it directly. For the Trainer, ``loss(x)`` is the mean energy of the data states,
whose gradient with respect to W is -1/2 mean(s s^T) (off the diagonal): one plain SGD step
(no weight decay) adds lr/2 times the batch's Hebbian increment, so SGD training is Hebbian
storage of the training set, up to the scale of W, to which sgn dynamics at T = 0 are blind.
(Adam rescales each weight's step and is not Hebbian; use train.optimizer=sgd.)
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from torch import nn

from genzoo.core.config import check, check_nonnegative
from genzoo.core.errors import InputError
from genzoo.core.protocols import IMPLICIT
from genzoo.core.registry import register_model
from genzoo.models.base import GenzooModel, VisibleConfig, checks_input, train_recipe


@dataclasses.dataclass(frozen=True)
class HopfieldConfig(VisibleConfig):
    """Hyperparameters of the binary Hopfield network.

    ``n_visible``: N, at least 2 (from the data when None). ``rule``: storage rule of :meth:`store` and
    :meth:`partial_fit`. ``update``: "async" (random order each sweep) or "sync".
    ``temperature``: T of :meth:`sample` (0: deterministic descent to a fixed point).
    ``sample_sweeps``: sweeps of :meth:`sample` from a uniform random start.
    """

    rule: Literal["hebbian", "storkey"] = "hebbian"
    update: Literal["async", "sync"] = "async"
    temperature: float = 0.0
    sample_sweeps: int = 20

    def validate(self) -> None:
        check(
            self.n_visible is None or self.n_visible > 1,
            f"model.n_visible={self.n_visible} must be > 1 (or none to take it from the data)",
        )
        super().validate()
        check_nonnegative(self.temperature, "model.temperature")
        check(self.sample_sweeps >= 0, "model.sample_sweeps must be >= 0")


def _sign_keep(h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """sgn(h), keeping s where h == 0."""
    return torch.where(h > 0, torch.ones_like(s), torch.where(h < 0, -torch.ones_like(s), s))


@register_model("hopfield", family="hopfield", paper="Hopfield 1982; Storkey 1997")
class HopfieldNetwork(GenzooModel):
    """Binary Hopfield network: Hebbian/Storkey storage, async/sync recall, capacity.

    N binary units. States s are (B, N) in {-1, +1} (the :meth:`energy`, :meth:`recall`
    and update methods); data x are (B, N) in {0, 1}. ``W_raw`` is the stored parameter; the
    network's weights :attr:`W` are its symmetric part with the diagonal zeroed."""

    config_class = HopfieldConfig
    train_defaults = train_recipe(optimizer="sgd", lr=0.01, momentum=0.0, initial_momentum=0.0)
    config: HopfieldConfig
    capabilities = frozenset({IMPLICIT})
    test_overrides = ("model.sample_sweeps=2",)

    def __init__(self, config: HopfieldConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        # An empty memory: W = 0, every state is a fixed point.
        self.W_raw = nn.Parameter(torch.zeros(config.n_visible, config.n_visible))
        # Patterns stored so far by store/partial_fit (a float so dtype moves keep it).
        self.register_buffer("n_stored", torch.zeros(()))

    @property
    def n_visible(self) -> int:
        return self.config.n_visible  # type: ignore[return-value]

    @property
    def W(self) -> torch.Tensor:
        """Symmetric weights with zero diagonal, (N, N)."""
        W = 0.5 * (self.W_raw + self.W_raw.T)
        return W - torch.diag_embed(torch.diagonal(W))

    def _states(self, x: torch.Tensor) -> torch.Tensor:
        """{0, 1} data (B, N), checked by the public method (:func:`checks_input`) -> {-1, +1}
        states on the parameters' dtype and device."""
        return 2 * x.to(self.W_raw) - 1

    def _check_states(self, s: torch.Tensor, name: str = "s") -> torch.Tensor:
        if (not isinstance(s, torch.Tensor) or s.dim() != 2 or s.shape[1] != self.n_visible
                or not s.is_floating_point() or not bool((s.abs() == 1).all())):
            raise InputError(
                f"{name} must be a (B, {self.n_visible}) floating tensor of -1 and +1 states "
                "(from {0, 1} data: s = 2 x - 1)"
            )
        return s.to(self.W_raw)

    # -- energy and dynamics ---------------------------------------------------------------
    def energy(self, s: torch.Tensor) -> torch.Tensor:
        """H(s) = -1/2 s^T W s for states s (B, N) in {-1, +1}, (B,)."""
        s = self._check_states(s)
        return -0.5 * ((s @ self.W) * s).sum(-1)

    @torch.no_grad()
    def sync_step(self, s: torch.Tensor) -> torch.Tensor:
        """s <- sgn(W s), every unit at once (a unit with zero field keeps its state)."""
        s = self._check_states(s)
        return _sign_keep(s @ self.W, s)

    @torch.no_grad()
    def async_sweep(
        self,
        s: torch.Tensor,
        generator: torch.Generator | None = None,
        temperature: float = 0.0,
        order: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One sweep of single-unit updates in a random order (drawn from ``generator``, shared
        by the batch) or in ``order`` (N,): s_i <- sgn(h_i) at T = 0, or +1 with probability
        sigmoid(2 h_i / T). Returns a new (B, N) state."""
        s = self._check_states(s).clone()
        W = self.W
        n = self.n_visible
        if order is None:
            where = generator.device if generator is not None else "cpu"
            order = torch.randperm(n, generator=generator, device=where)
        if temperature > 0:
            u = torch.rand((n, len(s)), generator=generator, dtype=s.dtype, device=s.device)
        for k, i in enumerate(order.tolist()):
            h = s @ W[:, i]
            if temperature > 0:
                s[:, i] = torch.where(u[k] < torch.sigmoid(2 * h / temperature), 1.0, -1.0)
            else:
                s[:, i] = _sign_keep(h, s[:, i])
        return s

    @torch.no_grad()
    def recall(
        self,
        s: torch.Tensor,
        max_sweeps: int = 100,
        generator: torch.Generator | None = None,
        update: str | None = None,
    ) -> torch.Tensor:
        """Run the T = 0 dynamics from cues s (B, N) in {-1, +1} until no unit changes in a
        sweep (asynchronous) or step (synchronous; a 2-cycle stops at ``max_sweeps``), at most
        ``max_sweeps`` times. ``update``: "async" or "sync" (default the config's)."""
        update = update or self.config.update
        if update not in ("async", "sync"):
            raise InputError(f"update={update!r}: use 'async' or 'sync'")
        s = self._check_states(s)
        for _ in range(max_sweeps):
            new = self.async_sweep(s, generator) if update == "async" else self.sync_step(s)
            if torch.equal(new, s):
                return new
            s = new
        return s

    # -- storage ---------------------------------------------------------------------------
    @torch.no_grad()
    @checks_input
    def partial_fit(self, x: torch.Tensor, rule: str | None = None) -> None:
        """Store the patterns x (P, N) in {0, 1} on top of the current memory: Hebbian adds
        (1/N) sum xi xi^T; Storkey applies its update one pattern at a time."""
        rule = rule or self.config.rule
        xi = self._states(x)
        n = self.n_visible
        if rule == "hebbian":
            W = self.W + xi.T @ xi / n
        elif rule == "storkey":
            W = self.W.clone()
            for p in xi:
                h = W @ p  # local fields; the zero diagonal drops k = i
                # h_ij = h_i - W_ij p_j excludes k = j as well.
                h_ij = h.unsqueeze(1) - W * p.unsqueeze(0)
                dW = (torch.outer(p, p) - p.unsqueeze(1) * h_ij.T - h_ij * p.unsqueeze(0)) / n
                W = W + dW
                W = 0.5 * (W + W.T)
                W.fill_diagonal_(0.0)
        else:
            raise InputError(f"rule={rule!r}: use 'hebbian' or 'storkey'")
        W.fill_diagonal_(0.0)
        self.W_raw.copy_(W)
        self.n_stored += len(xi)

    @torch.no_grad()
    def store(self, x: torch.Tensor, rule: str | None = None) -> None:
        """Forget the memory and store the patterns x (P, N) in {0, 1} (see :meth:`partial_fit`)."""
        self.W_raw.zero_()
        self.n_stored.zero_()
        self.partial_fit(x, rule)

    # -- the generative contract -----------------------------------------------------------
    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """``loss``: mean energy H(s) of the data states s = 2 x - 1, x (B, N) in {0, 1},
        whose negative gradient is the Hebbian increment (module docstring); ``stable``: the
        fraction of data units already aligned with their field (sgn(h_i) = s_i), detached."""
        s = self._states(x)
        W = self.W
        h = s @ W
        energy = -0.5 * (h * s).sum(-1)
        return {"loss": energy.mean(), "stable": (h * s > 0).to(s.dtype).mean().detach()}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, N) states in {0, 1} after ``sample_sweeps`` asynchronous sweeps at the config's
        temperature from independent uniform random starts (one chain per row; at T = 0 the
        chains descend to fixed points: stored patterns, their negatives or spurious states)."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise InputError(f"sample(n={n!r}): n must be an integer >= 0")
        ref = self.W_raw
        u = torch.rand((n, self.n_visible), generator=generator, dtype=ref.dtype, device=ref.device)
        s = torch.where(u < 0.5, 1.0, -1.0).to(ref.dtype)
        for _ in range(self.config.sample_sweeps):
            if self.config.update == "sync" and self.config.temperature == 0:
                s = self.sync_step(s)
            else:
                s = self.async_sweep(s, generator, self.config.temperature)
        return (s + 1) / 2

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """{"stable": fraction of units of the examples aligned with their field,
        "fixed_points": fraction of examples that are fixed points of the dynamics}."""
        s = self._states(x)
        aligned = (s @ self.W) * s > 0
        return {"stable": float(aligned.to(s.dtype).mean()),
                "fixed_points": float(aligned.all(1).to(s.dtype).mean())}
