"""The model artifact directory: the only thing the trainer and the service share.

    ARTIFACT_DIR/
        model.onnx          the exported network (see OUTPUT_NAMES)
        model.int8.onnx     optional dynamically quantized sibling
        vocab.json          {"items": [...raw ids...], "categories": [...]}, index order
        manifest.json       Manifest below
        report/             metrics.json, report.md, PNG plots (not read by the service)

NumPy and the standard library only: the service loads artifacts without PyTorch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from model.errors import SeqcastError
from model.features import BEHAVIOR_NAMES, INPUT_NAMES, FeatureSpec, Vocab

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
VOCAB = "vocab.json"
ONNX = "model.onnx"
ONNX_INT8 = "model.int8.onnx"

# Every input is int64 (batch, time), left-padded (see model.features).


@dataclass(frozen=True)
class OutputSpec:
    """One output of the exported network: float32, probabilities already calibrated.

    `axes` names each dimension: "batch" (windows scored), "time" (the batch's window width),
    "behaviors" (len(BEHAVIOR_NAMES)), "categories" / "items" (the vocabulary layout's size,
    `Vocab.size`). "batch" and "time" vary per call; the others are fixed by the artifact.
    """

    name: str
    axes: tuple[str, ...]
    meaning: str
    probability: bool = False  # values in [0, 1]


OUTPUT_DTYPE = "float32"
OUTPUTS = (
    OutputSpec("behavior_probs", ("batch", "behaviors"),
               "next behavior type, in BEHAVIOR_NAMES order", probability=True),
    OutputSpec("purchase_prob", ("batch",),
               "a purchase within horizon_seconds of the last event", probability=True),
    OutputSpec("return_prob", ("batch",),
               "the user returns (an event after a session gap) within the horizon",
               probability=True),
    OutputSpec("category_logits", ("batch", "categories"),
               "next category, over the category vocabulary layout"),
    OutputSpec("item_logits", ("batch", "items"), "next item, over the item vocabulary layout"),
    OutputSpec("event_surprise", ("batch", "time"),
               "-log p(behavior, category) of each event given the events before it in the "
               "window; 0 for padding and the window's first event"),
)
OUTPUT_NAMES = tuple(o.name for o in OUTPUTS)


class ArtifactError(SeqcastError):
    """An artifact directory is missing, incomplete or from an incompatible schema."""


@dataclass(frozen=True)
class Priors:
    """What the model says before it has seen any event: the answer for a user with no window."""

    behavior: list[float]
    purchase: float
    return_: float
    top_items: list[str]
    top_categories: list[str]


@dataclass(frozen=True)
class Manifest:
    model_version: str
    trained_at: str
    features: FeatureSpec
    horizon_seconds: int
    return_gap_seconds: int
    priors: Priors
    # Mean per-event surprise of training windows at quantiles 0.00, 0.01, ..., 1.00: the
    # service turns a window's mean surprise into a percentile (its anomaly score).
    surprise_quantiles: list[float]
    calibration: dict[str, float]
    metrics: dict[str, Any]
    parity_tolerance: float
    onnx_sha256: str
    behaviors: tuple[str, ...] = BEHAVIOR_NAMES
    inputs: tuple[str, ...] = INPUT_NAMES
    outputs: tuple[str, ...] = OUTPUT_NAMES
    has_int8: bool = False
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["features"] = self.features.to_dict()
        d["priors"] = asdict(self.priors)
        d["priors"]["return"] = d["priors"].pop("return_")
        d["behaviors"] = list(self.behaviors)
        d["inputs"] = list(self.inputs)
        d["outputs"] = list(self.outputs)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Manifest:
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ArtifactError(
                f"manifest schema_version {version!r}; this build reads {SCHEMA_VERSION}"
            )
        try:
            priors = dict(d["priors"])
            priors["return_"] = priors.pop("return")
            return cls(
                model_version=str(d["model_version"]),
                trained_at=str(d["trained_at"]),
                features=FeatureSpec.from_dict(d["features"]),
                horizon_seconds=int(d["horizon_seconds"]),
                return_gap_seconds=int(d["return_gap_seconds"]),
                priors=Priors(**priors),
                surprise_quantiles=[float(q) for q in d["surprise_quantiles"]],
                calibration={k: float(v) for k, v in d["calibration"].items()},
                metrics=dict(d["metrics"]),
                parity_tolerance=float(d["parity_tolerance"]),
                onnx_sha256=str(d["onnx_sha256"]),
                behaviors=tuple(d["behaviors"]),
                inputs=tuple(d["inputs"]),
                outputs=tuple(d["outputs"]),
                has_int8=bool(d.get("has_int8", False)),
                extra=dict(d.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"manifest is malformed: {exc!r}") from exc


@dataclass(frozen=True)
class Artifact:
    """A loaded artifact directory: manifest, vocabularies and the path of the ONNX file."""

    path: Path
    manifest: Manifest
    items: Vocab
    categories: Vocab

    @property
    def onnx_path(self) -> Path:
        return self.path / ONNX


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_vocab(path: Path, items: Vocab, categories: Vocab) -> None:
    (path / VOCAB).write_text(json.dumps({"items": items.ids, "categories": categories.ids}))


def write_manifest(path: Path, manifest: Manifest) -> None:
    """Written last, through a rename: a directory with a manifest is a complete artifact."""
    tmp = path / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True))
    tmp.replace(path / MANIFEST)


def load_artifact(path: str | Path, *, verify: bool = True) -> Artifact:
    """Read and check an artifact directory. Raises ArtifactError naming what is wrong."""
    root = Path(path)
    for name in (MANIFEST, VOCAB, ONNX):
        if not (root / name).is_file():
            raise ArtifactError(f"{root}: missing {name}")
    try:
        manifest = Manifest.from_dict(json.loads((root / MANIFEST).read_text()))
        vocab = json.loads((root / VOCAB).read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{root}: invalid JSON: {exc}") from exc
    if verify and sha256_of(root / ONNX) != manifest.onnx_sha256:
        raise ArtifactError(f"{root}: {ONNX} does not match the checksum in {MANIFEST}")
    spec = manifest.features
    return Artifact(
        path=root,
        manifest=manifest,
        items=Vocab(list(vocab["items"]), spec.n_oov_items),
        categories=Vocab(list(vocab["categories"]), spec.n_oov_categories),
    )
