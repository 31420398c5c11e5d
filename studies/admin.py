"""Admin for studies: researchers see and edit only the studies they own."""

from django.contrib import admin

from studies import access
from studies.generation import services as generation_services
from studies.models import (
    AuditEvent,
    GenerationItem,
    GenerationJob,
    LanguageModel,
    Query,
    Question,
    ResponseVariant,
    Scenario,
    Study,
)


class OwnedStudyAdmin(admin.ModelAdmin):
    """Limits every list and lookup to the studies of the signed-in researcher."""

    study_path = "study"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset.filter(**{f"{self.study_path}__in": access.studies_for(request.user)})


class QuestionInline(admin.TabularInline):
    model = Question
    extra = 0
    fields = (
        "order",
        "key",
        "construct",
        "text",
        "points",
        "reverse_coded",
        "required",
        "is_attention_check",
        "correct_value",
        "after_item",
    )


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("slug", "title", "status", "target_participants", "items_per_participant")
    list_filter = ("status",)
    search_fields = ("slug", "title")
    readonly_fields = ("status", "launched_at", "created_at", "updated_at")
    inlines = [QuestionInline]

    def get_queryset(self, request):
        return access.studies_for(request.user)


class ScenarioInline(admin.StackedInline):
    model = Scenario
    extra = 0


class VariantInline(admin.StackedInline):
    model = ResponseVariant
    extra = 0
    fields = ("response_type", "model_name", "sample", "text", "source", "review_status")


@admin.register(Query)
class QueryAdmin(OwnedStudyAdmin):
    list_display = ("query_id", "study", "category", "topic", "text")
    list_filter = ("study", "category")
    search_fields = ("query_id", "text", "topic")
    inlines = [ScenarioInline, VariantInline]


@admin.register(ResponseVariant)
class ResponseVariantAdmin(OwnedStudyAdmin):
    """Review of generated texts: edit (history kept in provenance) and approve."""

    study_path = "query__study"
    list_display = ("query", "response_type", "model_name", "sample", "source", "review_status")
    list_filter = ("review_status", "source", "response_type", "model_name")
    search_fields = ("text", "query__query_id")
    readonly_fields = (
        "query",
        "response_type",
        "model_name",
        "sample",
        "source",
        "review_status",
        "provenance",
    )
    fields = (
        "query",
        "response_type",
        "model_name",
        "sample",
        "text",
        "source",
        "review_status",
        "provenance",
    )
    actions = ["approve"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Approve selected responses (replaces other approved texts)")
    def approve(self, request, queryset):
        for variant in queryset:
            generation_services.approve_variant(variant=variant, actor=request.user)
        self.message_user(request, f"{queryset.count()} response(s) approved.")

    def save_model(self, request, obj, form, change):
        if change and "text" in form.changed_data:
            generation_services.edit_variant(
                variant=obj, text=form.cleaned_data["text"], actor=request.user
            )
        elif not change:
            super().save_model(request, obj, form, change)


@admin.register(LanguageModel)
class LanguageModelAdmin(admin.ModelAdmin):
    list_display = ("name", "backend", "queue", "temperature", "max_tokens", "seed")
    list_filter = ("backend", "queue")


class GenerationItemInline(admin.TabularInline):
    model = GenerationItem
    extra = 0
    fields = ("query", "response_type", "framing", "sample", "status", "attempts", "error")
    readonly_fields = fields
    can_delete = False
    max_num = 0

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(status="done").select_related("query")


@admin.register(GenerationJob)
class GenerationJobAdmin(OwnedStudyAdmin):
    list_display = ("pk", "study", "model", "kind", "mode", "status", "created_at")
    list_filter = ("status", "kind")
    readonly_fields = (
        "study",
        "model",
        "kind",
        "mode",
        "samples",
        "instructions",
        "params",
        "status",
        "error",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    )
    inlines = [GenerationItemInline]
    actions = ["cancel"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Cancel selected jobs")
    def cancel(self, request, queryset):
        for job in queryset:
            generation_services.cancel_job(job=job, actor=request.user)


@admin.register(AuditEvent)
class AuditEventAdmin(OwnedStudyAdmin):
    list_display = ("created_at", "study", "action", "actor")
    list_filter = ("action",)
    readonly_fields = ("study", "actor", "action", "detail", "created_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
