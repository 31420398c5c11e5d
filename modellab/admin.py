"""Read-only admin for the model lab's tables: every row is written by the part's services."""

from django.contrib import admin

from modellab.models import (
    ClassificationLabel,
    ClassificationRun,
    FalseRefusalItem,
    FalseRefusalRun,
    PromptSet,
    RewardRun,
    RewardScore,
)


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ClassificationRun)
class ClassificationRunAdmin(_ReadOnly):
    list_display = ("pk", "study", "classifier", "scheme", "judge_model", "status", "created_at")
    list_filter = ("classifier", "scheme", "status")
    search_fields = ("study__slug",)
    list_select_related = ("study", "judge_model")


@admin.register(ClassificationLabel)
class ClassificationLabelAdmin(_ReadOnly):
    list_display = ("pk", "run", "item", "label", "status", "attempts")
    list_filter = ("status", "label")
    list_select_related = ("run", "item")
    raw_id_fields = ("run", "item")


@admin.register(RewardRun)
class RewardRunAdmin(_ReadOnly):
    list_display = ("pk", "study", "model", "scorer", "status", "n_done", "n_total", "created_at")
    list_filter = ("scorer", "status")
    search_fields = ("study__slug", "model__name")
    list_select_related = ("study", "model")


@admin.register(RewardScore)
class RewardScoreAdmin(_ReadOnly):
    list_display = ("pk", "run", "variant", "motivation", "status", "score", "attempts")
    list_filter = ("status",)
    list_select_related = ("run", "variant")
    raw_id_fields = ("run", "variant")


@admin.register(PromptSet)
class PromptSetAdmin(_ReadOnly):
    list_display = ("pk", "name", "owner", "source_name", "row_count", "created_at")
    search_fields = ("name", "owner__username", "sha256")
    list_select_related = ("owner",)


@admin.register(FalseRefusalRun)
class FalseRefusalRunAdmin(_ReadOnly):
    list_display = ("pk", "prompt_set", "classifier", "judge_model", "status", "created_by")
    list_filter = ("classifier", "status")
    list_select_related = ("prompt_set", "judge_model", "created_by")


@admin.register(FalseRefusalItem)
class FalseRefusalItemAdmin(_ReadOnly):
    list_display = ("pk", "run", "model", "prompt", "status", "label", "attempts")
    list_filter = ("status", "label")
    list_select_related = ("run", "model", "prompt")
    raw_id_fields = ("run", "model", "prompt")
