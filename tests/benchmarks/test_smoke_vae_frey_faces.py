"""benchmarks/vae_frey_faces.py in its smoke mode: genzoo's Trainer on the real Frey faces for
two latent sizes, curves read back from metrics.csv, a PNG plot and a well-formed result, all
outside benchmarks/results."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image
from support import real_data_file

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"
sys.path.insert(0, str(BENCH))
import _common
import vae_frey_faces

sys.path.remove(str(BENCH))


def _results_snapshot() -> dict[str, float]:
    return {p.name: p.stat().st_mtime for p in (BENCH / "results").glob("*")}


def test_examples_seen_counts_the_short_last_batch_of_each_epoch():
    # 1565 faces in batches of 100: 15 full batches and one of 65 per epoch (16 steps).
    assert vae_frey_faces.examples_seen(0, 1565) == 0
    assert vae_frey_faces.examples_seen(15, 1565) == 1500
    assert vae_frey_faces.examples_seen(16, 1565) == 1565
    assert vae_frey_faces.examples_seen(33, 1565) == 2 * 1565 + 100


def test_steps_for_is_the_fewest_steps_reaching_the_requested_examples():
    for examples in (1, 100, 1565, 1566, 3000, 10**6):
        steps = vae_frey_faces.steps_for(examples, 1565)
        assert vae_frey_faces.examples_seen(steps, 1565) >= examples
        assert vae_frey_faces.examples_seen(steps - 1, 1565) < examples


def test_frey_smoke_writes_curves_plot_and_result(tmp_path):
    real_data_file("frey_faces/frey_faces.npz")
    before = _results_snapshot()
    env = {**os.environ, "GENZOO_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "benchmarks/vae_frey_faces.py", "--smoke", "--out",
         str(tmp_path / "run"), "--results-dir", str(tmp_path / "results")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _results_snapshot() == before, "a smoke run touched benchmarks/results"
    written = Path(proc.stdout.strip().splitlines()[-1].removeprefix("wrote ").strip())
    assert written.parent == tmp_path / "results"
    result = json.loads(written.read_text())
    _common.validate_result(result)
    assert result["smoke"] is True and result["kind"] == "likelihood"
    assert result["metric"]["lower_is_better"] is False
    assert result["references"] == []  # the paper gives the bound only as a figure
    per_latent = result["extra"]["per_latent"]
    assert sorted(per_latent, key=int) == ["2", "5"]
    for j, v in per_latent.items():
        assert math.isfinite(v["elbo"]) and v["n_examples"] == 200
        # Importance sampling never reports less than the ELBO of the same draws.
        assert v["log_px"] >= v["elbo"] - 1e-9
        curves = result["extra"]["curves"][j]
        seen = [x for x, _ in curves["valid"]]
        assert seen[0] == 0 and seen == sorted(seen) and seen[-1] >= 3000
        # After a few dozen steps the held-out bound has risen from its initial value.
        assert curves["valid"][-1][1] > curves["valid"][0][1]
        assert (tmp_path / "run" / f"z{j}" / "metrics.csv").is_file()
    assert result["value"] == per_latent["5"]["elbo"]
    with Image.open(tmp_path / "results" / result["extra"]["plot"]) as img:
        assert img.format == "PNG" and img.width > 400 and img.height > 200
