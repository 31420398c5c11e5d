"""REST API of human coding: a researcher's coding tasks, their progress and agreement."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.coding import selectors
from annotation.coding.models import CodingTask
from studies.api.common import IsResearcher, errors


class CodingProgressSerializer(serializers.Serializer):
    items = serializers.IntegerField()
    overlap = serializers.IntegerField(help_text="k: coders per item.")
    codes = serializers.IntegerField(help_text="Answers stored.")
    target = serializers.IntegerField(help_text="items × k.")
    complete_items = serializers.IntegerField(help_text="Items with all k codes.")
    live_claims = serializers.IntegerField(help_text="Items held by a coder now, unanswered.")
    percent = serializers.IntegerField()


class CodingPairSerializer(serializers.Serializer):
    coder_a = serializers.CharField()
    coder_b = serializers.CharField()
    items = serializers.IntegerField(help_text="Items both coded.")
    agreement = serializers.FloatField(allow_null=True)
    kappa = serializers.FloatField(allow_null=True, help_text="Cohen's κ; null if undefined.")


class CodingCoderAgreementSerializer(serializers.Serializer):
    coded_items = serializers.IntegerField()
    pairable_items = serializers.IntegerField(help_text="Items with 2 or more codes.")
    complete_items = serializers.IntegerField(help_text="Items with exactly k codes.")
    fleiss_kappa = serializers.FloatField(allow_null=True)
    krippendorff_alpha = serializers.FloatField(allow_null=True, help_text="Nominal.")
    labels = serializers.ListField(child=serializers.CharField())
    pooled_matrix = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="Coder vs coder, each pair of codes on an item once in each order.",
    )
    pairs = CodingPairSerializer(many=True)


class CodingClassifierAgreementSerializer(serializers.Serializer):
    name = serializers.CharField()
    compared = serializers.IntegerField()
    ties = serializers.IntegerField(help_text="Items without a majority (left out).")
    unlabelled = serializers.IntegerField()
    unparsed = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True)
    kappa = serializers.FloatField(allow_null=True)
    labels = serializers.ListField(child=serializers.CharField())
    matrix = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="Rows: the coders' majority; columns: the classifier.",
    )


class CodingOutcomeSerializer(serializers.Serializer):
    source_key = serializers.CharField(help_text="The key the material's pipeline gave the item.")
    labels = serializers.ListField(
        child=serializers.CharField(), help_text="The answered codes, in the order given."
    )
    majority = serializers.CharField(
        allow_null=True, help_text="The unique most frequent label; null on a tie or no codes."
    )
    tie = serializers.BooleanField(help_text="Two or more labels share the top count.")
    complete = serializers.BooleanField(help_text="The item has all k codes.")


class CodingTaskSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    study = serializers.CharField(allow_null=True, help_text="null for study material.")
    # Plain strings, not enums: the schema's enum names would collide with other "status"es.
    scheme = serializers.CharField(
        help_text="three_way or five_way (responses); intent or harmfulness (study material)."
    )
    overlap = serializers.IntegerField()
    status = serializers.CharField(help_text="open or closed.")
    claim_minutes = serializers.IntegerField()
    source = serializers.DictField(
        help_text="Models, framings, sample size and seed; for study material, what its "
        "pipeline recorded."
    )
    created_at = serializers.DateTimeField()
    progress = CodingProgressSerializer()


class CodingTaskDetailSerializer(CodingTaskSerializer):
    coders = CodingCoderAgreementSerializer()
    classifiers = CodingClassifierAgreementSerializer(many=True)
    outcomes = CodingOutcomeSerializer(
        many=True, help_text="Study material only (else empty): each item's coders' verdict."
    )


def _task_payload(task: CodingTask) -> dict:
    progress = selectors.progress(task)
    return {
        "id": task.pk,
        "title": task.title,
        "study": task.study.slug if task.study_id else None,
        "scheme": task.scheme,
        "overlap": task.overlap,
        "status": task.status,
        "claim_minutes": task.claim_minutes,
        "source": task.source,
        "created_at": task.created_at,
        "progress": {**progress.__dict__, "target": progress.target, "percent": progress.percent},
    }


def _detail_payload(task: CodingTask) -> dict:
    report = selectors.agreement_report(task)
    coders = report["coders"]
    return {
        **_task_payload(task),
        "coders": {
            **{
                name: getattr(coders, name)
                for name in (
                    "coded_items",
                    "pairable_items",
                    "complete_items",
                    "fleiss_kappa",
                    "krippendorff_alpha",
                    "pooled_matrix",
                )
            },
            "labels": list(coders.labels),
            "pairs": [p.__dict__ for p in coders.pairs],
        },
        "classifiers": [{**c.__dict__, "labels": list(c.labels)} for c in report["classifiers"]],
        "outcomes": [
            {"source_key": key, **o.__dict__, "labels": list(o.labels)}
            for key, o in selectors.verification_outcomes(task).items()
        ]
        if selectors.is_verification(task)
        else [],
    }


class CodingTaskListView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = CodingTaskSerializer

    @extend_schema(responses={200: CodingTaskSerializer(many=True)})
    def get(self, request):
        """Your coding tasks (all of them for a superuser), newest first."""
        tasks = selectors.researcher_tasks(request.user).order_by("-created_at")
        return Response([_task_payload(t) for t in tasks])


class CodingTaskDetailView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = CodingTaskDetailSerializer

    @extend_schema(responses={200: CodingTaskDetailSerializer, **errors(404)})
    def get(self, request, pk: int):
        """One coding task: progress, agreement between coders, and each automatic
        classifier against the coders' majority; for a task verifying study material, each
        item's outcome (see docs/human-coding.md)."""
        return Response(_detail_payload(selectors.task_for_researcher(request.user, pk)))
