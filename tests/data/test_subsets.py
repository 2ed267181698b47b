"""``data.n_train`` / ``data.n_eval``: a subset of a split is a seeded random draw (stratified by
label where there are labels), so it represents the split even when the file is sorted by class;
the seed is ``data.subset_seed``, recorded in the run's config, and ``genzoo evaluate`` takes
the subset settings too."""

from __future__ import annotations

import json

import pytest
import torch

from genzoo.cli import EXIT_USER_ERROR, main
from genzoo.data import DataConfig, datasets, load_data
from genzoo.data.datasets import Split, subset_indices
from genzoo.run_config import RunConfig

N_CLASSES, PER_CLASS, D = 10, 40, 6


def _sorted_split(labelled: bool) -> Split:
    """A split sorted by class, as binarized MNIST's test split is; the class is also written
    into the first pixel (class / 10), so it can be read back without labels."""
    y = torch.arange(N_CLASSES).repeat_interleave(PER_CLASS)
    x = torch.rand(len(y), D, generator=torch.Generator().manual_seed(0))
    x[:, 0] = y / N_CLASSES
    return Split(x, y if labelled else None)


@pytest.fixture
def class_sorted(monkeypatch):
    """Replace the digits loader by class-sorted splits; ``labelled`` chooses whether they carry
    labels (the stratified draw) or not (the plain random draw)."""

    def install(labelled: bool) -> None:
        def loader(seed: int):
            splits = [_sorted_split(labelled) for _ in range(3)]
            return splits, "class-sorted toy", "sorted by class"

        monkeypatch.setitem(datasets._LOADERS, "digits", loader)

    return install


def _classes(split: Split) -> torch.Tensor:
    return (split.x[:, 0] * N_CLASSES).round().long()


@pytest.mark.parametrize("labelled", [True, False])
def test_a_subset_of_a_class_sorted_split_holds_every_class(class_sorted, labelled):
    class_sorted(labelled)
    d = load_data(DataConfig(name="digits", n_train=150, n_eval=100))
    assert (len(d.train), len(d.valid), len(d.test)) == (150, 100, 100)
    for split in (d.train, d.valid, d.test):
        counts = torch.bincount(_classes(split), minlength=N_CLASSES)
        assert (counts > 0).all(), counts  # a prefix would hold class 0 alone
        if labelled:  # stratified: each class in proportion to its share, rounded
            assert counts.max() - counts.min() <= 1, counts
            assert torch.equal(split.y, _classes(split))  # labels stay with their examples


def test_stratified_indices_follow_the_class_shares():
    y = torch.tensor([0] * 600 + [1] * 300 + [2] * 100)
    idx = subset_indices(len(y), 100, y, torch.Generator().manual_seed(1))
    assert idx.shape == (100,) and torch.equal(idx, idx.unique())  # ascending, no repeats
    assert torch.bincount(y[idx]).tolist() == [60, 30, 10]
    assert subset_indices(len(y), len(y), y, torch.Generator()) is None  # keeps all
    assert subset_indices(len(y), None, y, torch.Generator()) is None


def test_same_seed_same_subset_and_another_seed_another():
    cfg = DataConfig(name="digits", n_train=100, n_eval=20, binarize="dynamic")
    a, b = load_data(cfg), load_data(cfg)
    c = load_data(cfg.replace(subset_seed=1))
    full = load_data(cfg.replace(n_train=None, n_eval=None))
    for name in ("train", "valid", "test"):
        assert torch.equal(a.split(name).x, b.split(name).x)
        assert torch.equal(a.split(name).y, b.split(name).y)
        assert not torch.equal(a.split(name).x, c.split(name).x)
    assert torch.equal(a.train_x(3), b.train_x(3))
    # The subset seed chooses examples only: their values (the valid/test binarization draw)
    # are those of the whole split.
    rows = {tuple(r.tolist()) for r in full.test.x}
    assert all(tuple(r.tolist()) in rows for r in c.test.x)
    assert "subset_seed 1" in c.description and "100/20/20" in c.description


def test_dequantized_subsets_keep_their_grey_levels():
    cfg = DataConfig(name="digits", dequantize=True, standardize=True, n_train=60)
    d = load_data(cfg)
    assert d.train_levels.shape == (60, 64) and len(d.train) == 60
    # train.x is the epoch-0 dequantisation of exactly the kept grey levels.
    assert torch.equal(d.train_x(0), d.train.x)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny FVSBN trained on 200 digits, scored on 50 (its config records the subsets)."""
    out = tmp_path_factory.mktemp("subsets") / "run"
    assert main([
        "train", "fvsbn", "--data", "digits", "--set", "data.binarize=threshold",
        "--set", "data.n_train=200", "--set", "data.n_eval=50", "--set", "data.subset_seed=7",
        "--set", "train.epochs=1", "--set", "train.progress=false",
        "--set", "train.grid_samples=0", "--out", str(out),
    ]) == 0  # fmt: skip
    return out


def test_the_run_config_records_the_subset_seed(run):
    saved = json.loads((run / "config.json").read_text())["data"]
    assert (saved["n_train"], saved["n_eval"], saved["subset_seed"]) == (200, 50, 7)
    assert RunConfig.default("rbm").to_dict()["data"]["subset_seed"] == 0


def test_evaluate_takes_the_subset_settings(run, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert default["n_examples"] == 50 and "subset_seed 7" in default["data_description"]

    argv = ["evaluate", str(run), "--json", "--set", "data.n_eval=20"]
    assert main([*argv, "--set", "data.subset_seed=3"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main([*argv, "--set", "data.subset_seed=3"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert main([*argv, "--set", "data.subset_seed=4"]) == 0
    other = json.loads(capsys.readouterr().out)
    assert first["n_examples"] == 20 and "subset_seed 3" in first["data_description"]
    assert first["nll_nats"] == again["nll_nats"] != other["nll_nats"]


def test_evaluate_refuses_other_data_settings(run, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(run), "--set", "data.binarize=dynamic"]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "genzoo: error:" in err and "data.n_eval" in err and "data.subset_seed" in err


def test_binarized_mnist_test_subset_spans_the_sorted_split(real_file):
    real_file("binarized_mnist/binarized_mnist.npz")
    full = load_data(DataConfig(name="binarized-mnist")).test.x
    sub = load_data(DataConfig(name="binarized-mnist", n_eval=500)).test.x
    where = {bytes(r): i for i, r in enumerate(full.to(torch.uint8).numpy())}
    idx = torch.tensor([where[bytes(r)] for r in sub.to(torch.uint8).numpy()])
    # The file is sorted by class, about 1000 test digits each: every tenth is represented.
    assert len(sub) == 500 and set((idx * 10 // len(full)).tolist()) == set(range(10))
