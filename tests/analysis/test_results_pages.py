"""Results pages and downloads on the real database, with a small simulated study."""

from __future__ import annotations

import csv
import dataclasses
import io
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from annotation import services as annotation_services
from studies import analysis_jobs, services
from studies.models import AnalysisResult, StudyMembership
from tests.analysis.test_platform_simulation import simulate_participants

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def analysed_study(django_db_setup, django_db_blocker, seed_spec):
    """One analysed study for the whole module (the analysis is the slow part); each test's
    own writes are rolled back as usual."""
    with django_db_blocker.unblock():
        spec, rows = seed_spec
        study = services.import_study(
            spec=dataclasses.replace(spec, target_participants=12), stimuli=rows
        )
        services.launch_study(study=study)
        simulate_participants(study, 12, seed=3)
        owner = get_user_model().objects.create_user("owner", password="x")
        StudyMembership.objects.create(study=study, user=owner, role="owner")
        # What the Celery task runs, on a row as request_analysis creates it.
        queued = AnalysisResult.objects.create(study=study, inclusion="included")
        analysis_jobs.compute(queued.pk)
        yield study, owner
        annotation_services.delete_study_records(study=study)
        study.delete()
        owner.delete()


@pytest.fixture
def analysed(analysed_study):
    study, owner = analysed_study
    client = Client()
    client.force_login(owner)
    return study, client


def test_results_page_renders_the_stored_report_instantly(analysed, django_assert_max_num_queries):
    study, client = analysed
    with django_assert_max_num_queries(25):  # rendering reads the stored report, not ratings
        html = client.get(f"/studies/{study.slug}/results/").content.decode()
    assert "helpfulness" in html
    assert "vendor/plotly/plotly.min.js" in html
    assert "Recompute" in html
    assert "completed" in html  # the inclusion rule is visible


def test_every_table_figure_and_the_report_download(analysed):
    from studies.analysis.figures import figures_for
    from studies.analysis.tables import report_tables

    study, client = analysed
    report = AnalysisResult.objects.get(study=study).report
    base = f"/studies/{study.slug}/results/included/"
    for name, rows in report_tables(report).items():
        response = client.get(f"{base}table/{name}.csv")
        assert response.status_code == 200, name
        assert "attachment" in response["Content-Disposition"]
        assert len(list(csv.DictReader(io.StringIO(response.content.decode())))) == len(rows)
    for name in figures_for(report):
        response = client.get(f"{base}figure/{name}.html")
        assert response.status_code == 200 and b"<html" in response.content.lower()
    from studies.analysis.figures import plotly_js

    page = client.get(f"{base}report.html")
    body = page.content.decode()
    # plotly.js itself mentions CDNs (for map charts we never draw); everything else must not.
    assert page.status_code == 200 and body.count(plotly_js()) == 1
    assert "cdn" not in body.replace(plotly_js(), "").lower()
    ratings = b"".join(client.get(f"{base}ratings.csv").streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(ratings)))
    assert rows and {"participant_id", "response_type", "value", "alignment"} <= set(rows[0])
    assert client.get(f"{base}table/nope.csv").status_code == 404


def test_recompute_queues_one_computation(analysed, django_capture_on_commit_callbacks):
    study, client = analysed
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(f"/studies/{study.slug}/results/recompute/", {"include": "all"})
        client.post(f"/studies/{study.slug}/results/recompute/", {"include": "all"})
    assert AnalysisResult.objects.filter(study=study, inclusion="all").count() == 1
    assert len(callbacks) == 1


def test_other_researchers_get_404(analysed):
    study, _client = analysed
    stranger = get_user_model().objects.create_user("stranger", password="x")
    client = Client()
    client.force_login(stranger)
    assert client.get(f"/studies/{study.slug}/results/").status_code == 404
    assert client.get(f"/studies/{study.slug}/results/included/report.html").status_code == 404


def test_export_ratings_command_writes_long_format(analysed, tmp_path):
    study, _client = analysed
    out = tmp_path / "ratings.csv"
    call_command("export_ratings", study.slug, "--out", str(out), stderr=StringIO())
    rows = list(csv.DictReader(out.open()))
    stimulus = [r for r in rows if r["kind"] == "stimulus"]
    assert len(stimulus) == 12 * 8 * 10
    assert {r["response_type"] for r in stimulus} == {
        "full_compliance",
        "partial_compliance",
        "redirection",
        "explanation_based",
        "direct_refusal",
    }
    assert all(len(r["participant_id"]) == 16 and "sim-" not in r["participant_id"] for r in rows)
    attention = [r for r in rows if r["kind"] == "attention"]
    assert len(attention) == 12 * 2 and all(r["correct"] == "3" for r in attention)


def test_the_page_says_how_fresh_the_analysis_is(make_study):
    """ "N participants, computed at …; M completed since", M read from the database now: the
    page once showed an analysis of 1 participant while 3 had completed, without a word."""
    # Its own slug: the module's analysed study (committed) holds the seed study's.
    study = make_study(target_participants=4, slug="fresh-results")
    simulate_participants(study, 1, seed=3)
    owner = get_user_model().objects.create_user("fresh-owner", password="x")
    StudyMembership.objects.create(study=study, user=owner, role="owner")
    analysis_jobs.compute(AnalysisResult.objects.create(study=study, inclusion="included").pk)
    client = Client()
    client.force_login(owner)
    html = client.get(f"/studies/{study.slug}/results/").content.decode()
    assert "1 participant</strong>, computed at" in html and "0 completed since" in html
    simulate_participants(study, 2, seed=3, first=1)
    html = client.get(f"/studies/{study.slug}/results/").content.decode()
    assert "1 participant</strong>, computed at" in html and "2 completed since" in html
    assert "New participants have completed since this analysis was computed" in html


def test_the_worker_builds_the_page_parts_and_the_page_survives_without_them(make_study, settings):
    """The first view of a new result reads what the worker built; with the cache down the
    page builds them itself."""
    from django.core.cache import caches

    study = make_study(target_participants=4, slug="cached-results")
    simulate_participants(study, 1, seed=4)
    owner = get_user_model().objects.create_user("cache-owner", password="x")
    StudyMembership.objects.create(study=study, user=owner, role="owner")
    result = analysis_jobs.compute(
        AnalysisResult.objects.create(study=study, inclusion="included").pk
    )
    cached = caches[settings.RESULTS_PAGE_CACHE].get(analysis_jobs._page_key(result))
    assert cached is not None and cached["figures"] and cached["headlines"]
    client = Client()
    client.force_login(owner)
    url = f"/studies/{study.slug}/results/"
    assert cached["headlines"][0] in client.get(url).content.decode()
    settings.CACHES = {
        **settings.CACHES,
        settings.RESULTS_PAGE_CACHE: {
            **settings.CACHES[settings.RESULTS_PAGE_CACHE],
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens on the discard port
        },
    }
    html = client.get(url).content.decode()
    assert cached["headlines"][0] in html and 'id="plot-coefficients"' in html
