"""The model registry's plug-ins: a file or module named in GENZOO_PLUGINS registers its models,
and one that cannot be imported is a one-line GenzooError naming it."""

from __future__ import annotations

import pytest

from genzoo.core import registry
from genzoo.core.errors import ConfigError, GenzooError


def test_a_missing_plugin_file_names_itself(tmp_path):
    with pytest.raises(GenzooError, match="nothere.py.*GENZOO_PLUGINS.*fix or remove"):
        registry._load_plugin(str(tmp_path / "nothere.py"), "GENZOO_PLUGINS")


def test_a_broken_plugin_file_names_itself_and_is_not_half_imported(tmp_path):
    bad = tmp_path / "broken_plugin.py"
    bad.write_text("def f(:\n")
    with pytest.raises(GenzooError, match="broken_plugin.py.*SyntaxError"):
        registry._load_plugin(str(bad), "GENZOO_PLUGINS")
    import sys

    assert "genzoo_plugin_broken_plugin" not in sys.modules


def test_a_missing_plugin_module_names_itself():
    with pytest.raises(GenzooError, match="no_such_genzoo_plugin_module.*entry point 'x'"):
        registry._load_plugin("no_such_genzoo_plugin_module", "entry point 'x'")


def test_an_unknown_model_says_how_to_load_a_plugin():
    with pytest.raises(ConfigError, match="GENZOO_PLUGINS"):
        registry.get_model_spec("no-such-model")


def test_a_plugin_file_registers_its_model(tmp_path):
    plugin = tmp_path / "tiny_plugin.py"
    plugin.write_text(
        "import dataclasses\n"
        "from genzoo.core.registry import register_model\n"
        "from genzoo.models.base import GenzooModel, VisibleConfig\n"
        "@dataclasses.dataclass(frozen=True)\n"
        "class TinyConfig(VisibleConfig):\n    pass\n"
        "@register_model('tiny-plugin-model', family='test', summary='s', paper='p')\n"
        "class Tiny(GenzooModel):\n    config_class = TinyConfig\n"
    )
    try:
        registry._load_plugin(str(plugin), "GENZOO_PLUGINS")
        spec = registry.get_model_spec("tiny-plugin-model")
        assert spec.config_cls.__name__ == "TinyConfig" and spec.family == "test"
    finally:
        registry._REGISTRY.pop("tiny-plugin-model", None)
        import sys

        sys.modules.pop("genzoo_plugin_tiny_plugin", None)
