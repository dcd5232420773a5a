"""cin-style deployment: ONNX export (needs torch) and the onnxruntime runner
(needs only numpy, Pillow and onnxruntime).  Installed as ``cin_style_export``."""
