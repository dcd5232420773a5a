"""Training: the ``Trainer`` loop (checkpoints, exact resume, DDP, prefetch, autocast) with
pluggable objectives (perceptual, CLIP, distillation; stability as a wrapper)."""
