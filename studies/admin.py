"""Admin for studies: researchers see and edit only the studies they own."""

from django.contrib import admin

from studies import selectors
from studies.models import AuditEvent, Query, Question, ResponseVariant, Scenario, Study


class OwnedStudyAdmin(admin.ModelAdmin):
    """Limits every list and lookup to the studies of the signed-in researcher."""

    study_path = "study"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.study_path}__owners": request.user})


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
        return selectors.studies_for_user(request.user)


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
    study_path = "query__study"
    list_display = ("query", "response_type", "model_name", "source", "review_status")
    list_filter = ("review_status", "source", "response_type")
    search_fields = ("text", "query__query_id")
    actions = ["approve"]

    @admin.action(description="Approve selected responses")
    def approve(self, request, queryset):
        queryset.update(review_status=ResponseVariant.ReviewStatus.APPROVED)


@admin.register(AuditEvent)
class AuditEventAdmin(OwnedStudyAdmin):
    list_display = ("created_at", "study", "action", "actor")
    list_filter = ("action",)
    readonly_fields = ("study", "actor", "action", "detail", "created_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
