"""/healthz: 200 when PostgreSQL and the broker answer, 503 naming what failed; never cached."""

from __future__ import annotations

import httpx
import pytest
from django.test import Client, override_settings

from tests.ops.conftest import CLOSED_PORT, AppServer, assert_closed
from tests.workers import worker_database_url

pytestmark = pytest.mark.django_db


def test_healthy_platform_answers_200(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}
    assert "no-store" in response["Cache-Control"]
    assert "Set-Cookie" not in response and "Cookie" not in response.get("Vary", "")


def test_broker_down_answers_503_naming_the_broker(client, broker_down):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "unavailable"}


@override_settings(SECURE_SSL_REDIRECT=True, ALLOWED_HOSTS=["refusallab.example.org"])
def test_load_balancer_reaches_it_by_address_over_plain_http():
    # Load balancers probe the backend's own address over HTTP, with no session or host name.
    response = Client(HTTP_HOST="10.0.0.7:8000").get("/healthz")
    assert response.status_code == 200


def test_database_down_answers_503_naming_the_database_for_real():
    assert_closed(CLOSED_PORT)
    database_url = f"postgres://postgres@127.0.0.1:{CLOSED_PORT}/refusallab"
    with AppServer(8202, DATABASE_URL=database_url) as server:
        response = httpx.get(f"{server.url}/healthz", timeout=60)
    assert response.status_code == 503
    assert response.json() == {"database": "unavailable", "broker": "ok"}


def test_both_up_and_broker_down_for_real():
    with AppServer(8203, DATABASE_URL=worker_database_url()) as server:
        up = httpx.get(f"{server.url}/healthz", timeout=60)
    assert up.status_code == 200 and up.json() == {"database": "ok", "broker": "ok"}
    broker_url = f"redis://127.0.0.1:{CLOSED_PORT}/0"
    with AppServer(
        8203, DATABASE_URL=worker_database_url(), CELERY_BROKER_URL=broker_url
    ) as server:
        down = httpx.get(f"{server.url}/healthz", timeout=60)
    assert down.status_code == 503 and down.json() == {"database": "ok", "broker": "unavailable"}
