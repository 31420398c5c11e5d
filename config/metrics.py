"""Prometheus metrics: per-view requests and latency; queue depth and participants when scraped."""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"

REQUESTS = Counter(
    "refusallab_http_requests",
    "HTTP requests answered, by view name, method and status.",
    ["view", "method", "status"],
)
LATENCY = Histogram(
    "refusallab_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by view name and method.",
    ["view", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# Any other method is counted as "other", so a scanner cannot grow the label set.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# kombu keeps a Redis queue's messages of priority p > 0 in "<queue>\x06\x16<p>".
PRIORITY_SEPARATOR, PRIORITY_STEPS = "\x06\x16", (3, 6, 9)
# The request headers a reverse proxy adds: such a request came from elsewhere.
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")


class MetricsMiddleware:
    """Counts and times every request (two in-memory updates, no database or broker call) and
    answers /metrics itself, ahead of host validation and the HTTPS redirect, which a
    Prometheus scraping the backend's own address over plain HTTP would run into."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == METRICS_PATH:
            return metrics_view(request)
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        view = match.view_name if match is not None else "unmatched"
        method = request.method if request.method in METHODS else "other"
        REQUESTS.labels(view, method, str(response.status_code)).inc()
        LATENCY.labels(view, method).observe(time.perf_counter() - started)
        return response


def queue_lengths() -> dict[str, int]:
    """Messages waiting in each Celery queue (Redis LLEN, every priority level)."""
    import redis

    from config.celery import app
    from studies.models import LanguageModel

    queues = sorted({settings.CELERY_TASK_DEFAULT_QUEUE, *LanguageModel.Queue.values})
    client = redis.Redis.from_url(app.conf.broker_url, socket_connect_timeout=1, socket_timeout=1)
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.llen(queue)
                for priority in PRIORITY_STEPS:
                    pipe.llen(f"{queue}{PRIORITY_SEPARATOR}{priority}")
            counts = pipe.execute()
    finally:
        client.close()
    per_queue = len(PRIORITY_STEPS) + 1
    return {
        queue: sum(counts[i * per_queue : (i + 1) * per_queue]) for i, queue in enumerate(queues)
    }


def participant_counts() -> dict[str, int]:
    from django.db.models import Count

    from annotation.models import Participant

    counts = dict.fromkeys(Participant.Status.values, 0)
    for row in Participant.objects.values("status").annotate(n=Count("id")).order_by():
        counts[row["status"]] = row["n"]
    return counts


def open_job_counts() -> dict[tuple[str, str], int]:
    from django.db.models import Count

    from studies.models import AnalysisResult, GenerationJob

    counts: dict[tuple[str, str], int] = {}
    for kind, model in (("analysis", AnalysisResult), ("generation", GenerationJob)):
        for status in ("queued", "running"):
            counts[(kind, status)] = 0
        rows = model.objects.filter(status__in=("queued", "running")).values("status")
        for row in rows.annotate(n=Count("id")).order_by():
            counts[(kind, row["status"])] = row["n"]
    return counts


class ScrapeTimeCollector(Collector):
    """Read when Prometheus scrapes, never per request; a part that is down reads as 0 *_up."""

    NAMES = (
        "refusallab_celery_queue_length",
        "refusallab_broker_up",
        "refusallab_participants",
        "refusallab_open_jobs",
        "refusallab_database_up",
    )

    def describe(self) -> Iterator[Metric]:
        # Without it the registry would call collect() on registration: at import, every
        # process would query PostgreSQL and Redis.
        for name in self.NAMES:
            yield GaugeMetricFamily(name, name)

    def collect(self) -> Iterator[Metric]:
        broker_up = GaugeMetricFamily("refusallab_broker_up", "1 if Redis answered the scrape.")
        try:
            lengths = queue_lengths()
        except Exception as exc:  # noqa: BLE001 - metrics fail soft: the rest is still worth reading
            logger.warning("metrics: broker unavailable: %s", exc)
            broker_up.add_metric([], 0)
        else:
            broker_up.add_metric([], 1)
            depth = GaugeMetricFamily(
                "refusallab_celery_queue_length",
                "Tasks waiting in a Celery queue.",
                labels=["queue"],
            )
            for queue, length in lengths.items():
                depth.add_metric([queue], length)
            yield depth
        yield broker_up

        database_up = GaugeMetricFamily(
            "refusallab_database_up", "1 if PostgreSQL answered the scrape."
        )
        try:
            participants, jobs = participant_counts(), open_job_counts()
        except Exception as exc:  # noqa: BLE001 - as above
            logger.warning("metrics: database unavailable: %s", exc)
            database_up.add_metric([], 0)
        else:
            database_up.add_metric([], 1)
            by_state = GaugeMetricFamily(
                "refusallab_participants", "Participants by state, all studies.", labels=["state"]
            )
            for state, count in participants.items():
                by_state.add_metric([state], count)
            yield by_state
            open_jobs = GaugeMetricFamily(
                "refusallab_open_jobs",
                "Analysis and generation jobs queued or running.",
                labels=["kind", "status"],
            )
            for (kind, status), count in jobs.items():
                open_jobs.add_metric([kind, status], count)
            yield open_jobs
        yield database_up


_SCRAPE_TIME = ScrapeTimeCollector()
REGISTRY.register(_SCRAPE_TIME)


def registry() -> CollectorRegistry:
    """This process's metrics; under gunicorn with PROMETHEUS_MULTIPROC_DIR, every worker's."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined)
    combined.register(_SCRAPE_TIME)
    return combined


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def refusal(request: HttpRequest) -> HttpResponse | None:
    """Why this client may not read /metrics, or None if it may."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer" and constant_time_compare(credentials.strip(), token):
            return None
        response = HttpResponse("Send Authorization: Bearer <METRICS_TOKEN>.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    forwarded = any(request.META.get(header) for header in FORWARDING_HEADERS)
    if _is_loopback(request.META.get("REMOTE_ADDR", "")) and not forwarded:
        return None
    return HttpResponse(
        "Metrics are for loopback clients only; set METRICS_TOKEN to scrape from elsewhere.\n",
        status=403,
    )


def metrics_view(request: HttpRequest) -> HttpResponse:
    refused = refusal(request)
    if refused is None:
        response = HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
    else:
        response = refused
    response["Cache-Control"] = "no-store"
    return response
