"""The base of the implicit models: a generator network x = G(z) of noise z, sampled from alone.

Every implicit model here (GAN, conditional GAN, GMMN, GMMN+AE) draws noise z (n, J) from a
fixed prior p_z, "normal" N(0, I) or "uniform" U[-1, 1]^J, and maps it through a network ``G``;
none has a tractable likelihood, so each declares only the ``IMPLICIT`` capability and is
judged by sample-based measures (:mod:`genzoo.evaluation.sample_based`). Their inputs are
grey levels in [0, 1], not binary.

:class:`GeneratorConfig` carries the fields they all repeat (``n_visible``, ``n_latent``,
``prior``, ``init_std``); :class:`ImplicitGenerator` owns the noise, the sampling (batch
normalisation on its running statistics) and the default initialisation (DCGAN's N(0,
init_std^2), :func:`genzoo.models.implicit.dcgan.normal_init`) and the checks of ``loss``; a
subclass builds ``G`` (and whatever else it trains), calls
:meth:`ImplicitGenerator.reset_parameters`, and computes the loss of each of its phases (a
GAN's "d" and "g", GMMN+AE's "ae" and "gmmn"; none for a GMMN) in ``_phase_loss``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from genzoo.core.config import check, check_nonnegative
from genzoo.core.errors import GenzooError, InputError
from genzoo.core.protocols import IMPLICIT
from genzoo.models.base import GenzooModel, VisibleConfig, checks_input
from genzoo.models.implicit.dcgan import normal_init

Labels = torch.Tensor | None  # y (B,) int64 class labels, for a model that needs_labels


@dataclasses.dataclass(frozen=True)
class GeneratorConfig(VisibleConfig):
    """Fields of every implicit model: ``n_latent`` J, the size of z; ``prior``: "uniform"
    U[-1, 1]^J or "normal" N(0, I); ``init_std``: weights ~ N(0, init_std^2). A model whose
    defaults differ redeclares the field with its own default."""

    n_latent: int = 10
    prior: Literal["uniform", "normal"] = "uniform"
    init_std: float = 0.02

    def validate(self) -> None:
        super().validate()
        check(self.n_latent > 0, f"model.n_latent={self.n_latent} must be positive")
        check_nonnegative(self.init_std, "model.init_std")


def run_in_eval_mode(net: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
    """``net(*inputs)`` with batch normalisation on its running statistics (eval mode),
    restoring the previous mode: samples then depend on neither the training flag nor the
    number drawn at once."""
    was = net.training
    net.eval()
    try:
        return net(*inputs)
    finally:
        net.train(was)


class ImplicitGenerator(GenzooModel):
    """Base of the models that only sample: a generator ``G`` (set by the subclass) of noise
    z ~ p_z. x (B, D) floating in [0, 1]; device and dtype follow the parameters."""

    config: GeneratorConfig
    G: nn.Module
    capabilities = frozenset({IMPLICIT})
    binary_input = False

    @property
    def n_visible(self) -> int:
        return self.config.n_visible  # type: ignore[return-value]

    def _ref(self) -> torch.Tensor:
        """A parameter whose dtype and device the noise and the inputs take."""
        return next(self.G.parameters())

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """DCGAN initialisation of every layer: weights ~ N(0, init_std^2), batch-norm scales
        ~ N(1, init_std^2), biases 0 (``generator=None``: torch's default)."""
        normal_init(self, self.config.init_std, generator)

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z (n, n_latent) from the prior ("normal": N(0, I); "uniform": 2u - 1, u ~ U[0, 1]),
        with the parameters' dtype and device."""
        ref = self._ref()
        shape = (n, self.config.n_latent)
        if self.config.prior == "uniform":
            u = torch.rand(shape, generator=generator, dtype=ref.dtype, device=ref.device)
            return 2.0 * u - 1.0
        return torch.randn(shape, generator=generator, dtype=ref.dtype, device=ref.device)

    @checks_input(nonempty=True)
    def loss(
        self,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
        phase: str | None = None,
        y: Labels = None,
    ) -> dict[str, torch.Tensor]:
        """The loss of ``phase`` (None: the first of :meth:`phases`, or the only loss of a model
        without phases) on the minibatch x (B, D) in [0, 1], with noise from ``generator``;
        ``y`` (B,) int64 labels for a model that ``needs_labels``. GenzooError for a phase the
        model does not have, InputError for a malformed x."""
        names = [p.name for p in self.phases()]
        if phase is None:
            phase = names[0] if names else None
        elif phase not in names:
            use = " or ".join(repr(n) for n in names) or "None (the model has no phases)"
            raise GenzooError(f"{type(self).__name__}.loss: phase={phase!r}; use {use}")
        return self._phase_loss(x.to(self._ref()), phase, generator, y)

    def _phase_loss(
        self, x: torch.Tensor, phase: str | None, generator: torch.Generator | None, y: Labels
    ) -> dict[str, torch.Tensor]:
        """The loss dict of ``phase`` (a name of :meth:`phases`, None without phases) on x
        (B, D), already checked and on the parameters' dtype and device."""
        raise NotImplementedError

    def _samples(self, n: int, draw: Callable[[int], torch.Tensor]) -> torch.Tensor:
        """``draw(n)``, the (n, D) samples, after checking ``n`` (InputError unless an integer
        >= 0); n == 0 gives an empty (0, D) tensor without drawing anything."""
        if not isinstance(n, int) or n < 0:
            raise InputError(f"sample(n={n!r}): n must be an integer >= 0")
        if n == 0:
            ref = self._ref()
            return torch.zeros((0, self.n_visible), dtype=ref.dtype, device=ref.device)
        return draw(n)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, D) generator outputs G(z), z ~ p_z, values in (0, 1); batch normalisation (DCGAN)
        uses its running statistics."""
        return self._samples(n, lambda m: run_in_eval_mode(self.G, self.noise(m, generator)))
