"""RESULTS.md's Parzen tables: each has a ceiling row (real training images scored as the
samples by the same estimator) and shows the sample measures before the Parzen score."""

from __future__ import annotations

from support import load_benchmark

make_results = load_benchmark("make_results")
common = make_results.common

DATA = {"name": "mnist", "binarization": "none (grey levels in [0, 1])", "split": "test"}
PARZEN = {"name": "test Parzen log-likelihood", "unit": "nats", "lower_is_better": False}


def _parzen(name: str, value: float, refs=(), **extra) -> dict:
    result = {"schema_version": 2, "benchmark": name, "row": name, "title": f"{name} title",
              "kind": "likelihood", "command": f"python benchmarks/run.py {name}",
              "git": {"commit": "abc", "dirty": False}, "date": "2026-01-01T00:00:00+00:00",
              "machine": {"cpu": "test cpu", "cores": 2, "torch": "2.x"}, "smoke": False,
              "data": dict(DATA), "metric": dict(PARZEN),
              "estimator": {"name": "parzen window", "sigma": 0.2, "n_model_samples": 10000},
              "value": value, "stderr": 2.0, "wall_s": {"evaluate": 1.0}, "notes": [],
              "references": [{"label": lab, "value": v, "source": "Paper"} for lab, v in refs],
              "extra": extra}
    common.validate_result(result)
    return result


CEILING = _parzen("parzen_ceiling_mnist", 241.0, ceiling_for="parzen")


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_a_result_without_its_own_ceiling_takes_the_ceiling_result_on_its_data():
    gsn = _parzen("gsn", 260.0, [("Paper GSN", 214.0)], mmd2=0.16, frechet_distance=109.0,
                  classes_covered=9, reference_classes_covered=10)
    other_data = _parzen("frey", 50.0) | {"data": {**DATA, "name": "frey-faces"}}
    text = make_results.render([CEILING, gsn, other_data])
    section = _section(text, "gsn title")
    row = next(line for line in section.splitlines() if line.startswith("| *Ceiling"))
    assert "*241.00*" in row and "+19.00 nats: ours is 19.00 nats above the ceiling" in row
    assert "(parzen_ceiling_mnist.json)" in row
    assert "genzoo's own figure (260.00) is above it as well" in section
    # the sample measures come before the Parzen table, with the mode-collapse warning
    assert section.index("and first (the Parzen table below") < section.index("| model |")
    assert section.index("MODE COLLAPSE") < section.index("| model |")
    assert "Ceiling" not in _section(text, "frey title")  # no ceiling on other data
    ceiling = _section(text, "parzen_ceiling_mnist title")
    assert "| **real training images (no model)** | **241.00**" in ceiling
    assert "Ceiling" not in ceiling  # the ceiling has no ceiling row of its own


def test_a_result_with_training_data_parzen_uses_its_own_and_flags_references_above_it():
    own = {"value": 240.0, "stderr": 2.1, "sigma": 0.167, "n_samples": 10000}
    gmmn = _parzen("gmmn_ae", 114.0, [("Li et al. 2015 GMMN+AE", 282.0), ("GAN", 225.0)],
                   training_data_parzen=own, mmd2=0.016)
    section = _section(make_results.render([CEILING, gmmn]), "gmmn_ae title")
    row = next(line for line in section.splitlines() if line.startswith("| *Ceiling"))
    assert "*240.00*" in row and "extra.training_data_parzen of gmmn_ae.json" in row
    assert "10,000 real training images" in row and "σ = 0.167" in row
    assert "Li et al. 2015 GMMN+AE (282.00) is above it" in section
    assert "GAN (225.00)" not in section  # below the ceiling: not flagged
    assert "above it as well" not in section


def test_tables_of_other_metrics_get_no_ceiling():
    nll = _parzen("toy", 80.0) | {"metric": {"name": "test NLL", "unit": "nats",
                                             "lower_is_better": True}}
    assert make_results.parzen_ceiling(nll, [CEILING, nll]) is None
    assert "Ceiling" not in make_results.render([CEILING, nll]).split("## toy title")[1]
