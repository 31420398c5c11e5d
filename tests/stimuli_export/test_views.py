"""Downloading a study's stimuli from the browser: CSV or JSONL, streamed, for every member."""

from __future__ import annotations

import pytest
from django.http import StreamingHttpResponse
from django.test import Client

from studies.stimuli_file import parse_stimuli
from tests.stimuli_export.conftest import client_for

pytestmark = pytest.mark.django_db


def body(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode("utf-8")


def test_a_viewer_downloads_the_stimuli_as_csv(study, people, seed_spec):
    response = client_for(people["viewer"]).get(f"/studies/{study.slug}/stimuli.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == (f'attachment; filename="{study.slug}-stimuli.csv"')
    rows = parse_stimuli(body(response), "download.csv")
    assert [r.query_id for r in rows] == [r.query_id for r in seed_spec[1]]
    assert rows[0].responses == seed_spec[1][0].responses


def test_jsonl_on_request_and_a_clear_refusal_of_other_formats(study, people):
    client = client_for(people["owner"])
    response = client.get(f"/studies/{study.slug}/stimuli.csv?format=jsonl")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/jsonl")
    assert response["Content-Disposition"].endswith(f'filename="{study.slug}-stimuli.jsonl"')
    assert len(parse_stimuli(body(response), "download.jsonl")) == 16

    bad = client.get(f"/studies/{study.slug}/stimuli.csv?format=xlsx")
    assert bad.status_code == 400
    assert "use one of: csv, jsonl" in bad.content.decode()


def test_others_cannot_download(study, people):
    stranger = client_for(people["stranger"]).get(f"/studies/{study.slug}/stimuli.csv")
    assert stranger.status_code == 404
    anonymous = Client().get(f"/studies/{study.slug}/stimuli.csv")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_queries_and_study_pages_link_to_the_download(study, people):
    client = client_for(people["viewer"])
    queries = client.get(f"/studies/{study.slug}/queries/").content.decode()
    assert f'href="/studies/{study.slug}/stimuli.csv"' in queries
    assert f'href="/studies/{study.slug}/stimuli.csv?format=jsonl"' in queries
    detail = client.get(f"/studies/{study.slug}/").content.decode()
    assert f'href="/studies/{study.slug}/stimuli.csv"' in detail
