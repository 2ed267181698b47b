"""The documentation site builds with ``mkdocs build --strict`` and every tutorial executes.

The build itself executes the tutorials (docs/hooks/genzoo_docs.py), once each, so CI runs them
exactly once, here. The hook's renderers are checked on their own without executing anything.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted(p for p in (ROOT / "docs" / "tutorials").glob("*.py")
                   if not p.name.startswith("_"))


def _hooks():
    pytest.importorskip("mkdocs", reason="the docs packages are in the test extra")
    import importlib.util

    spec = importlib.util.spec_from_file_location("genzoo_docs_hooks",
                                                  ROOT / "docs" / "hooks" / "genzoo_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_tutorial_is_in_the_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    assert len(TUTORIALS) >= 5
    for t in TUTORIALS:
        assert f"tutorials/{t.stem}.md" in nav, f"{t.name} is not in mkdocs.yml's nav"
        text = t.read_text()
        assert "# %% [markdown]" in text and "# %%\n" in text, f"{t.name}: not percent format"
        # Tutorials teach the public API and run on the bundled digits, offline.
        assert re.search(r'genzoo\.fit\(\s*"[\w-]+", "digits"', text), (
            f"{t.name} must train with genzoo.fit on the bundled digits")
        assert "GENZOO_DATA" not in text


def test_notebook_page_holds_text_code_and_outputs():
    hooks = _hooks()
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title\n\nSome $x$."),
        nbformat.v4.new_code_cell("print(1)", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="1\n"),
            nbformat.v4.new_output("stream", name="stderr", text="progress\n"),
            nbformat.v4.new_output("stream", name="stdout", text="2\n"),
            nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="}),
            nbformat.v4.new_output("stream", name="stdout", text="3\n"),
        ]),
        nbformat.v4.new_code_cell("   "),
    ])
    page = hooks.notebook_markdown(nb, "t.py")
    assert page.startswith("# Title\n\nSome $x$.")
    assert "```python\nprint(1)\n```" in page
    # what one cell prints in several messages is one block, split only by a picture
    assert "```text\n1\n2\n```" in page and "```text\n3\n```" in page
    assert page.index("```text\n1") < page.index("data:image/png") < page.index("```text\n3")
    assert "progress" not in page  # stderr (warnings, progress) is left out
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in page
    assert "[`t.py`](t.py)" in page


def test_results_page_links_only_to_what_the_site_holds():
    hooks = _hooks()

    class Files:
        def __init__(self, uris):
            self.uris = set(uris)

        def get_file_from_path(self, uri):
            return uri if uri in self.uris else None

    files = Files({"benchmarks/results/a.png"})
    md = ("![a](results/a.png) ![b](results/missing.png) [rows](rows/x.json) "
          "[web](https://example.org) [here](#anchor)\n"
          "- Images: samples benchmarks/results/a.png; filters benchmarks/results/gone.png.\n")
    out = hooks._results_markdown(md, files)
    assert "![a](benchmarks/results/a.png)" in out
    assert "`results/missing.png`" in out and "](results/missing.png)" not in out
    assert "rows" in out and "](rows/x.json)" not in out
    assert "[web](https://example.org)" in out and "[here](#anchor)" in out
    assert "[`benchmarks/results/a.png`](benchmarks/results/a.png)" in out
    assert "`benchmarks/results/gone.png`" in out


@pytest.mark.timeout(3600)  # the build executes every tutorial; slow on a busy machine
def test_mkdocs_build_strict_executes_the_tutorials(tmp_path):
    _hooks()
    env = {**os.environ, "GENZOO_DOCS_EXECUTE": "1", "NO_MKDOCS_2_WARNING": "1",
           # the tutorials' kernels import the genzoo of this checkout
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                       os.environ.get("PYTHONPATH")])),
           "GENZOO_CACHE": str(tmp_path / "cache")}
    site = tmp_path / "site"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-20000:]
    print(f"mkdocs build --strict with {len(TUTORIALS)} tutorials: {wall:.0f} s")
    for t in TUTORIALS:
        page = (site / "tutorials" / t.stem / "index.html").read_text()
        assert "nats" in page, f"{t.name}: its page shows no figure"
        assert 'src="data:image/png;base64,' in page, f"{t.name}: its page shows no picture"
        assert "Traceback" not in page
        assert (site / "tutorials" / t.name).exists()  # the notebook is published beside it
    assert (site / "results" / "index.html").exists()
    assert "genzoo.evaluation.evaluate" in (site / "api" / "evaluation" / "index.html").read_text()
