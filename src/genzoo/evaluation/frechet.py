"""Feature-space Fréchet distance and class coverage of samples, with a small classifier that
genzoo trains itself.

The Fréchet (2-Wasserstein) distance between Gaussians fitted to two feature sets
(Dowson & Landau 1982; used for generated images by Heusel et al. 2017, "GANs trained by a two
time-scale update rule ...", where the features come from Inception)::

    FD = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr( (S_a^{1/2} S_b S_a^{1/2})^{1/2} )

computed in float64 with symmetric eigendecompositions (the matrix inside the trace is
symmetric positive semi-definite, so no complex square roots arise). Here the features are the
last hidden layer of a small MLP classifier trained on the labelled training split of the data
set (MNIST or the 8x8 digits), so numbers are comparable within genzoo only, not with
Inception-based FIDs. The same classifier gives the number of the 10 classes the samples cover:
a class counts when at least ``min_fraction`` of the samples are classified as it (mode
collapse shows as classes dropping out). Compare sets drawn at random: the first and second
5,000 MNIST test digits come from different writer populations (about 16 apart in this
distance, against about 0.6 for a random split of the test set into halves).

The classifier is trained deterministically (fixed seed, fixed data order, CPU) by
:func:`train_feature_classifier` and cached as safetensors + JSON in the user cache directory
(``$GENZOO_CACHE``, else ``$XDG_CACHE_HOME/genzoo``, else ``~/.cache/genzoo``); never
committed. Rebuild it with ``python -m genzoo.evaluation.frechet --data mnist --rebuild``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from genzoo.core.errors import DataError, InputError
from genzoo.evaluation import progress

CLASSIFIER_VERSION = 1
# Data set -> the labelled grey-level set its classifier is trained on.
CLASSIFIER_SOURCES = {"mnist": "mnist", "binarized-mnist": "mnist", "digits": "digits"}
_SETTINGS = {"hidden": 256, "features": 64, "epochs": 8, "batch_size": 100, "lr": 1e-3,
             "seed": 0}


class FeatureClassifier(nn.Module):
    """x (B, D) in [0, 1] -> ReLU 256 -> ReLU 64 (the features) -> C class logits."""

    def __init__(self, n_visible: int, n_classes: int = 10, hidden: int = 256,
                 features: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(n_visible, hidden), nn.ReLU(), nn.Linear(hidden, features), nn.ReLU()
        )
        self.head = nn.Linear(features, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F) features of x (B, D)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def cache_dir() -> Path:
    """Where derived artefacts (the classifiers) live: ``$GENZOO_CACHE``, else
    ``$XDG_CACHE_HOME/genzoo``, else ``~/.cache/genzoo``."""
    if os.environ.get("GENZOO_CACHE"):
        return Path(os.environ["GENZOO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "genzoo"


def train_feature_classifier(
    x: torch.Tensor, y: torch.Tensor, n_classes: int = 10, epochs: int | None = None,
    seed: int = 0,
) -> FeatureClassifier:
    """Train a :class:`FeatureClassifier` on x (N, D), labels y (N,) int64 with Adam on the
    cross-entropy, in float32 on the CPU, the initialisation and the batch order drawn from
    generators seeded by ``seed`` (so a rebuild gives the same weights on the same platform).
    Returns it in eval mode."""
    if x.dim() != 2 or y is None or y.shape != (len(x),):
        raise InputError("train_feature_classifier needs x (N, D) and labels y (N,)")
    s = _SETTINGS
    epochs = s["epochs"] if epochs is None else epochs
    x, y = x.detach().to("cpu", torch.float32), y.detach().to("cpu", torch.int64)
    model = FeatureClassifier(x.shape[1], n_classes, s["hidden"], s["features"])
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)
                m.weight.uniform_(-bound, bound, generator=g)
                m.bias.zero_()
    opt = torch.optim.Adam(model.parameters(), lr=s["lr"])
    with progress.Stage("training the Fréchet feature classifier", epochs, "epochs") as st:
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=g)
            for i in range(0, len(x), s["batch_size"]):
                idx = order[i : i + s["batch_size"]]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            st.advance()
    return model.eval()


def _paths(source: str, n_visible: int) -> tuple[Path, Path]:
    stem = f"classifier-{source}-{n_visible}-v{CLASSIFIER_VERSION}"
    d = cache_dir()
    return d / f"{stem}.safetensors", d / f"{stem}.json"


def build_classifier(data_name: str) -> tuple[FeatureClassifier, dict]:
    """Train the classifier for ``data_name`` on its source set's grey-level training split
    and store it in :func:`cache_dir`; returns (classifier, metadata with valid accuracy)."""
    from genzoo.data import load_data
    from genzoo.data.config import DataConfig

    source = _source(data_name)
    bundle = load_data(DataConfig(name=source))
    if bundle.train.y is None:
        raise DataError(f"data set {source!r} has no labels to train the feature classifier")
    model = train_feature_classifier(bundle.train.x, bundle.train.y)
    with torch.no_grad():
        acc = float((model(bundle.valid.x).argmax(1) == bundle.valid.y).float().mean())
    meta = {"version": CLASSIFIER_VERSION, "source": source, "n_visible": bundle.n_features,
            "settings": _SETTINGS, "valid_accuracy": acc, "torch": torch.__version__}
    weights, info = _paths(source, bundle.n_features)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    os.replace(tmp, weights)
    info.write_text(json.dumps(meta, indent=2) + "\n")
    return model, meta


def _source(data_name: str) -> str:
    if data_name not in CLASSIFIER_SOURCES:
        raise DataError(
            f"no feature classifier for data set {data_name!r}; Fréchet distance and class "
            f"coverage are available for {', '.join(sorted(CLASSIFIER_SOURCES))}"
        )
    return CLASSIFIER_SOURCES[data_name]


def load_classifier(data_name: str, rebuild: bool = False) -> FeatureClassifier:
    """The cached classifier for ``data_name`` (trained and cached first when missing or
    ``rebuild``), in eval mode on the CPU."""
    source = _source(data_name)
    n_visible = {"mnist": 784, "digits": 64}[source]
    weights, _ = _paths(source, n_visible)
    if rebuild or not weights.exists():
        return build_classifier(data_name)[0]
    model = FeatureClassifier(n_visible, 10, _SETTINGS["hidden"], _SETTINGS["features"])
    model.load_state_dict(load_file(str(weights)))
    return model.eval()


@torch.no_grad()
def classifier_features(classifier: FeatureClassifier, x: torch.Tensor,
                        batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, F) float64, predicted classes (N,)) of x (N, D), on the CPU."""
    feats, preds = [], []
    with progress.Stage("Fréchet features", len(x), "images") as st:
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].detach().to("cpu", torch.float32)
            f = classifier.features(xb)
            feats.append(f.double())
            preds.append(classifier.head(f).argmax(1))
            st.advance(len(xb))
    return torch.cat(feats), torch.cat(preds)


def _sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(a)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted (mean, unbiased covariance) to feature sets
    a (N, F) and b (M, F), N, M >= 2; float64."""
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise InputError(f"frechet_distance needs (N>=2, F) sets, got {tuple(a.shape)}, "
                         f"{tuple(b.shape)}")
    a, b = a.double(), b.to(a.device).double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    r = _sqrtm_psd(s_a)
    cross = torch.linalg.eigvalsh(r @ s_b @ r).clamp_min(0).sqrt().sum()
    fd = (mu_a - mu_b).pow(2).sum() + s_a.trace() + s_b.trace() - 2.0 * cross
    return float(fd.clamp_min(0))


def class_coverage(predicted: torch.Tensor, n_classes: int = 10,
                   min_fraction: float = 0.01) -> tuple[int, list[int]]:
    """(number of classes receiving at least ``min_fraction`` of the predictions, the count of
    each class) for predicted labels (N,)."""
    counts = torch.bincount(predicted.flatten().cpu(), minlength=n_classes)[:n_classes]
    covered = int((counts >= min_fraction * max(len(predicted), 1)).sum())
    return covered, [int(c) for c in counts]


def frechet_report(samples: torch.Tensor, x_ref: torch.Tensor, classifier: FeatureClassifier,
                   min_fraction: float = 0.01) -> dict:
    """``frechet_distance`` between the classifier features of ``samples`` (S, D) and of
    ``x_ref`` (N, D), ``classes_covered`` by the samples, their ``class_counts``, and the
    reference data's own ``reference_classes_covered``."""
    fs, ps = classifier_features(classifier, samples)
    fx, px = classifier_features(classifier, x_ref)
    covered, counts = class_coverage(ps, 10, min_fraction)
    return {
        "frechet_distance": frechet_distance(fs, fx),
        "classes_covered": covered,
        "class_counts": counts,
        "reference_classes_covered": class_coverage(px, 10, min_fraction)[0],
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m genzoo.evaluation.frechet --data mnist [--rebuild]``: build (or show) the
    cached feature classifier."""
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--data", default="mnist", choices=sorted(CLASSIFIER_SOURCES))
    p.add_argument("--rebuild", action="store_true")
    args = p.parse_args(argv)
    with progress.on_stderr():  # training the classifier takes a while on MNIST
        if args.rebuild:
            _, meta = build_classifier(args.data)
        else:
            load_classifier(args.data)
        source = _source(args.data)
        meta = json.loads(_paths(source, {"mnist": 784, "digits": 64}[source])[1].read_text())
    print(json.dumps({"cache_dir": str(cache_dir()), **meta}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "FeatureClassifier",
    "build_classifier",
    "cache_dir",
    "class_coverage",
    "classifier_features",
    "frechet_distance",
    "frechet_report",
    "load_classifier",
    "train_feature_classifier",
]
