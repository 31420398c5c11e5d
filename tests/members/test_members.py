"""A study's members: services, the members page and the members API."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import Client

from studies import members
from studies.models import AuditEvent, StudyMembership
from tests.api.conftest import api_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(make_study):
    users = get_user_model().objects
    ada = users.create_user("ada", email="ada@example.org", password="pw")
    eve = users.create_user("eve", email="eve@example.org", password="pw")
    vic = users.create_user("vic", email="Vic@Example.org", password="pw")
    bob = users.create_user("bob", email="bob@example.org", password="pw")
    study = make_study(launch=False)
    StudyMembership.objects.create(study=study, user=ada, role="owner")
    StudyMembership.objects.create(study=study, user=eve, role="editor")
    return study, ada, eve, vic, bob


def roles(study) -> dict[str, str]:
    return {m.user.username: m.role for m in study.memberships.select_related("user")}


def test_add_by_username_or_email_change_and_remove(team):
    study, ada, _eve, vic, bob = team
    members.add_member(study=study, identifier="vic@example.org", role="viewer", actor=ada)
    members.add_member(study=study, identifier="bob", role="editor", actor=ada)
    assert roles(study) == {"ada": "owner", "eve": "editor", "vic": "viewer", "bob": "editor"}
    members.change_role(study=study, user=bob, role="owner", actor=ada)
    members.remove_member(study=study, user=vic, actor=bob)
    assert roles(study) == {"ada": "owner", "eve": "editor", "bob": "owner"}
    actions = list(
        AuditEvent.objects.filter(study=study, action__startswith="member_")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["member_added", "member_added", "member_role_changed", "member_removed"]


def test_an_email_must_name_exactly_one_active_account(team):
    study, ada, *_ = team
    users = get_user_model().objects
    users.create_user("twin1", email="twin@example.org", password="pw")
    users.create_user("twin2", email="twin@example.org", password="pw")
    users.create_user("gone", email="gone@example.org", password="pw", is_active=False)
    for identifier in ("twin@example.org", "gone@example.org", "nobody", ""):
        with pytest.raises(members.MembershipError):
            members.add_member(study=study, identifier=identifier, role="viewer", actor=ada)
    with pytest.raises(members.MembershipError, match="member already"):
        members.add_member(study=study, identifier="eve", role="viewer", actor=ada)
    with pytest.raises(members.MembershipError, match="role must be"):
        members.add_member(study=study, identifier="bob", role="admin", actor=ada)
    assert set(roles(study)) == {"ada", "eve"}


def test_a_study_always_keeps_an_owner(team):
    study, ada, *_ = team
    with pytest.raises(members.MembershipError, match="needs an owner"):
        members.remove_member(study=study, user=ada, actor=ada)
    with pytest.raises(members.MembershipError, match="needs an owner"):
        members.change_role(study=study, user=ada, role="editor", actor=ada)
    assert roles(study)["ada"] == "owner"


def test_only_owners_manage_members(team):
    study, _ada, eve, vic, bob = team
    with pytest.raises(PermissionDenied):
        members.add_member(study=study, identifier="vic", role="owner", actor=eve)
    with pytest.raises(Http404):
        members.add_member(study=study, identifier="vic", role="owner", actor=bob)
    assert "vic" not in roles(study)


def test_members_page(team):
    study, ada, eve, _vic, bob = team
    owner = Client()
    owner.force_login(ada)
    url = f"/studies/{study.slug}/members/"
    page = owner.get(url).content.decode()
    assert "<h1>Members of" in page and "Add member" in page and "eve" in page
    response = owner.post(url + "add/", {"identifier": "nobody@example.org", "role": "viewer"})
    assert response.status_code == 400 and "no active account" in response.content.decode()
    response = owner.post(url + "add/", {"identifier": "vic@example.org", "role": "viewer"})
    assert response.status_code == 302 and roles(study)["vic"] == "viewer"
    owner.post(url + "vic/role/", {"role": "editor"})
    assert roles(study)["vic"] == "editor"
    response = owner.post(url + "ada/remove/", follow=True)
    assert "needs an owner" in response.content.decode() and roles(study)["ada"] == "owner"
    owner.post(url + "vic/remove/")
    assert "vic" not in roles(study)
    editor = Client()
    editor.force_login(eve)
    page = editor.get(url).content.decode()
    assert "ada" in page and "Add member" not in page
    assert editor.post(url + "add/", {"identifier": "bob", "role": "owner"}).status_code == 403
    stranger = Client()
    stranger.force_login(bob)
    assert stranger.get(url).status_code == 404
    assert "bob" not in roles(study)


def test_members_api(team):
    study, ada, eve, _vic, bob = team
    url = f"/api/studies/{study.slug}/members/"
    owner = api_for(ada)
    assert [m["username"] for m in owner.get(url).json()] == ["ada", "eve"]
    response = owner.post(url, {"user": "vic@example.org", "role": "viewer"}, format="json")
    assert response.status_code == 201 and response.json()["username"] == "vic"
    response = owner.post(url, {"user": "ghost", "role": "viewer"}, format="json")
    assert response.status_code == 400 and "no active account" in response.json()["detail"]
    assert owner.patch(url + "vic/", {"role": "editor"}, format="json").json()["role"] == "editor"
    response = owner.patch(url + "ada/", {"role": "viewer"}, format="json")
    assert response.status_code == 400 and "needs an owner" in response.json()["detail"]
    assert owner.delete(url + "vic/").status_code == 204
    assert owner.delete(url + "nobody/").status_code == 404
    editor = api_for(eve)
    assert editor.get(url).status_code == 200
    assert editor.post(url, {"user": "bob", "role": "owner"}, format="json").status_code == 403
    assert editor.delete(url + "ada/").status_code == 403
    assert api_for(bob).get(url).status_code == 404
    assert roles(study) == {"ada": "owner", "eve": "editor"}
