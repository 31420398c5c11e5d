"""Lifecycle pages: each action's confirmation page and its POST, for every role and status."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from annotation.models import Participant, Slot
from studies.models import AuditEvent, Study
from studies.services import record_audit
from tests.lifecycle.participants import answer_pages, consent

pytestmark = pytest.mark.django_db


def status(study: Study) -> str:
    return Study.objects.get(pk=study.pk).status


def action_links(html: str) -> set[str]:
    return set(re.findall(r'data-action="([\w-]+)"', html))


def last_audit(study: Study) -> AuditEvent:
    return AuditEvent.objects.filter(study=study).order_by("-pk").first()


def test_launch_from_its_page(make_study, with_roles, client_for, people):
    study = with_roles(make_study(launch=False, target_participants=4))
    editor = client_for("editor")
    page = editor.get(f"/studies/{study.slug}/")
    assert {"launch", "launch-pilot"} <= action_links(page.content.decode())
    confirm = editor.get(f"/studies/{study.slug}/launch/")
    assert confirm.status_code == 200
    assert "Creates 4 participant slots" in confirm.content.decode()
    assert status(study) == "draft"  # GET only shows what will happen
    response = editor.post(f"/studies/{study.slug}/launch/", follow=True)
    assert response.request["PATH_INFO"] == f"/studies/{study.slug}/"
    assert "is live with 4 participant slots" in response.content.decode()
    assert status(study) == "live"
    event = last_audit(study)
    assert (event.action, event.actor) == ("study_launched", people["editor"])
    # Launching again is refused and changes nothing.
    again = editor.post(f"/studies/{study.slug}/launch/")
    assert again.status_code == 409
    assert Slot.objects.filter(study=study).count() == 4


def test_pilot_and_full_launch_from_their_pages(make_study, with_roles, client_for):
    study = with_roles(make_study(launch=False, target_participants=6))
    editor = client_for("editor")
    too_big = editor.post(f"/studies/{study.slug}/launch-pilot/", {"pilot_slots": "6"})
    assert too_big.status_code == 400
    assert "must be smaller than the target of 6" in too_big.content.decode()
    assert status(study) == "draft"
    editor.post(f"/studies/{study.slug}/launch-pilot/", {"pilot_slots": "2"})
    assert status(study) == "live"
    assert Slot.objects.filter(study=study, is_pilot=True).count() == 2
    page = editor.get(f"/studies/{study.slug}/").content.decode()
    assert "launch-full" in action_links(page) and "add-slots" not in action_links(page)
    assert "full launch pending" in page
    pilot = consent(study, "pilot")
    assert pilot.is_pilot
    assert "remaining 4 slots" in editor.get(f"/studies/{study.slug}/launch-full/").content.decode()
    editor.post(f"/studies/{study.slug}/launch-full/")
    assert Slot.objects.filter(study=study).count() == 6
    assert last_audit(study).action == "study_full_launched"
    assert "launch-full" not in action_links(editor.get(f"/studies/{study.slug}/").content.decode())


def test_pause_resume_close_from_their_pages(make_study, with_roles, client_for, people):
    study = with_roles(make_study(target_participants=4))
    editor = client_for("editor")
    links = action_links(editor.get(f"/studies/{study.slug}/").content.decode())
    assert links == {"pause", "close", "add-slots"}
    for action, expected, buttons in (
        ("pause", "paused", {"resume", "close", "add-slots"}),
        ("resume", "live", {"pause", "close", "add-slots"}),
        ("close", "closed", set()),
    ):
        assert "What will happen" in editor.get(f"/studies/{study.slug}/{action}/").content.decode()
        editor.post(f"/studies/{study.slug}/{action}/")
        assert status(study) == expected
        event = last_audit(study)
        assert (event.action, event.detail["new"], event.actor) == (
            "status_changed",
            expected,
            people["editor"],
        )
        assert action_links(editor.get(f"/studies/{study.slug}/").content.decode()) == buttons
    # The owner may archive a closed study; nothing else is on offer.
    owner_links = action_links(client_for("owner").get(f"/studies/{study.slug}/").content.decode())
    assert owner_links == {"archive", "delete"}


def test_wrong_status_is_refused_and_changes_nothing(make_study, with_roles, client_for):
    study = with_roles(make_study(target_participants=2))
    editor = client_for("editor")
    before = AuditEvent.objects.count()
    response = editor.post(f"/studies/{study.slug}/resume/")
    assert response.status_code == 409
    assert "not possible while the study is live" in response.content.decode()
    assert status(study) == "live" and AuditEvent.objects.count() == before
    assert editor.get(f"/studies/{study.slug}/archive/").status_code == 403  # editor: no manage


def test_viewer_gets_403_stranger_404_anonymous_login(make_study, with_roles, client_for):
    study = with_roles(make_study(target_participants=2))
    viewer_page = client_for("viewer").get(f"/studies/{study.slug}/").content.decode()
    assert action_links(viewer_page) == set()
    for action in ("pause", "close", "add-slots", "launch", "archive", "delete"):
        url = f"/studies/{study.slug}/{action}/"
        assert client_for("viewer").get(url).status_code == 403
        assert client_for("viewer").post(url).status_code == 403
        assert client_for("stranger").post(url).status_code == 404
        assert "/accounts/login/" in client_for("anonymous").post(url)["Location"]
    assert status(study) == "live"


def test_add_slots_from_its_page(make_study, with_roles, client_for):
    study = with_roles(make_study(target_participants=4))
    editor = client_for("editor")
    bad = editor.post(f"/studies/{study.slug}/add-slots/", {"count": "lots"})
    assert bad.status_code == 400 and "Enter a whole number" in bad.content.decode()
    editor.post(f"/studies/{study.slug}/add-slots/", {"count": "4"})
    study.refresh_from_db()
    assert study.target_participants == 8
    assert Slot.objects.filter(study=study).count() == 8


def test_close_shows_new_arrivals_the_closed_page_while_people_in_progress_finish(make_study):
    from studies import lifecycle

    study = make_study(target_participants=4)
    busy = Client()
    busy.get(f"/s/{study.slug}/?PROLIFIC_PID=busy", follow=True)
    busy.post(f"/s/{study.slug}/consent/", {"decision": "agree"}, follow=True)
    waiting = Client()  # opened the link but has not agreed yet
    waiting.get(f"/s/{study.slug}/?PROLIFIC_PID=waiting", follow=True)
    lifecycle.close_study(study=study)

    newcomer = Client().get(f"/s/{study.slug}/?PROLIFIC_PID=new")
    assert newcomer.status_code == 403
    assert "This study has closed" in newcomer.content.decode()
    assert "you may finish within your time limit" in newcomer.content.decode()
    late = waiting.post(f"/s/{study.slug}/consent/", {"decision": "agree"})
    assert "This study has closed" in late.content.decode()

    response = busy.get(f"/s/{study.slug}/?PROLIFIC_PID=busy", follow=True)
    assert "instructions" in response.request["PATH_INFO"]
    participant = Participant.objects.get(study=study, slot__isnull=False)
    finished = answer_pages(participant)
    assert finished.status == "completed"
    done = busy.get(f"/s/{study.slug}/?PROLIFIC_PID=busy", follow=True)
    assert study.completion_code in done.content.decode()
    assert Participant.objects.filter(study=study).count() == 2  # the newcomer never joined


def test_pause_shows_new_arrivals_the_paused_page(make_study):
    from studies import lifecycle

    study = make_study(target_participants=2)
    lifecycle.pause_study(study=study)
    response = Client().get(f"/s/{study.slug}/?PROLIFIC_PID=new")
    assert response.status_code == 403
    assert "This study is paused" in response.content.decode()
    assert "Please try again later" in response.content.decode()
    assert not Participant.objects.filter(study=study).exists()


def test_archive_hides_the_study_from_the_list(make_study, with_roles, client_for, people):
    study = with_roles(make_study(target_participants=2))
    owner = client_for("owner")
    owner.post(f"/studies/{study.slug}/close/")
    owner.post(f"/studies/{study.slug}/archive/")
    assert status(study) == "archived"
    assert (last_audit(study).action, last_audit(study).actor) == (
        "status_changed",
        people["owner"],
    )
    listing = owner.get("/studies/").content.decode()
    assert f'href="/studies/{study.slug}/"' not in listing
    assert "Show archived studies</a> (1)" in listing
    assert f'href="/studies/{study.slug}/"' in owner.get("/studies/?archived=1").content.decode()
    assert owner.get(f"/studies/{study.slug}/").status_code == 200  # still reachable


def test_delete_needs_the_owner_and_the_typed_name(make_study, with_roles, client_for):
    study = with_roles(make_study(target_participants=2))
    owner = client_for("owner")
    assert "delete" not in action_links(owner.get(f"/studies/{study.slug}/").content.decode())
    assert owner.post(f"/studies/{study.slug}/delete/", {"confirm": study.slug}).status_code == 409
    owner.post(f"/studies/{study.slug}/close/")
    assert (
        client_for("editor")
        .post(f"/studies/{study.slug}/delete/", {"confirm": study.slug})
        .status_code
        == 403
    )
    wrong = owner.post(f"/studies/{study.slug}/delete/", {"confirm": "Refusal Perception"})
    assert wrong.status_code == 400
    assert f"type the study&#x27;s name “{study.slug}” exactly" in wrong.content.decode()
    assert Study.objects.filter(pk=study.pk).exists()
    done = owner.post(f"/studies/{study.slug}/delete/", {"confirm": study.slug}, follow=True)
    assert done.request["PATH_INFO"] == "/studies/"
    assert f"Study {study.slug} deleted." in done.content.decode()
    assert not Study.objects.filter(slug=study.slug).exists()


def test_study_page_is_the_hub(make_study, with_roles, client_for):
    study = with_roles(make_study(target_participants=2))
    html = client_for("editor").get(f"/studies/{study.slug}/").content.decode()
    for path in (
        "design/",
        "stimuli/upload/",
        "queries/",
        "review/",
        "results/",
        "members/",
        "audit/",
        "preview/",
    ):
        assert f'href="/studies/{study.slug}/{path}"' in html
    assert '<code id="recruitment-link">' in html
    assert 'data-copy="recruitment-link" hidden' in html
    assert "js/copy-link.js" in html
    viewer = client_for("viewer").get(f"/studies/{study.slug}/").content.decode()
    assert "preview/" not in viewer and "design/" not in viewer


def test_draft_study_page_lists_what_blocks_launch(make_study, with_roles, client_for):
    study = with_roles(make_study(launch=False, target_participants=2))
    study.queries.all().delete()
    html = client_for("editor").get(f"/studies/{study.slug}/").content.decode()
    assert "Before this study can launch" in html and "the study has no queries" in html
    assert action_links(html) == set()  # no launch while something blocks it
    assert client_for("editor").get(f"/studies/{study.slug}/launch/").status_code == 409


def test_audit_log_page_is_paginated_newest_first(make_study, with_roles, client_for, people):
    study = with_roles(make_study(target_participants=2))
    for n in range(60):
        record_audit(study=study, action=f"event_{n:02d}", actor=people["owner"], n=n)
    viewer = client_for("viewer")
    first = viewer.get(f"/studies/{study.slug}/audit/").content.decode()
    assert first.index("event_59") < first.index("event_58")
    assert "owner" in first and "n: 59" in first
    assert "Page 1 of 2" in first and "event_00" not in first
    second = viewer.get(f"/studies/{study.slug}/audit/?page=2").content.decode()
    assert "study_launched" in second
    assert client_for("stranger").get(f"/studies/{study.slug}/audit/").status_code == 404
