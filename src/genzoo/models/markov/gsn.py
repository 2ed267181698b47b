"""Generative stochastic network (GSN): a Markov chain with a hidden state, trained by
walkback, with one or more hidden layers (the deep GSN).

Bengio, Thibodeau-Laufer, Alain & Yosinski (2014), "Deep generative stochastic networks
trainable by backprop", ICML. The chain's state is (x_t, h_t) and its transition is a learned
P(h_t | h_{t-1}, x_{t-1}) followed by P(x_t | h_t) (section 3, eq. 3). The deep GSN (section
3.4, figure 3) unfolds the computational graph of a deep Boltzmann machine's Gibbs sampler:
layers h^0 = x, h^1 .. h^L with tied weights W_l between h^{l-1} and h^l, and one step updates
the odd layers, then the even layers (x included), each from its neighbours::

    a^l = W_l h^{l-1} + W_{l+1}^T h^{l+1} + b_l                 (missing neighbours dropped)
    h^l = tanh(a^l + sigma_pre eps) + sigma_post eps',   eps, eps' ~ N(0, I)   (hidden layers)
    P(x | h^1) with parameter w = W_1^T h^1 + b_0 (Bernoulli logits or Gaussian mean)

Noise is injected before and after the activations of the hidden layers (section 5), except
in h^1 by default (``noiseless_h1``): the authors' MNIST code (Li Yao's GSN release, option
``noiseless_h1``, on by default) keeps the first hidden layer clean, so P(x | h^1) reads a
noise-free code and the chain's randomness comes from the visible corruption and the upper
layers. With sigma = 2 noise on h^1 too, a 3 x 1500 tanh GSN trained 18 epochs learned to
ignore h^1 and sampled one blurred mean digit (benchmarks/RESULTS.md). The
visible layer's next state is a draw of P(x|w) passed through the corruption C (salt and
pepper or Gaussian), as in the DAE. The chain starts at h^0 = C(x), hidden layers at 0.

Walkback training (section 3.3) unrolls K steps from each training example x and penalises
every reconstruction: loss = (1/K) sum_k -log P(x | w_k), in nats per example; gradients flow
through the whole unrolled graph (noise included, by reparameterisation) except the discrete
draws of x. One hidden layer and no hidden noise gives a DAE-like chain with a hidden state.

Sampling runs the same chain from uniform noise (or clamps observed units, for inpainting).
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import torch
from torch import nn

from genzoo.core.config import check, check_nonnegative
from genzoo.core.registry import register_model
from genzoo.models.base import checks_input, train_recipe
from genzoo.models.markov.base import (
    WalkbackChainModel,
    WalkbackConfig,
    corrupt,
    init_visible_bias_,
    reconstruction_draw,
    reconstruction_log_prob,
    reconstruction_mean,
)
from genzoo.nn.init import normal_or_zero_


@dataclasses.dataclass(frozen=True)
class GSNConfig(WalkbackConfig):
    """Hyperparameters of the (deep) GSN (the shared ones: :class:`WalkbackConfig`).

    ``hidden``: sizes of h^1 .. h^L (two or more layers: the deep GSN). ``corruption`` /
    ``noise_level``: C on the visible layer. ``pre_noise`` / ``post_noise``: sigma of the
    Gaussian noise added before / after the hidden activations; ``noiseless_h1``: none of it
    in the first hidden layer (the authors' code default). The Gaussian reconstruction has a
    learned per-unit sigma. ``walkback``: K steps (reconstructions) per training example;
    None: 2 L. ``init_std`` None: the Glorot uniform scale sqrt(6 / (fan_in + fan_out)) as a
    normal standard deviation / sqrt(3), i.e. the same variance.
    """

    hidden: tuple[int, ...] = (1500, 1500, 1500)
    noise_level: float = 0.4
    pre_noise: float = 2.0
    post_noise: float = 2.0
    noiseless_h1: bool = True
    walkback: int | None = None

    def validate(self) -> None:
        super().validate()
        check(len(self.hidden) >= 1 and all(h > 0 for h in self.hidden),
              f"model.hidden={self.hidden}: one or more positive layer sizes")
        check_nonnegative(self.pre_noise, "model.pre_noise")
        check_nonnegative(self.post_noise, "model.post_noise")
        check(self.walkback is None or self.walkback >= 1, "model.walkback must be >= 1 or none")


@register_model("gsn", family="markov", paper="Bengio, Thibodeau-Laufer, Alain & Yosinski 2014")
class GSN(WalkbackChainModel):
    """Generative stochastic network (deep), walkback-trained chain with hidden state.

    GSN over D visible units with L hidden tanh layers. Batch methods take x (B, D);
    device and dtype follow the parameters; figures in nats per example. A chain state is a
    list [h^0 = x (B, D), h^1 (B, H_1), ..., h^L (B, H_L)]."""

    config_class = GSNConfig
    train_defaults = train_recipe(
        optimizer="adam", lr=0.001, lr_schedule="linear", lr_final_factor=0.1,
    )
    test_overrides = ("model.hidden=8,8", "model.sample_steps=3")

    def __init__(self, config: GSNConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        self.sizes = [config.n_visible, *config.hidden]
        # weights[l - 1] is W_l, (n_l, n_{l-1}); biases[l] is b_l for l = 0..L.
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(b, a)) for a, b in itertools.pairwise(self.sizes)
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(n)) for n in self.sizes)
        self.log_sigma = nn.Parameter(
            torch.zeros(config.n_visible), requires_grad=config.reconstruction == "gaussian"
        )
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Weights ~ N(0, init_std^2) (default: Glorot's variance 2 / (fan_in + fan_out)),
        biases and log sigma 0."""
        for W in self.weights:
            std = self.config.init_std
            if std is None:
                std = math.sqrt(2.0 / sum(W.shape))
            normal_or_zero_(W, std, generator)
        with torch.no_grad():
            for b in self.biases:
                b.zero_()
            self.log_sigma.zero_()

    @property
    def n_layers(self) -> int:
        """L, the number of hidden layers."""
        return len(self.config.hidden)

    @property
    def walkback(self) -> int:
        """K: the config's ``walkback``, or 2 L when it is None."""
        k = self.config.walkback
        return 2 * self.n_layers if k is None else k

    # -- the chain -------------------------------------------------------------------------
    def _pre_activation(self, state: list[torch.Tensor], l: int) -> torch.Tensor:
        a = self.biases[l]
        if l > 0:
            a = a + state[l - 1] @ self.weights[l - 1].T
        if l < self.n_layers:
            a = a + state[l + 1] @ self.weights[l]
        return a

    def _noise(self, like: torch.Tensor, sigma: float, generator: torch.Generator | None):
        if sigma == 0:
            return like
        return like + sigma * torch.randn(
            like.shape, generator=generator, dtype=like.dtype, device=like.device
        )

    def initial_state(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """[C(x), 0, ..., 0]: the corrupted input and zero hidden layers."""
        x = x.to(self.biases[0])
        zeros = [x.new_zeros(len(x), n) for n in self.config.hidden]
        return [corrupt(x, self.config.corruption, self.config.noise_level, generator), *zeros]

    def step(
        self,
        state: list[torch.Tensor],
        generator: torch.Generator | None = None,
        noisy: bool = True,
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """One transition: odd layers, then even layers (x included). Returns (new state,
        w (B, D) the parameter of P(x | h^1) used for this step's reconstruction, and x_draw
        (B, D) the draw from it before corruption). ``noisy=False`` drops the hidden noise and
        the corruption (the deterministic mean-field pass)."""
        cfg = self.config
        state = list(state)
        w = x_draw = state[0]
        for parity in (1, 0):
            for l in range(parity, self.n_layers + 1, 2):
                a = self._pre_activation(state, l)
                if l == 0:
                    w = a
                    x_draw = reconstruction_draw(
                        a.detach(), cfg.reconstruction, self._log_sigma(), generator
                    )
                    state[0] = (
                        corrupt(x_draw, cfg.corruption, cfg.noise_level, generator)
                        if noisy else reconstruction_mean(a, cfg.reconstruction)
                    )
                elif noisy and not (l == 1 and cfg.noiseless_h1):
                    h = torch.tanh(self._noise(a, cfg.pre_noise, generator))
                    state[l] = self._noise(h, cfg.post_noise, generator)
                else:
                    state[l] = torch.tanh(a)
        return state, w, x_draw

    @checks_input
    def walkback_losses(
        self, x: torch.Tensor, generator: torch.Generator | None = None, k: int | None = None
    ) -> torch.Tensor:
        """-log P(x | w_k) of the K = ``k`` (default :attr:`walkback`) reconstructions of the
        unrolled chain from each example, (K, B) in nats."""
        x = x.to(self.biases[0])
        state = self.initial_state(x, generator)
        rows = []
        for _ in range(self.walkback if k is None else k):
            state, w, _ = self.step(state, generator)
            rows.append(-reconstruction_log_prob(
                x, w, self.config.reconstruction, self._log_sigma()))
        return torch.stack(rows)

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """{"walkback": the training loss under a fixed seed, "reconstruction": its first
        step}, so curves are comparable across steps."""
        g = torch.Generator(device=self.biases[0].device).manual_seed(0)
        nll = self.walkback_losses(x, g)
        return {"walkback": float(nll.mean()), "reconstruction": float(nll[0].mean())}

    @torch.no_grad()
    @checks_input
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """Visible bias at the data marginals (logits of clamped means, or means and log
        standard deviations for the Gaussian reconstruction)."""
        x = x_train.to(self.biases[0])
        init_visible_bias_(self.biases[0], self.log_sigma, x, self.config.reconstruction)
