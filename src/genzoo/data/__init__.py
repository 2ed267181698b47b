"""Data sets, their files and checksums, and binarization.

``load_data(DataConfig(name="mnist", binarize="dynamic"))`` returns a :class:`DataBundle` of
train / valid / test :class:`Split` tensors. Files are read from ``$GENZOO_DATA`` (default: the
user cache folder), verified by SHA-256, and downloaded only when missing and
``GENZOO_OFFLINE`` is unset.
"""

from __future__ import annotations

from genzoo.data.config import DATASET_NAMES, IMAGE_SHAPES, DataConfig
from genzoo.data.datasets import DataBundle, Split, describe_datasets, load_data
from genzoo.data.files import data_dir, ensure_file

__all__ = [
    "DATASET_NAMES",
    "IMAGE_SHAPES",
    "DataBundle",
    "DataConfig",
    "Split",
    "data_dir",
    "describe_datasets",
    "ensure_file",
    "load_data",
]
