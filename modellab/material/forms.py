"""Form pieces both material generators' pages share: one-per-line text, model pickers."""

from __future__ import annotations

from collections.abc import Iterable

from django import forms

from studies.generation.selectors import chat_models_for, embedding_models_for


def lines(text: str | None) -> list[str]:
    """The non-empty lines of a "one a line" textarea, stripped."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def offer_models(
    form: forms.Form,
    user,
    *,
    chat: Iterable[str],
    embedding: str = "embedding_model",
) -> None:
    """Let each of the ``chat`` fields pick among the chat models ``user`` may use, by name, and
    the ``embedding`` field among their embedding models."""
    chat_models = chat_models_for(user).order_by("name")
    for field in chat:
        form.fields[field].queryset = chat_models
    form.fields[embedding].queryset = embedding_models_for(user).order_by("name")
