"""The participants API: the list with quality flags and filters, screening runs, decisions."""

from __future__ import annotations

import pytest

from studies.models import AuditEvent, StudyMembership
from studies.spec.model import QualitySpec, SpeederRuleSpec
from tests.api.conftest import api_for
from tests.datasets.test_quality_screening import take_part, varied

pytestmark = pytest.mark.django_db


def test_the_api_lists_flags_and_takes_decisions(make_study, people):
    rules = QualitySpec(speeders=SpeederRuleSpec(enabled=True, min_seconds=3600))
    study = make_study(target_participants=3, quality=rules)
    for user, role in ((people.owner, "owner"), (people.viewer, "viewer")):
        StudyMembership.objects.create(study=study, user=user, role=role)
    fast = take_part(study, "fast", varied)
    owner, viewer = api_for(people.owner), api_for(people.viewer)
    base = f"/api/studies/{study.slug}/"
    assert viewer.post(base + "quality-checks/").status_code == 403
    response = owner.post(base + "quality-checks/")
    assert response.status_code == 200 and response.json() == {
        "screened": 1,
        "flagged": 1,
        "excluded": 1,
    }
    listed = viewer.get(base + "participants/?flag=speeders").json()
    assert listed["count"] == 1
    (row,) = listed["results"]
    assert row["participant_id"] == fast.pseudonym[:16] and row["excluded"] is True
    assert row["flags"][0]["rule"] == "speeders"
    assert viewer.get(base + "participants/?flag=not_flagged").json()["count"] == 0
    assert viewer.get(base + "participants/?flag=nonsense").status_code == 400
    url = base + f"participants/{fast.pk}/decision/"
    assert viewer.post(url, {"decision": "kept", "reason": "r"}, format="json").status_code == 403
    refused = owner.post(url, {"decision": "kept", "reason": ""}, format="json")
    assert refused.status_code == 400
    kept = owner.post(url, {"decision": "kept", "reason": "read the texts"}, format="json")
    assert kept.status_code == 200
    assert (kept.json()["exclusion_decision"], kept.json()["excluded"]) == ("kept", False)
    assert AuditEvent.objects.filter(study=study, action="participant_kept").count() == 1
