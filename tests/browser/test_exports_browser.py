"""A researcher requests an export in Chromium: the page is axe-clean with a job running and
once it is done, the progress comes from the database, and the file downloads."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, expect

from studies.datasets import exports
from studies.models import ExportJob, StudyMembership
from tests.browser.axe import violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_exports_page_is_accessible_and_downloads(browser: Browser, make_study, live_server):
    study = make_study(target_participants=4)
    owner = get_user_model().objects.create_user("owner", password="pw-owner-123")
    StudyMembership.objects.create(study=study, user=owner, role="owner")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/?next=/studies/{study.slug}/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", "pw-owner-123")
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    page.get_by_role("link", name="Exports and replication package").click()
    assert violations(page) == []

    page.get_by_label("Parquet", exact=False).check()
    page.get_by_label("Replication package", exact=False).check()
    page.get_by_role("button", name="Start export").click()
    # No worker runs here: the job waits, queued, with its progress bar; still axe-clean.
    row = page.locator("tr[data-export]")
    expect(row).to_contain_text("queued")
    assert violations(page) == []

    job = ExportJob.objects.get(study=study)
    assert job.package and job.format == "parquet" and not job.include_recruitment_ids
    exports.run_export(job.pk)  # what the worker runs; the page's poll then reloads it
    expect(page.get_by_role("link", name="Download", exact=False)).to_be_visible(timeout=20000)
    assert violations(page) == []
    with page.expect_download() as download:
        page.get_by_role("link", name="Download", exact=False).click()
    assert download.value.suggested_filename == f"{study.slug}-replication-package-{job.pk}.zip"
    page.close()
