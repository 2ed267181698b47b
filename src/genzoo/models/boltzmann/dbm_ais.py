"""What the evaluators need from the DBM: the AIS path with alternate layers summed out
(Salakhutdinov & Hinton 2009 sec. 4; SH12 sec. 4.2), exact enumeration of log Z, and the exact
free energy F(v) for tiny models.

Because the graph is bipartite, the odd layers can be summed out given the even ones: for the
AIS state x_even = (v, x_2, x_4, ...) concatenated in layer order, and the path
E_beta = (1 - beta) E_A + beta E with the base model A (W = 0, b_A_0 the logits of the data
marginals, b_A_l for a hidden layer the logits of its mean-field posterior averaged over the
training data)::

    F_beta(x_even) = - sum_{l even} ((1 - beta) b_A_l + beta b_l)^T x_l
                     - sum_{l odd} sum_j softplus((1 - beta) b_A_lj + beta a_lj(x_even))

with a_l = b_l + x_{l-1}^T W_l + W_{l+1} x_{l+1}. At beta = 0 this is the base's own free energy
(the odd layers' log 2's included), with log Z_A = sum_l sum_j softplus(b_A_lj). The transition
draws the odd layers at beta and then the even layers at beta. For the 784-500-1000 MNIST model
the state (v, h_2) has 1784 units and h_1 (500) is summed out, as in SH09.

Exact log Z enumerates the states of the parity (even or odd layers) with fewer units and sums
the other parity out the same way (beta = 1).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genzoo.core.errors import GenzooError
from genzoo.models.boltzmann._ops import bernoulli, data_logits, softplus
from genzoo.ops.enumeration import binary_states

# Most units enumerated per example by exact_free_energy (2^20 states per row).
_EXACT_FREE_ENERGY_MAX_UNITS = 20
# Training rows whose mean-field posteriors set the AIS base's hidden biases.
_BASE_ROWS = 10_000


class DBMAnnealingBase(nn.Module):
    """The AIS base model: a DBM with W = 0, so every unit is independent. ``biases`` are the
    per-layer biases b_A_l; its states (for ``sample``) are the even layers concatenated."""

    def __init__(self, biases: list[torch.Tensor]) -> None:
        super().__init__()
        for l, b in enumerate(biases):
            self.register_buffer(f"b_{l}", b.detach().clone())

    @property
    def biases(self) -> list[torch.Tensor]:
        return [getattr(self, f"b_{l}") for l in range(len(self._buffers))]

    @torch.no_grad()
    def log_partition(self) -> torch.Tensor:
        """log Z_A = sum over all units of softplus(b_A) (0-dim tensor)."""
        return sum(softplus(b).sum() for b in self.biases)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact draws of the even layers (n, sum of even sizes)."""
        return torch.cat(
            [bernoulli(torch.sigmoid(b).expand(n, -1), generator) for b in self.biases[0::2]],
            dim=-1,
        )


class DBMAnnealingPath:
    """Mixin giving :class:`~genzoo.models.boltzmann.dbm.DBM` the AIS contract over the even
    layers, ``enumerable_free_energy`` and ``exact_free_energy``."""

    # -- state layout ------------------------------------------------------------------------

    def _parity_layers(self, parity: int) -> list[int]:
        return list(range(parity, self.n_layers + 1, 2))

    def _split(self, s: torch.Tensor, layers: list[int]) -> dict[int, torch.Tensor]:
        parts = torch.split(s, [self.sizes[l] for l in layers], dim=-1)
        return dict(zip(layers, parts))

    def even_state(self, x: list[torch.Tensor]) -> torch.Tensor:
        """The AIS state of a full DBM state x: its even layers concatenated (B, D_even)."""
        return torch.cat([x[l] for l in self._parity_layers(0)], dim=-1)

    def _summed_out_free_energy(
        self,
        fixed: dict[int, torch.Tensor],
        beta: float = 1.0,
        base: DBMAnnealingBase | None = None,
    ) -> torch.Tensor:
        """-log sum over the layers not in ``fixed`` (which must be all of one parity, plus
        possibly the other parity's layers that are given) of exp(-E_beta)."""
        x = [fixed.get(l) for l in range(self.n_layers + 1)]
        b_a = base.biases if base is not None else None
        f = 0.0
        for l in range(self.n_layers + 1):
            if x[l] is not None:
                bias = self.bias(l) if b_a is None else (1.0 - beta) * b_a[l] + beta * self.bias(l)
                f = f - x[l] @ bias
            else:
                a = beta * self._input_from(x, l)
                if b_a is not None:
                    a = a + (1.0 - beta) * b_a[l]
                f = f - softplus(a).sum(-1)
        return f

    def _input_from(self, x: list[torch.Tensor | None], l: int) -> torch.Tensor:
        a = self.bias(l)
        if l > 0 and x[l - 1] is not None:
            a = a + x[l - 1] @ self.W[l - 1]
        if l < self.n_layers and x[l + 1] is not None:
            a = a + x[l + 1] @ self.W[l].T
        return a

    # -- AIS contract -------------------------------------------------------------------------

    @torch.no_grad()
    def ais_base(self, x_train: torch.Tensor) -> DBMAnnealingBase:
        """Base model A: W = 0, visible bias the logits of the clamped training marginals, and
        each hidden layer's bias the logits of its mean-field posterior averaged over (up to
        ``_BASE_ROWS`` of) the training rows.

        Why not hidden biases 0: a trained DBM can put nearly all its mass where the top
        layer is almost silent. Chains started from a base with h_2 ~ Bernoulli(1/2) then stay
        in a region hundreds of nats less probable (on SH09's 784-500-1000 model after
        pretraining: free energy +286 against -475 for the persistent chains, h_2 activity
        0.35 against 0.04), and forward AIS misses the model's mass whatever the number of
        temperatures. Matching the base to the model's typical activity starts the chains
        there; any factorial base gives a valid estimator."""
        self.check_input(x_train, "x_train")
        p = self.b[0]
        x = x_train[:_BASE_ROWS].to(p)
        biases = [data_logits(x)]
        if self.n_layers > 0:
            q = self.mean_field(x)[0]
            biases += [data_logits(q_l) for q_l in q]
        return DBMAnnealingBase(biases)

    def annealed_free_energy(
        self, x_even: torch.Tensor, beta: float, base: DBMAnnealingBase
    ) -> torch.Tensor:
        """F_beta(x_even) with the odd layers summed out (module docstring). (B, D_even) -> (B,)."""
        return self._summed_out_free_energy(self._split(x_even, self._parity_layers(0)), beta, base)

    @torch.no_grad()
    def annealed_gibbs_step(
        self,
        x_even: torch.Tensor,
        beta: float,
        base: DBMAnnealingBase,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Odd layers ~ p_beta(odd | even), then even layers ~ p_beta(even | odd); leaves the
        marginal p_beta(x_even) invariant. (B, D_even) -> (B, D_even)."""
        parts = self._split(x_even, self._parity_layers(0))
        x = [parts.get(l) for l in range(self.n_layers + 1)]
        b_a = base.biases
        for parity in (1, 0):
            for l in self._parity_layers(parity):
                a = beta * self.layer_input(x, l) + (1.0 - beta) * b_a[l]
                x[l] = bernoulli(torch.sigmoid(a), generator)
        return self.even_state(x)

    @torch.no_grad()
    def annealed_step(
        self,
        x_even: torch.Tensor,
        beta_prev: float,
        beta: float,
        base: DBMAnnealingBase,
        generator: torch.Generator | None = None,
        transition: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused AIS step used by ``ais_log_partition``: (F_{beta_prev}(x) - F_beta(x) (B,),
        the state after annealed_gibbs_step at beta), with the same values and random draws
        as the separate calls but each odd layer's input from the even layers computed once."""
        parts = self._split(x_even, self._parity_layers(0))
        x = [parts.get(l) for l in range(self.n_layers + 1)]
        b_a = base.biases
        inc = 0.0
        for l in self._parity_layers(0):
            inc = inc + x[l] @ ((beta - beta_prev) * (self.bias(l) - b_a[l]))
        odd_inputs = {}
        for l in self._parity_layers(1):
            a = self.layer_input(x, l)
            odd_inputs[l] = a
            inc = inc + (
                softplus(beta * a + (1.0 - beta) * b_a[l])
                - softplus(beta_prev * a + (1.0 - beta_prev) * b_a[l])
            ).sum(-1)
        if not transition:
            return inc, x_even
        for l, a in odd_inputs.items():
            x[l] = bernoulli(torch.sigmoid(beta * a + (1.0 - beta) * b_a[l]), generator)
        for l in self._parity_layers(0):
            a = beta * self.layer_input(x, l) + (1.0 - beta) * b_a[l]
            x[l] = bernoulli(torch.sigmoid(a), generator)
        return inc, self.even_state(x)

    @torch.no_grad()
    def ais_model_states(
        self, n: int, burn_in: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Approximate model states (n, D_even) to start reverse AIS: the persistent chains
        (repeated to n rows) after ``burn_in`` further sweeps at beta = 1."""
        reps = math.ceil(n / self.config.n_chains)
        x = [c.repeat(reps, 1)[:n].clone() for c in self.chains]
        for _ in range(burn_in):
            x = self.gibbs_sweep(x, generator=generator)
        return self.even_state(x)

    # -- exact enumeration (tiny models) ------------------------------------------------------------

    def enumerable_free_energy(self):
        """(F_parity, n_units): the free energy of the states of the parity with fewer units
        (its layers concatenated) with the other parity summed out, and that parity's number
        of units; sum over its 2^n_units states of exp(-F_parity) is Z."""
        counts = [sum(self.sizes[l] for l in self._parity_layers(p)) for p in (0, 1)]
        parity = 0 if counts[0] <= counts[1] else 1
        layers = self._parity_layers(parity)

        @torch.no_grad()
        def free_energy(s: torch.Tensor) -> torch.Tensor:
            return self._summed_out_free_energy(self._split(s, layers))

        return free_energy, counts[parity]

    @torch.no_grad()
    def exact_free_energy(self, v: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """F(v) = -log sum_h exp(-E(v, h)) exactly (B,), by enumerating whichever of the odd or
        the even hidden layers have fewer units (at most 20) and summing the others out."""

        odd, even = self._parity_layers(1), self._parity_layers(0)[1:]
        sizes = [sum(self.sizes[l] for l in ls) for ls in (odd, even)]
        layers, n_units = (odd, sizes[0]) if sizes[0] <= sizes[1] else (even, sizes[1])
        if n_units > _EXACT_FREE_ENERGY_MAX_UNITS:
            raise GenzooError(
                f"exact_free_energy enumerates 2^{n_units} hidden states per example; it needs "
                f"at most {_EXACT_FREE_ENERGY_MAX_UNITS} units (use variational_free_energy)"
            )
        n_states = 2**n_units
        parts = []
        for s in range(0, n_states, chunk):
            h = binary_states(
                torch.arange(s, min(s + chunk, n_states), device=v.device), n_units, v.dtype
            )
            m = h.shape[0]
            fixed = {l: t.repeat(v.shape[0], 1) for l, t in self._split(h, layers).items()}
            fixed[0] = v.repeat_interleave(m, dim=0)
            f = self._summed_out_free_energy(fixed).view(v.shape[0], m)
            parts.append(torch.logsumexp(-f, dim=1))
        return -torch.logsumexp(torch.stack(parts, dim=1), dim=1)
