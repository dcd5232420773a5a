"""Training and evaluation data: photo crops and tensor conversion (``data.photos``), the named
style set (``data.styles``)."""
