"""Raw recruitment ids for approving, rejecting and paying: only an owner's explicit action
shows them (the payments page's lists and downloads, each audited); no other page, export or
audit row ever holds one; erased ids are named as erased; a person's data is deleted by id."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from annotation import services as participant_services
from annotation.models import BlockAnswer, Participant, Rating, Trial
from studies.lifecycle import close_study
from studies.models import AuditEvent, Study, StudyMembership
from tests.annotation.test_views import answer_page, start

pytestmark = pytest.mark.django_db

# Shaped like Prolific ids, and unlike anything else a page holds (hex digits only would
# collide by chance with pseudonyms and tokens).
DONE = "PPX1done000000000000000001"
EXCLUDED = "PPX2excl000000000000000002"
ACTIVE = "PPX3active00000000000000003"
SCREENED = "PPX4screen00000000000000004"
WITHDRAWN = "PPX5withdrawn000000000000005"
RAW_IDS = (DONE, EXCLUDED, ACTIVE, SCREENED, WITHDRAWN)


@dataclass
class Paid:
    study: Study
    owner: Client
    users: dict


def _finish(study: Study, pid: str) -> Participant:
    client = Client()
    response = start(client, study, pid=pid)
    while "/done/" not in response.request["PATH_INFO"]:
        response, _ = answer_page(client, study, response)
    return Participant.objects.get(study=study, status="completed", pk=_last(study))


def _last(study: Study) -> int:
    return Participant.objects.filter(study=study).latest("pk").pk


@pytest.fixture
def paid(make_study) -> Paid:
    """A study whose participants reached every state through the real pages and services."""
    study = make_study(target_participants=6)
    users = {}
    for role in ("owner", "editor", "viewer"):
        users[role] = get_user_model().objects.create_user(role)
        StudyMembership.objects.create(study=study, user=users[role], role=role)
    users["other"] = get_user_model().objects.create_user("other")
    users["root"] = get_user_model().objects.create_superuser("root", password=None)
    _finish(study, DONE)
    # Two pages answered, then finished by hand: one walk through every page is enough here.
    client = Client()
    answer_page(client, study, start(client, study, pid=EXCLUDED))
    excluded = Participant.objects.get(pk=_last(study))
    excluded.status, excluded.completed_at = Participant.Status.COMPLETED, timezone.now()
    excluded.save(update_fields=["status", "completed_at"])
    participant_services.exclude_participant(
        participant=excluded, reason="failed both checks", actor=users["owner"]
    )
    start(Client(), study, pid=ACTIVE)
    start(Client(), study, pid=SCREENED)
    # The quality screen's early end, as its service leaves the participant.
    Participant.objects.filter(pk=_last(study)).update(status=Participant.Status.SCREENED_OUT)
    leaver = Client()
    start(leaver, study, pid=WITHDRAWN)
    participant_services.withdraw_participant(
        participant=Participant.objects.get(pk=_last(study)), delete_answers=False
    )
    owner = Client()
    owner.force_login(users["owner"])
    return Paid(study=study, owner=owner, users=users)


def _url(study: Study, route: str = "payments", **kwargs) -> str:
    return reverse(f"studies:{route}", kwargs={"slug": study.slug, **kwargs})


def _reads() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="recruitment_ids_read").order_by("pk"))


def _no_raw_ids(text: str, where: str) -> None:
    found = [raw for raw in RAW_IDS if raw in text]
    assert not found, f"{where} holds recruitment ids {found}"


# --------------------------------------------------------------------------- the lists


def test_approve_reject_and_bonus_lists_in_prolific_bulk_form(paid):
    study, owner = paid.study, paid.owner
    approve = owner.get(_url(study, "payments-list", name="approve"))
    assert approve.status_code == 200
    assert approve["Content-Type"].startswith("text/plain")
    assert "attachment" in approve["Content-Disposition"]
    assert approve.content.decode() == f"{DONE}\n"
    reject = owner.get(_url(study, "payments-list", name="reject"))
    assert reject.content.decode() == f"{EXCLUDED}\n{SCREENED}\n"
    bonus = owner.get(_url(study, "payments-bonus") + "?amount=1.5")
    assert bonus.status_code == 200 and bonus["Content-Type"].startswith("text/csv")
    assert bonus.content.decode() == f"{DONE},1.50\n"

    reads = _reads()
    assert [(r.detail["list"], r.detail["how"], r.detail["ids"]) for r in reads] == [
        ("approve", "download", 1),
        ("reject", "download", 2),
        ("bonus", "download", 1),
    ]
    assert all(r.actor == paid.users["owner"] for r in reads)
    assert reads[2].detail["amount"] == "1.50"


BAD_AMOUNTS = [
    ("", "This field is required"),
    ("0", "must be more than 0"),
    ("-2.00", "must be more than 0"),
    ("abc", "Enter an amount like 1.50"),
    ("1.234", "at most two decimals"),
    ("NaN", "must be more than 0"),
    ("5000", "at most 1000.00"),
]


def test_a_bad_bonus_amount_is_refused_and_reads_nothing(paid):
    for amount, message in BAD_AMOUNTS:
        response = paid.owner.get(_url(paid.study, "payments-bonus"), {"amount": amount})
        assert response.status_code == 400, amount
        assert message in response.content.decode(), amount
        _no_raw_ids(response.content.decode(), "the refused bonus page")
    assert _reads() == []


def test_the_page_counts_without_reading_and_shows_ids_only_when_asked(paid):
    study, owner = paid.study, paid.owner
    page = owner.get(_url(study))
    assert page.status_code == 200
    html = page.content.decode()
    _no_raw_ids(html, "the payments page without ?show")
    assert _reads() == []
    shown = owner.get(_url(study) + "?show=reject").content.decode()
    assert EXCLUDED in shown and SCREENED in shown and DONE not in shown
    (read,) = _reads()
    assert (read.detail["list"], read.detail["how"], read.detail["ids"]) == ("reject", "page", 2)


def test_only_owners_and_superusers_see_ids(paid):
    study = paid.study
    for role, status in (("editor", 403), ("viewer", 403), ("other", 404), ("root", 200)):
        client = Client()
        client.force_login(paid.users[role])
        for url in (
            _url(study) + "?show=approve",
            _url(study, "payments-list", name="approve"),
            _url(study, "payments-bonus") + "?amount=1.00",
        ):
            response = client.get(url)
            assert response.status_code == status, (role, url)
            if status != 200:
                _no_raw_ids(response.content.decode(), f"{url} as {role}")
        detail = client.get(_url(study, "detail"))
        if status == 200:
            assert _url(study) in detail.content.decode()
        elif detail.status_code == 200:
            assert _url(study) not in detail.content.decode(), role
    # Only the superuser's three reads are on record.
    assert [r.actor.username for r in _reads()] == ["root"] * 3


def test_erased_ids_are_counted_and_named_never_a_crash(paid):
    study, owner = paid.study, paid.owner
    close_study(study=study)
    study.refresh_from_db()
    participant_services.erase_expired_recruitment_ids(
        now=study.closed_at + timedelta(days=study.retention_days)
    )
    assert owner.get(_url(study, "payments-list", name="approve")).content == b""
    html = owner.get(_url(study) + "?show=approve").content.decode()
    assert "erased after the retention period" in html
    _no_raw_ids(html, "the payments page after erasure")
    read = _reads()[-1]
    assert (read.detail["ids"], read.detail["erased"]) == (0, 1)


def test_an_id_no_key_reads_is_named_unreadable(paid, settings):
    from cryptography.fernet import Fernet

    settings.RECRUITMENT_ID_KEYS = [Fernet.generate_key().decode()]
    assert paid.owner.get(_url(paid.study, "payments-list", name="approve")).content == b""
    html = paid.owner.get(_url(paid.study) + "?show=approve").content.decode()
    assert "unreadable: no configured key reads it" in html
    assert _reads()[-1].detail["unreadable"] == 1


# --------------------------------------------------------------------------- deletion by id


def test_an_owner_deletes_a_persons_data_by_recruitment_id(paid):
    study, owner = paid.study, paid.owner
    target = Participant.objects.get(study=study, status="completed", excluded=False)
    assert Rating.objects.filter(participant=target).exists()
    url = _url(study, "payments-delete")

    unconfirmed = owner.post(url, {"recruitment_id": DONE})
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm" in unconfirmed.content.decode()
    unknown = owner.post(url, {"recruitment_id": "PPX-nobody", "confirm": "on"})
    assert unknown.status_code == 400
    assert "Nothing deleted: no participant of this study has that recruitment id" in (
        unknown.content.decode()
    )
    target.refresh_from_db()
    assert target.status == "completed" and Rating.objects.filter(participant=target).exists()
    assert not AuditEvent.objects.filter(action="participant_withdrawn", actor__isnull=False)

    done = owner.post(url, {"recruitment_id": f"  {DONE} ", "confirm": "on"}, follow=True)
    assert done.status_code == 200
    assert f"Participant {target.pseudonym[:16]} is withdrawn" in done.content.decode()
    target.refresh_from_db()
    assert target.status == Participant.Status.WITHDRAWN
    for model in (Rating, Trial, BlockAnswer):
        assert not model.objects.filter(participant=target).exists()
    audit = AuditEvent.objects.get(action="participant_withdrawn", actor=paid.users["owner"])
    assert audit.detail["participant"] == target.pseudonym and audit.detail["by"] == "researcher"
    _no_raw_ids(json.dumps(audit.detail), "the deletion's audit row")
    # Withdrawn: on no list any more (they would return the study).
    assert owner.get(_url(study, "payments-list", name="approve")).content == b""


def test_editors_cannot_delete_by_recruitment_id(paid):
    editor = Client()
    editor.force_login(paid.users["editor"])
    response = editor.post(
        _url(paid.study, "payments-delete"), {"recruitment_id": DONE, "confirm": "on"}
    )
    assert response.status_code == 403
    assert Participant.objects.filter(study=paid.study, status="completed").count() == 2


# --------------------------------------------------------------------------- nowhere else


def _researcher_urls(study: Study) -> list[str]:
    names = [
        ("studies:detail", {}),
        ("studies:dashboard-json", {}),
        ("studies:results", {}),
        ("studies:participants", {}),
        ("studies:review", {}),
        ("studies:members", {}),
        ("studies:audit", {}),
        ("studies:design", {}),
        ("studies:queries", {}),
        ("studies:spec-download", {}),
        ("studies:results-ratings", {"include": "all"}),
        ("studies:results-block-answers", {"include": "all"}),
        ("studies:api-study", {}),
        ("studies:api-study-audit", {}),
        ("studies:api-study-dashboard", {}),
    ]
    urls = []
    for name, kwargs in names:
        try:
            urls.append(reverse(name, kwargs={"slug": study.slug, **kwargs}))
        except NoReverseMatch:
            # A page another part of the platform has not added yet.
            continue
    return urls


def test_no_other_page_export_or_audit_row_holds_a_recruitment_id(paid):
    study, owner = paid.study, paid.owner
    # Every kind of read and write first, so the audit log has rows of each.
    owner.get(_url(study) + "?show=approve")
    owner.get(_url(study, "payments-list", name="reject"))
    owner.get(_url(study, "payments-bonus") + "?amount=2.00")
    owner.post(_url(study, "payments-delete"), {"recruitment_id": EXCLUDED, "confirm": "on"})
    checked = []
    for url in _researcher_urls(study):
        response = owner.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        _no_raw_ids(body.decode(), url)
        checked.append(url)
    assert len(checked) >= 12, checked
    for event in AuditEvent.objects.filter(study=study):
        _no_raw_ids(json.dumps(event.detail), f"audit row {event.action}")
    # The ids are there to be found, so the checks above could fail: the owner's list shows one.
    assert DONE in owner.get(_url(study) + "?show=approve").content.decode()


def test_the_admin_shows_neither_the_id_nor_its_ciphertext(paid):
    root = Client()
    root.force_login(paid.users["root"])
    participant = Participant.objects.get(study=paid.study, status="completed", excluded=False)
    for url in (
        reverse("admin:annotation_participant_changelist"),
        reverse("admin:annotation_participant_change", args=[participant.pk]),
    ):
        html = root.get(url).content.decode()
        _no_raw_ids(html, url)
        assert participant.recruitment_id_encrypted not in html, url


def test_the_command_deletes_by_recruitment_id_for_owners_only(paid):
    from io import StringIO

    from django.core.management import CommandError, call_command

    def run(user: str, pid: str) -> str:
        out = StringIO()
        call_command(
            "delete_participant_data",
            paid.study.slug,
            "--recruitment-id",
            pid,
            "--as",
            user,
            stdout=out,
        )
        return out.getvalue()

    with pytest.raises(CommandError, match="editor is editor of study"):
        run("editor", DONE)
    with pytest.raises(CommandError, match="nothing deleted: no participant of this study"):
        run("owner", "PPX-nobody")
    assert Participant.objects.filter(study=paid.study, status="completed").count() == 2
    target = Participant.objects.get(study=paid.study, status="completed", excluded=False)
    assert f"participant {target.pseudonym[:16]} of {paid.study.slug} is withdrawn" in run(
        "owner", DONE
    )
    target.refresh_from_db()
    assert target.status == Participant.Status.WITHDRAWN
    assert not Rating.objects.filter(participant=target).exists()
