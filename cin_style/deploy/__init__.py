"""Writing models for other runtimes: ONNX export with parity checks and its variants
(``deploy.onnx_export``), int8 quantization (``deploy.quantize``), and ``deploy.export.export``,
which owns the variant matrix."""
