"""Tensors and nested state to and from safetensors + JSON, exactly and without pickle.

The model's ``state_dict()`` is one safetensors file, loaded back with strict key, shape and
dtype checks. Nested trainer state (e.g. ``optimizer.state_dict()``, whose state keys are ints
and whose param groups hold tuples) is split in two files: tensors go to safetensors under
their path, the rest to JSON, with tags for tuples, non-string dict keys, non-finite floats and
tensor references.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from genzoo.core.errors import CheckpointError
from genzoo.training.manifest import (
    FIX,
    MODEL_FILE,
    STATE_JSON_FILE,
    STATE_TENSORS_FILE,
    json_bytes,
    parse_json,
    read_verified,
)

STATE_VERSION = 1

_TAGS = ("__tensor__", "__tuple__", "__items__", "__float__")


# --------------------------------------------------------------------------- model state


def model_bytes(model: torch.nn.Module) -> bytes:
    """``model.state_dict()`` as the content of ``model.safetensors`` (tensors copied to CPU)."""
    # clone() so tied or viewed tensors do not share storage (safetensors refuses that).
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    return safetensors_bytes(tensors, MODEL_FILE)


def load_model_state(model: torch.nn.Module, run_dir: Path, manifest: dict[str, Any]) -> None:
    """Load the verified ``model.safetensors`` of ``run_dir`` into ``model``, refusing any
    missing or extra key, or a shape or dtype the model does not have."""
    tensors = checked_model_tensors(
        run_dir, read_verified(run_dir, manifest, MODEL_FILE)
    )
    where = run_dir / MODEL_FILE
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    if missing:
        raise CheckpointError(
            f"{where} lacks key {missing[0]!r} that {type(model).__name__} expects "
            f"({len(missing)} missing in all); the file and config.json come from different "
            f"models: {FIX}"
        )
    unexpected = [k for k in tensors if k not in expected]
    if unexpected:
        raise CheckpointError(
            f"{where} has key {unexpected[0]!r} that {type(model).__name__} does not have; "
            f"the file and config.json come from different models: {FIX}"
        )
    for key, want in expected.items():
        got = tensors[key]
        if tuple(got.shape) != tuple(want.shape):
            raise CheckpointError(
                f"{where}: key {key!r} has shape {tuple(got.shape)} but the model built from "
                f"config.json expects {tuple(want.shape)}; {FIX}"
            )
        if got.dtype != want.dtype:
            raise CheckpointError(
                f"{where}: key {key!r} has dtype {got.dtype} but the model expects "
                f"{want.dtype}; {FIX}"
            )
    model.load_state_dict(tensors, strict=True)


def checked_model_tensors(run_dir: Path, data: bytes) -> dict[str, torch.Tensor]:
    """The tensors of ``data`` (the verified content of ``run_dir``'s ``model.safetensors``);
    CheckpointError when it does not parse or a floating tensor holds NaN or Inf (a model
    that diverged is never a checkpoint genzoo commits)."""
    tensors = parse_safetensors(run_dir, MODEL_FILE, data)
    for key, value in tensors.items():
        if (value.is_floating_point() or value.is_complex()) and not bool(
            torch.isfinite(value).all()
        ):
            raise CheckpointError(
                f"{run_dir / MODEL_FILE}: {key!r} holds NaN or Inf, so this checkpoint cannot "
                "be used (it was modified, or saved from a diverged model); use the "
                f"checkpoint kept in {run_dir / 'previous'} if there is one (genzoo loads it "
                "when it is sound), else re-run training in a new run directory"
            )
    return tensors


# --------------------------------------------------------------------------- trainer state


def trainer_state_files(trainer_state: dict[str, Any]) -> dict[str, bytes]:
    """The two files of ``trainer_state``: ``{STATE_TENSORS_FILE: ..., STATE_JSON_FILE: ...}``."""
    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(trainer_state, "", tensors)
    doc = {"format_version": STATE_VERSION, "state": tree}
    return {
        STATE_TENSORS_FILE: safetensors_bytes(tensors, STATE_TENSORS_FILE),
        STATE_JSON_FILE: json_bytes(doc),
    }


def read_trainer_state(run_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The trainer state stored by :func:`trainer_state_files` in ``run_dir``, verified
    against ``manifest``, tensors on the CPU."""
    tensors = parse_safetensors(
        run_dir, STATE_TENSORS_FILE, read_verified(run_dir, manifest, STATE_TENSORS_FILE)
    )
    doc = parse_json(run_dir, STATE_JSON_FILE, read_verified(run_dir, manifest, STATE_JSON_FILE))
    if not isinstance(doc, dict) or doc.get("format_version") != STATE_VERSION:
        raise CheckpointError(
            f"{run_dir / STATE_JSON_FILE} has an unsupported format; use the genzoo version "
            "that wrote it or start a fresh run"
        )
    try:
        return _decode(doc["state"], tensors)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{run_dir / STATE_JSON_FILE} does not match {STATE_TENSORS_FILE} ({exc}); {FIX}"
        ) from None


# --------------------------------------------------------------------------- encoding


def safetensors_bytes(tensors: dict[str, torch.Tensor], name: str) -> bytes:
    return st_save(tensors, metadata={"format": "pt", "genzoo_file": name})


def parse_safetensors(run_dir: Path, name: str, data: bytes) -> dict[str, torch.Tensor]:
    """``data`` (the content of ``run_dir / name``) as tensors, else CheckpointError."""
    try:
        return st_load(data)
    except Exception as exc:  # noqa: BLE001 - any parse failure of untrusted bytes is corruption
        raise CheckpointError(
            f"{run_dir / name} is not a readable safetensors file ({type(exc).__name__}: {exc}); "
            f"{FIX}"
        ) from None


def _encode(obj: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-able form of ``obj``; tensors are moved into ``tensors`` under their path."""
    if isinstance(obj, torch.Tensor):
        key = path.lstrip(".") or "tensor"
        base, i = key, 1
        while key in tensors:
            i += 1
            key = f"{base}#{i}"
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        # Strict JSON has no NaN/Inf; keep them exact through a tag.
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{path}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{path}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and k not in _TAGS for k in obj):
            return {k: _encode(v, f"{path}.{k}", tensors) for k, v in obj.items()}
        return {
            "__items__": [
                [_encode(k, f"{path}.key{i}", tensors), _encode(v, f"{path}.{k}", tensors)]
                for i, (k, v) in enumerate(obj.items())
            ]
        }
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _encode(obj.item(), path, tensors)
    raise TypeError(f"cannot store a {type(obj).__name__} at {path or '<root>'} in a checkpoint")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if len(obj) == 1:
            (tag, value), = obj.items()
            if tag == "__tensor__":
                return tensors[value]
            if tag == "__tuple__":
                return tuple(_decode(v, tensors) for v in value)
            if tag == "__items__":
                return {_decode(k, tensors): _decode(v, tensors) for k, v in value}
            if tag == "__float__":
                return float(value)
        return {k: _decode(v, tensors) for k, v in obj.items()}
    return obj
