"""The builder's recruitment page sets how long raw recruitment ids are kept after closing."""

from __future__ import annotations

import pytest

from studies.models import Study
from tests.builder.conftest import errors_of
from tests.builder.test_sections import exported, section_url, submit

pytestmark = pytest.mark.django_db


def test_retention_days_is_set_on_the_recruitment_page_and_checked_by_the_spec(clients, new_study):
    study = new_study()
    url = section_url(study, "recruitment")
    client = clients["owner"]
    page = client.get(url).content.decode()
    assert 'name="retention_days"' in page and 'value="90"' in page
    refused = submit(client, url, {"retention_days": "0"})
    assert refused.status_code == 400
    assert "must be an integer between 1 and 3650" in errors_of(
        refused.content.decode(), "retention_days"
    )
    assert Study.objects.get(pk=study.pk).retention_days == 90
    assert submit(client, url, {"retention_days": "30"}).status_code == 302
    assert exported(client, study)["retention_days"] == 30
    assert Study.objects.get(pk=study.pk).retention_days == 30
