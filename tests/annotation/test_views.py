"""The participant pages through Django's test client: no JavaScript, as a plain browser."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from annotation.models import Participant, Rating, SlotItem, Trial
from studies import services as study_services
from studies.models import Study

pytestmark = pytest.mark.django_db


def form_fields(html: str) -> dict[str, str]:
    """Hidden inputs of the page's form (submission id, CSRF token)."""
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))


def answer_page(client: Client, study: Study, response, value: str = "4"):
    """Submit the current item page: pick a topic if asked, then answer every question."""
    html = response.content.decode()
    url = response.request["PATH_INFO"]
    if 'name="topic"' in html:
        topic = re.search(r'name="topic" value="(\d+)"', html).group(1)
        response = client.post(url, {"topic": topic}, follow=True)
        html = response.content.decode()
    names = sorted(set(re.findall(r'type="radio" name="([\w-]+)"', html)))
    data = {**form_fields(html), **{name: value for name in names}}
    return client.post(url, data, follow=True), data


def page_label(html: str) -> tuple[int, int]:
    """The page's "Page N of M" label as (N, M)."""
    number, total = re.search(r"Page (\d+) of (\d+)", html).groups()
    return int(number), int(total)


def pages_of(study: Study) -> int:
    """Every page a participant of the study sees: blocks, topic choices and rated items."""
    items = SlotItem.objects.filter(slot__study=study, slot__index=0)
    topic_pages = items.filter(kind=SlotItem.Kind.STIMULUS, query__isnull=True).count()
    return items.count() + topic_pages + study.blocks.count()


def refused(client: Client, url: str, data: dict):
    """Submit answers that are refused: the answer is a redirect (303) back to the same page,
    so a reload never posts again, and that page, fetched with GET, shows the errors."""
    response = client.post(url, data)
    assert response.status_code == 303, response.status_code
    assert response["Location"] == url
    return client.get(url)


def start(client: Client, study: Study, pid: str = "PID-1"):
    response = client.get(
        f"/s/{study.slug}/?PROLIFIC_PID={pid}&STUDY_ID=s1&SESSION_ID=x", follow=True
    )
    assert "consent" in response.request["PATH_INFO"]
    response = client.post(f"/s/{study.slug}/consent/", {"decision": "agree"}, follow=True)
    assert "instructions" in response.request["PATH_INFO"]
    return client.post(f"/s/{study.slug}/instructions/", follow=True)


def test_whole_study_without_javascript_ends_with_completion_code(make_study):
    study = make_study(target_participants=4)
    client = Client()
    response = start(client, study)
    pages = pages_of(study)
    # The seed design's 8 items each start with a topic choice: 18 pages with its 2 checks.
    assert pages == 18
    seen = []
    while "/item/" in response.request["PATH_INFO"]:
        html = response.content.decode()
        seen.append(page_label(html))
        if 'name="topic"' in html:
            url = response.request["PATH_INFO"]
            topic = re.search(r'name="topic" value="(\d+)"', html).group(1)
            response = client.post(url, {"topic": topic}, follow=True)
            seen.append(page_label(response.content.decode()))
        response, _ = answer_page(client, study, response)
    # Topic pages count: every page the participant sees is numbered once, in order.
    assert seen == [(n, pages) for n in range(1, pages + 1)]
    assert response.request["PATH_INFO"] == f"/s/{study.slug}/done/"
    assert study.completion_code in response.content.decode()
    assert study.completion_url.replace("&", "&amp;") in response.content.decode()
    participant = Participant.objects.get(study=study)
    assert participant.status == "completed"
    assert participant.recruitment == {"study": "s1", "session": "x"}
    # Reopening the link afterwards shows the code again, never a new participant.
    again = client.get(f"/s/{study.slug}/?PROLIFIC_PID=PID-1", follow=True)
    assert again.request["PATH_INFO"].endswith("/done/")
    assert Participant.objects.filter(study=study).count() == 1


def test_refresh_back_and_double_submit_keep_one_answer(make_study):
    study = make_study(target_participants=4)
    client = Client()
    response = start(client, study)
    first_url = response.request["PATH_INFO"]
    response, data = answer_page(client, study, response)
    assert response.request["PATH_INFO"].endswith("/item/2/")
    # Double submit (same submission id) and back-then-resubmit land on item 2, store nothing.
    again = client.post(first_url, data, follow=True)
    assert again.request["PATH_INFO"].endswith("/item/2/")
    back = client.get(first_url, follow=True)
    assert back.request["PATH_INFO"].endswith("/item/2/")
    n_first = Trial.objects.get(position=1).ratings.count()
    assert Rating.objects.count() == n_first
    # Refresh of the current page keeps the first time it was shown.
    shown = None
    for _ in range(2):
        client.get(back.request["PATH_INFO"])
        trial = Trial.objects.filter(position=2).first()
        shown = shown or (trial and trial.shown_at)
    assert Trial.objects.filter(position=2).count() <= 1


def test_second_browser_with_the_same_link_resumes_same_participant(make_study):
    study = make_study(target_participants=4)
    first = Client()
    response = start(first, study)
    answer_page(first, study, response)
    # The same link (with its recruitment session id) continues on another device.
    second = Client()
    response = second.get(
        f"/s/{study.slug}/?PROLIFIC_PID=PID-1&STUDY_ID=s1&SESSION_ID=x", follow=True
    )
    assert response.request["PATH_INFO"].endswith("/item/2/")
    assert Participant.objects.filter(study=study).count() == 1


def test_missing_answer_re_renders_with_error_and_stores_nothing(make_study):
    study = make_study(target_participants=4)
    client = Client()
    response = start(client, study)
    html = response.content.decode()
    url = response.request["PATH_INFO"]
    if 'name="topic"' in html:
        topic = re.search(r'name="topic" value="(\d+)"', html).group(1)
        html = client.post(url, {"topic": topic}, follow=True).content.decode()
    names = sorted(set(re.findall(r'type="radio" name="([\w-]+)"', html)))
    data = {**form_fields(html), **{name: "4" for name in names[1:]}}
    data[names[-1]] = "12"
    response = refused(client, url, data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Please answer every question" in page
    assert page.count("field-error") >= 2
    assert Rating.objects.count() == 0
    # The valid choices the participant made are still selected.
    assert re.search(rf'name="{names[1]}" value="4" required checked', page)


def test_declining_consent_ends_politely_and_stores_nothing(make_study):
    study = make_study(target_participants=4)
    client = Client()
    client.get(f"/s/{study.slug}/?PROLIFIC_PID=no-thanks")
    response = client.post(f"/s/{study.slug}/consent/", {"decision": "decline"}, follow=True)
    assert "You chose not to take part" in response.content.decode()
    participant = Participant.objects.get()
    # Declining is its own state (not "returned"), so the funnel can tell the two apart.
    assert participant.status == "declined"
    assert participant.slot is None and participant.consented_at is None
    assert not Trial.objects.exists()
    # Reloading stays on the declined page; changing one's mind still leads to the study.
    again = client.get(f"/s/{study.slug}/resume/", follow=True)
    assert again.request["PATH_INFO"].endswith("/declined/")
    response = client.post(f"/s/{study.slug}/consent/", {"decision": "agree"}, follow=True)
    assert response.request["PATH_INFO"].endswith("/instructions/")
    assert Participant.objects.get().status == "active"


def test_full_study_shows_full_page(make_study):
    study = make_study(target_participants=1)
    start(Client(), study, pid="first")
    response = Client().get(f"/s/{study.slug}/?PROLIFIC_PID=second", follow=True)
    assert "This study is full" in response.content.decode()
    assert Participant.objects.filter(study=study).count() == 1


def test_draft_study_is_not_open(make_study):
    study = make_study(launch=False)
    response = Client().get(f"/s/{study.slug}/?PROLIFIC_PID=a")
    assert response.status_code == 403
    assert "not open" in response.content.decode()


def test_pages_without_a_session_do_not_reveal_anything(make_study):
    study = make_study(target_participants=2)
    start(Client(), study)
    stranger = Client()
    response = stranger.get(f"/s/{study.slug}/item/1/")
    assert response.status_code == 403
    assert "Please use your study link" in response.content.decode()


def test_paused_study_lets_current_participants_finish_but_not_new_ones(make_study):
    study = make_study(target_participants=4)
    client = Client()
    response = start(client, study)
    study_services.set_study_status(study=study, status=Study.Status.PAUSED)
    response, _ = answer_page(client, study, response)
    assert response.request["PATH_INFO"].endswith("/item/2/")
    newcomer = Client().get(f"/s/{study.slug}/?PROLIFIC_PID=new")
    assert newcomer.status_code == 403


def test_csrf_is_enforced_on_participant_posts(make_study):
    study = make_study(target_participants=2)
    client = Client(enforce_csrf_checks=True)
    client.get(f"/s/{study.slug}/?PROLIFIC_PID=a")
    response = client.post(f"/s/{study.slug}/consent/", {"decision": "agree"})
    assert response.status_code == 403
    assert Participant.objects.get().slot is None


def test_participant_past_the_time_limit_sees_ended_page_and_frees_slot(make_study):
    from datetime import timedelta

    from django.utils import timezone

    from annotation.models import Slot

    study = make_study(target_participants=1, time_limit_minutes=20)
    client = Client()
    start(client, study)
    Participant.objects.update(consented_at=timezone.now() - timedelta(minutes=21))
    response = client.get(f"/s/{study.slug}/item/1/", follow=True)
    assert "time available for this study has run out" in response.content.decode()
    assert Slot.objects.get(study=study).status == Slot.Status.FREE
    # The freed place goes to the next person.
    response = start(Client(), study, pid="next-person")
    assert "Page 1 of" in response.content.decode()
