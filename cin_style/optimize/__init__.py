"""Per-image optimisation (Gatys et al. 2016), with an optional CLIP text loss:
``optimize.gatys``."""
