"""Researcher accounts: sign in by username or e-mail, sign out, change and reset passwords."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from studies.accounts import create_researcher, password_set_path
from studies.models import StudyMembership

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-Pass-phrase-42"


@pytest.fixture
def researcher():
    return get_user_model().objects.create_user("ada", email="ada@example.org", password=PASSWORD)


def sign_in(client: Client, username: str, password: str = PASSWORD):
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, follow=True
    )


@pytest.mark.parametrize("identifier", ["ada", "ada@example.org", "ADA@example.org"])
def test_sign_in_by_username_or_email_lands_on_the_home_page(researcher, identifier):
    client = Client()
    response = sign_in(client, identifier)
    assert response.redirect_chain[-1][0] == "/"
    assert "Log out" in response.content.decode()
    assert client.get("/studies/").status_code == 200


def test_wrong_password_says_so_and_signs_nobody_in(researcher):
    client = Client()
    response = sign_in(client, "ada", "not-the-password")
    assert response.status_code == 200
    assert "enter a correct username and password" in response.content.decode().lower()
    assert client.get("/studies/").status_code == 302


def test_an_email_shared_by_two_accounts_signs_in_neither(researcher):
    get_user_model().objects.create_user("ada2", email="ada@example.org", password=PASSWORD)
    response = sign_in(Client(), "ada@example.org")
    assert "Log out" not in response.content.decode()


def test_sign_out_is_a_post_and_ends_the_session(researcher):
    client = Client()
    client.force_login(researcher)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert client.get("/studies/").status_code == 302


def test_password_change_needs_the_old_password(researcher):
    client = Client()
    client.force_login(researcher)
    url = "/accounts/password/change/"
    refused = client.post(
        url,
        {
            "old_password": "wrong",
            "new_password1": "n3w-Pass-phrase!",
            "new_password2": "n3w-Pass-phrase!",
        },
    )
    assert refused.status_code == 200 and "incorrectly" in refused.content.decode()
    changed = client.post(
        url,
        {
            "old_password": PASSWORD,
            "new_password1": "n3w-Pass-phrase!",
            "new_password2": "n3w-Pass-phrase!",
        },
        follow=True,
    )
    assert "Password changed" in changed.content.decode()
    assert "Log out" in sign_in(Client(), "ada", "n3w-Pass-phrase!").content.decode()


def test_password_reset_mails_a_one_time_link_that_sets_a_new_password(researcher):
    client = Client()
    response = client.post("/accounts/password/reset/", {"email": "ada@example.org"}, follow=True)
    assert "Check your e-mail" in response.content.decode()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ada@example.org"]
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/\S+)", mail.outbox[0].body)[1]
    form = client.get(link, follow=True)
    set_url = form.redirect_chain[-1][0]
    done = client.post(
        set_url,
        {"new_password1": "fresh-Pass-phrase-9", "new_password2": "fresh-Pass-phrase-9"},
        follow=True,
    )
    assert "Password set" in done.content.decode()
    # The link works once.
    again = Client().get(link, follow=True)
    assert "no longer valid" in again.content.decode()
    assert "Log out" in sign_in(Client(), "ada", "fresh-Pass-phrase-9").content.decode()


def test_a_reset_for_an_unknown_email_looks_the_same_and_sends_nothing(researcher):
    response = Client().post(
        "/accounts/password/reset/", {"email": "nobody@example.org"}, follow=True
    )
    assert "Check your e-mail" in response.content.decode()
    assert mail.outbox == []


def test_create_researcher_makes_a_non_staff_account_whose_link_sets_its_password():
    user = create_researcher(username="grace", email="grace@example.org")
    assert not user.is_staff and not user.is_superuser and not user.has_usable_password()
    client = Client()
    form = client.get(password_set_path(user), follow=True)
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "first-Pass-phrase-7", "new_password2": "first-Pass-phrase-7"},
        follow=True,
    )
    assert "Password set" in done.content.decode()
    assert "Log out" in sign_in(Client(), "grace", "first-Pass-phrase-7").content.decode()
    with pytest.raises(ValueError, match="exists already"):
        create_researcher(username="grace")
    with pytest.raises(ValueError, match="exists already"):
        create_researcher(username="grace2", email="GRACE@example.org")


def test_home_lists_only_the_researchers_own_studies_and_admin_only_for_superusers(
    researcher, make_study
):
    mine = make_study(launch=False)
    StudyMembership.objects.create(study=mine, user=researcher, role="viewer")
    others = make_study(launch=False, slug="someone-elses", title="Another teams study")
    client = Client()
    client.force_login(researcher)
    page = client.get("/").content.decode()
    assert mine.title in page and others.title not in page
    assert 'href="/admin/"' not in page
    root = get_user_model().objects.create_superuser("root", password=PASSWORD)
    client.force_login(root)
    page = client.get("/").content.decode()
    assert 'href="/admin/"' in page and others.title in page


def test_anonymous_home_offers_the_login():
    page = Client().get("/").content.decode()
    assert 'href="/accounts/login/"' in page and "Log out" not in page
