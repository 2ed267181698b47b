"""Your own data (genzoo.data.user through load_data): every format round-trips from files made
here (binary, grey, real; labelled and not; split in the file and not), every error a user's
data can cause is refused with the fix, and a run on a user file trains, evaluates, and refuses
the file once it has changed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from genzoo.core.errors import ConfigError, DataError
from genzoo.data import DataConfig, load_data
from genzoo.data.user import resolve_path

RNG = np.random.default_rng(0)


def _load(path, **settings):
    return load_data(DataConfig(name=str(path), **settings))


def _rows(bundle) -> np.ndarray:
    """Every example of the three splits, rows sorted: the data set whatever the split."""
    x = torch.cat([bundle.train.x, bundle.valid.x, bundle.test.x]).numpy()
    return x[np.lexsort(x.T[::-1])]


def _sorted(x: np.ndarray) -> np.ndarray:
    x = x.reshape(len(x), -1).astype(np.float32)
    return x[np.lexsort(x.T[::-1])]


# ------------------------------------------------------------------------- round trips


def test_npz_binary_labelled_not_split(tmp_path):
    x = (RNG.random((50, 4, 4)) > 0.5).astype(np.uint8)
    y = RNG.integers(0, 3, 50)
    np.savez(tmp_path / "b.npz", x=x, y=y)
    b = _load(tmp_path / "b.npz")
    assert [len(s) for s in (b.train, b.valid, b.test)] == [40, 5, 5]
    assert b.binary and b.image_shape == (4, 4) and b.n_features == 16
    np.testing.assert_array_equal(_rows(b), _sorted(x))
    # Labels travel with their examples.
    for s in (b.train, b.valid, b.test):
        for xi, yi in zip(s.x, s.y):
            matches = np.nonzero((x.reshape(50, -1) == xi.numpy()).all(1))[0]
            assert int(yi) in y[matches]
    assert b.file_record["file_kind"] == "binary"
    assert b.file_record["file_shape"] == (50, 4, 4)
    assert len(b.file_record["file_sha256"]) == 64


def test_npz_grey_unlabelled_binarize_subsets_and_seeded_split(tmp_path):
    x = RNG.random((60, 9)).astype(np.float32)
    np.savez(tmp_path / "g.npz", x=x)
    b = _load(tmp_path / "g.npz")
    assert not b.binary and b.train.y is None and b.file_record["file_kind"] == "unit-interval"
    np.testing.assert_array_equal(_rows(b), _sorted(x))
    assert b.image_shape == (3, 3)
    # The split is a function of data.seed.
    again, other = _load(tmp_path / "g.npz"), _load(tmp_path / "g.npz", seed=1)
    assert torch.equal(again.test.x, b.test.x) and not torch.equal(other.test.x, b.test.x)
    # The existing options apply: dynamic binarization, subsets, fractions.
    d = _load(tmp_path / "g.npz", binarize="dynamic", n_train=10, n_eval=3,
              valid_fraction=0.2, test_fraction=0.3)
    assert d.binary and len(d.train) == 10 and len(d.valid) == len(d.test) == 3
    assert set(d.train_x(0).unique().tolist()) <= {0.0, 1.0}
    assert set(d.test.x.unique().tolist()) <= {0.0, 1.0}
    t = _load(tmp_path / "g.npz", binarize="threshold", threshold=0.5)
    assert torch.equal(t.train.x, (b.train.x > 0.5).float())
    assert [len(s) for s in (_load(tmp_path / "g.npz", valid_fraction=0.2,
                                   test_fraction=0.3).train,)] == [30]


def test_npz_pre_split_labelled_keeps_the_splits(tmp_path):
    parts = {s: RNG.random((n, 5)).astype(np.float32) for s, n in
             (("train", 30), ("valid", 7), ("test", 8))}
    labels = {s: RNG.integers(0, 4, len(v)) for s, v in parts.items()}
    np.savez(tmp_path / "s.npz", **{f"{s}_x": v for s, v in parts.items()},
             **{f"{s}_y": v for s, v in labels.items()})
    b = _load(tmp_path / "s.npz")
    for s in ("train", "valid", "test"):
        np.testing.assert_array_equal(b.split(s).x.numpy(), parts[s])
        np.testing.assert_array_equal(b.split(s).y.numpy(), labels[s])
    assert "split as in the file" in b.description
    assert b.file_record["file_shape"] == (45, 5)


def test_npz_with_train_and_test_only_draws_valid_from_train(tmp_path):
    train, test = RNG.random((40, 3)), RNG.random((10, 3))
    np.savez(tmp_path / "tt.npz", train_x=train, test_x=test)
    b = _load(tmp_path / "tt.npz")
    assert [len(s) for s in (b.train, b.valid, b.test)] == [36, 4, 10]
    np.testing.assert_array_equal(b.test.x.numpy(), test.astype(np.float32))
    both = torch.cat([b.train.x, b.valid.x]).numpy()
    np.testing.assert_array_equal(_sorted(both), _sorted(train))


def test_npy_real_valued_standardized(tmp_path):
    x = (RNG.normal(size=(100, 4)) * [1, 2, 3, 4] + 5).astype(np.float64)
    np.save(tmp_path / "r.npy", x)
    raw = _load(tmp_path / "r.npy")
    assert raw.file_record["file_kind"] == "real" and raw.transform is None
    assert "real-valued" in raw.description
    np.testing.assert_allclose(_rows(raw), _sorted(x), rtol=1e-6)
    s = _load(tmp_path / "r.npy", standardize=True)
    assert s.transform is not None
    np.testing.assert_allclose(s.train.x.mean(0).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(s.train.x.std(0, unbiased=False).numpy(), 1, atol=1e-4)
    # Back to the data's own values, with the Jacobian of the standardisation.
    np.testing.assert_allclose(s.transform.inverse(s.test.x.double()).numpy(),
                               raw.test.x.numpy(), rtol=1e-5)
    ld = s.log_det_jacobian(s.test.x)
    expected = -np.log(raw.train.x.double().std(0, unbiased=False).numpy()).sum()
    np.testing.assert_allclose(ld.numpy(), expected, rtol=1e-6)


def test_uint8_grey_levels_divide_by_255_and_dequantize(tmp_path):
    x = RNG.integers(0, 256, (30, 2, 3), dtype=np.uint8)
    np.save(tmp_path / "u.npy", x)
    b = _load(tmp_path / "u.npy")
    np.testing.assert_allclose(_rows(b), _sorted(x / 255.0), rtol=1e-6)
    d = _load(tmp_path / "u.npy", dequantize=True)
    levels = np.floor(d.test.x.numpy() * 256)  # (k + u) / 256 with u in [0, 1)
    np.testing.assert_array_equal(levels, np.round(b.test.x.numpy() * 255))
    assert d.transform.levels == 256 and d.train_levels is not None


def test_csv_with_header_and_word_labels(tmp_path):
    x = RNG.normal(size=(20, 3)).round(3)
    labels = RNG.choice(["cat", "dog"], 20)
    lines = ["a,label,c,d"] + [f"{r[0]},{lab},{r[1]},{r[2]}" for r, lab in zip(x, labels)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    b = _load(tmp_path / "t.csv", label_column="label", valid_fraction=0.2, test_fraction=0.2)
    assert b.n_features == 3 and [len(s) for s in (b.train, b.valid, b.test)] == [12, 4, 4]
    np.testing.assert_allclose(_rows(b), _sorted(x), rtol=1e-6)
    y = torch.cat([b.train.y, b.valid.y, b.test.y])
    assert sorted(y.tolist()) == sorted((labels == "dog").astype(int).tolist())
    assert "header" in b.description


def test_tsv_without_header_label_column_by_index(tmp_path):
    x = (RNG.random((12, 4)) > 0.5).astype(int)
    y = RNG.integers(0, 3, 12)
    rows = ["\t".join(str(v) for v in [*r, lab]) for r, lab in zip(x, y)]
    (tmp_path / "t.tsv").write_text("\n".join(rows) + "\n")
    b = _load(tmp_path / "t.tsv", label_column="-1")
    assert b.binary and b.n_features == 4
    np.testing.assert_array_equal(_rows(b), _sorted(x))
    assert sorted(torch.cat([b.train.y, b.valid.y, b.test.y]).tolist()) == sorted(y.tolist())
    unlabelled = _load(tmp_path / "t.tsv")
    assert unlabelled.n_features == 5 and unlabelled.train.y is None


def _png_folder(root, classes, n=4, size=(5, 3), mode="L"):
    for c in classes:
        folder = root / c if c else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
            Image.fromarray(RNG.integers(0, 256, shape, dtype=np.uint8), mode).save(
                folder / f"{i}.png")


def test_folder_of_grey_pngs_labelled_by_subfolder(tmp_path):
    _png_folder(tmp_path / "imgs", ["cats", "dogs"], n=5, size=(5, 3))
    b = _load(tmp_path / "imgs")
    assert b.n_features == 15 and b.image_shape == (3, 5)
    assert b.file_record["file_shape"] == (10, 1, 3, 5)
    expected = np.stack([np.asarray(Image.open(p)) for d in ("cats", "dogs")
                         for p in sorted((tmp_path / "imgs" / d).iterdir())]) / 255.0
    np.testing.assert_allclose(_rows(b), _sorted(expected), rtol=1e-6)
    assert sorted(torch.cat([b.train.y, b.valid.y, b.test.y]).tolist()) == [0] * 5 + [1] * 5


def test_folder_of_rgb_pngs_unlabelled_channels_first(tmp_path):
    _png_folder(tmp_path / "rgb", [None], n=6, size=(4, 2), mode="RGB")
    b = _load(tmp_path / "rgb")
    assert b.n_features == 24 and b.train.y is None
    assert b.file_record["file_shape"] == (6, 3, 2, 4) and b.image_shape == (6, 4)
    first = np.asarray(Image.open(tmp_path / "rgb" / "0.png")).transpose(2, 0, 1) / 255.0
    rows = _rows(b)
    assert any(np.allclose(r, first.reshape(-1), rtol=1e-6) for r in rows)


def test_folder_of_jpegs(tmp_path):
    (tmp_path / "j").mkdir()
    for i in range(4):
        Image.fromarray(RNG.integers(0, 256, (4, 4), dtype=np.uint8)).save(
            tmp_path / "j" / f"{i}.jpg")
    b = _load(tmp_path / "j")
    assert b.n_features == 16 and b.file_record["file_kind"] == "unit-interval"


def test_arrays_tensors_and_datasets_in_memory():
    x = (RNG.random((20, 6)) > 0.5).astype(np.float32)
    y = RNG.integers(0, 2, 20)
    cfg = DataConfig(name="in-memory")
    from_np = load_data(cfg, x)
    from_torch = load_data(cfg, torch.from_numpy(x))
    from_pair = load_data(cfg, (x, y))
    from_ds = load_data(cfg, torch.utils.data.TensorDataset(torch.from_numpy(x),
                                                            torch.from_numpy(y)))
    for b in (from_np, from_torch, from_pair, from_ds):
        np.testing.assert_array_equal(_rows(b), _sorted(x))
        assert b.binary
    assert torch.equal(from_pair.test.y, from_ds.test.y)
    assert from_np.file_record["file_sha256"] == from_torch.file_record["file_sha256"]
    with pytest.raises(DataError, match="cannot read again"):
        load_data(cfg)


def test_a_path_is_recorded_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_path("d.npz") == str(tmp_path / "d.npz")
    assert resolve_path("digits") == "digits" and resolve_path("mnsit") == "mnsit"


# ---------------------------------------------------------------------------- refusals


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("name", "text", "settings", "match"),
    [
        ("ragged.csv", "1,2,3\n4,5\n", {}, r"line 2: 2 fields .*ragged.*same number of columns"),
        ("nan.csv", "1,2\nnan,4\n5,6\n", {}, r"NaN or Inf.*example \d.*impute"),
        ("inf.csv", "1,2\n3,inf\n5,6\n", {}, r"NaN or Inf"),
        ("words.csv", "a,b\n1,x\n2,3\n", {}, (r"line 2, column 1 \('b'\): 'x' is not a number.*"
         "label_column")),
        ("one.csv", "1,2,3\n", {}, r"1 example\(s\).*give more examples"),
        ("header.csv", "a,b\n", {}, r"header and no examples"),
        ("blank.csv", "\n\n", {}, r"holds no rows"),
        ("nolabel.csv", "a,b\n1,2\n3,4\n5,6\n", {"label_column": "c"},
         r"no column 'c' for data.label_column; columns: a, b"),
        ("data.xlsx", "1,2\n", {}, r"unknown extension '.xlsx'.*\.npz, \.npy, \.csv"),
    ],
)
def test_text_refusals(tmp_path, name, text, settings, match):
    with pytest.raises(DataError, match=match):
        _load(_write(tmp_path, name, text), **settings)


def test_empty_file_refused(tmp_path):
    (tmp_path / "e.npz").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty \(0 bytes\)"):
        _load(tmp_path / "e.npz")


def test_missing_file_refused(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        _load(tmp_path / "absent.npz")


def test_array_refusals(tmp_path):
    np.savez(tmp_path / "y.npz", x=RNG.random((10, 3)), y=np.arange(9))
    with pytest.raises(DataError, match="9 labels for 10 examples; give one label per"):
        _load(tmp_path / "y.npz")
    np.savez(tmp_path / "keys.npz", images=RNG.random((10, 3)))
    with pytest.raises(DataError, match=r"holds the arrays images.*numpy.savez"):
        _load(tmp_path / "keys.npz")
    np.savez(tmp_path / "some.npz", train_x=RNG.random((10, 3)), test_x=RNG.random((4, 3)),
             train_y=np.zeros(10))
    with pytest.raises(DataError, match="labels are given for some splits but not others"):
        _load(tmp_path / "some.npz")
    np.save(tmp_path / "one.npy", RNG.random((1, 5)))
    with pytest.raises(DataError, match="1 example"):
        _load(tmp_path / "one.npy")
    np.save(tmp_path / "flat.npy", RNG.random(5))
    with pytest.raises(DataError, match="no examples"):
        _load(tmp_path / "flat.npy")
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan]] * 4))
    with pytest.raises(DataError, match="NaN or Inf"):
        _load(tmp_path / "nan.npy")
    np.save(tmp_path / "str.npy", np.array([["a", "b"]] * 4))
    with pytest.raises(DataError, match="not numbers"):
        _load(tmp_path / "str.npy")
    with pytest.raises(DataError, match="3 in all"):
        load_data(DataConfig(name="in-memory"), RNG.random((2, 3)))
    np.savez(tmp_path / "few.npz", train_x=RNG.random((1, 3)), test_x=RNG.random((4, 3)))
    with pytest.raises(DataError, match="too few to draw 1 for valid / test"):
        _load(tmp_path / "few.npz")


def test_image_folder_refusals(tmp_path):
    _png_folder(tmp_path / "mixed", [None], n=2, size=(4, 4))
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(tmp_path / "mixed" / "z.png")
    with pytest.raises(DataError, match=r"images of different sizes: .* is 4x4, .*z.png is 4x5"
                       r".*resize"):
        _load(tmp_path / "mixed")
    (tmp_path / "none" / "sub").mkdir(parents=True)
    (tmp_path / "none" / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="holds no images"):
        _load(tmp_path / "none")
    _png_folder(tmp_path / "both", [None, "a"], n=2)
    with pytest.raises(DataError, match="both directly and in subfolders"):
        _load(tmp_path / "both")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="not a readable image"):
        _load(tmp_path / "bad")


def test_options_that_do_not_fit_the_data_are_refused(tmp_path):
    np.save(tmp_path / "b.npy", (RNG.random((20, 4)) > 0.5).astype(np.float32))
    np.save(tmp_path / "r.npy", RNG.normal(size=(20, 4)))
    np.save(tmp_path / "g.npy", RNG.random((20, 4)))
    with pytest.raises(DataError, match="binary already; use data.binarize=none"):
        _load(tmp_path / "b.npy", binarize="dynamic")
    with pytest.raises(DataError, match=r"needs values in \[0, 1\].*rescale"):
        _load(tmp_path / "r.npy", binarize="threshold")
    with pytest.raises(DataError, match="dequantize needs integer grey levels.*uint8"):
        _load(tmp_path / "g.npy", dequantize=True)
    with pytest.raises(ConfigError, match="leave some training data"):
        DataConfig(name="x.npz", valid_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ConfigError, match="unknown data set 'mnsit'.*own data give the path"):
        DataConfig(name="mnsit")
    with pytest.raises(ConfigError, match="label_column applies to your own"):
        DataConfig(name="digits", label_column="y")


def test_changed_file_is_refused_unless_allowed(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=RNG.random((10, 3)))
    first = _load(path)
    cfg = DataConfig(name=str(path)).replace(**first.file_record)
    assert torch.equal(load_data(cfg).test.x, first.test.x)  # unchanged: accepted
    np.savez(path, x=RNG.random((10, 3)))
    with pytest.raises(DataError, match="changed since the run was trained.*--allow-changed"):
        load_data(cfg)
    assert len(load_data(cfg, allow_changed=True).test) == 1


# ------------------------------------------------------------------- the command line


def test_train_and_evaluate_on_a_user_npz_through_the_cli(tmp_path, capsys):
    from genzoo.cli import main

    data = tmp_path / "mine.npz"
    np.savez(data, x=(RNG.random((80, 3, 3)) > 0.5).astype(np.uint8), y=RNG.integers(0, 2, 80))
    run = tmp_path / "run"
    tiny = ["--set", "model.n_hidden=4", "--set", "train.epochs=1", "--set",
            "train.progress=false", "--set", "train.grid_samples=4"]
    assert main(["train", "rbm", "--data", str(data), *tiny, "--out", str(run)]) == 0
    cfg = json.loads((run / "config.json").read_text())["data"]
    assert cfg["name"] == str(data) and cfg["file_kind"] == "binary"
    assert cfg["file_shape"] == [80, 3, 3] and len(cfg["file_sha256"]) == 64
    assert cfg["valid_fraction"] == 0.1
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["estimator"] == "exact enumeration" and report["n_examples"] == 8
    assert report["data"] == str(data)
    assert main(["sample", str(run), "-n", "4", "--out", str(tmp_path / "s.png")]) == 0
    np.savez(data, x=(RNG.random((80, 3, 3)) > 0.5).astype(np.uint8))
    assert main(["evaluate", str(run)]) == 2
    assert "changed since the run was trained" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--json", "--allow-changed-data"]) == 0


def test_a_relative_path_is_recorded_absolute_by_train(tmp_path, monkeypatch):
    from genzoo.cli import main

    monkeypatch.chdir(tmp_path)
    np.save("v.npy", (RNG.random((30, 4)) > 0.5).astype(np.float32))
    tiny = ["--set", "model.n_hidden=2", "--set", "train.epochs=1", "--set",
            "train.progress=false", "--set", "train.grid_samples=4"]
    assert main(["train", "rbm", "--set", "data.name=./v.npy", *tiny, "--out", "run"]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"]["name"] == str(
        tmp_path / "v.npy")


def test_a_bernoulli_model_refuses_grey_user_data_with_the_fix(tmp_path, capsys):
    from genzoo.cli import main

    np.savez(tmp_path / "grey.npz", x=RNG.random((30, 4)))
    out = tmp_path / "run"
    assert main(["train", "rbm", "--data", str(tmp_path / "grey.npz"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "grey levels" in err and "data.binarize=dynamic" in err
    assert main(["train", "rbm", "--data", str(tmp_path / "grey.npz"), "--out", str(out),
                 "--set", "data.binarize=dynamic", "--set", "train.epochs=1",
                 "--set", "train.progress=false", "--set", "model.n_hidden=3"]) == 0
