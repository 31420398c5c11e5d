"""Researcher forms: starting a generation job and registering a model."""

from __future__ import annotations

import json

from django import forms

from studies.domain import RESPONSE_TYPE_LABELS, RESPONSE_TYPES
from studies.generation.prompts import DEFAULT_INSTRUCTIONS
from studies.generation.selectors import chat_models_for
from studies.models import GenerationJob, LanguageModel


class GenerationJobForm(forms.Form):
    model = forms.ModelChoiceField(
        LanguageModel.objects.filter(kind=LanguageModel.Kind.CHAT), to_field_name="name"
    )
    kind = forms.ChoiceField(choices=GenerationJob.Kind.choices, initial="strategy")
    mode = forms.ChoiceField(choices=GenerationJob.Mode.choices, initial="per_type")
    samples = forms.IntegerField(min_value=1, max_value=100, initial=1)

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None:
            # Only chat models the researcher may use: their own and shared ones.
            self.fields["model"].queryset = chat_models_for(user)
        # One editable instruction per response type, starting from the project's defaults.
        for response_type in RESPONSE_TYPES:
            self.fields[f"instruction_{response_type}"] = forms.CharField(
                label=f"Instruction: {RESPONSE_TYPE_LABELS[response_type]}",
                required=False,
                initial=DEFAULT_INSTRUCTIONS[response_type],
                widget=forms.Textarea(attrs={"rows": 2}),
            )

    def job_arguments(self) -> dict:
        """The cleaned form as keyword arguments for start_generation_job."""
        data = dict(self.cleaned_data)
        data["instructions"] = {
            response_type: data.pop(f"instruction_{response_type}")
            for response_type in RESPONSE_TYPES
        }
        return data


class LanguageModelForm(forms.Form):
    name = forms.SlugField(max_length=100)
    kind = forms.ChoiceField(
        choices=LanguageModel.Kind.choices,
        initial=LanguageModel.Kind.CHAT,
        # Left out (a script posting the older form): a new model is a chat model, a
        # registered one keeps its kind.
        required=False,
        help_text="A chat model writes text; an embedding model turns texts into vectors "
        "(near-duplicate detection) and is never offered where text must be written.",
    )
    backend = forms.ChoiceField(choices=LanguageModel.Backend.choices)
    queue = forms.ChoiceField(choices=LanguageModel.Queue.choices)
    backend_settings = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text='JSON, e.g. {"base_url": "http://vllm:8001/v1", "model": "local-model"}',
    )
    temperature = forms.FloatField(min_value=0, max_value=2, initial=0.7)
    max_tokens = forms.IntegerField(min_value=1, max_value=32768, initial=512)
    seed = forms.IntegerField(required=False)
    shared = forms.BooleanField(
        required=False,
        initial=True,
        help_text="Other researchers may use this model in their jobs (only you may change it).",
    )

    @classmethod
    def for_model(cls, model: LanguageModel) -> LanguageModelForm:
        """A form filled in with a registered model's current values."""
        return cls(
            initial={
                "name": model.name,
                "kind": model.kind,
                "backend": model.backend,
                "queue": model.queue,
                "backend_settings": json.dumps(model.backend_settings, indent=2),
                "temperature": model.temperature,
                "max_tokens": model.max_tokens,
                "seed": model.seed,
                "shared": model.shared,
            }
        )

    def clean_kind(self) -> str | None:
        return self.cleaned_data["kind"] or None

    def clean_backend_settings(self) -> dict:
        try:
            value = json.loads(self.cleaned_data["backend_settings"])
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc.msg} (line {exc.lineno})") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError("must be a JSON object")
        return value
