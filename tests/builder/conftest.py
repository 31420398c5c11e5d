"""Builder test helpers: researchers with roles, forms filled in as a browser would."""

from __future__ import annotations

import html as html_lib
import re
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from studies.models import StudyMembership


class _Forms(HTMLParser):
    """Collects every form's successful controls (what a browser would submit)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._textarea: str | None = None
        self._text: list[str] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "form":
            self._form = {"attrs": a, "fields": []}
            self.forms.append(self._form)
        if self._form is None:
            return
        fields = self._form["fields"]
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    fields.append((a["name"], a.get("value", "on")))
            elif kind not in ("submit", "button", "file", "reset", "image"):
                fields.append((a["name"], a.get("value", "")))
        elif tag == "textarea":
            self._textarea, self._text = a.get("name"), []
        elif tag == "select":
            self._select, self._options = a.get("name"), []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._form is None:
            return
        if tag == "textarea" and self._textarea is not None:
            text = "".join(self._text)
            # Browsers drop the newline that starts a textarea's content.
            self._form["fields"].append((self._textarea, text.removeprefix("\n")))
            self._textarea = None
        elif tag == "select" and self._select is not None:
            chosen = [v for v, selected in self._options if selected] or [
                v for v, _ in self._options[:1]
            ]
            self._form["fields"] += [(self._select, v) for v in chosen]
            self._select = None
        elif tag == "form":
            self._form = None


def form_data(html: str, css_class: str = "builder", source: str | None = None) -> dict:
    """The values of the page's form (by class, or the "new study" form by its source)."""
    parser = _Forms()
    parser.feed(html)
    for form in parser.forms:
        names = dict(form["fields"])
        if source is not None and names.get("source") != source:
            continue
        if source is None and css_class not in form["attrs"].get("class", ""):
            continue
        data: dict[str, list[str]] = {}
        for name, value in form["fields"]:
            data.setdefault(name, []).append(value)
        return {k: v if len(v) > 1 else v[0] for k, v in data.items()}
    raise AssertionError("no such form on the page")


def field_block(html: str, name: str) -> str:
    """The HTML of the element that wraps a field (its label, input and errors)."""
    match = re.search(
        rf'<(div|td) class="field[^"]*" data-field="{re.escape(name)}">(.*?)</\1>', html, re.S
    )
    assert match, f"no field {name} on the page"
    return match.group(2)


def errors_of(html: str, name: str) -> str:
    """The error messages shown next to a field, as text."""
    block = field_block(html, name)
    match = re.search(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', block, re.S)
    return html_lib.unescape(match.group(1)) if match else ""


@pytest.fixture
def users(db) -> dict:
    make = get_user_model().objects.create_user
    return {
        name: make(name, email=f"{name}@example.org", password=f"pw-{name}-1234")
        for name in ("owner", "editor", "viewer", "other")
    }


@pytest.fixture
def clients(users) -> dict[str, Client]:
    out = {}
    for name, user in users.items():
        client = Client()
        client.force_login(user)
        out[name] = client
    return out


@pytest.fixture
def new_study(clients, users):
    """A draft study made through the "new study" page by owner, with editor and viewer."""

    def make(slug: str = "my-study", design: str = "every_type", title: str = "My study"):
        response = clients["owner"].post(
            "/studies/new/",
            {"source": "form", "start-title": title, "start-slug": slug, "start-design": design},
        )
        assert response.status_code == 302, response.content.decode()[:3000]
        from studies.models import Study

        study = Study.objects.get(slug=slug)
        for role in ("editor", "viewer"):
            StudyMembership.objects.create(study=study, user=users[role], role=role)
        return study

    return make
