"""The machine's matmul peak, which the benchmarks' GFLOP/s are measured against."""

from __future__ import annotations

import torch

from cin_style.infer.runtimes import cpu_session
from cin_style.timing import best_seconds


def measure_matmul_peak(n: int = 2048, repeats: int = 5) -> dict[str, float]:
    """The machine's float32 matmul peak (GFLOP/s): best of a few n³ products in
    PyTorch and in onnxruntime (their BLAS kernels differ; the better one is the
    peak the graphs are measured against)."""
    from onnx import TensorProto, helper

    a, b = torch.rand(n, n), torch.rand(n, n)
    torch_best = best_seconds(lambda: torch.mm(a, b), repeats)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "matmul",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, [n, n]) for k in "ab"],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    session = cpu_session(proto.SerializeToString())
    feeds = {"a": a.numpy(), "b": b.numpy()}
    ort_best = best_seconds(lambda: session.run(None, feeds), repeats)
    torch_gflops, ort_gflops = 2 * n**3 / torch_best / 1e9, 2 * n**3 / ort_best / 1e9
    return {"torch": torch_gflops, "onnxruntime": ort_gflops, "peak": max(torch_gflops, ort_gflops)}
