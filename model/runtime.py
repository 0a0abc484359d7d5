"""The exported model under ONNX Runtime: the inference path shared by the service, the
exporter's parity check and the evaluator. No PyTorch.

A model is asked about its windows at a moment (`now`, unix seconds per window; default
each window's last event): the network reads the window alone, the artifact's
gradient-boosted head (`head.onnx`, when it has one) the window's recency features at that
moment beside the network's probabilities, and answers the heads it lists in their place.

The outputs it asks for, and what it checks the graph declares, come from
`model.artifact.OUTPUTS`; `output_shapes` turns that spec into the shapes of one call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from model.artifact import OUTPUT_DTYPE, OUTPUT_NAMES, OUTPUTS, Artifact, ArtifactError
from model.features import Event, Features, featurize_windows
from model.tabular import head_input, tabular_features

log = logging.getLogger(__name__)

PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")

Outputs = dict[str, np.ndarray]

_ONNX_TYPE = {"float32": "tensor(float)"}[OUTPUT_DTYPE]  # how onnxruntime names the dtype


def output_shapes(artifact: Artifact, batch: int, width: int) -> dict[str, tuple[int, ...]]:
    """Each output's shape for `batch` windows featurized to `width` columns."""
    sizes = {
        "batch": batch,
        "time": width,
        "behaviors": len(artifact.manifest.behaviors),
        "categories": artifact.categories.size,
        "query": artifact.manifest.item_index.dim,
    }
    return {o.name: tuple(sizes[axis] for axis in o.axes) for o in OUTPUTS}


def check_declared_outputs(session: ort.InferenceSession) -> None:
    """The graph declares every output of the spec, with its dtype and rank."""
    declared = {o.name: o for o in session.get_outputs()}
    for spec in OUTPUTS:
        found = declared.get(spec.name)
        if found is None:
            raise ArtifactError(f"the model has no output {spec.name!r}")
        if found.type != _ONNX_TYPE or len(found.shape) != len(spec.axes):
            raise ArtifactError(
                f"output {spec.name} is {found.type} of rank {len(found.shape)}, expected "
                f"{_ONNX_TYPE} over {spec.axes}"
            )


class OnnxModel:
    """An artifact's network in an ONNX Runtime session.

    Asks for the providers in order and keeps only those this onnxruntime build has;
    `providers` tells which ones the session actually uses, and a fall-back from one the
    build has (CUDA without a GPU) is a warning.
    `int8` opens the artifact's quantized sibling instead; `path` is the file in use.
    """

    def __init__(
        self,
        artifact: Artifact,
        providers: Sequence[str] = PREFERRED_PROVIDERS,
        *,
        int8: bool = False,
        intra_op_threads: int = 0,
    ) -> None:
        self.artifact = artifact
        self.int8 = int8
        self.path = artifact.onnx_int8_path if int8 else artifact.onnx_path
        available = set(ort.get_available_providers())
        wanted = [p for p in providers if p in available] or ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.path), options, providers=wanted)
        self.providers: list[str] = self.session.get_providers()
        # A provider this build lacks (CUDA in the CPU wheel) is no fall-back: `providers`
        # says what runs. One the build has that the session did not take (no GPU, a CUDA
        # library missing) is a fall-back, and warned about.
        fell_back = [p for p in wanted if p not in self.providers]
        if fell_back:
            log.warning("onnxruntime: asked for %s, running on %s", wanted, self.providers)
        check_declared_outputs(self.session)
        self._outputs = list(OUTPUT_NAMES)
        head = artifact.manifest.head
        self._head = None if head is None else (head, ort.InferenceSession(
            str(artifact.head_path), options, providers=["CPUExecutionProvider"]))

    def run(self, features: Features, now: np.ndarray | None = None) -> Outputs:
        """One model call on a featurized batch (B, T) asked about at `now` (default: each
        window's last event); returns every named output, the probabilities calibrated by
        the manifest's calibrators."""
        return self.artifact.manifest.calibrators.apply(self.run_uncalibrated(features, now))

    def network(self, features: Features) -> Outputs:
        """The graph's own outputs on a featurized batch, without the head."""
        feeds = {name: features[name] for name in self.artifact.manifest.inputs}
        return dict(zip(self._outputs, self.session.run(self._outputs, feeds), strict=True))

    def run_uncalibrated(self, features: Features, now: np.ndarray | None = None) -> Outputs:
        """`run` with the model's own probabilities (the evaluator's "before")."""
        out = self.network(features)
        if self._head is None:
            return out
        info, head = self._head
        if now is None:
            now = features["ts"][:, -1]
        tabular = tabular_features(features, now, self.artifact.manifest.features)
        # the heads the gradient-boosted head answers (binary: the positive class's share)
        answers = head.run(list(info.outputs), {"x": head_input(tabular, out)})
        for name, value in zip(info.outputs, answers, strict=True):
            out[name] = value if name == "behavior_probs" else value[:, 1]
        return out

    def featurize(self, windows: Sequence[Sequence[Event]]) -> Features:
        a = self.artifact
        return featurize_windows(windows, a.manifest.features, a.items, a.categories)

    def score(self, windows: Sequence[Sequence[Event]], now: np.ndarray | None = None
              ) -> Outputs:
        """Raw events -> outputs, exactly as the service computes them. Windows must be
        non-empty (an empty window has no model answer: use the manifest's priors)."""
        if any(len(w) == 0 for w in windows):
            raise ValueError("every window needs at least one event")
        return self.run(self.featurize(windows), now)
