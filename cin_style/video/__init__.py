"""Video stylization with temporal consistency: ``video.stylize`` (frames in, frames out) and
``video.temporal`` (the optical-flow blend)."""
