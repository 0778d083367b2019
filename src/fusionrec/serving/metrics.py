"""Prometheus metrics of one app instance (its own registry: two apps in one process, as in
tests, never share counters) and the ASGI middleware that times every request."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 10.0)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("fusionrec_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("fusionrec_http_request_seconds", "request latency",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.events = Counter("fusionrec_events_recorded", "events persisted",
                              registry=self.registry)
        self.reloads = Counter("fusionrec_model_reloads", "model reloads", ["outcome"],
                               registry=self.registry)
        self.entities = Gauge("fusionrec_entities", "users and items the engine serves",
                              ["kind"], registry=self.registry)

    def observe_engine(self, engine) -> None:
        self.entities.labels("users").set(len(engine.users))
        self.entities.labels("items").set(len(engine.items))


class MetricsMiddleware:
    """Pure ASGI (no per-request task or body buffering, unlike ``BaseHTTPMiddleware``);
    labels by the matched route template, so ids never explode the label space."""

    def __init__(self, app, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
            self.metrics.requests.labels(scope["method"], route, str(status[0])).inc()
