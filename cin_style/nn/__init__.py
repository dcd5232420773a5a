"""The networks: the conditional-instance-norm transformer (``nn.stylenet``), the frozen VGG
loss network and its weights (``nn.vgg``, ``nn.vgg_weights``), checkpoints and devices."""
