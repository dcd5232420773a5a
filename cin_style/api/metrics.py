"""Prometheus metrics of one service process (its own registry: two apps in one process,
as in tests, do not collide)."""

from __future__ import annotations


class Metrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cin_style_requests", "HTTP requests by route and status.", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "cin_style_request_seconds",
            "Request latency, first byte in to response start.",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.queue_depth = Gauge("cin_style_queue_depth", "Requests waiting for the network.", registry=self.registry)
        self.in_flight = Gauge("cin_style_in_flight", "Requests being handled.", registry=self.registry)
        self.batch_size = Histogram(
            "cin_style_batch_size",
            "Images per onnxruntime call.",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32),
            registry=self.registry,
        )

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
