"""Admin of the researcher side (superusers only; config.admin): every list, choice and
filter goes through studies.access, and fields whose change needs a service are read-only
or routed to that service."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q

from studies import access
from studies.access import Action
from studies.errors import StudyStateError
from studies.generation import services as generation_services
from studies.generation.backends import validate_backend_settings
from studies.generation.embeddings import validate_settings as validate_embedding_settings
from studies.generation.hosts import HostNotAllowed, check_host_allowed
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
    StudyMembership,
)
from studies.services import EDITABLE_STATUSES

# Everything the spec defines: fixed once a study has launched (a new version is a duplicate).
DESIGN_FIELDS = (
    "slug",
    "title",
    "description",
    "consent_md",
    "instructions_md",
    "target_participants",
    "items_per_participant",
    "time_limit_minutes",
    "completion_code",
    "completion_url",
    "recruitment_params",
    "topic_choice",
    "design",
    "seed",
)


def design_is_open(study: Study | None) -> bool:
    """Whether a study's design may still change (before launch)."""
    return study is None or study.status in EDITABLE_STATUSES


class StudyListFilter(admin.SimpleListFilter):
    """Filter by study, offering only the studies the signed-in user may see."""

    title = "study"
    parameter_name = "study"
    study_path = "study"

    def lookups(self, request, model_admin):
        return [(s.pk, s.slug) for s in access.studies_for(request.user).order_by("slug")]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{f"{self.study_path}__pk": self.value()})
        return queryset


class QueryStudyListFilter(StudyListFilter):
    study_path = "query__study"


class OwnedStudyAdmin(admin.ModelAdmin):
    """Limits every list, lookup and study choice to the studies the user may act on."""

    study_path = "study"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset.filter(**{f"{self.study_path}__in": access.studies_for(request.user)})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "study":
            # Only studies the user may edit and whose design is still open.
            kwargs["queryset"] = access.studies_for(request.user, Action.EDIT).filter(
                status__in=EDITABLE_STATUSES
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def study_of(self, obj) -> Study | None:
        if obj is None:
            return None
        study = obj
        for part in self.study_path.split("__"):
            study = getattr(study, part)
        return study

    def has_change_permission(self, request, obj=None):
        study = self.study_of(obj)
        if study is not None and not access.can(request.user, Action.EDIT, study):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        study = self.study_of(obj)
        if study is not None and not access.can(request.user, Action.MANAGE, study):
            return False
        return super().has_delete_permission(request, obj)


class LockedWhenLaunched:
    """An inline of a study's design: read-only once the study has launched."""

    def _open(self, obj) -> bool:
        study = obj if isinstance(obj, Study) else getattr(obj, "study", None)
        return design_is_open(study)

    def has_add_permission(self, request, obj=None):
        return self._open(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._open(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._open(obj) and super().has_delete_permission(request, obj)


class QuestionInline(LockedWhenLaunched, admin.TabularInline):
    model = Question
    extra = 0
    fields = (
        "order",
        "key",
        "kind",
        "block",
        "construct",
        "text",
        "points",
        "reverse_coded",
        "required",
        "is_attention_check",
        "correct_value",
        "after_item",
    )


class MembershipInline(admin.TabularInline):
    """Who may do what: shown here, changed through the study's members page or API."""

    model = StudyMembership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("slug", "title", "status", "target_participants", "items_per_participant")
    list_filter = ("status",)
    search_fields = ("slug", "title")
    inlines = [MembershipInline, QuestionInline]

    def get_queryset(self, request):
        return access.studies_for(request.user)

    def get_readonly_fields(self, request, obj=None):
        # The lifecycle (status, slots, pilot) changes through studies.lifecycle only; quality
        # rules and retention through the spec, where they are validated.
        fixed = (
            "status",
            "launched_at",
            "closed_at",
            "pilot_slots",
            "duplicated_from",
            "quality",
            "retention_days",
        )
        if obj is not None and not design_is_open(obj):
            return (*fixed, *DESIGN_FIELDS)
        return fixed

    def has_change_permission(self, request, obj=None):
        if obj is not None and not access.can(request.user, Action.EDIT, obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        # Deleting a study is studies.lifecycle.delete_study's job (confirmation, audit).
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            # Whoever creates a study owns it, whatever the entry point.
            StudyMembership.objects.get_or_create(
                study=obj, user=request.user, defaults={"role": StudyMembership.Role.OWNER}
            )


class ScenarioInline(LockedWhenLaunched, admin.StackedInline):
    model = Scenario
    extra = 0


class VariantInline(admin.StackedInline):
    """The query's texts, read-only here: review them in ResponseVariant (approve, edit)."""

    model = ResponseVariant
    extra = 0
    fields = ("response_type", "model_name", "sample", "text", "source", "review_status")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Query)
class QueryAdmin(OwnedStudyAdmin):
    list_display = ("query_id", "study", "category", "topic", "text")
    list_filter = (StudyListFilter, "category")
    search_fields = ("query_id", "text", "topic")
    inlines = [ScenarioInline, VariantInline]

    def has_change_permission(self, request, obj=None):
        if obj is not None and not design_is_open(obj.study):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and not design_is_open(obj.study):
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        # The form's choices already hold only open studies the user may edit; checked again
        # here because a form's choices are no permission check.
        access.require(request.user, Action.EDIT, obj.study)
        if not design_is_open(obj.study):
            raise PermissionDenied("the study has launched; its queries are read-only")
        super().save_model(request, obj, form, change)


@admin.register(ResponseVariant)
class ResponseVariantAdmin(OwnedStudyAdmin):
    """Review of texts: edit (history kept in provenance), approve and reject, via services."""

    study_path = "query__study"
    list_display = ("query", "response_type", "model_name", "sample", "source", "review_status")
    list_filter = (QueryStudyListFilter, "review_status", "source", "response_type", "model_name")
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
    actions = ["approve", "reject"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        if obj is not None and not design_is_open(obj.query.study):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def _each(self, request, queryset, service, verb: str) -> None:
        done = 0
        for variant in queryset.select_related("query__study"):
            try:
                service(variant=variant, actor=request.user)
            except (StudyStateError, ValueError) as exc:  # one refusal must not hide the rest
                self.message_user(request, f"{variant}: {exc}", messages.ERROR)
            else:
                done += 1
        self.message_user(request, f"{done} response(s) {verb}.")

    @admin.action(description="Approve selected responses (replaces other approved texts)")
    def approve(self, request, queryset):
        self._each(request, queryset, generation_services.approve_variant, "approved")

    @admin.action(description="Reject selected responses")
    def reject(self, request, queryset):
        self._each(request, queryset, generation_services.reject_variant, "rejected")

    def save_model(self, request, obj, form, change):
        if change and "text" in form.changed_data:
            generation_services.edit_variant(
                variant=obj, text=form.cleaned_data["text"], actor=request.user
            )


class LanguageModelForm(forms.ModelForm):
    """Validated like the registry's service (settings, allowed hosts) before it is called."""

    # Left out of a post: the model keeps its kind (a new one is a chat model).
    kind = forms.ChoiceField(choices=LanguageModel.Kind.choices, required=False)

    def clean_kind(self) -> str:
        return self.cleaned_data["kind"] or self.instance.kind or LanguageModel.Kind.CHAT

    class Meta:
        model = LanguageModel
        fields = (
            "name",
            "kind",
            "backend",
            "backend_settings",
            "queue",
            "temperature",
            "max_tokens",
            "seed",
            "owner",
            "shared",
        )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            validate = (
                validate_embedding_settings
                if data["kind"] == LanguageModel.Kind.EMBEDDING
                else validate_backend_settings
            )
            settings = validate(data["backend"], data["backend_settings"])
            if data["backend"] == LanguageModel.Backend.OPENAI:
                check_host_allowed(settings["base_url"])
        except (ValueError, HostNotAllowed) as exc:
            self.add_error("backend_settings", str(exc))
        return data


@admin.register(LanguageModel)
class LanguageModelAdmin(admin.ModelAdmin):
    """Saved through register_model, so an endpoint change is checked and audited."""

    form = LanguageModelForm
    list_display = (
        "name",
        "kind",
        "backend",
        "queue",
        "owner",
        "shared",
        "temperature",
        "max_tokens",
    )
    list_filter = ("kind", "backend", "queue", "shared")

    def get_queryset(self, request):
        return access.models_for(request.user)

    def get_readonly_fields(self, request, obj=None):
        return ("name",) if obj is not None else ()

    def has_change_permission(self, request, obj=None):
        if obj is not None and not access.can_change_model(request.user, obj):
            return False
        return super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        model = generation_services.register_model(
            name=obj.name,
            kind=data["kind"],
            backend=data["backend"],
            backend_settings=data["backend_settings"],
            queue=data["queue"],
            temperature=data["temperature"],
            max_tokens=data["max_tokens"],
            seed=data["seed"],
            shared=data["shared"],
            actor=request.user,
        )
        owner = data.get("owner") or model.owner
        if owner != model.owner:
            model.owner = owner
            model.save(update_fields=["owner"])
        obj.pk = model.pk


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
    list_filter = (StudyListFilter, "status", "kind")
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


class SubjectFilter(admin.SimpleListFilter):
    title = "subject"
    parameter_name = "subject"

    def lookups(self, request, model_admin):
        return [("study", "a study"), ("model", "a model in the registry")]

    def queryset(self, request, queryset):
        if self.value() == "study":
            return queryset.filter(study__isnull=False)
        if self.value() == "model":
            return queryset.filter(study__isnull=True)
        return queryset


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log: study events, and changes to where registered models send requests."""

    list_display = ("created_at", "study", "model", "action", "actor")
    list_filter = (SubjectFilter, StudyListFilter, "action")
    readonly_fields = ("study", "model", "actor", "action", "detail", "created_at")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(
                Q(study__in=access.studies_for(request.user))
                | Q(study__isnull=True, model__in=access.models_for(request.user))
            )
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
