"""The Trainer's sample grid goes through the data bundle's ``to_images``: real-valued data in
model space (DC-removed 63-pixel image patches) still get a samples.png."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from genzoo.data.patches import patch_images
from genzoo.training.model_calls import write_samples


class PatchModel(torch.nn.Module):
    """Samples 63 DC-removed pixels, as the image-patches models do."""

    def sample(self, n, generator=None):
        return 0.1 * torch.randn(n, 63, generator=generator, dtype=torch.float64)


def test_samples_are_mapped_to_pixels_by_to_images(tmp_path):
    path = tmp_path / "samples.png"
    g = torch.Generator().manual_seed(0)
    write_samples(PatchModel(), 6, (8, 8), g, path, to_images=patch_images)
    grid = np.asarray(Image.open(path))
    assert grid.ndim == 2 and grid.size > 6 * 64
    # The patches are centred on mid-grey (the DC level to_images adds back), not on black.
    assert 90 < grid.mean() < 165


def test_without_to_images_model_space_samples_are_not_drawn(tmp_path):
    path = tmp_path / "samples.png"
    with pytest.warns(UserWarning, match=r"not \(n, 64\)"):
        write_samples(PatchModel(), 6, (8, 8), torch.Generator().manual_seed(0), path)
    assert not path.exists()


class OverflowingModel(torch.nn.Module):
    """A sampler whose draws overflow to Inf for some examples (far from the data)."""

    def sample(self, n, generator=None):
        x = torch.rand(n, 64, generator=generator)
        x[1, 5] = float("inf")
        return x


def test_non_finite_samples_warn_and_draw_no_grid(tmp_path):
    path = tmp_path / "samples.png"
    with pytest.warns(UserWarning, match="1 of 6 samples hold NaN or Inf"):
        write_samples(OverflowingModel(), 6, (8, 8), torch.Generator().manual_seed(0), path)
    assert not path.exists()


def test_the_trainer_passes_the_bundles_to_images(tmp_path, toy, bundle):
    from genzoo.training import Trainer

    calls = []

    def to_images(x):
        calls.append(tuple(x.shape))
        return x.clamp(0, 1)

    bundle.to_images = to_images
    cfg = toy.make_config(max_steps=2)
    Trainer(toy.build(cfg), cfg, bundle, tmp_path / "run").fit()
    assert calls == [(cfg.train.grid_samples, toy.D)]
    assert (tmp_path / "run" / "samples.png").exists()
