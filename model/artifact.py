"""The model artifact directory: the only thing the trainer and the service share.

    ARTIFACT_DIR/
        model.onnx          the exported network (see OUTPUTS)
        model.int8.onnx     optional dynamically quantized sibling (its own checksum too)
        item_vectors.npy    float32 (item rows, d + 1): each row's [embedding, bias], the
                            vocabulary layout; what `model.retrieval` searches
        item_sample.npy     int64 row ids, a fixed uniform sample of the layout (the
                            approximate search's estimate of the softmax normaliser)
        item_index.faiss    the approximate (HNSW) index of the known rows, when the
                            catalog is large enough (ItemIndexInfo.ann)
        head.onnx           optional gradient-boosted head (HeadInfo): trees over the
                            window's recency features at the request time and the
                            network's probabilities, answering the heads it lists
        vocab.json          {"items": [...raw ids...], "categories": [...]}, index order
        manifest.json       Manifest below
        report/             metrics.json, report.md, PNG plots (not read by the service)

NumPy, pydantic and the standard library only: the service loads artifacts without PyTorch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from model.calibration import Calibrators
from model.errors import SeqcastError
from model.features import BEHAVIOR_NAMES, INPUT_NAMES, FeatureSpec, Vocab

SCHEMA_VERSION = 3
MANIFEST = "manifest.json"
VOCAB = "vocab.json"
ONNX = "model.onnx"
ONNX_INT8 = "model.int8.onnx"
ITEM_VECTORS = "item_vectors.npy"
ITEM_SAMPLE = "item_sample.npy"
ITEM_ANN = "item_index.faiss"
ITEM_SEARCH = "item_search.onnx"
HEAD = "head.onnx"
REPORT_DIR = "report"  # the training report (metrics.json, report.md, PNG plots)
# What an older schema lacks that this build needs, for the message refusing it.
OLDER = {
    1: "its model returns catalog-wide item logits, this service ranks items through the "
       "item vectors and index",
    2: f"it has no {ITEM_SEARCH}, the exact item search this service runs",
}

# Every input is int64 (batch, time), left-padded (see model.features).


@dataclass(frozen=True)
class OutputSpec:
    """One output of the exported network: float32; the probabilities are the network's,
    `model.calibration.Calibrators` maps them to the served ones.

    `axes` names each dimension: "batch" (windows scored), "time" (the batch's window width),
    "behaviors" (len(BEHAVIOR_NAMES)), "categories" (the vocabulary layout's size,
    `Vocab.size`), "query" (the item vectors' width, d + 1). The DYNAMIC_AXES vary per call;
    the others are fixed by the artifact.
    """

    name: str
    axes: tuple[str, ...]
    meaning: str
    probability: bool = False  # values in [0, 1]


DYNAMIC_AXES = ("batch", "time")
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
    OutputSpec("item_query", ("batch", "query"),
               "the next-item query: row x of item_vectors.npy scores query . vector[x], the "
               "generator's logit of x (its softmax over the layout is the generator)"),
    OutputSpec("item_gate", ("batch",),
               "the generator's share g of the next-item mixture (1 without copy heads)",
               probability=True),
    OutputSpec("item_copy", ("batch", "time"),
               "the copy head's weight on each window position's item (0 at padding, and "
               "everywhere without copy heads); p(x) = g softmax(x) + (1 - g) copy(x)",
               probability=True),
    OutputSpec("event_surprise", ("batch", "time"),
               "-log p(behavior, category) of each event given the events before it in the "
               "window; 0 for padding and the window's first event"),
)
OUTPUT_NAMES = tuple(o.name for o in OUTPUTS)


class ArtifactError(SeqcastError):
    """An artifact directory is missing, incomplete or from an incompatible schema."""


class Priors(BaseModel):
    """What the model says before it has seen any event: the answer for a user with no window."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    behavior: list[float]
    purchase: float
    return_: float = Field(alias="return")
    top_items: list[str]
    top_categories: list[str]


class ItemIndexInfo(BaseModel):
    """The item vectors and their search index (`model.retrieval`)."""

    model_config = ConfigDict(frozen=True)

    rows: int  # the item vocabulary layout's size
    dim: int  # d + 1: the embedding and the bias
    vectors_sha256: str
    sample_sha256: str
    search_sha256: str  # item_search.onnx, the exact scan (model.search_graph)
    ann: str | None = None  # "faiss-hnsw" when item_index.faiss is shipped, else exact search
    ann_sha256: str | None = None  # set whenever ann


class HeadInfo(BaseModel):
    """The gradient-boosted head (`head.onnx`, `model.tabular`): one float32 input `x`
    (batch, len(inputs)) whose columns are `inputs`, and per answered output (of
    `OUTPUT_NAMES`) a float32 (batch, classes) probability output of the same name."""

    model_config = ConfigDict(frozen=True)

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]  # the network outputs it answers instead of the network
    trees: dict[str, int]  # per output, the trees kept by early stopping
    # per output fitted: (the trees', the network's) log loss on the held-out points the
    # choice was made on; an output is answered by the trees only where theirs is lower
    log_loss: dict[str, tuple[float, float]] = Field(default_factory=dict)
    sha256: str


# Window lengths are binned at these lower edges (the first bin holds 1 event); the gaps
# between a user's consecutive events at the featurizer's own gap edges (FeatureSpec).
WINDOW_LENGTH_EDGES = (2, 3, 5, 10, 20, 50, 100)


def bin_of(values: np.ndarray | Sequence[float], edges: np.ndarray | Sequence[float]
           ) -> np.ndarray:
    """Each value's bin among `edges` (bin i holds edges[i-1] <= v < edges[i]; 0 below
    edges[0], len(edges) from the last edge on): the trainer's reference and the service's
    live counts are binned by this one rule."""
    return np.searchsorted(np.asarray(edges), np.asarray(values), side="right")


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return (counts / total).tolist() if total else [0.0] * len(counts)


class InputStats(BaseModel):
    """The training data's input distribution: the reference of the service's drift gauges.

    `behavior`: share of each behavior (BEHAVIOR_NAMES order) among training events;
    `window_length` and `gap`: shares per bin (`bin_of`) of the window's length just after
    each training event (capped at the window length) and of the gap (seconds) from a
    user's previous event; `unknown_item` / `unknown_category`: share of the events after
    the training period (validation and test) whose id is outside the vocabulary, which is
    what a served model meets (every training id is known by construction).
    """

    model_config = ConfigDict(frozen=True)

    events: int
    behavior: list[float]
    unknown_item: float
    unknown_category: float
    window_length_edges: list[int]
    window_length: list[float]
    gap_edges: list[float]
    gap: list[float]

    @classmethod
    def of_events(
        cls, *, user: np.ndarray, behavior: np.ndarray, ts: np.ndarray, window_len: int,
        gap_edges: Sequence[float], held_out_item_unknown: np.ndarray,
        held_out_category_unknown: np.ndarray,
    ) -> InputStats:
        """The statistics of training events grouped by user in time order (`user`,
        `behavior`, `ts` arrays), and of whether each held-out event's ids are unknown."""
        n = len(ts)
        starts = np.r_[True, user[1:] != user[:-1]] if n else np.zeros(0, dtype=bool)
        first = np.maximum.accumulate(np.where(starts, np.arange(n), 0)) if n else starts
        lengths = np.minimum(np.arange(n) - first + 1, window_len)
        gaps = np.diff(ts)[~starts[1:]] if n else np.zeros(0)
        n_lengths = len(WINDOW_LENGTH_EDGES) + 1
        return cls(
            events=n,
            behavior=_shares(np.bincount(behavior.astype(np.int64),
                                         minlength=len(BEHAVIOR_NAMES))),
            unknown_item=_shares(np.bincount(held_out_item_unknown.astype(np.int64),
                                             minlength=2))[1],
            unknown_category=_shares(np.bincount(held_out_category_unknown.astype(np.int64),
                                                 minlength=2))[1],
            window_length_edges=list(WINDOW_LENGTH_EDGES),
            window_length=_shares(np.bincount(bin_of(lengths, WINDOW_LENGTH_EDGES),
                                              minlength=n_lengths)),
            gap_edges=[float(e) for e in gap_edges],
            gap=_shares(np.bincount(bin_of(gaps, gap_edges), minlength=len(gap_edges) + 1)),
        )


class Manifest(BaseModel):
    """manifest.json. Unknown keys are ignored, so a newer trainer's additions still load."""

    model_config = ConfigDict(frozen=True)

    model_version: str
    trained_at: str
    features: FeatureSpec
    horizon_seconds: int
    return_gap_seconds: int
    priors: Priors
    # Quantiles 0.000, 0.001, ..., 1.000 over the validation windows of their mean per-event
    # surprise, and of each scripted measure and their combination (`model.anomaly`): what
    # the service turns a window's measures into its anomaly score with.
    surprise_quantiles: list[float]
    anomaly_quantiles: dict[str, list[float]] = Field(default_factory=dict)
    calibration: dict[str, float]
    # The maps from the graph's probabilities to the served ones (`model.calibration`); an
    # artifact without them serves the graph's own.
    calibrators: Calibrators = Field(default_factory=Calibrators)
    metrics: dict[str, Any]
    parity_tolerance: float
    onnx_sha256: str
    item_index: ItemIndexInfo
    head: HeadInfo | None = None  # None: the network answers every head itself
    behaviors: tuple[str, ...] = BEHAVIOR_NAMES
    inputs: tuple[str, ...] = INPUT_NAMES
    outputs: tuple[str, ...] = OUTPUT_NAMES
    has_int8: bool = False
    onnx_int8_sha256: str | None = None  # set whenever has_int8
    schema_version: int = SCHEMA_VERSION
    # The training data's input statistics (drift reference); None in older artifacts.
    input_stats: InputStats | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Manifest:
        """A manifest from its JSON text. Raises ArtifactError on invalid JSON, another
        schema_version, or a field that is missing or of the wrong type."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"invalid JSON: {exc}") from exc
        version = d.get("schema_version") if isinstance(d, dict) else None
        if isinstance(version, int) and version < SCHEMA_VERSION:
            raise ArtifactError(
                f"manifest schema_version {version} is older than this build's "
                f"{SCHEMA_VERSION}: {OLDER[version] if version in OLDER else 'another layout'}"
                f"; retrain it with this version (`seqcast train`)"
            )
        if version != SCHEMA_VERSION:
            raise ArtifactError(
                f"manifest schema_version {version!r}; this build reads {SCHEMA_VERSION}"
            )
        try:
            return cls.model_validate(d)
        except ValidationError as exc:
            raise ArtifactError(f"manifest is malformed: {exc}") from exc


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

    @property
    def onnx_int8_path(self) -> Path:
        return self.path / ONNX_INT8

    @property
    def head_path(self) -> Path:
        return self.path / HEAD


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
    tmp.write_text(json.dumps(manifest.model_dump(by_alias=True), indent=2, sort_keys=True))
    tmp.replace(path / MANIFEST)


def load_artifact(path: str | Path, *, verify: bool = True, int8: bool = False) -> Artifact:
    """Read and check an artifact directory. Raises ArtifactError naming what is wrong.

    `verify` checks the ONNX file against the manifest's checksum; with `int8` the artifact
    must also hold the int8 model, and `verify` checks that file against its own checksum.
    """
    root = Path(path)
    for name in (MANIFEST, VOCAB, ONNX):
        if not (root / name).is_file():
            raise ArtifactError(f"{root}: missing {name}")
    try:
        manifest = Manifest.parse((root / MANIFEST).read_text())
    except ArtifactError as exc:
        raise ArtifactError(f"{root}: {MANIFEST}: {exc}") from exc
    try:
        vocab = json.loads((root / VOCAB).read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{root}: {VOCAB}: invalid JSON: {exc}") from exc
    index = manifest.item_index
    checked = {ITEM_VECTORS: index.vectors_sha256, ITEM_SAMPLE: index.sample_sha256,
               ITEM_SEARCH: index.search_sha256}
    if index.ann is not None:
        if index.ann_sha256 is None:
            raise ArtifactError(f"{root}: the manifest lists {ITEM_ANN} without its checksum")
        checked[ITEM_ANN] = index.ann_sha256
    if manifest.head is not None:
        checked[HEAD] = manifest.head.sha256
    for name in checked:
        if not (root / name).is_file():
            raise ArtifactError(f"{root}: missing {name}")
    if verify:
        _verify(root, ONNX, manifest.onnx_sha256)
        for name, sha256 in checked.items():
            _verify(root, name, sha256)
    if int8:
        if not manifest.has_int8 or manifest.onnx_int8_sha256 is None:
            raise ArtifactError(
                f"{root}: the manifest lists no {ONNX_INT8} with its checksum "
                f"(train with `seqcast train --int8`)"
            )
        if not (root / ONNX_INT8).is_file():
            raise ArtifactError(f"{root}: missing {ONNX_INT8}")
        if verify:
            _verify(root, ONNX_INT8, manifest.onnx_int8_sha256)
    spec = manifest.features
    return Artifact(
        path=root,
        manifest=manifest,
        items=Vocab(list(vocab["items"]), spec.n_oov_items),
        categories=Vocab(list(vocab["categories"]), spec.n_oov_categories),
    )


def _verify(root: Path, name: str, sha256: str) -> None:
    if sha256_of(root / name) != sha256:
        raise ArtifactError(f"{root}: {name} does not match its checksum in {MANIFEST}")
