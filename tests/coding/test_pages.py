"""Coding pages through Django's test client: who sees what, the coder's flow without
JavaScript, bad input on the forms, the CSV of every code."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Group

from annotation.coding import services
from annotation.coding.models import CodingAssignment, CodingMember, CodingTask
from studies.models import StudyMembership

pytestmark = pytest.mark.django_db


def test_researcher_creates_a_task_from_the_form(client, natural_study):
    study, ada = natural_study(queries=2)
    client.force_login(ada)
    page = client.get("/coding/new/").content.decode()
    assert study.slug in page and "model-a" in page
    response = client.post(
        "/coding/new/",
        {
            "title": "Types of model-a",
            "study": study.slug,
            "models": ["model-a"],
            "framings": ["query_only", "benign"],
            "scheme": "five_way",
            "overlap": "3",
            "sample": "",
            "seed": "0",
            "claim_minutes": "30",
            "instructions": "Read **all** of it.<script>alert(1)</script>",
        },
    )
    task = CodingTask.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/coding/{task.pk}/"
    assert (task.items.count(), task.overlap, task.scheme) == (4, 3, "five_way")
    page = client.get(f"/coding/{task.pk}/").content.decode()
    assert "<strong>all</strong>" in page and "<script>alert" not in page
    assert "Types of model-a" in client.get("/coding/").content.decode()


def test_bad_form_input_is_shown_and_nothing_is_created(client, natural_study, user_factory):
    study, ada = natural_study(queries=1)
    client.force_login(ada)
    response = client.post(
        "/coding/new/",
        {"title": "", "study": "no-such", "framings": [], "scheme": "x", "overlap": "0"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Choose one of your studies with natural responses." in page
    assert "This field is required." in page
    assert not CodingTask.objects.exists()
    # A study the researcher cannot view is not on offer and not accepted.
    bob = user_factory("bob")
    client.force_login(bob)
    response = client.post(
        "/coding/new/",
        {
            "title": "t",
            "study": study.slug,
            "framings": ["query_only"],
            "scheme": "three_way",
            "overlap": "2",
            "seed": "0",
            "claim_minutes": "30",
        },
    )
    assert response.status_code == 400 and not CodingTask.objects.exists()
    assert study.slug not in client.get("/coding/new/").content.decode()


def test_inviting_coders_existing_and_new(client, make_task, user_factory):
    task = make_task(items=1)
    ben = user_factory("ben")
    client.force_login(task.owner)
    assert client.post(f"/coding/{task.pk}/coders/", {"username": "ben"}).status_code == 302
    assert client.post(f"/coding/{task.pk}/coders/", {"username": "ben"}).status_code == 302
    assert list(CodingMember.objects.values_list("user", flat=True)) == [ben.pk]
    response = client.post(f"/coding/{task.pk}/coders/", {"username": "nobody"})
    assert response.status_code == 400
    assert "There is no active account named &#x27;nobody&#x27;." in response.content.decode()

    response = client.post(
        f"/coding/{task.pk}/coders/",
        {"new_username": "cleo", "email": "cleo@example.org"},
        follow=True,
    )
    page = response.content.decode()
    assert "Account &#x27;cleo&#x27; created and invited" in page
    assert "/accounts/password/reset/" in page
    cleo = CodingMember.objects.get(user__username="cleo").user
    assert not cleo.has_usable_password()
    assert cleo.groups.filter(name=services.CODER_GROUP).exists()
    response = client.post(f"/coding/{task.pk}/coders/", {"new_username": "cleo"})
    assert response.status_code == 400 and "exists already" in response.content.decode()
    assert CodingMember.objects.count() == 2


def test_a_coder_codes_every_item_without_javascript(client, make_task, user_factory):
    ana = user_factory("ana")
    task = make_task(items=2, overlap=1, coders=[ana], instructions="Use the *definitions*.")
    client.force_login(ana)
    home = client.get("/").content.decode()
    assert 'href="/code/"' in home
    mine = client.get("/code/").content.decode()
    assert "Refusal types" in mine and f'href="/code/{task.pk}/"' in mine

    page = client.get(f"/code/{task.pk}/").content.decode()
    item = CodingAssignment.objects.get(coder=ana).item
    assert item.response_text in page and "<em>definitions</em>" in page
    assert "<legend>Which category describes the response?</legend>" in page
    assert page.count('type="radio" name="label"') == 3
    # Reopening shows the same item, with no second claim.
    assert item.response_text in client.get(f"/code/{task.pk}/").content.decode()
    assert CodingAssignment.objects.count() == 1

    # No choice: the same item again, with an error, nothing stored.
    response = client.post(f"/code/{task.pk}/", {"item": item.pk})
    assert response.status_code == 400
    assert "Choose one category before continuing." in response.content.decode()
    assert not CodingAssignment.objects.filter(answered_at__isnull=False).exists()

    response = client.post(f"/code/{task.pk}/", {"item": item.pk, "label": "full_refusal"})
    assert response.status_code == 302 and response["Location"] == f"/code/{task.pk}/"
    # A resubmit of the same page changes nothing.
    client.post(f"/code/{task.pk}/", {"item": item.pk, "label": "full_compliance"})
    assert CodingAssignment.objects.get(item=item).label == "full_refusal"
    client.get(f"/code/{task.pk}/")  # the next item is claimed when the page opens
    second = CodingAssignment.objects.get(coder=ana, answered_at__isnull=True).item
    client.post(f"/code/{task.pk}/", {"item": second.pk, "label": "partial_refusal"})
    response = client.get(f"/code/{task.pk}/")
    assert response.status_code == 302 and response["Location"] == f"/code/{task.pk}/done/"
    assert "you coded 2 items" in client.get(response["Location"]).content.decode()


def test_permissions(client, make_task, user_factory, natural_study):
    ana, eve = user_factory("ana"), user_factory("eve")
    task = make_task(items=1, coders=[ana])
    study = task.study
    pages = [f"/coding/{task.pk}/", f"/coding/{task.pk}/codes.csv"]
    posts = [f"/coding/{task.pk}/coders/", f"/coding/{task.pk}/status/"]

    # An uninvited account sees no coding page of the task.
    client.force_login(eve)
    for url in (f"/code/{task.pk}/", f"/code/{task.pk}/done/", *pages):
        assert client.get(url).status_code == 404, url
    for url in posts:
        assert client.post(url, {"username": "eve", "status": "closed"}).status_code == 404
    assert "Refusal types" not in client.get("/code/").content.decode()
    assert "Refusal types" not in client.get("/coding/").content.decode()

    # A coder has no study membership: the study's researcher pages are not theirs.
    client.force_login(ana)
    assert not StudyMembership.objects.filter(user=ana).exists()
    assert client.get(f"/studies/{study.slug}/").status_code == 404
    for url in pages:
        assert client.get(url).status_code == 404, url
    for url in posts:
        assert client.post(url, {"username": "ana", "status": "closed"}).status_code == 404
    # An account that only codes sees none of the researcher coding pages at all.
    ana.groups.add(Group.objects.get_or_create(name=services.CODER_GROUP)[0])
    for url in ("/coding/", "/coding/new/"):
        assert client.get(url).status_code == 404, url
    assert client.get(f"/code/{task.pk}/").status_code == 200

    # Another researcher (owner of another study) gets 404 on this task.
    _, other = natural_study(queries=1, owner=user_factory("olga"))
    client.force_login(other)
    for url in pages:
        assert client.get(url).status_code == 404, url
    assert task.status == "open" and CodingTask.objects.get().status == "open"
    # Signed out: the sign-in page.
    client.logout()
    assert client.get(f"/code/{task.pk}/")["Location"].startswith("/accounts/login/")


def test_results_page_and_csv(client, make_task, user_factory):
    coders = [user_factory(n) for n in ("ana", "ben")]
    task = make_task(items=3, overlap=2, coders=coders)
    labels = {"ana": ["full_refusal", "full_refusal", "full_compliance"]}
    labels["ben"] = ["full_refusal", "partial_refusal", "full_compliance"]
    for coder in coders:
        for label in labels[coder.username]:
            a = services.next_assignment(task=task, coder=coder)
            services.record_code(task=task, coder=coder, item_id=a.item_id, label=label)
    client.force_login(task.owner)
    page = client.get(f"/coding/{task.pk}/").content.decode()
    assert "6 of 6 codes (100%)" in page
    assert "3 of 3 items have all 2 codes" in page
    assert 'data-pair="ana|ben"' in page
    response = client.get(f"/coding/{task.pk}/codes.csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert response["Content-Disposition"].endswith(f'coding-task-{task.pk}-codes.csv"')
    assert len(rows) == 6
    assert [r["label"] for r in rows if r["coder"] == "ben"] == labels["ben"]
    assert {r["model"] for r in rows} == {"model-a"} and rows[0]["generation_item_id"]

    listed = client.get("/coding/").content.decode()
    assert "<td>3</td><td>6</td>" in listed  # items, codes

    client.post(f"/coding/{task.pk}/status/", {"status": "closed"})
    assert CodingTask.objects.get().status == "closed"
    client.post(f"/coding/{task.pk}/status/", {"status": "bogus"})
    assert CodingTask.objects.get().status == "closed"


def test_results_compare_coders_with_a_stored_classification_run(client, make_task, user_factory):
    """A three-way string-match run of the model lab against a five-way task: codes are mapped
    to three ways before the majority is taken; ties and unparsed labels are counted."""
    from modellab.models import ClassificationLabel, ClassificationRun

    coders = [user_factory(n) for n in ("ana", "ben", "cem")]
    task = make_task(items=3, overlap=3, coders=coders, scheme="five_way")
    codes = {
        1: ["direct_refusal", "explanation_based", "full_compliance"],  # three-way: full refusal
        2: ["redirection", "full_compliance", "partial_compliance"],  # partial refusal
        3: ["full_compliance", "redirection", "direct_refusal"],  # a tie even in three ways
    }
    for n, coder in enumerate(coders):
        for _ in range(3):
            a = services.next_assignment(task=task, coder=coder)
            label = codes[a.item.position][n]
            services.record_code(task=task, coder=coder, item_id=a.item_id, label=label)
    run = ClassificationRun.objects.create(
        study=task.study, classifier="string_match", scheme="three_way", settings_key="k"
    )
    items = {i.position: i.generation_item for i in task.items.all()}
    for position, label in ((1, "full_refusal"), (2, "full_compliance"), (3, "full_refusal")):
        ClassificationLabel.objects.create(
            run=run, item=items[position], status="done", label=label
        )

    client.force_login(task.owner)
    page = client.get(f"/coding/{task.pk}/").content.decode()
    table = page[page.index('id="classifier-table"') :]
    row = table[table.index(f"string_match three_way #{run.pk}") :]
    cells = [c.split("</td>")[0] for c in row.split("<td>")[1:7]]
    # compared 2 (items 1 and 2), accuracy 1/2, κ: pairs (FR,FR), (PR,FC); ties 1.
    assert cells[:3] == ["2", "0.500", "0.3333"]
    assert cells[3:] == ["1", "0", "0"]
