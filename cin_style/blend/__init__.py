"""Style blends: weight vectors from specs (``blend.weights``), the spec grammar
(``blend.specs``) and per-pixel blends from mask images (``blend.masks``).  Torch-free."""
