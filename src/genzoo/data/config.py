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
}
DATASET_NAMES = tuple(IMAGE_SHAPES)


@dataclasses.dataclass(frozen=True)
class DataConfig(Config):
    """Which data set, and how it is binarized and subset.

    ``binarize`` applies to grey-level sets (``mnist``, ``digits``, ``frey-faces``):
    ``none`` keeps values in [0, 1]; ``dynamic`` draws a fresh Bernoulli sample each training
    epoch (valid/test use one draw seeded by ``seed``, so test numbers are stable);
    ``threshold`` maps x > ``threshold`` to 1. ``binarized-mnist`` and ``caltech-silhouettes``
    are binary already and accept only ``none``.
    ``n_train`` / ``n_eval`` keep the first N examples of train / of valid and test (for quick
    runs; ``None`` keeps all). ``seed`` fixes the seeded splits (digits, frey-faces,
    caltech-silhouettes) and the valid/test binarization draw.
    """

    name: str = "digits"
    binarize: Literal["none", "dynamic", "threshold"] = "none"
    threshold: float = 0.5
    n_train: int | None = None
    n_eval: int | None = None
    seed: int = 0

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
