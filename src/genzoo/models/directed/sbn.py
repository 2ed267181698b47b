"""Sigmoid belief network (Neal 1992) with a recognition network, trained by wake-sleep,
reweighted wake-sleep or NVIL.

Generative model over visible x (D,) and L binary layers h_1 (next to x) .. h_L (top)::

    p(h_L) = prod_j sigmoid(b_L)_j^h (1 - sigmoid(b_L)_j)^(1-h)
    p(h_{l-1} | h_l) = Bernoulli(sigmoid(W_l h_l + b_{l-1})),   h_0 = x,

sampled ancestrally from the top. Recognition network (Hinton et al. 1995; Dayan et al. 1995),
bottom-up::

    q(h_l | h_{l-1}) = Bernoulli(sigmoid(U_l h_{l-1} + c_l)),   q(h|x) = prod_l q(h_l | h_{l-1}).

The latent vector z of the LATENT contract is the concatenation [h_1, ..., h_L] (H = sum of the
layer sizes); ``proposal(x)`` is q(h|x) as a :class:`LayeredBernoulli`, so
:func:`genzoo.evaluation.importance_log_px` estimates log p(x) with it.

Learning rules (``training``); theta = generative, phi = recognition parameters:

- ``wake_sleep`` (Hinton et al. 1995): wake, h ~ q(h|x), theta += grad log p(x, h); sleep,
  (x', h') ~ p, phi += grad log q(h'|x').
- ``rws`` (Bornschein & Bengio 2015, eqs. 5, 7, 10): K draws h_k ~ q(h|x), normalised weights
  w~_k = w_k / sum_k' w_k' of w_k = p(x, h_k) / q(h_k|x); theta += sum_k w~_k grad log
  p(x, h_k) (the self-normalised importance estimate of grad log p(x) = E_{p(h|x)}[grad log
  p(x, h)]); wake-phase q update phi += sum_k w~_k grad log q(h_k|x) (the estimate of
  E_{p(h|x)}[grad log q(h|x)], i.e. of -grad KL(p(h|x) || q(h|x))); with ``rws_sleep`` also
  the sleep-phase update phi += grad log q(h'|x') on dreams (x', h') ~ p (the paper's
  "wake + sleep" variant), both q terms at the same rate, as in the authors' code
  (github.com/jbornschein/reweighted-ws: wake and sleep steps each at the learning rate,
  ``lr_q = lr_s``). ``rws_sleep_every`` N: as the authors' trainer does (``sleep_interleave``,
  2 in their MNIST runs), the sleep term comes every N-th training batch, with N * B dreams
  weighted N (its average per batch is then one batch of dreams, as for N = 1).
- ``nvil`` (Mnih & Gregor 2014, algorithm 1): one draw h ~ q(h|x), learning signal
  l = log p(x, h) - log q(h|x); theta += grad log p(x, h); centred signal
  l' = (l - C_psi(x) - c) / max(1, sqrt(v)) with an input-dependent baseline C_psi (an MLP
  with one tanh layer) and running mean c / variance v of l - C_psi(x) over batches
  (c <- alpha c + (1 - alpha) mean, same for v); phi += l' grad log q(h|x),
  psi += l' grad C_psi(x). c and v are buffers, so checkpoints carry them.
- ``nvil`` with ``nvil_local_signals`` (Mnih & Gregor 2014, "local learning signals"): q
  factorises over layers, so layer l's recognition parameters phi_l (U_l, c_l) get their own
  signal made of the terms of l that depend on h_l or a layer above it,

      l_l = log p(h_{l-1}, .., h_L) - log q(h_l, .., h_L | h_{l-1})
          = sum_{k >= l} log p(h_{k-1} | h_k) + log p(h_L) - sum_{k >= l} log q(h_k | h_{k-1}),

  (l_1 = l). A dropped term f(h_{<l}) is fixed once h_{<l} is drawn and
  E_q[grad log q(h_l | h_{l-1}) | h_{<l}] = 0, so E[f grad_phi_l log q(h_l | h_{l-1})] = 0:
  the estimator stays unbiased and loses that term's variance. Each layer has its own baseline
  C_l(h_{l-1}) (the same MLP shape, input h_0 = x for l = 1) and running c_l, v_l:
  l'_l = (l_l - C_l(h_{l-1}) - c_l) / max(1, sqrt(v_l)); phi_l += l'_l grad log q(h_l | h_{l-1}),
  psi_l += l'_l grad C_l(h_{l-1}); theta as above. l_l follows from the factorisation of q
  over layers; it agrees term by term with the local signals of Tokui & Sato's (2017) NVIL
  implementation, which also keeps per-layer running c_l, v_l and per-layer baselines (fed
  x, h_1..h_{l-1} there; h_{l-1} alone here loses nothing, since E[l_l | h_{<l}] depends on
  h_{l-1} only; a baseline fed all of h_{<l}, as Mnih & Gregor's may be, has the same
  expectation).

Each rule is one surrogate ``loss`` whose gradient with respect to every parameter is exactly
that parameter's rule (negated, for minimisation): the draws h are binary and carry no
gradient, and the weights and learning signals enter detached.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

import torch
from torch import distributions as D
from torch import nn
from torch.distributions import constraints

from genzoo.core.config import check, check_nonnegative
from genzoo.core.errors import GenzooError
from genzoo.core.protocols import LATENT
from genzoo.core.registry import register_model
from genzoo.models.base import GenzooModel, VisibleConfig, checks_input, train_recipe
from genzoo.models.directed.objectives import iwae_bound
from genzoo.models.directed.vae import normal_linear_
from genzoo.ops.numerics import bernoulli_log_likelihood, data_logits


@dataclasses.dataclass(frozen=True)
class SBNConfig(VisibleConfig):
    """Hyperparameters of the sigmoid belief network.

    ``n_visible``: D (None: taken from the data). ``hidden``: layer sizes bottom-up, h_1
    (next to x) first. ``training``: "wake_sleep", "rws" or "nvil" (module docstring). ``rws_k``: K draws per example for RWS;
    ``rws_sleep``: add the sleep-phase q update to RWS; ``rws_sleep_every``: that update every
    N-th training batch, with N times the batch of dreams (the authors used K = 10 and N = 2).
    ``valid_samples``: draws per example of the validation figure ``nll_iwae`` (the one to
    early-stop on; Bornschein & Bengio stopped on the 100-draw estimate).
    ``nvil_baseline_hidden``: tanh units of
    the baseline network C_psi(x); ``nvil_alpha``: decay of the running mean / variance of the
    learning signal. ``nvil_local_signals``: NVIL with per-layer (local) learning signals,
    baselines and normalisers (module docstring); off: the one global signal of algorithm 1;
    ignored unless ``training`` is "nvil". ``init_std``: weights ~ N(0, init_std^2), biases 0.
    """

    hidden: tuple[int, ...] = (200, 200, 200)
    training: Literal["wake_sleep", "rws", "nvil"] = "rws"
    rws_k: int = 5
    rws_sleep: bool = True
    rws_sleep_every: int = 1
    valid_samples: int = 5
    nvil_baseline_hidden: int = 100
    nvil_alpha: float = 0.8
    nvil_local_signals: bool = False
    init_std: float = 0.01

    def validate(self) -> None:
        super().validate()
        check(len(self.hidden) >= 1 and all(h > 0 for h in self.hidden),
              f"model.hidden={self.hidden}: give one or more positive layer sizes")
        check(self.rws_k >= 1, f"model.rws_k={self.rws_k} must be >= 1")
        check(self.valid_samples >= 1, f"model.valid_samples={self.valid_samples} must be >= 1")
        check(self.rws_sleep_every >= 1,
              f"model.rws_sleep_every={self.rws_sleep_every} must be >= 1 (1 = every batch)")
        check(self.nvil_baseline_hidden > 0, "model.nvil_baseline_hidden must be positive")
        check(0.0 <= self.nvil_alpha < 1.0, f"model.nvil_alpha={self.nvil_alpha} must be in [0, 1)")
        check_nonnegative(self.init_std, "model.init_std")


def _bernoulli_draw(logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
    return (u < torch.sigmoid(logits)).to(logits.dtype)


class LayeredBernoulli(D.Distribution):
    """q(h|x) = prod_l Bernoulli(h_l; sigmoid(U_l h_{l-1} + c_l)), h_0 = x: a chain of
    factorised Bernoulli layers, each conditioned on the draw of the one below.

    Batch shape (B,), event shape (H,), H = sum of the layer sizes; a value z (..., B, H) is
    the concatenation [h_1, ..., h_L]. ``sample`` takes an explicit ``generator``
    (``accepts_generator`` tells the importance sampler so). The first layer's logits depend on
    x alone, so they are computed once here and shared by every draw (for S draws of a
    784-200 first layer that is the largest product of the chain, S times over)."""

    arg_constraints: ClassVar[dict] = {}
    support = constraints.independent(constraints.boolean, 1)
    accepts_generator = True

    def __init__(self, x: torch.Tensor, layers: nn.ModuleList) -> None:
        self.x, self.layers = x, layers
        self.sizes = [layer.out_features for layer in layers]
        self.first_logits = layers[0](x)  # (B, H_1)
        super().__init__(x.shape[:1], torch.Size([sum(self.sizes)]), validate_args=False)

    def _chain(
        self, sample_shape: torch.Size | tuple, generator: torch.Generator | None, with_log_prob: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.first_logits.expand(*sample_shape, *self.first_logits.shape)
        draws, log_q = [], None
        for i, layer in enumerate(self.layers):
            if i > 0:
                logits = layer(draws[-1])
            h = _bernoulli_draw(logits, generator)
            draws.append(h)
            if with_log_prob:
                term = bernoulli_log_likelihood(self.first_logits if i == 0 else logits, h)
                log_q = term if log_q is None else log_q + term
        return torch.cat(draws, -1), log_q

    def sample(
        self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None
    ) -> torch.Tensor:
        with torch.no_grad():
            return self._chain(sample_shape, generator, with_log_prob=False)[0]

    @torch.no_grad()
    def sample_and_log_prob(
        self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, log q(z|x)): the draws of ``sample`` and their log-probabilities (...,) in nats
        from the logits the draws were made with, without gradients (for evaluation: the
        importance sampler would otherwise recompute every layer in ``log_prob``)."""
        z, log_q = self._chain(sample_shape, generator, with_log_prob=True)
        return z, log_q

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """log q(z|x) (...,) for z (..., B, H), in nats."""
        hs = value.split(self.sizes, -1)
        total = bernoulli_log_likelihood(self.first_logits, hs[0])
        for layer, below, h in zip(self.layers[1:], hs[:-1], hs[1:]):
            total = total + bernoulli_log_likelihood(layer(below), h)
        return total


# -- NVIL: per-layer terms, local learning signals, baselines and running normalisers ------
# Layers h_0 = x, h_1 .. h_L as in the module docstring.

def _baseline_net(n_in: int, n_hidden: int) -> nn.Sequential:
    """C(input): an MLP with one tanh layer of ``n_hidden`` units and a scalar output."""
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.Tanh(), nn.Linear(n_hidden, 1))


def _layer_terms(
    hs: list[torch.Tensor],
    generative: nn.ModuleList,
    top_bias: torch.Tensor,
    recognition: nn.ModuleList,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-layer log-probabilities in nats for the layers hs = [h_0 = x, h_1, .., h_L], each
    (..., n_l) and carrying no gradient.

    Returns ``log_p`` (..., L + 1) with log_p[..., k] = log p(h_k | h_{k+1}) for k < L and
    log_p[..., L] = log p(h_L), and ``log_q`` (..., L) with log_q[..., l - 1] =
    log q(h_l | h_{l-1}); log_p depends on the generative parameters only, log_q on the
    recognition parameters only."""
    n = len(recognition)
    log_p = [bernoulli_log_likelihood(generative[k](hs[k + 1]), hs[k]) for k in range(n)]
    log_p.append(bernoulli_log_likelihood(top_bias.expand_as(hs[n]), hs[n]))
    log_q = [bernoulli_log_likelihood(recognition[l](hs[l]), hs[l + 1]) for l in range(n)]
    return torch.stack(log_p, -1), torch.stack(log_q, -1)


def _reverse_cumsum(t: torch.Tensor) -> torch.Tensor:
    return t.flip(-1).cumsum(-1).flip(-1)


def _local_signals(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Local learning signals l_l (..., L), l = 1..L (module docstring), from the per-layer
    terms of :func:`_layer_terms`: l_l = sum_{k >= l-1} log_p[k] - sum_{k >= l} log_q[k-1]."""
    n = log_q.shape[-1]
    return _reverse_cumsum(log_p)[..., :n] - _reverse_cumsum(log_q)


@torch.no_grad()
def _update_moments(
    mean: torch.Tensor, var: torch.Tensor, count: torch.Tensor, centred: torch.Tensor,
    alpha: float,
) -> None:
    """Fold the batch mean / variance over axis 0 of ``centred`` (B, *mean.shape) into the
    running buffers in place: c <- alpha c + (1 - alpha) mean, same for v. While ``count`` is
    0 the batch values are copied, so the estimate is not biased towards the start."""
    batch_mean = centred.mean(0).to(mean)
    batch_var = (centred.var(0, unbiased=False).to(var) if centred.shape[0] > 1
                 else torch.zeros_like(var))
    if int(count) == 0:
        mean.copy_(batch_mean)
        var.copy_(batch_var)
    else:
        mean.mul_(alpha).add_((1 - alpha) * batch_mean)
        var.mul_(alpha).add_((1 - alpha) * batch_var)
    count += 1


def _normalise(centred: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """(centred - c) / max(1, sqrt v), detached; c, v broadcast over the leading axis."""
    scale = torch.clamp(var.sqrt(), min=1.0).to(centred)
    return ((centred - mean.to(centred)) / scale).detach()


@register_model(
    "sbn", family="directed", paper="Neal 1992; Bornschein & Bengio 2015; Mnih & Gregor 2014"
)
class SBN(GenzooModel):
    """Sigmoid belief network (wake-sleep, reweighted wake-sleep, NVIL), IS-evaluated.

    Multi-layer sigmoid belief network over D binary visibles with a recognition network.

    Per-example values are in nats; x is (B, D), z = [h_1, ..., h_L] is (B, H) or (S, B, H).
    Device and dtype follow the parameters."""

    config_class = SBNConfig
    train_defaults = train_recipe(
        optimizer="adam", lr=0.003, lr_schedule="linear", lr_final_factor=0.1,
    )
    capabilities = frozenset({LATENT})
    test_overrides = ("model.hidden=8,4", "model.rws_k=3")

    def __init__(self, config: SBNConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        sizes = [config.n_visible, *config.hidden]
        # generative[l] maps h_{l+1} -> logits of h_l (l = 0: x); the top prior is b_L.
        self.generative = nn.ModuleList(nn.Linear(sizes[l + 1], sizes[l]) for l in range(len(sizes) - 1))
        self.top_bias = nn.Parameter(torch.zeros(sizes[-1]))
        # recognition[l] maps h_l -> logits of q(h_{l+1} | h_l) (h_0 = x).
        self.recognition = nn.ModuleList(nn.Linear(sizes[l], sizes[l + 1]) for l in range(len(sizes) - 1))
        self._local_nvil = config.training == "nvil" and config.nvil_local_signals
        if config.training == "rws" and config.rws_sleep and config.rws_sleep_every > 1:
            # Training batches seen, so the sleep term lands on every rws_sleep_every-th one
            # (a buffer: a resumed run keeps the rhythm).
            self.register_buffer("rws_batches", torch.zeros((), dtype=torch.int64))
        if self._local_nvil:
            # layer_baselines[l] is C_{l+1}(h_l); the per-layer statistics are (L,) vectors.
            self.layer_baselines = nn.ModuleList(
                _baseline_net(n, config.nvil_baseline_hidden) for n in sizes[:-1])
            self.register_buffer("layer_signal_mean", torch.zeros(len(config.hidden)))
            self.register_buffer("layer_signal_var", torch.ones(len(config.hidden)))
            self.register_buffer("layer_signal_count", torch.zeros((), dtype=torch.int64))
        elif config.training == "nvil":
            self.baseline = _baseline_net(config.n_visible, config.nvil_baseline_hidden)
            # Running mean and variance of the learning signal; signal_count = 0 means "not
            # seen a batch yet", and the first batch sets them (no bias towards the start).
            self.register_buffer("signal_mean", torch.zeros(()))
            self.register_buffer("signal_var", torch.ones(()))
            self.register_buffer("signal_count", torch.zeros((), dtype=torch.int64))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Weights ~ N(0, init_std^2), biases 0. ``generator=None`` uses torch's default."""
        normal_linear_(self, self.config.init_std, generator)
        with torch.no_grad():
            self.top_bias.zero_()

    @property
    def n_visible(self) -> int:
        return self.config.n_visible  # type: ignore[return-value]

    @property
    def sizes(self) -> list[int]:
        return list(self.config.hidden)

    def _ref(self) -> torch.Tensor:
        return self.top_bias

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        """x (checked by the public method that :func:`checks_input` guards) on the
        parameters' dtype and device."""
        return x.to(self._ref())

    # -- the latent-variable contract -----------------------------------------------------
    @checks_input
    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x, h) in nats: x (B, D), z = [h_1..h_L] (B, H) -> (B,) or (S, B, H) -> (S, B)."""
        x = self._prepare(x)
        # x and the top prior's logits are not expanded over the draws: the shared
        # likelihood broadcasts them, so softplus(b_L) is summed once, not once per draw.
        hs = [x, *z.split(self.sizes, -1)]
        total = bernoulli_log_likelihood(self.top_bias, hs[-1])
        for l, layer in enumerate(self.generative):
            total = total + bernoulli_log_likelihood(layer(hs[l + 1]), hs[l])
        return total

    @checks_input
    def proposal(self, x: torch.Tensor) -> LayeredBernoulli:
        """q(h|x), batch shape (B,), event shape (H,)."""
        return LayeredBernoulli(self._prepare(x), self.recognition)

    # -- sampling ----------------------------------------------------------------------------
    def sample_joint(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Ancestral draw (x (n, D), z = [h_1..h_L] (n, H)) from p(x, h), no gradient."""
        with torch.no_grad():
            top = self.top_bias.expand(n, -1)
            h = _bernoulli_draw(top, generator)
            layers = [h]
            for layer in reversed(self.generative):
                h = _bernoulli_draw(layer(h), generator)
                layers.append(h)
            x = layers.pop()
            return x, torch.cat(layers[::-1], -1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, D) binary draws x ~ p(x) by ancestral sampling."""
        if not isinstance(n, int) or n < 0:
            raise GenzooError(f"sample(n={n!r}): n must be an integer >= 0")
        return self.sample_joint(n, generator)[0]

    # -- training --------------------------------------------------------------------------
    def _sleep_term(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        """Mean of log q(h'|x') over n dreams (x', h') ~ p: its gradient is the sleep phase."""
        x_dream, z_dream = self.sample_joint(n, generator)
        return LayeredBernoulli(x_dream, self.recognition).log_prob(z_dream).mean()

    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Surrogate of the configured learning rule for x (B, D) (module docstring); figures
        in nats per example: ``elbo`` (mean log w over the draws), for RWS ``iwae`` (the
        K-sample bound log mean w), for NVIL ``signal_mean`` / ``signal_std`` (the running
        normalisers), with local signals ``signal_mean_l`` / ``signal_std_l`` for each layer
        l = 1..L. A call in training mode with gradients enabled updates the NVIL running
        statistics."""
        cfg = self.config
        x = self._prepare(x)
        k = cfg.rws_k if cfg.training == "rws" else 1
        q = LayeredBernoulli(x, self.recognition)
        z = q.sample((k,), generator)  # (k, B, H)
        if self._local_nvil:
            return self._local_nvil_loss(x, z[0])
        log_p = self.log_joint(x, z)  # depends on theta only (z carries no gradient)
        log_q = q.log_prob(z)  # depends on phi only
        log_w = (log_p - log_q).detach()
        out = {"elbo": log_w.mean()}
        if cfg.training == "wake_sleep":
            surrogate = log_p.mean() + self._sleep_term(x.shape[0], generator)
        elif cfg.training == "rws":
            w_tilde = torch.softmax(log_w, 0)  # (k, B): normalised over the k draws of each x
            q_term = (w_tilde * log_q).sum(0).mean()
            dreams = self._rws_dreams()
            if dreams:
                q_term = q_term + dreams * self._sleep_term(dreams * x.shape[0], generator)
            surrogate = (w_tilde * log_p).sum(0).mean() + q_term
            out["iwae"] = iwae_bound(log_w).mean()
        else:
            signal = self._nvil_signal(x, log_w[0])
            baseline = self.baseline(x).squeeze(-1)
            surrogate = (log_p[0] + signal * log_q[0] + signal * baseline).mean()
            out["signal_mean"] = self.signal_mean.detach().clone().to(log_w)
            out["signal_std"] = self.signal_var.detach().sqrt().to(log_w)
        out["loss"] = -surrogate
        return {"loss": out.pop("loss"), **out}

    def _rws_dreams(self) -> int:
        """N when this batch gets RWS's sleep-phase term (N * B dreams, weight N; N =
        ``rws_sleep_every``), else 0. With N > 1 the batch count advances in training mode with
        gradients only, and other calls (validation) get no sleep term."""
        cfg = self.config
        if not cfg.rws_sleep:
            return 0
        if cfg.rws_sleep_every == 1:
            return 1
        if not (self.training and torch.is_grad_enabled()):
            return 0
        self.rws_batches += 1
        return cfg.rws_sleep_every if int(self.rws_batches) % cfg.rws_sleep_every == 0 else 0

    def _nvil_signal(self, x: torch.Tensor, log_w: torch.Tensor) -> torch.Tensor:
        """Centred, normalised learning signal (B,), detached: (l - C(x) - c) / max(1, sqrt v),
        with c, v updated from this batch first (training mode with gradients only)."""
        centred = log_w - self.baseline(x).squeeze(-1).detach()
        if self.training and torch.is_grad_enabled():
            _update_moments(self.signal_mean, self.signal_var, self.signal_count, centred,
                           self.config.nvil_alpha)
        return _normalise(centred, self.signal_mean, self.signal_var)

    def _local_nvil_loss(self, x: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """NVIL surrogate with local signals for x (B, D) and one draw z (B, H) (module
        docstring): -mean_b [log p(x, h) + sum_l l'_l (log q(h_l | h_{l-1}) + C_l(h_{l-1}))]."""
        hs = [x, *z.split(self.sizes, -1)]
        log_p, log_q = _layer_terms(hs, self.generative, self.top_bias, self.recognition)
        baselines = torch.cat([c(h) for c, h in zip(self.layer_baselines, hs)], -1)  # (B, L)
        centred = _local_signals(log_p.detach(), log_q.detach()) - baselines.detach()
        if self.training and torch.is_grad_enabled():
            _update_moments(self.layer_signal_mean, self.layer_signal_var,
                           self.layer_signal_count, centred, self.config.nvil_alpha)
        signal = _normalise(centred, self.layer_signal_mean, self.layer_signal_var)
        surrogate = log_p.sum(-1) + (signal * (log_q + baselines)).sum(-1)
        out = {"loss": -surrogate.mean(), "elbo": (log_p.sum(-1) - log_q.sum(-1)).detach().mean()}
        for l in range(len(self.sizes)):
            out[f"signal_mean_{l + 1}"] = self.layer_signal_mean[l].detach().clone().to(x)
            out[f"signal_std_{l + 1}"] = self.layer_signal_var[l].detach().sqrt().to(x)
        return out

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """{"elbo": mean log w with one draw per example, "iwae_5": the 5-draw bound,
        "nll_iwae": minus the ``valid_samples``-draw bound (nats per example, lower is better:
        the figure to early-stop on)}, with a fixed seed so curves are comparable across
        steps; the draws of the first two are the first of the ``valid_samples`` (at least
        5). Examples go through in chunks of at most 200,000 draws."""
        x = self._prepare(x)
        g = torch.Generator(device=x.device).manual_seed(0)
        k = max(5, self.config.valid_samples)
        log_w = []
        for xs in x.split(max(1, 200_000 // k)):
            q = LayeredBernoulli(xs, self.recognition)
            z = q.sample((k,), g)
            log_w.append(self.log_joint(xs, z) - q.log_prob(z))  # (k, chunk)
        lw = torch.cat(log_w, 1)
        return {"elbo": float(lw[0].mean()),
                "iwae_5": float(iwae_bound(lw[:5]).mean()),
                "nll_iwae": -float(iwae_bound(lw[: self.config.valid_samples]).mean())}

    @torch.no_grad()
    @checks_input
    def init_from_data(self, x_train: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Start the visible biases b_0 at the logits of the clamped pixel means. x_train (N, D)."""
        self.generative[0].bias.copy_(data_logits(self._prepare(x_train)))
