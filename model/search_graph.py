"""The exact item search's scan as an ONNX graph: what the exporter writes as
`item_search.onnx` and `model.retrieval.ItemIndex` runs under ONNX Runtime.

One block of item vectors at a time (`model.retrieval.BLOCK` rows), for a batch of queries:

    inputs   query (B, d + 1) float32, vectors (rows, d + 1) float32, known_from, known_to,
             k (int64, one element each)
    outputs  peak (B, 1) float32      the highest logit of the block, s = query . vector
             total (B,) float64       sum over the block of exp(s - peak)
             best (B, k) float32      the k highest logits of rows known_from .. known_to
             rows (B, k) int64        their positions in that slice, best first

ONNX Runtime's matrix product and top-k scan a catalog several times faster than NumPy's on
a batch of queries (docs/benchmarks-service.md, "the item search under ONNX Runtime"), and
the vectors are fed, not stored in the graph: the workers keep sharing the one memory-mapped
copy. Trainer side (it needs the onnx package); the service only loads the file.
"""

from __future__ import annotations

from onnx import TensorProto, helper

OPSET = 13


def item_search_graph() -> bytes:
    """The serialized ONNX model of the scan (see the module docstring)."""
    f, i, d = TensorProto.FLOAT, TensorProto.INT64, TensorProto.DOUBLE
    nodes = [
        helper.make_node("Gemm", ["query", "vectors"], ["s"], transB=1),
        helper.make_node("ReduceMax", ["s"], ["peak"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["s", "peak"], ["shifted"]),
        helper.make_node("Exp", ["shifted"], ["terms"]),
        helper.make_node("Cast", ["terms"], ["terms64"], to=d),  # summed in float64
        helper.make_node("ReduceSum", ["terms64", "axis"], ["total"], keepdims=0),
        helper.make_node("Slice", ["s", "known_from", "known_to", "axis"], ["known"]),
        helper.make_node("TopK", ["known", "k"], ["best", "rows"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "item_search",
        [helper.make_tensor_value_info("query", f, ["batch", "dim"]),
         helper.make_tensor_value_info("vectors", f, ["rows", "dim"]),
         *(helper.make_tensor_value_info(name, i, [1]) for name in ("known_from", "known_to",
                                                                     "k"))],
        [helper.make_tensor_value_info("peak", f, ["batch", 1]),
         helper.make_tensor_value_info("total", d, ["batch"]),
         helper.make_tensor_value_info("best", f, ["batch", "k"]),
         helper.make_tensor_value_info("rows", i, ["batch", "k"])],
        [helper.make_tensor("axis", i, [1], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="seqcast")
    return model.SerializeToString()
