"""Data sets, their files and checksums, and binarization.

``load_data(DataConfig(name="mnist", binarize="dynamic"))`` returns a :class:`DataBundle` of
train / valid / test :class:`Split` tensors. Files are read from ``$GENZOO_DATA`` (default: the
user cache folder), verified by SHA-256, and downloaded only when missing and
``GENZOO_OFFLINE`` is unset.

Real-valued data (``image-patches``, or ``data.dequantize`` / ``data.logit_alpha`` on grey-level
sets) carry ``bundle.transform``, a :class:`ValueTransform` from the data space that likelihoods
are reported in to the model space the splits hold: ``bundle.log_det_jacobian(y)`` and
``bundle.to_images(y)`` map back.

Your own data: ``DataConfig(name="my_data.npz")`` (or a ``.npy``, ``.csv``, ``.tsv`` file, or a
folder of images) takes the same path; see :mod:`genzoo.data.user`.
"""

from __future__ import annotations

from genzoo.data.config import DATASET_NAMES, IMAGE_SHAPES, IN_MEMORY, DataConfig
from genzoo.data.datasets import (
    DataBundle,
    Split,
    describe_datasets,
    image_shape_of,
    load_data,
    recorded_config,
)
from genzoo.data.files import data_dir, ensure_file
from genzoo.data.transforms import ValueTransform

__all__ = [
    "DATASET_NAMES",
    "IMAGE_SHAPES",
    "IN_MEMORY",
    "DataBundle",
    "DataConfig",
    "Split",
    "ValueTransform",
    "data_dir",
    "describe_datasets",
    "ensure_file",
    "image_shape_of",
    "load_data",
    "recorded_config",
]
