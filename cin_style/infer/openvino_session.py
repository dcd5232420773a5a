"""OpenVINO behind the part of onnxruntime's session interface that ``StyleRunner`` uses,
so ``--runtime openvino`` runs every graph variant (plain, tiled) the same way.  Needs the
``openvino`` extra; torch-free."""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np


class OpenVinoSession:
    """The part of onnxruntime's ``InferenceSession`` that ``StyleRunner`` uses, run by
    OpenVINO on the CPU from the same .onnx graph (``stylize --runtime openvino``).

    OpenVINO picks its own inference precision: bf16 on CPUs that have it, else f32.
    Each call makes its own infer request, so calls from several threads do not collide."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None, precision: str | None = None):
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(path))
        info = model.get_rt_info()
        framework = info["framework"] if "framework" in info else {}
        self._metadata = {str(k): framework[k].astype(str) for k in framework}
        config: dict = {}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        if precision:
            config["INFERENCE_PRECISION_HINT"] = precision
        self._compiled = core.compile_model(model, "CPU", config)
        chosen = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = chosen.to_string() if hasattr(chosen, "to_string") else str(chosen)  # "bf16", "f32"

        def port(p) -> SimpleNamespace:
            dims = [d.get_length() if d.is_static else None for d in p.get_partial_shape()]
            kind = "float16" if p.get_element_type() == ov.Type.f16 else "float"
            return SimpleNamespace(name=p.get_any_name(), shape=dims, type=f"tensor({kind})")

        self._inputs = [port(p) for p in self._compiled.inputs]
        self._outputs = [port(p) for p in self._compiled.outputs]

    def get_inputs(self) -> list:
        return self._inputs

    def get_outputs(self) -> list:
        return self._outputs

    def get_modelmeta(self):
        return SimpleNamespace(custom_metadata_map=dict(self._metadata))

    def get_providers(self) -> list[str]:
        return ["OpenVINO CPU"]

    def run(self, output_names: list[str] | None, feed: dict) -> list[np.ndarray]:
        results = self._compiled.create_infer_request().infer(feed)
        names = output_names or [o.name for o in self._outputs]
        return [np.array(results[self._compiled.output(name)]) for name in names]
