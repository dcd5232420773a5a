"""Loss functions, functional and shape-checked: the perceptual loss (content, Gram style,
total variation; ``losses.perceptual``) and the CLIP direction loss (``losses.clip``)."""
