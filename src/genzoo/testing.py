"""The conformance checks, for a model's own tests: genzoo's suite and a plug-in's call these.

A model passes when it honours the contract of every capability it declares
(:mod:`genzoo.core.protocols`: signature and behaviour on a tiny instance), trains a few
steps, samples (shape, dtype, device, determinism under a seed), round-trips through a
checkpoint and builds identically twice under one seed. In a plug-in's own pytest file::

    import genzoo.testing
    import my_package  # importing registers the model (or declare its entry point)

    def test_my_model_conforms(tmp_path):
        genzoo.testing.check_model("my-model", tmp_path)

Each check is also a function of its own (``check_protocols(name)``, ...), so a suite can
report them apart, as genzoo's ``tests/test_conformance.py`` does. A check that fails raises
``AssertionError`` naming what is wrong. Every check builds the model from its registered
name with its ``test_overrides`` (the settings that make it tiny) on the bundled 8x8 digits,
binarized: ``overrides`` adds ``--set``-style settings after those.

``device`` (every check, default the CPU) is where the model is moved after it is built on the
CPU (so its parameters are the same on every device) and where its inputs, generators and
training run (``train.device``): ``check_model("my-model", device="cuda")`` holds the model to
its contract on a GPU. ``dtype`` (None: the model's own) moves its floating parameters for the
checks that feed it inputs of that dtype; the training step and the checkpoint round trip run in
the model's own dtype (the Trainer feeds the data's float32, and a checkpoint loads into a model
built from its config).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from genzoo.core import protocols
from genzoo.core.registry import get_model_spec, list_models

__all__ = [
    "COMMON",
    "assert_conforms",
    "build_tiny",
    "check_building_is_deterministic",
    "check_capabilities_behave",
    "check_checkpoint_round_trip",
    "check_loss",
    "check_model",
    "check_protocols",
    "check_sample",
    "check_tiny_settings",
    "check_training_step",
    "is_classifier_only",
]

# The data and run length every check uses: 200 binarized digits, three steps.
COMMON = ("data.name=digits", "data.binarize=threshold", "data.n_train=200", "data.n_eval=50",
          "train.max_steps=3", "train.batch_size=20", "train.progress=false",
          "train.grid_samples=4")


def _name(model: str | type) -> str:
    """The registered name of ``model`` (a name, or a registered model class)."""
    if isinstance(model, str):
        get_model_spec(model)  # an unknown name is a ConfigError listing the names
        return model
    for spec in list_models():
        if spec.cls is model:
            return spec.name
    raise AssertionError(f"{model!r} is not registered: decorate it with "
                         "genzoo.core.registry.register_model and import its module first")


def _device(device: str | torch.device | None) -> torch.device:
    return torch.device("cpu") if device is None else torch.device(device)


def _generator(device: str | torch.device | None, seed: int) -> torch.Generator:
    """A generator seeded ``seed`` on ``device``, where the model draws with it."""
    return torch.Generator(device=_device(device)).manual_seed(seed)


def build_tiny(model: str | type, seed: int = 0, overrides: Sequence[str] = (), *,
               device: str | torch.device | None = None, dtype: torch.dtype | None = None):
    """(run config, data bundle, model): ``model`` built with its ``test_overrides`` on the
    digits of :data:`COMMON`, ``n_visible`` from the data. The parameters are a function of
    ``seed`` (nn.Module initialisers draw from torch's global generator, seeded here inside
    a forked random state, so the caller's stream is untouched), drawn on the CPU and then
    moved to ``device`` and ``dtype`` (None: left as built); a ``device`` is also the run
    config's ``train.device``. The data bundle stays on the host, as the Trainer expects."""
    from genzoo.data import load_data
    from genzoo.run_config import RunConfig

    name = _name(model)
    spec = get_model_spec(name)
    tiny = list(spec.cls.test_overrides)
    on_device = [f"train.device={torch.device(device)}"] if device is not None else []
    cfg = RunConfig.default(name).with_overrides(
        [*COMMON, *tiny, *overrides, *on_device, f"train.seed={seed}"])
    bundle = load_data(cfg.data)
    model_cfg = cfg.model
    if any(f.name == "n_visible" for f in dataclasses.fields(model_cfg)):
        model_cfg = model_cfg.replace(n_visible=bundle.n_features)
    cfg = dataclasses.replace(cfg, model=model_cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        built = spec.build(cfg.model)
    if device is not None or dtype is not None:
        built = built.to(device=device, dtype=dtype)
    return cfg, bundle, built


def is_classifier_only(model) -> bool:
    """A discriminative model: capability CLASSIFIER only, no distribution over x."""
    return protocols.CLASSIFIER in model.capabilities


def check_tiny_settings(model: str | type) -> None:
    """The model carries ``test_overrides``, the settings that make it tiny and fast."""
    name = _name(model)
    assert get_model_spec(name).cls.test_overrides, f"set test_overrides on {name}"


def check_protocols(model: str | type, overrides: Sequence[str] = (), *,
                    device: str | torch.device | None = None) -> None:
    """Every declared capability is known and its Protocol's methods have the contract's
    signatures (:func:`genzoo.core.protocols.conformance_problems`); a classifier declares
    CLASSIFIER alone, learns from labels and does not sample; a generative model does not
    declare CLASSIFIER."""
    _, _, m = build_tiny(model, overrides=overrides, device=device)
    caps = set(m.capabilities)
    assert caps and caps <= protocols.CAPABILITIES, f"unknown capabilities {caps}"
    assert protocols.conformance_problems(m) == []
    assert isinstance(m, protocols.GenerativeModel)
    assert isinstance(m, protocols.TrainingHooks)
    for cap in caps:
        assert isinstance(m, protocols.PROTOCOLS[cap]), cap
    if is_classifier_only(m):
        assert caps == {protocols.CLASSIFIER}
        assert m.needs_labels
        assert not callable(getattr(m, "sample", None))


def _x(bundle, model, n=6):
    """(n, D) training rows on the model's device, in its dtype."""
    p = next(model.parameters())
    return bundle.train.x[:n].to(device=p.device, dtype=p.dtype)


def check_capabilities_behave(model: str | type, overrides: Sequence[str] = (), *,
                              device: str | torch.device | None = None) -> None:
    """What each capability promises beyond its signature, in float64 on a tiny instance:
    shapes, finiteness, and the identities the estimators rely on."""
    _, bundle, m = build_tiny(model, overrides=overrides, device=device, dtype=torch.float64)
    m.eval()
    x = _x(bundle, m)
    b = len(x)
    g = _generator(device, 0)
    caps = m.capabilities
    if protocols.ENERGY in caps:
        f = m.free_energy(x)
        assert f.shape == (b,) and torch.isfinite(f).all()
        v = m.gibbs_step(x, generator=g)
        assert v.shape == x.shape
    if protocols.AIS in caps:
        base = m.ais_base(bundle.train.x.to(x))
        log_za = base.log_partition()
        assert log_za.dim() == 0 and torch.isfinite(log_za)
        s = base.sample(b, g)
        # The path starts at the base (its own free energy, constants included: beta = 0).
        f0 = m.annealed_free_energy(s, 0.0, base)
        assert f0.shape == (b,) and torch.isfinite(f0).all()
        inc, s2 = m.annealed_step(s, 0.0, 0.5, base, g, transition=True)
        assert inc.shape == (b,) and s2.shape == s.shape
        expected = f0 - m.annealed_free_energy(s, 0.5, base)
        torch.testing.assert_close(inc, expected)
        assert m.annealed_gibbs_step(s, 0.5, base, g).shape == s.shape
        if protocols.ENERGY in caps:
            # ...and ends at the model (beta = 1).
            torch.testing.assert_close(m.annealed_free_energy(x, 1.0, base), m.free_energy(x))
    if protocols.EXACT_LOG_PARTITION in caps:
        free_energy, n_units = m.enumerable_free_energy()
        assert isinstance(n_units, int) and n_units > 0
        states = (torch.rand(4, n_units, generator=g, dtype=x.dtype, device=x.device)
                  < 0.5).to(x.dtype)
        assert free_energy(states).shape == (4,)
    if protocols.VARIATIONAL in caps:
        f = m.variational_free_energy(x)
        assert f.shape == (b,) and torch.isfinite(f).all()
        assert m.ais_model_states(3, 2, g).shape[0] == 3
    if protocols.LATENT in caps:
        q = m.proposal(x)
        assert isinstance(q, torch.distributions.Distribution) and q.batch_shape == (b,)
        z = q.sample((2,))
        lj = m.log_joint(x, z)
        assert lj.shape == (2, b) and torch.isfinite(lj).all()
    if protocols.EXACT_LIKELIHOOD in caps:
        lp = m.log_prob(x)
        assert lp.shape == (b,) and torch.isfinite(lp).all()
        if m.binary_input:
            assert (lp <= 0).all()  # a probability of a discrete x
    if protocols.CLASSIFIER in caps or protocols.is_classifier(m):
        y = m.predict(x)
        assert y.shape == (b,) and y.dtype == torch.int64
    if protocols.INPAINT in caps:
        observed = torch.zeros(x.shape[1], dtype=torch.bool, device=x.device)
        observed[: x.shape[1] // 2] = True
        out = m.inpaint(x, observed, g, n_samples=2)
        assert out.shape == (2, *x.shape)
        assert torch.equal(out[:, :, observed], x[:, observed].expand(2, -1, -1))


def check_training_step(model: str | type, run_dir: str | Path,
                        overrides: Sequence[str] = (), *,
                        device: str | torch.device | None = None) -> None:
    """Three Trainer steps into ``run_dir`` (on ``device``) change the parameters and leave
    them finite, on that device."""
    from genzoo.training import Trainer

    cfg, bundle, m = build_tiny(model, overrides=overrides, device=device)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    Trainer(m, cfg, bundle, Path(run_dir)).fit()
    after = m.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "no parameter changed"
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    assert all(v.device.type == _device(device).type for v in after.values())


def check_loss(model: str | type, overrides: Sequence[str] = (), *,
               device: str | torch.device | None = None, dtype: torch.dtype | None = None
               ) -> None:
    """``loss`` returns a dict of finite scalars whose ``"loss"`` is differentiable, on the
    model's device."""
    _, bundle, m = build_tiny(model, overrides=overrides, device=device, dtype=dtype)
    # A model that learns from labels gets them, as the Trainer gives them (needs_labels).
    extra = ({"y": bundle.train.y[:10].to(_device(device))}
             if getattr(m, "needs_labels", False) else {})
    out = m.loss(_x(bundle, m, 10), generator=_generator(device, 0), **extra)
    assert isinstance(out, dict) and out["loss"].dim() == 0 and out["loss"].requires_grad
    for key, value in out.items():
        assert value.dim() == 0 and torch.isfinite(value), key
        assert value.device.type == _device(device).type, (key, value.device)


def check_sample(model: str | type, overrides: Sequence[str] = (), *,
                 device: str | torch.device | None = None, dtype: torch.dtype | None = None
                 ) -> None:
    """``sample(n, generator)`` is (n, D) in the parameters' dtype and device, the same under
    the same seed, and follows the model to float64."""
    _, bundle, m = build_tiny(model, overrides=overrides, device=device, dtype=dtype)
    first = m.sample(5, generator=_generator(device, 3))
    again = m.sample(5, generator=_generator(device, 3))
    assert first.shape == (5, bundle.n_features)
    assert first.dtype == next(m.parameters()).dtype
    assert first.device == next(m.parameters()).device
    assert torch.equal(first, again)
    m_double = m.double()
    assert m_double.sample(2, generator=_generator(device, 0)).dtype == torch.float64


def check_checkpoint_round_trip(model: str | type, run_dir: str | Path,
                                overrides: Sequence[str] = (), *,
                                device: str | torch.device | None = None) -> None:
    """A checkpoint of the model on ``device`` written to ``run_dir`` loads back onto it
    with the same config, the same state and the same samples (a classifier: the same
    predictions)."""
    from genzoo.training.checkpoint import load_model, save_checkpoint

    cfg, bundle, m = build_tiny(model, overrides=overrides, device=device)
    save_checkpoint(Path(run_dir), m, cfg, None)
    loaded, loaded_cfg = load_model(Path(run_dir), device=_device(device))
    assert loaded_cfg == cfg
    original = m.state_dict()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, original[key]), key
    if is_classifier_only(m):
        x = torch.rand(3, bundle.n_features, device=_device(device)).round()
        assert torch.equal(m.predict(x), loaded.predict(x))
        return
    a = m.sample(3, generator=_generator(device, 1))
    b = loaded.sample(3, generator=_generator(device, 1))
    assert torch.equal(a, b)


def check_building_is_deterministic(model: str | type, overrides: Sequence[str] = (), *,
                                    device: str | torch.device | None = None) -> None:
    """Two builds under one seed have identical parameters and buffers (on ``device``)."""
    _, _, m1 = build_tiny(model, seed=5, overrides=overrides, device=device)
    _, _, m2 = build_tiny(model, seed=5, overrides=overrides, device=device)
    for (k, v1), v2 in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(v1, v2), k


def check_model(model: str | type, tmp_path: str | Path | None = None,
                overrides: Sequence[str] = (), *, device: str | torch.device | None = None,
                dtype: torch.dtype | None = None) -> None:
    """Every conformance check on ``model`` (a registered name or class) on ``device``
    (None: the CPU), ``dtype`` passed to the checks that take one; the run directories go
    under ``tmp_path`` (a temporary folder, removed after, when None). Raises
    ``AssertionError`` naming the first check that fails."""
    if tmp_path is None:
        with tempfile.TemporaryDirectory(prefix="genzoo-conformance-") as tmp:
            return check_model(model, tmp, overrides, device=device, dtype=dtype)
    tmp = Path(tmp_path)
    check_tiny_settings(model)
    check_protocols(model, overrides, device=device)
    check_capabilities_behave(model, overrides, device=device)
    check_training_step(model, tmp / "train", overrides, device=device)
    check_loss(model, overrides, device=device, dtype=dtype)
    _, _, m = build_tiny(model, overrides=overrides)
    if not is_classifier_only(m):
        check_sample(model, overrides, device=device, dtype=dtype)
    check_checkpoint_round_trip(model, tmp / "checkpoint", overrides, device=device)
    check_building_is_deterministic(model, overrides, device=device)
    return None


assert_conforms = check_model
