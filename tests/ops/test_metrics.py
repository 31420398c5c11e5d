"""/metrics: requests and latency per view, queue depth and participants, read by Prometheus."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from config.celery import app
from tests.lifecycle.participants import consent
from tests.ops.conftest import CLOSED_PORT, ROOT, AppServer
from tests.workers import purge_queues, worker_database_url

pytestmark = pytest.mark.django_db


def scrape(client: Client | None = None, **headers) -> dict[tuple[str, tuple], float]:
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return samples(response.content.decode())


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


LOGIN_GET = (("method", "GET"), ("status", "200"), ("view", "login"))


def test_requests_are_counted_by_view_method_and_status():
    before = scrape()
    assert Client().get("/accounts/login/").status_code == 200
    after = scrape()
    key = ("refusallab_http_requests_total", LOGIN_GET)
    assert after[key] - before.get(key, 0) == 1
    count = ("refusallab_http_request_duration_seconds_count", LOGIN_GET[:1] + LOGIN_GET[2:])
    assert after[count] - before.get(count, 0) == 1
    missing = (
        "refusallab_http_requests_total",
        (("method", "GET"), ("status", "404"), ("view", "unmatched")),
    )
    Client().get("/no/such/page/")
    assert scrape()[missing] - after.get(missing, 0) == 1


def test_counting_costs_no_database_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert Client().get("/accounts/login/").status_code == 200


def test_participants_by_state_are_counted_at_scrape_time(make_study):
    study = make_study()
    consent(study, "p1")
    consent(study, "p2")
    values = scrape()
    assert values[("refusallab_participants", (("state", "active"),))] == 2
    assert values[("refusallab_participants", (("state", "completed"),))] == 0
    assert values[("refusallab_database_up", ())] == 1


def test_queue_depth_is_read_from_the_broker():
    purge_queues("default", "gpu")
    try:
        for _ in range(3):
            app.send_task("studies.tasks.compute_analysis", args=[0], queue="default")
        values = scrape()
        assert values[("refusallab_celery_queue_length", (("queue", "default"),))] == 3
        assert values[("refusallab_celery_queue_length", (("queue", "gpu"),))] == 0
        assert values[("refusallab_broker_up", ())] == 1
    finally:
        purge_queues("default", "gpu")


def test_broker_down_still_serves_metrics(broker_down):
    values = scrape()
    assert values[("refusallab_broker_up", ())] == 0
    assert not any(name == "refusallab_celery_queue_length" for name, _ in values)


def test_without_a_token_only_loopback_clients_may_read():
    assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    # A proxy on the same host forwards the world's requests from 127.0.0.1.
    proxied = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert proxied.get("/metrics").status_code == 403


@override_settings(METRICS_TOKEN="s3cret-token")
def test_with_a_token_the_bearer_header_is_required():
    outside = Client(REMOTE_ADDR="203.0.113.9")
    assert outside.get("/metrics").status_code == 401
    assert outside.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert Client().get("/metrics").status_code == 401  # loopback needs it too
    scrape(outside, HTTP_AUTHORIZATION="Bearer s3cret-token")


def test_gunicorn_workers_share_their_counts(tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR every worker process's requests are in one scrape."""
    with AppServer(
        8204,
        workers=3,
        DATABASE_URL=worker_database_url(),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    ) as server:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for _ in range(12):
                # A fresh connection each time, so the requests spread over the workers.
                assert httpx.get(f"{server.url}/accounts/login/", timeout=60).status_code == 200
            text = http.get("/metrics").text
    values = samples(text)
    assert values[("refusallab_http_requests_total", LOGIN_GET)] == 12
    assert ("refusallab_participants", (("state", "active"),)) in values


def test_loading_the_metrics_module_reads_neither_database_nor_broker():
    """Every web process imports it at start-up; the scrape-time counts wait for a scrape."""
    closed = f"127.0.0.1:{CLOSED_PORT}"
    run = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); import config.metrics"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"postgres://postgres@{closed}/refusallab",
            "CELERY_BROKER_URL": f"redis://{closed}/0",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    assert "unavailable" not in run.stderr, run.stderr
