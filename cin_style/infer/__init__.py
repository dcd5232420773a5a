"""Running a model on images: the ``Stylizer`` protocol and its PyTorch and onnxruntime
implementations, the shared finish step, seamless tiling and file-level stylization.
The graph contract, the onnxruntime runner, tiling and finishing import no torch."""
