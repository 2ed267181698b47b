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
# data.name of data handed over in Python (genzoo.fit(model, array)): no file to read again.
IN_MEMORY = "in-memory"
# What a user's data hold, detected when they are read (see genzoo.data.user).
DATA_KINDS = ("binary", "unit-interval", "real")
USER_FILE_SUFFIXES = (".npz", ".npy", ".csv", ".tsv")


def is_user_data(name: str) -> bool:
    """Whether ``data.name`` names the user's own data (a path, or ``in-memory``) rather than a
    built-in set."""
    return name not in DATASET_NAMES


def looks_like_path(name: str) -> bool:
    """Whether ``name`` reads as a path: it holds a separator, starts with . or ~, or ends in
    a suffix genzoo reads."""
    return (
        "/" in name or "\\" in name or name.startswith((".", "~"))
        or name.lower().endswith(USER_FILE_SUFFIXES)
    )


@dataclasses.dataclass(frozen=True)
class DataConfig(Config):
    """Which data set, and how it is binarized and subset.

    ``binarize`` applies to grey-level sets (``mnist``, ``digits``, ``frey-faces``):
    ``none`` keeps values in [0, 1]; ``dynamic`` draws a fresh Bernoulli sample each training
    epoch (valid/test use one draw seeded by ``seed``, so test numbers are stable);
    ``threshold`` maps x > ``threshold`` to 1. ``binarized-mnist`` and ``caltech-silhouettes``
    are binary already and accept only ``none``.
    ``grey_eval`` (with ``dynamic`` or ``threshold``): only the train split is binarized; valid
    and test keep their grey levels in [0, 1], read by models whose inference takes inputs as
    Bernoulli means (``mean_field_input``: the MP-DBM, the DBM classifier), the protocol of
    papers that validate and test on grey-level images (Goodfellow et al. 2013; Salakhutdinov
    & Hinton 2009). Classification only: a likelihood of grey levels under binary units is
    not defined.
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

    Your own data (:mod:`genzoo.data.user`): ``name`` is then the path of a ``.npz``, ``.npy``,
    ``.csv`` / ``.tsv`` file or of a folder of PNG / JPEG images (a path: it holds a ``/`` or
    ends in one of those suffixes), or ``in-memory`` for arrays handed to :func:`genzoo.fit`.
    ``label_column`` names the label column of a CSV (a header name, or a 0-based index such
    as ``-1``; None: no labels). Data that do not come split are split at random, seeded by
    ``seed``: ``valid_fraction`` and ``test_fraction`` of the examples (each at least one).
    ``standardize`` applies to real-valued data directly; ``dequantize`` to 8-bit grey levels
    (images, uint8 arrays). ``file_sha256``, ``file_shape`` (the shape of all examples, e.g.
    (N, 28, 28) or (N, C, H, W) for images) and ``file_kind`` (``binary``, ``unit-interval``
    or ``real``, the values as read) are recorded when a run starts, so that evaluating a run
    refuses data that have changed since.
    """

    name: str = "digits"
    binarize: Literal["none", "dynamic", "threshold"] = "none"
    threshold: float = 0.5
    grey_eval: bool = False
    n_train: int | None = None
    n_eval: int | None = None
    subset_seed: int = 0
    seed: int = 0
    dequantize: bool = False
    logit_alpha: float | None = None
    unit_variance: bool = False
    standardize: bool = False
    label_column: str | None = None
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    file_sha256: str | None = None
    file_shape: tuple[int, ...] | None = None
    file_kind: Literal["binary", "unit-interval", "real"] | None = None

    def validate(self) -> None:
        check(
            self.name in DATASET_NAMES or self.name == IN_MEMORY or looks_like_path(self.name),
            f"unknown data set {self.name!r}; available: {', '.join(DATASET_NAMES)}; for your "
            "own data give the path of a .npz, .npy, .csv or .tsv file or of a folder of "
            "images (e.g. ./my_images)",
        )
        check(
            0.0 < self.valid_fraction < 1.0 and 0.0 < self.test_fraction < 1.0
            and self.valid_fraction + self.test_fraction < 1.0,
            f"data.valid_fraction={self.valid_fraction} and data.test_fraction="
            f"{self.test_fraction} must each be in (0, 1) and leave some training data "
            "(sum < 1), e.g. 0.1 and 0.1",
        )
        check(
            self.label_column is None or is_user_data(self.name),
            "data.label_column applies to your own CSV / TSV files; use data.label_column=none",
        )
        check(
            self.file_sha256 is None
            or (len(self.file_sha256) == 64
                and all(c in "0123456789abcdef" for c in self.file_sha256)),
            f"data.file_sha256={self.file_sha256!r} is not a SHA-256 (64 hex digits)",
        )
        check(0.0 < self.threshold < 1.0, f"data.threshold={self.threshold} must be in (0, 1)")
        check(self.n_train is None or self.n_train > 0, "data.n_train must be positive or none")
        check(self.n_eval is None or self.n_eval > 0, "data.n_eval must be positive or none")
        if self.name in ("binarized-mnist", "caltech-silhouettes"):
            check(
                self.binarize == "none",
                f"data set {self.name!r} is binary already; use data.binarize=none",
            )
        check(
            not self.grey_eval or (self.binarize != "none" and self.name in GREY_LEVELS),
            "data.grey_eval keeps the grey levels of valid/test while train is binarized: it "
            f"needs a grey-level set ({', '.join(GREY_LEVELS)}) with data.binarize=dynamic or "
            "threshold",
        )
        if self.dequantize:
            check(
                self.name in GREY_LEVELS or is_user_data(self.name),
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
            not self.standardize or self.dequantize or is_user_data(self.name),
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
