"""ONNX conversions for the TensorFlow ops of our models that tf2onnx does not convert itself.

Both come from the in-graph renderer (models/raster.py) that mobilenet runs on strokes:

  UpperBound          tf.searchsorted(sorted, values, side="right"): per value, how many entries of its
                      row are <= it. tf2onnx has no conversion; here a broadcast LessOrEqual summed
                      over the row (rows are a drawing's points: a few hundred, so the [B, M, N]
                      comparison stays small).
  UnsortedSegmentMax  tf.math.unsorted_segment_max. tf2onnx's own conversion builds a segments x
                      largest-count grid and fails on int32 data under numpy 2; ONNX (opset 18) has it
                      as one op: ScatterND with reduction "max" onto the dtype's lowest value, which
                      is what TensorFlow gives an empty segment.

Each handler has tf2onnx's custom-op signature (graph, node, name, args) and replaces `node` by ONNX
nodes that write the node's own outputs.
"""

from __future__ import annotations

import numpy as np

OPSET = 18  # ScatterND's "max" reduction


def upper_bound(ctx, node, name, args) -> None:
    from onnx import TensorProto
    from tf2onnx.graph_builder import GraphBuilder

    sorted_rows, values = node.input
    out_type = node.get_attr_value("out_type", TensorProto.INT32)
    shapes, dtypes = node.output_shapes, node.output_dtypes
    ctx.remove_node(node.name)
    builder = GraphBuilder(ctx)
    rows = builder.make_unsqueeze({"data": sorted_rows, "axes": [1]})  # [B, 1, N]
    columns = builder.make_unsqueeze({"data": values, "axes": [2]})  # [B, M, 1]
    at_most = ctx.make_node("LessOrEqual", [rows, columns]).output[0]
    counts = ctx.make_node("Cast", [at_most], attr={"to": TensorProto.INT64}).output[0]
    total = builder.make_reduce_sum({"data": counts, "axes": [2], "keepdims": 0})
    ctx.make_node("Cast", [total], attr={"to": out_type}, outputs=node.output, shapes=shapes, dtypes=dtypes)


def unsorted_segment_max(ctx, node, name, args) -> None:
    from onnx import TensorProto, helper
    from tf2onnx import utils
    from tf2onnx.graph_builder import GraphBuilder

    data, segment_ids, num_segments = node.input
    shapes, dtypes = node.output_shapes, node.output_dtypes
    data_type = ctx.get_dtype(data)
    lowest = _lowest(utils.map_onnx_to_numpy_type(data_type))
    ids_rank = ctx.get_rank(segment_ids)
    ctx.remove_node(node.name)
    builder = GraphBuilder(ctx)
    # Output shape: [num_segments] + data.shape[rank(segment_ids):]
    count = ctx.make_node("Cast", [num_segments], attr={"to": TensorProto.INT64}).output[0]
    count = builder.make_unsqueeze({"data": count, "axes": [0]})
    data_shape = ctx.make_node("Shape", [data]).output[0]
    tail = builder.make_slice({"data": data_shape, "starts": [ids_rank], "ends": [np.iinfo(np.int64).max],
                               "axes": [0]})
    shape = ctx.make_node("Concat", [count, tail], attr={"axis": 0}).output[0]
    fill = helper.make_tensor("value", data_type, dims=[1], vals=[lowest])
    empty = ctx.make_node("ConstantOfShape", [shape], attr={"value": fill}).output[0]
    ids = ctx.make_node("Cast", [segment_ids], attr={"to": TensorProto.INT64}).output[0]
    indices = builder.make_unsqueeze({"data": ids, "axes": [-1]})
    ctx.make_node("ScatterND", [empty, indices, data], attr={"reduction": "max"}, outputs=node.output,
                  shapes=shapes, dtypes=dtypes)


def _lowest(numpy_type) -> int | float:
    if np.issubdtype(numpy_type, np.integer):
        return int(np.iinfo(numpy_type).min)
    return float(np.finfo(numpy_type).min)


HANDLERS = {"UpperBound": (upper_bound, []), "UnsortedSegmentMax": (unsorted_segment_max, [])}
