"""The preview shows where participants find the withdrawal link, without leaving the preview."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_preview_pages_show_the_withdraw_link_inert(make_study, with_roles, client_for):
    study = with_roles(make_study(launch=False, target_participants=4))
    editor = client_for("editor")
    editor.post(f"/studies/{study.slug}/preview/")
    url = f"/studies/{study.slug}/preview/page/"
    pages = [editor.get(url).content.decode()]  # consent
    editor.post(url, {"decision": "agree"})
    pages.append(editor.get(url).content.decode())  # instructions
    editor.post(url)
    pages.append(editor.get(url).content.decode())  # the first item's topic choice
    for html in pages:
        assert "Withdraw from this study" in html
        assert f"/s/{study.slug}/withdraw/" not in html
