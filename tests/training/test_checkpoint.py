"""Checkpoints: exact round trips without pickle (from and back to the device under test),
atomic commits, clear errors on damage."""

from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path

import pytest
import torch
from support import killed_at_rename

import genzoo
from genzoo.core.errors import CheckpointError
from genzoo.training import checkpoint as ckpt
from genzoo.training.checkpoint import (
    load_model,
    load_trainer_state,
    save_checkpoint,
    write_config,
)


def saved_run(toy, run: Path, step: int = 1, fill: float = 0.5, device="cpu"):
    cfg = toy.make_config()
    model = toy.build(cfg).to(device)
    with torch.no_grad():
        model.theta.fill_(fill)
        model.chain.fill_(1.0)
    save_checkpoint(run, model, cfg, {"step": step})
    return model, cfg


def rewrite(run: Path, name: str, data: bytes) -> None:
    """Replace a file and update the manifest to match, as a consistent forgery would."""
    (run / name).write_bytes(data)
    manifest = json.loads((run / "checkpoint.json").read_text())
    manifest["files"][name]["sha256"] = hashlib.sha256(data).hexdigest()
    manifest["files"][name]["size"] = len(data)  # the manifest bounds what is read
    (run / "checkpoint.json").write_text(json.dumps(manifest))


def test_model_round_trip_and_genzoo_load(toy, tmp_path, device):
    model, cfg = saved_run(toy, tmp_path / "run", device=device)
    loaded, loaded_cfg = load_model(tmp_path / "run", device=device)
    assert loaded_cfg == cfg and not loaded.training
    for k, v in model.state_dict().items():
        assert loaded.state_dict()[k].device == v.device, k
        assert torch.equal(loaded.state_dict()[k], v), k
    assert torch.equal(genzoo.load(tmp_path / "run").chain, model.chain.cpu())
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["checkpoint.json", "config.json", "model.safetensors",
                     "trainer_state.json", "trainer_state.safetensors"]
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == cfg.to_dict()


def _steps(model, opt, n, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.randn(5, 4, generator=g).to(model.weight.device)
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.999)),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
    ],
    ids=["adam", "sgd-momentum"],
)
def test_optimizer_state_round_trip_gives_identical_next_steps(toy, tmp_path, make_opt, device):
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3).to(device)
    opt = make_opt(net.parameters())
    _steps(net, opt, 3, seed=1)
    cfg = toy.make_config()
    save_checkpoint(tmp_path, net, cfg, {"step": 3, "optimizer": opt.state_dict()})

    clone = torch.nn.Linear(4, 3).to(device)
    clone.load_state_dict(net.state_dict())
    opt2 = make_opt(clone.parameters())
    state = load_trainer_state(tmp_path)
    opt2.load_state_dict(state["optimizer"])
    ref = opt.state_dict()
    assert state["optimizer"]["param_groups"] == ref["param_groups"]  # tuples, ints, None kept
    assert set(state["optimizer"]["state"]) == set(ref["state"]) == {0, 1}
    _steps(net, opt, 2, seed=2)
    _steps(clone, opt2, 2, seed=2)
    for a, b in zip(net.parameters(), clone.parameters()):
        assert torch.equal(a, b)


def test_nested_trainer_state_round_trips_exactly(toy, tmp_path):
    model, cfg = saved_run(toy, tmp_path / "x")
    state = {
        "step": 7,
        "tuple": (1, 2.5, "a"),
        "int_keys": {0: torch.arange(3), 5: {"inner": torch.tensor(2.0)}},
        "floats": [float("nan"), float("inf"), -0.0, 1e-300],
        "none": None,
        "flag": True,
        "rng": torch.Generator().manual_seed(3).get_state(),
        "tag_like": {"__tensor__": "not a tensor"},
    }
    save_checkpoint(tmp_path / "run", model, cfg, state)
    back = load_trainer_state(tmp_path / "run")
    assert back["tuple"] == (1, 2.5, "a") and back["none"] is None and back["flag"] is True
    assert torch.equal(back["int_keys"][0], torch.arange(3))
    assert torch.equal(back["int_keys"][5]["inner"], torch.tensor(2.0))
    assert back["tag_like"] == {"__tensor__": "not a tensor"}
    nan, inf, zero, tiny = back["floats"]
    assert math.isnan(nan) and inf == float("inf") and str(zero) == "-0.0" and tiny == 1e-300
    assert torch.equal(back["rng"], state["rng"]) and back["rng"].dtype == torch.uint8
    # Strict JSON (no NaN literals) on disk.
    json.loads((tmp_path / "run" / "trainer_state.json").read_text(), parse_constant=pytest.fail)


def test_crash_before_the_manifest_keeps_the_previous_checkpoint(toy, tmp_path, monkeypatch):
    run = tmp_path / "run"
    model, cfg = saved_run(toy, run, step=1, fill=0.5)
    with torch.no_grad():
        model.theta.fill_(-3.0)

    def crash(*args, **kwargs):
        raise RuntimeError("killed")

    with monkeypatch.context() as patch, pytest.raises(RuntimeError, match="killed"):
        patch.setattr(ckpt, "_write_manifest", crash)
        save_checkpoint(run, model, cfg, {"step": 2})
    assert any(p.name.endswith(".pending") for p in run.iterdir())  # the new files, uncommitted
    (run / ".model.safetensors.x1y2.tmp").write_bytes(b"half a file")  # a stray temp file
    loaded, _ = load_model(run)
    assert torch.equal(loaded.theta, torch.full((toy.D,), 0.5))
    assert load_trainer_state(run)["step"] == 1
    # The next save succeeds and cleans up the leftovers.
    save_checkpoint(run, model, cfg, {"step": 3})
    assert not [p for p in run.iterdir() if p.name.endswith((".pending", ".tmp"))]
    assert torch.equal(load_model(run)[0].theta, torch.full((toy.D,), -3.0))


def test_crash_after_the_manifest_loads_the_new_checkpoint(toy, tmp_path, monkeypatch):
    run = tmp_path / "run"
    model, cfg = saved_run(toy, run, step=1, fill=0.5)
    with torch.no_grad():
        model.theta.fill_(2.0)
    with killed_at_rename(monkeypatch, ckpt, "model.safetensors.pending"):
        save_checkpoint(run, model, cfg, {"step": 2})
    # Committed: the new model is still under its pending name, and loading finds it.
    assert (run / "model.safetensors.pending").exists()
    assert torch.equal(load_model(run)[0].theta, torch.full((toy.D,), 2.0))
    assert load_trainer_state(run)["step"] == 2
    write_config(run, cfg)  # any later commit finishes the interrupted renames
    assert not (run / "model.safetensors.pending").exists()
    assert torch.equal(load_model(run)[0].theta, torch.full((toy.D,), 2.0))


def test_modified_and_truncated_files_are_refused_by_hash(toy, tmp_path):
    run = tmp_path / "run"
    saved_run(toy, run)
    data = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(data[:-7])
    with pytest.raises(CheckpointError) as info:
        load_model(run)
    msg = str(info.value)
    assert f"checkpoint in {run} is incomplete or was modified: model.safetensors has sha256" in msg
    assert "manifest says" in msg and "re-run training or restore the file" in msg
    (run / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load_model(run)


def test_truncated_safetensors_with_a_matching_manifest_is_refused(toy, tmp_path):
    run = tmp_path / "run"
    saved_run(toy, run)
    rewrite(run, "model.safetensors", (run / "model.safetensors").read_bytes()[:-7])
    with pytest.raises(CheckpointError, match="model.safetensors is not a readable safetensors"):
        load_model(run)


def test_safetensors_header_pointing_outside_the_file_is_refused(toy, tmp_path):
    run = tmp_path / "run"
    saved_run(toy, run)
    data = (run / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header["theta"]["data_offsets"] = [0, 10**9]
    new_header = json.dumps(header).encode()
    forged = struct.pack("<Q", len(new_header)) + new_header + data[8 + n :]
    (run / "model.safetensors").write_bytes(forged)
    with pytest.raises(CheckpointError, match="incomplete or was modified"):
        load_model(run)
    rewrite(run, "model.safetensors", forged)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(run)
    # A header length beyond the file is refused too.
    rewrite(run, "model.safetensors", struct.pack("<Q", 10**12) + data[8:])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(run)


def test_non_json_and_wrong_shapes_are_refused(toy, tmp_path):
    run = tmp_path / "run"
    saved_run(toy, run)
    good_config = (run / "config.json").read_bytes()
    rewrite(run, "config.json", b"{not json")
    with pytest.raises(CheckpointError, match="config.json is not valid JSON"):
        load_model(run)
    # A config that builds a different-sized model: the error names the key and both shapes.
    other = json.loads(good_config)
    other["model"]["n_visible"] = toy.D - 1
    rewrite(run, "config.json", json.dumps(other).encode())
    with pytest.raises(CheckpointError, match=r"'theta' has shape \(6,\) .* expects \(5,\)"):
        load_model(run)
    rewrite(run, "config.json", good_config)
    rewrite(run, "trainer_state.json", b"\xff\xfe")
    with pytest.raises(CheckpointError, match="trainer_state.json is not valid JSON"):
        load_trainer_state(run)
    (run / "checkpoint.json").write_text("[1, 2")
    with pytest.raises(CheckpointError, match="checkpoint.json is not valid JSON"):
        load_model(run)


def test_missing_run_directory_or_checkpoint(toy, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="checkpoint.json is missing"):
        load_model(tmp_path)
    model, cfg = saved_run(toy, tmp_path / "model-only", step=1)
    save_checkpoint(tmp_path / "model-only", model, cfg, None)
    assert not (tmp_path / "model-only" / "trainer_state.json").exists()
    with pytest.raises(CheckpointError, match="no trainer state"):
        load_trainer_state(tmp_path / "model-only")


def test_no_pickle_in_the_training_package():
    src = Path(ckpt.__file__).parent
    for path in list(src.glob("*.py")) + list((src.parent / "utils").glob("*.py")):
        text = path.read_text()
        assert "torch.load" not in text and "import pickle" not in text, path
