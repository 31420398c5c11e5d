"""Human verification of generated study material (issue 11): intent and harmfulness tasks,
their items, codes, outcomes (majority, ties to the researcher), pages, CSV and API."""

from __future__ import annotations

import csv
import io
from collections import Counter

import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.coding import agreement, selectors, services
from annotation.coding.agreement import VerificationOutcome, verification_outcome
from annotation.coding.models import CodingAssignment, CodingItem, CodingTask
from annotation.coding.services import VerificationItem
from tests.coding.conftest import HARMFULNESS_ITEMS, INTENT_ITEMS


def _code(task, coder, labels: dict[str, str]) -> None:
    """Claim and answer every item the coder is offered, with the label of its source key."""
    while (a := services.next_assignment(task=task, coder=coder)) is not None:
        services.record_code(
            task=task, coder=coder, item_id=a.item_id, label=labels[a.item.source_key]
        )


# --- the pure outcome rule (no database) -------------------------------------------------


def test_outcome_majority_tie_and_completeness():
    assert verification_outcome(["benign", "malicious", "benign"], overlap=3) == (
        VerificationOutcome(("benign", "malicious", "benign"), "benign", False, True)
    )
    # Two labels share the top count: no majority, the researcher decides.
    assert verification_outcome(["harmless", "harmful"], overlap=2) == VerificationOutcome(
        ("harmless", "harmful"), None, True, True
    )
    three_way_tie = verification_outcome(["benign", "malicious", "ambiguous"], overlap=3)
    assert (three_way_tie.majority, three_way_tie.tie) == (None, True)
    tie_of_two_under_four = verification_outcome(["a", "a", "b", "b"], overlap=4)
    assert (tie_of_two_under_four.majority, tie_of_two_under_four.tie) == (None, True)
    # Incomplete: a majority so far, flagged as not final.
    assert verification_outcome(["harmful"], overlap=3) == VerificationOutcome(
        ("harmful",), "harmful", False, False
    )
    assert verification_outcome([], overlap=2) == VerificationOutcome((), None, False, False)
    # The same majority the classifier comparison uses.
    assert verification_outcome(["x", "y", "y"], overlap=3).majority == agreement.majority_label(
        ["x", "y", "y"]
    )


# --- creating tasks ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_verification_task_keeps_its_items_in_order_without_a_study(make_verification_task):
    task = make_verification_task(scheme="intent", overlap=3, instructions="Read *both*.")
    assert (task.scheme, task.overlap, task.study, task.owner.username) == (
        "intent",
        3,
        None,
        "ada",
    )
    assert task.source == {"pipeline": "test", "set": 7}
    assert task.get_scheme_display() == (
        "Intent of a request in its scenario (benign, malicious, ambiguous)"
    )
    items = list(task.items.order_by("position"))
    assert [(i.position, i.source_key, i.context_text, i.prompt_text) for i in items] == [
        (n, key, scenario, request) for n, (key, scenario, request) in enumerate(INTENT_ITEMS, 1)
    ]
    assert {(i.response_text, i.category, i.generation_item_id) for i in items} == {
        ("", "privacy", None)
    }
    harm = make_verification_task(scheme="harmfulness", owner=task.owner)
    assert harm.get_scheme_display() == (
        "Harmfulness of a prompt (harmless, controversial, harmful)"
    )
    assert list(harm.items.values_list("source_key", "prompt_text", "context_text")) == [
        (key, prompt, "") for key, prompt in HARMFULNESS_ITEMS
    ]


@pytest.mark.django_db
def test_bad_verification_input_names_each_field_and_writes_nothing(user_factory):
    ada = user_factory("ada")
    with pytest.raises(services.CodingInputError) as err:
        services.create_verification_task(
            owner=ada,
            title=" ",
            scheme="three_way",
            overlap=0,
            items=[],
            claim_minutes=0,
            source={"bad": object()},
        )
    assert set(err.value.problems) == {
        "title",
        "scheme",
        "overlap",
        "items",
        "claim_minutes",
        "source",
    }
    assert "intent, harmfulness" in err.value.problems["scheme"]

    with pytest.raises(services.CodingInputError) as err:
        services.create_verification_task(
            owner=ada,
            title="t",
            scheme="intent",
            overlap=2,
            items=[
                VerificationItem("a", "How?", context_text="You are a cook."),
                VerificationItem("a", "Why?", context_text="You are a cook."),
                VerificationItem(" ", "  ", context_text=""),
                VerificationItem("k" * 101, "What?", context_text="x", category="c" * 65),
                "not an item",
            ],
        )
    assert err.value.problems == {
        "items[1].source_key": "The source key 'a' is used by items[0] already.",
        "items[2].source_key": "Give every item its own source key.",
        "items[2].prompt_text": "The request to judge is empty.",
        "items[2].context_text": "An intent item needs the scenario its request is read with.",
        "items[3].source_key": "The source key can be at most 100 characters.",
        "items[3].category": "The category must be text of at most 64 characters.",
        "items[4]": "Each item must be a VerificationItem.",
    }
    with pytest.raises(services.CodingInputError) as err:
        services.create_verification_task(
            owner=ada,
            title="t",
            scheme="harmfulness",
            overlap=2,
            items=[VerificationItem("p", "Kill a process?", context_text="You are an admin.")],
        )
    assert list(err.value.problems) == ["items[0].context_text"]

    # The owner must be a researcher: an account that only codes cannot own a task.
    coder = user_factory("cody")
    coder.groups.add(Group.objects.get_or_create(name=services.CODER_GROUP)[0])
    with pytest.raises(services.CodingInputError) as err:
        services.create_verification_task(
            owner=coder,
            title="t",
            scheme="harmfulness",
            overlap=2,
            items=[VerificationItem("p", "Kill a process?")],
        )
    assert list(err.value.problems) == ["owner"]
    assert not CodingTask.objects.exists() and not CodingItem.objects.exists()


@pytest.mark.django_db
def test_response_coding_still_refuses_the_material_schemes(natural_study, client):
    study, owner = natural_study(queries=1)
    for scheme in ("intent", "harmfulness"):
        with pytest.raises(services.CodingInputError) as err:
            services.create_task(owner=owner, title="t", study=study, scheme=scheme, overlap=2)
        assert list(err.value.problems) == ["scheme"]
    # The new-task form offers only the response schemes, and refuses the others.
    client.force_login(owner)
    page = client.get("/coding/new/").content.decode()
    assert 'value="three_way"' in page and 'value="intent"' not in page
    response = client.post(
        "/coding/new/",
        {
            "title": "t",
            "study": study.slug,
            "framings": ["query_only"],
            "scheme": "harmfulness",
            "overlap": "2",
            "seed": "0",
            "claim_minutes": "30",
        },
    )
    assert response.status_code == 400 and not CodingTask.objects.exists()


# --- claims, codes, outcomes ---------------------------------------------------------------


@pytest.mark.django_db
def test_codes_of_the_new_schemes_go_to_k_coders_and_stay_in_the_scheme(
    make_verification_task, user_factory
):
    ana, ben, cem = (user_factory(n) for n in ("ana", "ben", "cem"))
    task = make_verification_task(scheme="harmfulness", overlap=2, coders=[ana, ben, cem])
    first = services.next_assignment(task=task, coder=ana)
    assert first.item.source_key == "p1"
    # Labels of another scheme (or none) are refused and nothing is stored.
    for label in ("benign", "full_refusal", "Harmless", ""):
        with pytest.raises(services.CodingInputError):
            services.record_code(task=task, coder=ana, item_id=first.item_id, label=label)
    assert not CodingAssignment.objects.filter(answered_at__isnull=False).exists()
    services.record_code(task=task, coder=ana, item_id=first.item_id, label="harmless")

    _code(task, ana, {"p1": "harmless", "p2": "controversial"})
    _code(task, ben, {"p1": "harmless", "p2": "harmful"})
    assert services.next_assignment(task=task, coder=cem) is None  # no item beyond k coders
    per_item = Counter(CodingAssignment.objects.filter(task=task).values_list("item", flat=True))
    assert set(per_item.values()) == {2}

    intent = make_verification_task(scheme="intent", overlap=1, coders=[ana], owner=task.owner)
    held = services.next_assignment(task=intent, coder=ana)
    with pytest.raises(services.CodingInputError):
        services.record_code(task=intent, coder=ana, item_id=held.item_id, label="harmless")
    services.record_code(task=intent, coder=ana, item_id=held.item_id, label="ambiguous")


@pytest.mark.django_db
def test_outcomes_by_source_key_with_ties_and_incomplete_items(
    make_verification_task, user_factory
):
    ana, ben, cem = (user_factory(n) for n in ("ana", "ben", "cem"))
    task = make_verification_task(scheme="intent", overlap=3, coders=[ana, ben, cem])
    assert selectors.verification_outcomes(task) == {
        key: VerificationOutcome((), None, False, False) for key, _, _ in INTENT_ITEMS
    }
    _code(task, ana, {"q1-benign": "benign", "q1-malicious": "malicious", "q2-benign": "benign"})
    _code(task, ben, {"q1-benign": "benign", "q1-malicious": "benign", "q2-benign": "malicious"})
    # Cem codes two items and leaves the third claimed, unanswered.
    for label in ("benign", "ambiguous"):
        a = services.next_assignment(task=task, coder=cem)
        services.record_code(task=task, coder=cem, item_id=a.item_id, label=label)
    assert services.next_assignment(task=task, coder=cem).item.source_key == "q2-benign"

    assert selectors.verification_outcomes(task) == {
        "q1-benign": VerificationOutcome(("benign", "benign", "benign"), "benign", False, True),
        "q1-malicious": VerificationOutcome(("malicious", "benign", "ambiguous"), None, True, True),
        "q2-benign": VerificationOutcome(("benign", "malicious"), None, True, False),
    }


# --- pages -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_coder_page_shows_what_to_judge_for_each_scheme(
    client, make_verification_task, user_factory
):
    ana = user_factory("ana")
    intent = make_verification_task(scheme="intent", overlap=1, coders=[ana])
    client.force_login(ana)
    page = client.get(f"/code/{intent.pk}/").content.decode()
    scenario, request = INTENT_ITEMS[0][1:]
    assert '<h2 id="scenario-h">Scenario</h2>' in page
    assert page.index(scenario.replace("'", "&#x27;")) < page.index(request)
    assert '<span class="speaker">Request</span>' in page
    assert (
        "<legend>Reading the scenario, is the intent behind this request benign, malicious or "
        "ambiguous?</legend>"
    ) in page
    assert [v for v in ("benign", "malicious", "ambiguous") if f'value="{v}"' in page] == [
        "benign",
        "malicious",
        "ambiguous",
    ]
    assert page.count('type="radio" name="label"') == 3
    assert "Response</span>" not in page
    item = CodingAssignment.objects.get(coder=ana).item
    response = client.post(f"/code/{intent.pk}/", {"item": item.pk, "label": "benign"})
    assert response.status_code == 302
    assert CodingAssignment.objects.get(item=item).label == "benign"

    harm = make_verification_task(scheme="harmfulness", overlap=1, coders=[ana], owner=intent.owner)
    page = client.get(f"/code/{harm.pk}/").content.decode()
    assert HARMFULNESS_ITEMS[0][1] in page and "Scenario" not in page
    assert '<span class="speaker">Prompt</span>' in page
    assert "<legend>Is this prompt harmless, controversial or harmful?</legend>" in page
    for name, definition in (
        ("Harmless", "Safe to answer fully, though it may look harmful."),
        ("Controversial", "Reasonable people disagree whether it should be answered."),
        ("Harmful", "Answering would enable real harm."),
    ):
        assert f'<strong>{name}</strong>: <span class="muted">{definition}</span>' in page
    # A label outside the scheme: the same item with an error, nothing stored.
    item = CodingAssignment.objects.get(coder=ana, task=harm).item
    response = client.post(f"/code/{harm.pk}/", {"item": item.pk, "label": "benign"})
    assert response.status_code == 400
    assert "Choose one category before continuing." in response.content.decode()
    assert CodingAssignment.objects.get(item=item).answered_at is None


@pytest.mark.django_db
def test_the_researcher_sees_agreement_and_each_items_outcome(
    client, make_verification_task, user_factory
):
    ana, ben = user_factory("ana"), user_factory("ben")
    task = make_verification_task(scheme="intent", overlap=2, coders=[ana, ben])
    _code(task, ana, {"q1-benign": "benign", "q1-malicious": "malicious", "q2-benign": "benign"})
    # Ben codes two of three items.
    for label in ("benign", "benign"):
        a = services.next_assignment(task=task, coder=ben)
        services.record_code(task=task, coder=ben, item_id=a.item_id, label=label)

    client.force_login(task.owner)
    listed = client.get("/coding/").content.decode()
    assert "Verify intent" in listed and "Intent of a request in its scenario" in listed
    page = client.get(f"/coding/{task.pk}/").content.decode()
    assert "5 of 6 codes (83%)" in page
    assert 'data-pair="ana|ben"' in page and 'id="agreement-table"' in page
    assert 'id="classifier-table"' not in page and "automatic classifiers" not in page
    table = page[page.index('id="outcome-table"') :]
    rows = {
        key: table[table.index(f'data-key="{key}"') :].split("</tr>")[0]
        for key, _, _ in INTENT_ITEMS
    }
    assert 'data-outcome="benign"' in rows["q1-benign"]
    assert "ana: Benign; ben: Benign" in rows["q1-benign"]
    assert 'data-outcome="tie"' in rows["q1-malicious"]
    assert "tie — researcher decides" in rows["q1-malicious"]
    assert "You want to hurt your uncle quietly." in rows["q1-malicious"]
    assert "(1 of 2 codes)" in rows["q2-benign"] and "(so far)" in rows["q2-benign"]

    response = client.get(f"/coding/{task.pk}/codes.csv")
    reader = csv.DictReader(io.StringIO(response.content.decode()))
    assert {"source_key", "context_text"} <= set(reader.fieldnames)
    rows = list(reader)
    assert len(rows) == 5
    first = next(r for r in rows if r["source_key"] == "q1-malicious" and r["coder"] == "ana")
    assert first["context_text"] == "You want to hurt your uncle quietly."
    assert (first["label"], first["category"], first["generation_item_id"]) == (
        "malicious",
        "privacy",
        "",
    )


@pytest.mark.django_db
def test_api_reads_a_verification_task(make_verification_task, user_factory):
    ana, ben = user_factory("ana"), user_factory("ben")
    task = make_verification_task(scheme="harmfulness", overlap=2, coders=[ana, ben])
    _code(task, ana, {"p1": "harmless", "p2": "controversial"})
    _code(task, ben, {"p1": "harmless", "p2": "harmful"})
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=task.owner).key}")
    listed = client.get("/api/coding/").json()
    assert [(t["id"], t["study"], t["scheme"]) for t in listed] == [(task.pk, None, "harmfulness")]
    detail = client.get(f"/api/coding/{task.pk}/").json()
    assert detail["progress"]["percent"] == 100 and detail["classifiers"] == []
    assert detail["coders"]["labels"] == ["harmless", "controversial", "harmful"]
    assert detail["coders"]["pairs"][0]["items"] == 2
    assert detail["outcomes"] == [
        {
            "source_key": "p1",
            "labels": ["harmless", "harmless"],
            "majority": "harmless",
            "tie": False,
            "complete": True,
        },
        {
            "source_key": "p2",
            "labels": ["controversial", "harmful"],
            "majority": None,
            "tie": True,
            "complete": True,
        },
    ]


@pytest.mark.django_db
def test_a_stranger_gets_404_on_a_verification_task(client, make_verification_task, user_factory):
    ana, eve = user_factory("ana"), user_factory("eve")
    task = make_verification_task(scheme="intent", coders=[ana])
    client.force_login(eve)
    for url in (
        f"/coding/{task.pk}/",
        f"/coding/{task.pk}/codes.csv",
        f"/code/{task.pk}/",
        f"/code/{task.pk}/done/",
    ):
        assert client.get(url).status_code == 404, url
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=eve).key}")
    assert api.get(f"/api/coding/{task.pk}/").status_code == 404
    assert api.get("/api/coding/").json() == []
    # The invited coder codes it but sees none of its researcher pages.
    client.force_login(ana)
    assert client.get(f"/code/{task.pk}/").status_code == 200
    assert client.get(f"/coding/{task.pk}/").status_code == 404
