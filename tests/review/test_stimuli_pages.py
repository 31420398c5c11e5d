"""Stimuli upload: a preview that saves nothing, then confirm; and browsing the queries."""

from __future__ import annotations

import csv
import io
import json
import re
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from studies.models import AuditEvent, Query, ResponseVariant, Scenario, Study
from studies.views import stimuli as stimuli_views
from tests.conftest import ROOT
from tests.review.conftest import client_for, generated_variant

pytestmark = pytest.mark.django_db

EXAMPLE = ROOT / "examples" / "refusal-perception" / "stimuli.csv"


def example_rows() -> list[dict]:
    return list(csv.DictReader(EXAMPLE.open(encoding="utf-8")))


def csv_bytes(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def new_row(query_id: str, **changes) -> dict:
    row = dict(example_rows()[0])
    row.update(query_id=query_id, query=f"A brand-new question {query_id}?", **changes)
    return row


def counts(study) -> tuple:
    return (
        Query.objects.filter(study=study).count(),
        Scenario.objects.filter(query__study=study).count(),
        ResponseVariant.objects.filter(query__study=study).count(),
        AuditEvent.objects.filter(study=study).count(),
        list(Query.objects.filter(study=study).order_by("query_id").values_list("text", flat=True)),
    )


def upload(client, study, data: bytes, name="stimuli.csv", replace=False):
    payload = {"file": SimpleUploadedFile(name, data, content_type="text/csv")}
    if replace:
        payload["replace"] = "on"
    return client.post(f"/studies/{study.slug}/stimuli/upload/", payload)


def token_in(page: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', page)
    assert match, "the preview offers no confirm button"
    return match.group(1)


def test_upload_page_has_a_file_field_and_replace_box(study, people):
    page = client_for(people["editor"]).get(f"/studies/{study.slug}/stimuli/upload/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'type="file"' in html and "Replace all existing stimuli" in html


def test_preview_shows_rows_and_counts_and_saves_nothing(study, people, staging):
    before = counts(study)
    rows = example_rows()[:3] + [new_row("q99")]
    rows[0]["query"] = "A changed first query?"
    response = upload(client_for(people["editor"]), study, csv_bytes(rows))
    assert response.status_code == 200
    html = response.content.decode()
    assert "A brand-new question q99?" in html
    assert "A changed first query?" in html
    assert re.search(r"New queries</th><td>1<", html)
    assert re.search(r"Updated queries</th><td>3<", html)
    assert re.search(r"Removed queries</th><td>0", html)
    token_in(html)
    assert counts(study) == before


def test_replace_preview_counts_removed_queries_and_lost_texts(study, people, staging):
    generated_variant(study, "q05", "redirection", "model-a")
    response = upload(
        client_for(people["editor"]), study, csv_bytes(example_rows()[:2]), replace=True
    )
    html = response.content.decode()
    assert re.search(r"Removed queries</th><td>14 ", html)
    assert "1 generated or written text will be deleted" in html


def test_bad_row_is_listed_with_its_line_and_offers_no_confirm(study, people, staging):
    before = counts(study)
    rows = example_rows()[:3]
    rows[1]["category"] = ""
    response = upload(client_for(people["editor"]), study, csv_bytes(rows))
    assert response.status_code == 400
    html = response.content.decode()
    assert "line 3 (query_id q02): column &#x27;category&#x27; is empty" in html
    assert 'name="token"' not in html
    assert "stimuli/confirm/" not in html
    assert not staging.exists() or not any(staging.iterdir())
    assert counts(study) == before


def test_wrong_file_type_is_refused_with_a_message(study, people, staging):
    response = upload(client_for(people["editor"]), study, b"hello", name="notes.txt")
    assert response.status_code == 400
    assert "unsupported file type .txt" in response.content.decode()


def test_too_large_file_is_refused_with_the_limit(study, people, staging, settings):
    settings.STIMULI_UPLOAD_MAX_BYTES = 1024
    before = counts(study)
    response = upload(client_for(people["editor"]), study, csv_bytes(example_rows()))
    assert response.status_code == 400
    assert "stimuli files may be at most" in response.content.decode()
    assert counts(study) == before


def test_confirm_saves_what_was_previewed(study, people, staging):
    client = client_for(people["editor"])
    preview = upload(client, study, csv_bytes(example_rows()[:2] + [new_row("q99")]))
    response = client.post(
        f"/studies/{study.slug}/stimuli/confirm/", {"token": token_in(preview.content.decode())}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/studies/{study.slug}/queries/"
    query = Query.objects.get(study=study, query_id="q99")
    assert query.text == "A brand-new question q99?"
    assert Query.objects.filter(study=study).count() == 17
    event = AuditEvent.objects.filter(study=study, action="stimuli_imported").first()
    assert event.actor == people["editor"] and event.detail["created"] == 1
    page = client.get(response["Location"]).content.decode()
    assert "1 new, 2 updated, 0 removed" in page
    # The staged file is gone: the same token cannot import twice.
    again = client.post(
        f"/studies/{study.slug}/stimuli/confirm/", {"token": token_in(preview.content.decode())}
    )
    assert again.status_code == 400


def test_replace_removes_the_queries_missing_from_the_file(study, people, staging):
    client = client_for(people["owner"])
    preview = upload(client, study, csv_bytes(example_rows()[:3]), replace=True)
    client.post(
        f"/studies/{study.slug}/stimuli/confirm/", {"token": token_in(preview.content.decode())}
    )
    assert sorted(Query.objects.filter(study=study).values_list("query_id", flat=True)) == [
        "q01",
        "q02",
        "q03",
    ]


def test_tampered_or_foreign_token_is_refused(study, people, staging):
    before = counts(study)
    editor = client_for(people["editor"])
    token = token_in(upload(editor, study, csv_bytes([new_row("q99")])).content.decode())
    for client, value in (
        (editor, token[:-1] + ("A" if token[-1] != "A" else "B")),
        (editor, "../../etc/passwd"),
        (client_for(people["owner"]), token),
    ):
        response = client.post(f"/studies/{study.slug}/stimuli/confirm/", {"token": value})
        assert response.status_code == 400
        assert "This upload is no longer available" in response.content.decode()
    assert counts(study) == before


def test_expired_upload_is_refused(study, people, staging):
    before = counts(study)
    client = client_for(people["editor"])
    token = token_in(upload(client, study, csv_bytes([new_row("q99")])).content.decode())
    record_path = staging / f"{token}.json"
    record = json.loads(record_path.read_text())
    record["created"] = time.time() - 2 * 60 * 60
    record_path.write_text(json.dumps(record))
    response = client.post(f"/studies/{study.slug}/stimuli/confirm/", {"token": token})
    assert response.status_code == 400
    assert "it expired after 60 minutes" in response.content.decode()
    assert counts(study) == before
    assert not record_path.exists()


def test_confirm_on_a_study_launched_meanwhile_is_refused(study, people, staging):
    client = client_for(people["editor"])
    token = token_in(upload(client, study, csv_bytes([new_row("q99")])).content.decode())
    Study.objects.filter(pk=study.pk).update(status=Study.Status.LIVE)
    before = counts(study)
    response = client.post(f"/studies/{study.slug}/stimuli/confirm/", {"token": token})
    assert response.status_code == 400
    assert "stimuli can no longer be changed" in response.content.decode()
    assert counts(study) == before


def test_live_study_offers_no_upload(make_study, people, staging):
    from tests.review.conftest import add_members

    live = make_study(target_participants=4)
    add_members(live, people)
    client = client_for(people["owner"])
    page = client.get(f"/studies/{live.slug}/stimuli/upload/").content.decode()
    assert "Duplicate the study" in page and 'type="file"' not in page
    response = upload(client, live, csv_bytes([new_row("q99")]))
    assert response.status_code == 400
    assert not Query.objects.filter(study=live, query_id="q99").exists()


def test_viewer_may_not_upload_and_strangers_see_nothing(study, people, staging):
    viewer, stranger = client_for(people["viewer"]), client_for(people["stranger"])
    url = f"/studies/{study.slug}/stimuli/upload/"
    assert viewer.get(url).status_code == 403
    assert upload(viewer, study, csv_bytes([new_row("q99")])).status_code == 403
    assert viewer.post(f"/studies/{study.slug}/stimuli/confirm/", {"token": "x"}).status_code == 403
    assert stranger.get(url).status_code == 404
    assert stranger.get(f"/studies/{study.slug}/queries/").status_code == 404
    assert not Query.objects.filter(study=study, query_id="q99").exists()


# --- Browsing ---------------------------------------------------------------------------


def test_query_table_lists_searches_and_filters(study, people):
    client = client_for(people["viewer"])
    url = f"/studies/{study.slug}/queries/"
    html = client.get(url).content.decode()
    for query_id in ("q01", "q16"):
        assert f"/studies/{study.slug}/queries/{query_id}/" in html
    searched = client.get(url, {"q": "sourdough"}).content.decode()
    assert "/queries/q01/" in searched and "/queries/q02/" not in searched
    filtered = client.get(url, {"category": "privacy_violation"}).content.decode()
    privacy = set(
        Query.objects.filter(study=study, category="privacy_violation").values_list(
            "query_id", flat=True
        )
    )
    shown = set(re.findall(r"/queries/(q\d+)/", filtered))
    assert shown == privacy


def test_query_table_marks_types_without_an_approved_text(study, people):
    ResponseVariant.objects.filter(
        query__study=study, query__query_id="q01", response_type="redirection"
    ).update(review_status="rejected")
    html = client_for(people["viewer"]).get(f"/studies/{study.slug}/queries/").content.decode()
    q01 = html.split("/queries/q01/")[1].split("</tr>")[0]
    q02 = html.split("/queries/q02/")[1].split("</tr>")[0]
    assert q01.count(">missing<") == 1 and q01.count(">approved<") == 4
    assert q02.count(">approved<") == 5


def test_query_table_is_paginated(study, people, monkeypatch):
    monkeypatch.setattr(stimuli_views, "QUERIES_PER_PAGE", 5)
    client = client_for(people["viewer"])
    first = client.get(f"/studies/{study.slug}/queries/").content.decode()
    assert "Page 1 of 4" in first and "/queries/q06/" not in first
    second = client.get(f"/studies/{study.slug}/queries/", {"page": 2}).content.decode()
    assert "/queries/q06/" in second and "/queries/q01/" not in second


def test_query_page_shows_scenarios_and_the_types_side_by_side(study, people):
    generated_variant(study, "q01", "redirection", "model-a")
    generated_variant(study, "q01", "redirection", "model-b")
    client = client_for(people["editor"])
    html = client.get(f"/studies/{study.slug}/queries/q01/").content.decode()
    scenario = Scenario.objects.get(query__study=study, query__query_id="q01", motivation="benign")
    assert "best man at Sam" in scenario.text and "best man at Sam" in html
    for label in (
        "Direct refusal",
        "Explanation-based refusal",
        "Redirection",
        "Partial compliance",
        "Full compliance",
    ):
        assert f">{label}</h3>" in html
    redirection = html.split(">Redirection</h3>")[1].split("</section>")[0]
    assert "model-a wrote this" in redirection and "model-b wrote this" in redirection
    assert "temperature=0.3" in redirection and "812 ms" in redirection
    assert redirection.count("awaiting review") == 2
    assert "Approve" in redirection
    assert client.get(f"/studies/{study.slug}/queries/nope/").status_code == 404


def test_viewer_sees_the_query_page_without_buttons(study, people):
    html = client_for(people["viewer"]).get(f"/studies/{study.slug}/queries/q01/")
    assert html.status_code == 200
    assert "review/" not in html.content.decode().split("<h2>Responses by type</h2>")[1]


def test_jsonl_files_preview_and_import_too(study, people, staging):
    client = client_for(people["editor"])
    line = json.dumps(new_row("q77"))
    preview = upload(client, study, (line + "\n").encode(), name="more.jsonl")
    assert preview.status_code == 200
    assert "A brand-new question q77?" in preview.content.decode()
    client.post(
        f"/studies/{study.slug}/stimuli/confirm/", {"token": token_in(preview.content.decode())}
    )
    assert Query.objects.filter(study=study, query_id="q77").exists()
    assert Query.objects.filter(study=study).count() == 17


def test_nul_in_a_cell_is_listed_with_its_line_and_column_and_saves_nothing(study, people, staging):
    before = counts(study)
    rows = example_rows()[:3]
    rows[2]["malicious_scenario"] = "You are\x00 up to something."
    client = client_for(people["editor"])
    for data, name, line in (
        (csv_bytes(rows), "stimuli.csv", 4),
        ("".join(json.dumps(r) + "\n" for r in rows).encode(), "stimuli.jsonl", 3),
    ):
        response = upload(client, study, data, name=name)
        assert response.status_code == 400
        html = response.content.decode()
        assert (
            f"line {line}, column &#x27;malicious_scenario&#x27;: contains a NUL character" in html
        )
        assert 'name="token"' not in html
    assert counts(study) == before
