"""Prometheus metrics of the server: requests and errors by status, latency, batch sizes, frozen objects,
completions holding a slot.

Each app owns its own CollectorRegistry (not the global one) so that several apps in one process,
as in the tests, count separately. The middleware is plain ASGI: it adds no task or body copy.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
_ROUTES = {"/v1/predict", "/v1/complete", "/v1/classes", "/healthz", "/metrics", "/"}
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("quickdraw_requests", "HTTP requests by path and status",
                                ["path", "status"], registry=self.registry)
        self.errors = Counter("quickdraw_errors", "HTTP responses with status >= 400, by status",
                              ["status"], registry=self.registry)
        self.latency = Histogram("quickdraw_request_latency_seconds", "Time from request to response",
                                 ["path"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("quickdraw_batch_size", "Requests per model call",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=self.registry)
        self.frozen_objects = Gauge("quickdraw_gc_frozen_objects", "Objects alive after start-up that the "
                                    "garbage collector no longer walks (gc.freeze)", registry=self.registry)
        self.completions = Gauge("quickdraw_completions_in_flight", "/v1/complete requests running or "
                                 "waiting, stopped ones included until their work has ended",
                                 registry=self.registry)

    def observe(self, path: str, status: int, seconds: float) -> None:
        label = path if path in _ROUTES else "/static" if path.startswith("/static/") else "other"
        self.requests.labels(label, str(status)).inc()
        if status >= 400:
            self.errors.labels(str(status)).inc()
        self.latency.labels(label).observe(seconds)

    def observe_batch(self, size: int) -> None:
        self.batch_size.observe(size)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts every HTTP response by path and status and times it."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_and_record(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.metrics.observe(scope["path"], status["code"], time.perf_counter() - start)
