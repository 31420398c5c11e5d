"""What a hostile or careless arrival finds at the participant entry: odd links, someone else's
participant id, floods of joins, and the shared cache being down."""

from __future__ import annotations

import re

import pytest
from django.test import Client, override_settings

from annotation import arrivals
from annotation.models import Participant, Rating
from tests.annotation.test_views import answer_page, start

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def cache_reachable_again():
    """Each test starts with the arrival counter asking the cache (none is marked down)."""
    arrivals._cache_down_until = 0.0
    yield
    arrivals._cache_down_until = 0.0


@pytest.mark.parametrize("param", ["PROLIFIC_PID", "STUDY_ID", "SESSION_ID"])
def test_a_nul_in_a_recruitment_parameter_is_a_clear_refusal(make_study, param):
    study = make_study(target_participants=2)
    values = {"PROLIFIC_PID": "p-1", "STUDY_ID": "s", "SESSION_ID": "x", param: "a\x00b"}
    response = Client().get(f"/s/{study.slug}/", values)
    assert response.status_code == 400
    assert "<h1>" in response.content.decode()
    assert not Participant.objects.exists()


def test_a_link_without_participant_id_is_refused_with_a_page_saying_why(make_study):
    study = make_study(target_participants=2)
    response = Client().get(f"/s/{study.slug}/")
    assert response.status_code == 400
    assert "missing your participant ID" in response.content.decode()
    assert not Participant.objects.exists()


def test_a_study_with_anonymous_links_lets_people_in_without_an_id(make_study):
    study = make_study(target_participants=2, anonymous_links=True)
    response = Client().get(f"/s/{study.slug}/", follow=True)
    assert response.request["PATH_INFO"].endswith("/consent/")
    assert Participant.objects.filter(study=study).count() == 1


def test_knowing_a_participant_id_does_not_take_over_their_session(make_study):
    study = make_study(target_participants=4)
    owner = Client()
    response = start(owner, study, pid="PID-7")  # link with SESSION_ID=x
    response, _ = answer_page(owner, study, response)
    stored = Rating.objects.count()

    for link in ("?PROLIFIC_PID=PID-7", "?PROLIFIC_PID=PID-7&STUDY_ID=s1&SESSION_ID=guess"):
        intruder = Client()
        refused = intruder.get(f"/s/{study.slug}/{link}")
        assert refused.status_code == 409
        assert "open in another browser" in refused.content.decode()
        # No cookie was handed out: the intruder's posts find no session to write to.
        page = intruder.post(f"/s/{study.slug}/item/2/", {"topic": "1"})
        assert page.status_code == 403
    assert Rating.objects.count() == stored
    participant = Participant.objects.get(study=study)
    # The real participant is where they were, and carries on.
    again = owner.get(f"/s/{study.slug}/resume/", follow=True)
    assert again.request["PATH_INFO"].endswith(f"/item/{participant.position}/")
    # The same recruitment session (the participant's own link on a second device) continues.
    device = Client().get(f"/s/{study.slug}/?PROLIFIC_PID=PID-7&STUDY_ID=s1&SESSION_ID=x")
    assert device.status_code == 302 and device["Location"].endswith(
        f"/item/{participant.position}/"
    )


def test_links_without_a_session_id_resume_by_participant_id(make_study):
    study = make_study(target_participants=4)
    first = Client()
    first.get(f"/s/{study.slug}/?PROLIFIC_PID=no-session")
    first.post(f"/s/{study.slug}/consent/", {"decision": "agree"})
    second = Client().get(f"/s/{study.slug}/?PROLIFIC_PID=no-session", follow=True)
    assert second.request["PATH_INFO"].endswith("/instructions/")
    assert Participant.objects.filter(study=study).count() == 1


def test_someone_who_has_not_consented_yet_may_reopen_the_link_anywhere(make_study):
    study = make_study(target_participants=4)
    Client().get(f"/s/{study.slug}/?PROLIFIC_PID=early&SESSION_ID=one")
    again = Client().get(f"/s/{study.slug}/?PROLIFIC_PID=early&SESSION_ID=two", follow=True)
    assert again.request["PATH_INFO"].endswith("/consent/")


def _join(study, pid: str, address: str = "127.0.0.1"):
    return Client(REMOTE_ADDR=address).get(f"/s/{study.slug}/?PROLIFIC_PID={pid}")


@override_settings(ARRIVALS_PER_ADDRESS="5/300", ARRIVALS_PER_STUDY="0")
def test_joins_from_one_address_are_limited_and_say_when_to_come_back(make_study):
    study = make_study(target_participants=20)
    answers = [_join(study, f"flood-{n}", "203.0.113.9") for n in range(8)]
    assert [r.status_code for r in answers] == [302] * 5 + [429] * 3
    busy = answers[-1]
    assert "Too many people are arriving" in busy.content.decode()
    assert 0 < int(busy["Retry-After"]) <= 300
    assert Participant.objects.filter(study=study).count() == 5
    # Someone else, and the people already in, are not held back.
    assert _join(study, "neighbour", "198.51.100.4").status_code == 302
    assert _join(study, "flood-1", "203.0.113.9").status_code == 302
    assert Participant.objects.filter(study=study).count() == 6


@override_settings(ARRIVALS_PER_ADDRESS="0", ARRIVALS_PER_STUDY="4/60")
def test_joins_to_one_study_are_limited_per_study(make_study):
    study = make_study(target_participants=20)
    other = make_study(target_participants=4, slug="other-study")
    codes = [_join(study, f"p{n}", f"192.0.2.{n}").status_code for n in range(6)]
    assert codes == [302] * 4 + [429] * 2
    assert _join(other, "elsewhere").status_code == 302


@override_settings(
    ARRIVALS_PER_ADDRESS="2/300",
    CACHES={
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "arrivals": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            # Nothing listens on port 9: the cache is down.
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        },
    },
)
def test_with_the_cache_down_people_still_get_in(make_study):
    study = make_study(target_participants=6)
    codes = [_join(study, f"down-{n}").status_code for n in range(4)]
    # The limit cannot be counted, so it is not applied: the participant path never waits on it.
    assert codes == [302] * 4
    client = Client()
    response = start(client, study, pid="down-full-run")
    response, _ = answer_page(client, study, response)
    assert re.search(r"/item/2/$", response.request["PATH_INFO"])
