"""The worked example of docs/extending.md, the plug-in package examples/genzoo-bernoulli-mixture:
a model outside genzoo gets the command line, training, evaluation, sampling, inpainting and
the conformance checks without any file of genzoo changing. The package is installed (pip,
offline, into a temporary folder) and used through its entry point, as a user would."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genzoo import testing
from genzoo.core import registry

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "extending.md"
PACKAGE = ROOT / "examples" / "genzoo-bernoulli-mixture"
EXAMPLE = PACKAGE / "genzoo_bernoulli_mixture.py"
NAME = "bernoulli-mixture"


@pytest.fixture
def example_registered():
    """Import the example as a user would (its file on sys.path), and take it out of the
    registry afterwards so that no other test sees it."""
    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        import genzoo_bernoulli_mixture

        yield genzoo_bernoulli_mixture
    finally:
        sys.path.remove(str(EXAMPLE.parent))
        registry._REGISTRY.pop(NAME, None)
        sys.modules.pop("genzoo_bernoulli_mixture", None)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The package installed by pip into a folder of its own (no network, no build isolation,
    no dependencies: genzoo is already importable), from a copy, so the build leaves nothing
    in the source tree. The folder goes on PYTHONPATH."""
    tmp = tmp_path_factory.mktemp("plugin")
    source, target = tmp / "src", tmp / "site"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("__pycache__", "build",
                                                                   "*.egg-info"))
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--no-index", "--disable-pip-version-check", "--quiet", "--target", str(target),
         str(source)],
        capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert (target / "genzoo_bernoulli_mixture.py").is_file()
    return target


def _env(*paths: Path | str) -> dict[str, str]:
    """The environment with ``paths`` first on PYTHONPATH and no GENZOO_PLUGINS."""
    env = {k: v for k, v in os.environ.items() if k != registry.PLUGINS_ENV}
    env["PYTHONPATH"] = os.pathsep.join(
        [*map(str, paths), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_page_shows_the_example_file():
    text = DOC.read_text()
    source = EXAMPLE.read_text()
    assert '--8<-- "examples/genzoo-bernoulli-mixture/genzoo_bernoulli_mixture.py"' in text
    lines = {line.strip() for line in source.splitlines()}
    blocks = _python_blocks(text.split("## 4. Using it")[0])
    assert len(blocks) >= 3
    for block in blocks:
        for line in block.splitlines():
            if line.strip() and "..." not in line:
                assert line.strip() in lines, line
    # The entry point the page shows is the package's own.
    entry = 'bernoulli-mixture = "genzoo_bernoulli_mixture"'
    assert entry in text and entry in (PACKAGE / "pyproject.toml").read_text()


def test_the_example_conforms_to_the_contracts_it_declares(example_registered, tmp_path):
    testing.check_model(NAME, tmp_path)


def test_the_python_walkthrough_runs(example_registered, tmp_path, monkeypatch):
    block = next(b for b in _python_blocks(DOC.read_text()) if "Trainer(" in b)
    monkeypatch.chdir(tmp_path)
    # The page's own code, run as a reader would paste it.
    exec(compile(block, "docs/extending.md", "exec"), {"print": lambda *a: None})  # noqa: S102
    assert (tmp_path / "runs" / "mix-digits" / "checkpoint.json").exists()


def test_a_model_file_named_in_genzoo_plugins_is_listed(tmp_path):
    env = {**_env(), registry.PLUGINS_ENV: str(EXAMPLE)}
    out = subprocess.run([sys.executable, "-m", "genzoo", "models"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert NAME in out.stdout


def test_the_installed_package_trains_evaluates_samples_and_inpaints(installed, tmp_path):
    env = _env(installed)
    run = tmp_path / "run"

    def genzoo(*args: str, environment=env) -> subprocess.CompletedProcess:
        # cwd: not the source tree, so only the installed copy can be imported.
        return subprocess.run([sys.executable, "-m", "genzoo", *args], env=environment,
                              cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              check=False)

    def ok(*args: str) -> str:
        out = genzoo(*args)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert NAME in ok("models")  # found through the entry point alone
    ok("train", NAME, "--data", "digits", "--set", "data.binarize=threshold",
       "--set", "model.n_components=4", "--set", "train.epochs=2",
       "--set", "train.lr=0.05", "--set", "train.progress=false", "--out", str(run))
    report = json.loads(ok("evaluate", str(run), "--json"))
    assert report["split"] == "test"
    assert 0 < report["nll_nats"] < 64 * 0.7  # below the 44 nats of independent fair coins
    ok("sample", str(run), "-n", "9", "--out", str(tmp_path / "s.png"))
    ok("inpaint", str(run), "-n", "4", "--out", str(tmp_path / "i.png"))
    assert (tmp_path / "s.png").stat().st_size > 0 and (tmp_path / "i.png").stat().st_size > 0
    # Without the plug-in the run cannot be rebuilt, and genzoo says so in one line.
    out = genzoo("evaluate", str(run), environment=_env())
    assert out.returncode != 0 and NAME in out.stderr and "Traceback" not in out.stderr


def test_the_packages_own_tests_pass_against_the_installed_copy(installed, tmp_path):
    """The plug-in's tests (genzoo.testing.check_model and its likelihood check), run by
    pytest from outside the source tree, on the installed module."""
    tests = tmp_path / "tests"
    shutil.copytree(PACKAGE / "tests", tests)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
         str(tmp_path), str(tests)],
        env=_env(installed), cwd=tmp_path, capture_output=True, text=True, timeout=600,
        check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "2 passed" in out.stdout
