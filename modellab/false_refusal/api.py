"""REST API of the false-refusal benchmark: prompt sets (import, read) and runs (start, follow,
cancel, resume)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from modellab.classifiers import CLASSIFIERS
from modellab.false_refusal import selectors, services
from modellab.false_refusal.prompt_file import PHTEST_MAPPING, PromptSetError
from modellab.models import FalseRefusalRun, PromptSet
from studies import access
from studies.api.common import IsResearcher, errors

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class PromptSetMappingSerializer(serializers.Serializer):
    prompt = serializers.CharField(help_text="Column of the prompt text.")
    label = serializers.CharField(
        required=False, allow_blank=True, help_text="Column of the prompt's group (harmless…)."
    )
    category = serializers.CharField(required=False, allow_blank=True)
    id = serializers.CharField(required=False, allow_blank=True, help_text="Empty: file order.")


class PromptSetImportSerializer(serializers.Serializer):
    """Multipart: name, file and the *_column fields; JSON: name, rows and mapping."""

    name = serializers.SlugField(max_length=100)
    file = serializers.FileField(required=False, help_text="A CSV or JSONL file (multipart).")
    prompt_column = serializers.CharField(required=False, default=PHTEST_MAPPING["prompt"])
    label_column = serializers.CharField(
        required=False, allow_blank=True, default=PHTEST_MAPPING["label"]
    )
    category_column = serializers.CharField(required=False, allow_blank=True, default="")
    id_column = serializers.CharField(
        required=False, allow_blank=True, default=PHTEST_MAPPING["id"]
    )
    rows = serializers.ListField(
        child=serializers.DictField(), required=False, help_text="JSON: one object per prompt."
    )
    mapping = PromptSetMappingSerializer(required=False, help_text="JSON: which key holds what.")

    def validate(self, data: dict) -> dict:
        if ("file" in data) == ("rows" in data):
            raise serializers.ValidationError("send either a file (multipart) or rows (JSON)")
        if "rows" in data and "mapping" not in data:
            raise serializers.ValidationError({"mapping": ["say which key holds the prompt"]})
        if "file" in data and data["file"].size > MAX_UPLOAD_BYTES:
            raise serializers.ValidationError({"file": ["the file is larger than 20 MB"]})
        return data


class PromptSetSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    owner = serializers.CharField()
    source_name = serializers.CharField()
    sha256 = serializers.CharField()
    mapping = serializers.DictField()
    row_count = serializers.IntegerField()
    groups = serializers.DictField(child=serializers.IntegerField())
    created_at = serializers.DateTimeField()


def prompt_set_payload(prompt_set: PromptSet) -> dict:
    return {
        "id": prompt_set.pk,
        "name": prompt_set.name,
        "owner": prompt_set.owner.get_username(),
        "source_name": prompt_set.source_name,
        "sha256": prompt_set.sha256,
        "mapping": prompt_set.mapping,
        "row_count": prompt_set.row_count,
        "groups": dict(selectors.prompt_groups(prompt_set)),
        "created_at": prompt_set.created_at,
    }


def _problems(exc: PromptSetError) -> ValidationError:
    return ValidationError({"detail": "nothing was imported", "problems": exc.problems})


class PromptSetListView(APIView):
    permission_classes = [IsResearcher]
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    serializer_class = PromptSetSerializer

    @extend_schema(responses={200: PromptSetSerializer(many=True)})
    def get(self, request):
        """Your prompt sets, newest first."""
        return Response([prompt_set_payload(s) for s in selectors.prompt_sets_for(request.user)])

    @extend_schema(
        request=PromptSetImportSerializer,
        responses={201: PromptSetSerializer, **errors(400)},
        description="Import a prompt set: a CSV/JSONL file (multipart, with the *_column "
        "fields; PHTest's columns by default) or rows as JSON with a mapping. Every problem is "
        "named by line (file) or row (JSON); nothing is stored unless all rows are good.",
    )
    def post(self, request):
        serializer = PromptSetImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            if "file" in data:
                upload = data["file"]
                prompt_set = services.import_prompt_set(
                    name=data["name"],
                    data=upload.read(),
                    filename=upload.name,
                    mapping={k: data.get(f"{k}_column", "") for k in PHTEST_MAPPING},
                    actor=request.user,
                )
            else:
                prompt_set = services.import_prompt_rows(
                    name=data["name"],
                    rows=data["rows"],
                    mapping=dict(data["mapping"]),
                    actor=request.user,
                )
        except PromptSetError as exc:
            raise _problems(exc) from None
        return Response(prompt_set_payload(prompt_set), status=status.HTTP_201_CREATED)


class PromptSetDetailView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = PromptSetSerializer

    @extend_schema(responses={200: PromptSetSerializer, **errors(404)})
    def get(self, request, pk: int):
        """One of your prompt sets, with its provenance and group sizes."""
        return Response(prompt_set_payload(selectors.prompt_set_for(request.user, pk)))


class FalseRefusalRunInputSerializer(serializers.Serializer):
    prompt_set = serializers.IntegerField(help_text="The id of one of your prompt sets.")
    models = serializers.ListField(
        child=serializers.CharField(), min_length=1, help_text="Names of registry models."
    )
    classifier = serializers.ChoiceField(list(CLASSIFIERS), default="string_match")
    judge_model = serializers.CharField(required=False, allow_null=True, default=None)
    judge_prompt = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        default=None,
        help_text="llm_judge: the judging prompt, with {prompt} and {response}; null: default.",
    )
    limit = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    sample = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    seed = serializers.IntegerField(min_value=0, default=0)


class FalseRefusalRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    prompt_set = serializers.DictField()
    models = serializers.ListField(child=serializers.CharField())
    classifier = serializers.CharField()
    judge_model = serializers.CharField(allow_null=True)
    judge_prompt = serializers.CharField(allow_null=True)
    limit = serializers.IntegerField(allow_null=True)
    sample = serializers.IntegerField(allow_null=True)
    seed = serializers.IntegerField()
    status = serializers.ChoiceField(FalseRefusalRun.Status.choices)
    error = serializers.CharField(allow_blank=True)
    params = serializers.DictField()
    progress = serializers.DictField(help_text="total, pending, running, generated, labelled, …")
    rates = serializers.ListField(
        child=serializers.DictField(),
        help_text="Per model: failed, and per group n, label counts, unparsed, full and "
        "full_or_partial (count, n, rate, ci_low, ci_high; Wilson 95%).",
    )
    responses_csv = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


def run_payload(run: FalseRefusalRun, *, rates: bool = True) -> dict:
    return {
        "id": run.pk,
        "prompt_set": {"id": run.prompt_set_id, "name": run.prompt_set.name},
        "models": list(run.language_models.order_by("name").values_list("name", flat=True)),
        "classifier": run.classifier,
        "judge_model": run.judge_model.name if run.judge_model else None,
        "judge_prompt": run.judge_prompt or None,
        "limit": run.limit,
        "sample": run.sample,
        "seed": run.seed,
        "status": run.status,
        "error": run.error,
        "params": run.params,
        "progress": selectors.run_progress(run),
        "rates": selectors.run_rates(run) if rates else [],
        "responses_csv": reverse("modellab:false-refusal-responses-csv", args=[run.pk]),
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


class FalseRefusalRunListView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = FalseRefusalRunSerializer

    @extend_schema(responses={200: FalseRefusalRunSerializer(many=True)})
    def get(self, request):
        """Your runs, newest first (the last 50; rates are in each run's detail)."""
        runs = selectors.runs_for(request.user)[:50]
        return Response([run_payload(r, rates=False) for r in runs])

    @extend_schema(
        request=FalseRefusalRunInputSerializer,
        responses={202: FalseRefusalRunSerializer, **errors(400, 404)},
        description="Start a run: every model answers the chosen prompts, then the classifier "
        "labels each answer (three-way).",
    )
    def post(self, request):
        serializer = FalseRefusalRunInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        prompt_set = selectors.prompt_set_for(request.user, data["prompt_set"])
        usable = access.models_for(request.user)
        names = list(dict.fromkeys(data["models"]))
        models = list(usable.filter(name__in=names))
        missing = sorted(set(names) - {m.name for m in models})
        if missing:
            raise ValidationError(
                {"models": [f"no model named {n!r} that you may use" for n in missing]}
            )
        judge = None
        if data["judge_model"]:
            judge = usable.filter(name=data["judge_model"]).first()
            if judge is None:
                raise ValidationError({"judge_model": ["no such model that you may use"]})
        try:
            run = services.start_false_refusal_run(
                prompt_set=prompt_set,
                models=models,
                classifier=data["classifier"],
                judge_model=judge,
                judge_prompt=data["judge_prompt"] or None,
                limit=data["limit"],
                sample=data["sample"],
                seed=data["seed"],
                actor=request.user,
            )
        except (ValueError, PermissionDenied) as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(run_payload(run), status=status.HTTP_202_ACCEPTED)


class FalseRefusalRunDetailView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = FalseRefusalRunSerializer

    @extend_schema(responses={200: FalseRefusalRunSerializer, **errors(404)})
    def get(self, request, pk: int):
        """One run: its progress while it runs and the rates labelled so far."""
        return Response(run_payload(selectors.run_for(request.user, pk)))


class FalseRefusalRunCancelView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = FalseRefusalRunSerializer

    @extend_schema(request=None, responses={200: FalseRefusalRunSerializer, **errors(404)})
    def post(self, request, pk: int):
        """Stop a queued or running run of yours: prompts not answered yet are cancelled,
        answers and labels stored are kept (resume it to do the rest). A finished run is
        returned as it is."""
        run = services.cancel_run(run=selectors.run_for(request.user, pk), actor=request.user)
        return Response(run_payload(run))


class FalseRefusalRunResumeView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = FalseRefusalRunSerializer

    @extend_schema(request=None, responses={202: FalseRefusalRunSerializer, **errors(400, 404)})
    def post(self, request, pk: int):
        """Resume a run of yours that was cancelled or finished with failures: only the
        responses it does not have are asked for, and only the answers not labelled are
        labelled."""
        try:
            run = services.retry_failed(run=selectors.run_for(request.user, pk), actor=request.user)
        except (ValueError, PermissionDenied) as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(run_payload(run), status=status.HTTP_202_ACCEPTED)
