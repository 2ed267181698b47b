"""8x8 natural image patches from the two sample images scikit-learn ships (``china.jpg`` and
``flower.jpg``, 427x640 RGB each; read offline with ``sklearn.datasets.load_sample_images``).

The preprocessing follows the BSDS300 patch benchmark of Uria, Murray & Larochelle (2013,
RNADE), on other images:

1. grey levels: round(0.299 R + 0.587 G + 0.114 B), integers 0..255 (ITU-R BT.601 luma);
2. the 640 columns of each image are cut into 20 blocks of 32; in every run of 10 blocks the
   8th gives valid patches, the 9th test patches and the other 8 train patches, so the three
   splits share no pixel yet each spans the whole width of both images;
3. a patch lies inside one block: its block and top-left corner are drawn uniformly by a
   generator seeded from ``seed`` (half the patches of a split from each image):
   40000 / 5000 / 5000;
4. dequantisation x = (k + u) / 256 with u ~ U(0, 1) from the same seeded stream;
5. DC removal: the patch mean is subtracted, which makes the 64 values sum to zero, so the last
   pixel (bottom-right) is dropped and D = 63; :func:`patch_images` puts it back.

Likelihoods are densities of those 63 values (nats per patch), the space RNADE reports in; the
numbers are not comparable digit for digit with BSDS300 ones (other images, fewer patches).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

PATCH = 8
SIZES = (40000, 5000, 5000)
BLOCK = 32
# The 32-column blocks (start columns) of each split; 640 columns in each image.
_SPLIT_OF_BLOCK = {7: 1, 8: 2}  # block number mod 10 -> valid (1) or test (2); else train
BLOCKS = tuple(
    tuple(b * BLOCK for b in range(20) if _SPLIT_OF_BLOCK.get(b % 10, 0) == i) for i in range(3)
)
LEVELS = 256


@functools.lru_cache(maxsize=1)
def grey_images() -> tuple[np.ndarray, ...]:
    """The scikit-learn sample images as (H, W) uint8 grey levels (read-only, cached: decoding
    the JPEGs takes about a second)."""
    from sklearn.datasets import load_sample_images

    weights = np.array([0.299, 0.587, 0.114])
    out = []
    for img in load_sample_images().images:
        grey = np.rint(img.astype(np.float64) @ weights).clip(0, 255).astype(np.uint8)
        grey.setflags(write=False)
        out.append(grey)
    return tuple(out)


def extract_patches(generator: torch.Generator) -> list[torch.Tensor]:
    """Train / valid / test patches, each (N, 63) float32, dequantised, DC removed, last pixel
    dropped; drawn with ``generator`` as the module docstring describes."""
    images = grey_images()
    out = []
    for n, blocks in zip(SIZES, BLOCKS):
        starts = torch.tensor(blocks)
        parts = []
        for k, img in enumerate(images):
            m = n // len(images) + (k < n % len(images))
            rows = torch.randint(0, img.shape[0] - PATCH + 1, (m,), generator=generator)
            block = starts[torch.randint(0, len(starts), (m,), generator=generator)]
            cols = block + torch.randint(0, BLOCK - PATCH + 1, (m,), generator=generator)
            offsets = torch.arange(PATCH)
            r = (rows[:, None] + offsets)[:, :, None]
            c = (cols[:, None] + offsets)[:, None, :]
            parts.append(torch.from_numpy(img.copy())[r, c].reshape(m, PATCH * PATCH))
        levels = torch.cat(parts)
        u = torch.rand(levels.shape, generator=generator, dtype=torch.float64)
        x = (levels.to(torch.float64) + u) / LEVELS
        x = x - x.mean(dim=1, keepdim=True)
        out.append(x[:, :-1].to(torch.float32))
    return out


def patch_images(x: torch.Tensor) -> torch.Tensor:
    """(N, 64) images in [0, 1] for display from (N, 63) DC-removed patches: the dropped pixel
    is minus the sum of the others, and mid-grey 0.5 is added back as the DC level."""
    last = -x.sum(dim=1, keepdim=True)
    return (torch.cat([x, last], dim=1) + 0.5).clamp(0.0, 1.0)
