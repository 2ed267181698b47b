"""Data-set selection and preprocessing settings (the ``data`` section of a run config)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from genzoo.core.config import Config, check

# Name -> (height, width) of one image: what sample grids need, known without loading data.
IMAGE_SHAPES: dict[str, tuple[int, int]] = {
    "digits": (8, 8),
    "mnist": (28, 28),
    "binarized-mnist": (28, 28),
    "frey-faces": (28, 20),
    "caltech-silhouettes": (28, 28),
    # 63 values per example (the DC-removed patch less its last pixel); the image is 8x8.
    "image-patches": (8, 8),
}
# Grey-level sets that ``data.dequantize`` applies to, with their number of grey levels.
GREY_LEVELS: dict[str, int] = {"digits": 17, "mnist": 256, "frey-faces": 256}
DATASET_NAMES = tuple(IMAGE_SHAPES)


@dataclasses.dataclass(frozen=True)
class DataConfig(Config):
    """Which data set, and how it is binarized and subset.

    ``binarize`` applies to grey-level sets (``mnist``, ``digits``, ``frey-faces``):
    ``none`` keeps values in [0, 1]; ``dynamic`` draws a fresh Bernoulli sample each training
    epoch (valid/test use one draw seeded by ``seed``, so test numbers are stable);
    ``threshold`` maps x > ``threshold`` to 1. ``binarized-mnist`` and ``caltech-silhouettes``
    are binary already and accept only ``none``.
    ``n_train`` / ``n_eval`` keep N examples of train / of valid and of test (for quick runs;
    ``None`` keeps all): a draw without replacement seeded by ``subset_seed``, each split drawn
    on its own, stratified by label where the set has labels (each class in proportion to its
    share of the split), kept in split order. A prefix would not do: binarized MNIST's test
    split is sorted by class. ``seed`` fixes the seeded splits (digits, frey-faces,
    caltech-silhouettes, image-patches) and the valid/test binarization or dequantisation draw.

    Real-valued options (see :mod:`genzoo.data.transforms`): ``dequantize`` turns the grey
    level k of a grey-level set with L levels into (k + u) / L, u ~ U(0, 1) (train redrawn each
    epoch, valid/test drawn once with ``seed``); ``logit_alpha`` (needs ``dequantize``) then
    trains on logit(alpha + (1 - 2 alpha) x), 1e-6 being the MAF convention for MNIST.
    Reported likelihoods stay densities on the dequantised [0, 1]^D either way.
    ``image-patches`` is real-valued by construction (see :mod:`genzoo.data.patches`);
    ``unit_variance`` divides it by the standard deviation of its training values.
    ``standardize`` (needs ``dequantize``) then gives every unit zero mean and unit variance
    over the training values (the train split as subset by ``n_train``, its epoch-0 draw), the
    Jacobian included in reported likelihoods.
    """

    name: str = "digits"
    binarize: Literal["none", "dynamic", "threshold"] = "none"
    threshold: float = 0.5
    n_train: int | None = None
    n_eval: int | None = None
    subset_seed: int = 0
    seed: int = 0
    dequantize: bool = False
    logit_alpha: float | None = None
    unit_variance: bool = False
    standardize: bool = False

    def validate(self) -> None:
        check(
            self.name in DATASET_NAMES,
            f"unknown data set {self.name!r}; available: {', '.join(DATASET_NAMES)}",
        )
        check(0.0 < self.threshold < 1.0, f"data.threshold={self.threshold} must be in (0, 1)")
        check(self.n_train is None or self.n_train > 0, "data.n_train must be positive or none")
        check(self.n_eval is None or self.n_eval > 0, "data.n_eval must be positive or none")
        if self.name in ("binarized-mnist", "caltech-silhouettes"):
            check(
                self.binarize == "none",
                f"data set {self.name!r} is binary already; use data.binarize=none",
            )
        if self.dequantize:
            check(
                self.name in GREY_LEVELS,
                f"data.dequantize applies to grey-level sets ({', '.join(GREY_LEVELS)}), "
                f"not {self.name!r}; use data.dequantize=false",
            )
            check(
                self.binarize == "none",
                "data.dequantize keeps grey levels real-valued; use data.binarize=none",
            )
        if self.logit_alpha is not None:
            check(self.dequantize, "data.logit_alpha needs data.dequantize=true")
            check(
                0.0 < self.logit_alpha < 0.5,
                f"data.logit_alpha={self.logit_alpha} must be in (0, 0.5), e.g. 1e-6",
            )
        check(
            not self.standardize or self.dequantize,
            "data.standardize needs data.dequantize=true (a grey-level set made real-valued); "
            "use data.standardize=false",
        )
        if self.name == "image-patches":
            check(
                self.binarize == "none",
                "image-patches are real-valued; use data.binarize=none",
            )
        check(
            not self.unit_variance or self.name == "image-patches",
            "data.unit_variance applies to image-patches only; use data.unit_variance=false",
        )
