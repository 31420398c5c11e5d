"""Forms of the coding pages: a new task, inviting coders (existing or new accounts)."""

from __future__ import annotations

from django import forms

from annotation.coding import selectors
from annotation.coding.models import CodingTask
from annotation.coding.services import MAX_CLAIM_MINUTES, MAX_OVERLAP, NATURAL_FRAMINGS
from modellab.classifiers.labels import SCHEMES

FRAMING_LABELS = {
    "query_only": "Query only",
    "benign": "Benign scenario",
    "malicious": "Malicious scenario",
}


class TaskForm(forms.Form):
    title = forms.CharField(max_length=200, label="Title")
    study = forms.ChoiceField(
        label="Study whose natural responses are coded",
        error_messages={"invalid_choice": "Choose one of your studies with natural responses."},
    )
    models = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Models",
        help_text="None ticked: every model with natural responses in the study.",
    )
    framings = forms.MultipleChoiceField(
        choices=[(f, FRAMING_LABELS[f]) for f in NATURAL_FRAMINGS],
        initial=list(NATURAL_FRAMINGS),
        widget=forms.CheckboxSelectMultiple,
        label="Framings",
    )
    # Response schemes only: tasks verifying study material come from their pipelines.
    scheme = forms.ChoiceField(
        choices=[(v, n) for v, n in CodingTask.Scheme.choices if v in SCHEMES],
        initial=CodingTask.Scheme.FIVE_WAY,
        widget=forms.RadioSelect,
        label="Categories",
    )
    overlap = forms.IntegerField(
        min_value=1,
        max_value=MAX_OVERLAP,
        initial=3,
        label="Coders per item (k)",
        help_text="Each item is coded by this many different coders.",
    )
    sample = forms.IntegerField(
        min_value=1,
        required=False,
        label="Random sample of items",
        help_text="Empty: every matching response.",
    )
    seed = forms.IntegerField(
        min_value=0,
        max_value=2**31 - 1,
        initial=0,
        label="Seed",
        help_text="Fixes the sample and the order items are served in.",
    )
    claim_minutes = forms.IntegerField(
        min_value=1,
        max_value=MAX_CLAIM_MINUTES,
        initial=30,
        label="Minutes a coder may hold an item",
        help_text="An item not answered in this time goes back to the pool.",
    )
    instructions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        label="Instructions for coders (Markdown)",
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        studies = selectors.studies_with_natural_responses(user)
        self.studies = {s.slug: s for s in studies}
        self.fields["study"].choices = [("", "—")] + [
            (s.slug, f"{s.title} ({s.slug})") for s in studies
        ]
        self.fields["models"].choices = [
            (m.name, m.name) for m in selectors.models_with_natural_responses(studies)
        ]

    def clean_study(self):
        slug = self.cleaned_data["study"]
        if slug not in self.studies:
            raise forms.ValidationError("Choose one of your studies with natural responses.")
        return self.studies[slug]


class InviteForm(forms.Form):
    username = forms.CharField(max_length=150, label="Username of an existing account")


class NewCoderForm(forms.Form):
    new_username = forms.CharField(max_length=150, label="Username")
    email = forms.EmailField(required=False, label="E-mail (optional)")
