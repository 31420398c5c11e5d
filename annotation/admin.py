"""Admin of the participant side: read-only views of participants and slots; a participant's
status changes only through services (the "Exclude" action calls exclude_participant)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.shortcuts import render

from annotation.models import Participant, Slot
from annotation.services import exclude_participant
from studies import access
from studies.access import Action
from studies.admin import OwnedStudyAdmin, StudyListFilter


class ExcludeForm(forms.Form):
    reason = forms.CharField(
        max_length=500, help_text="Written to the audit log, e.g. 'failed both attention checks'."
    )


@admin.register(Participant)
class ParticipantAdmin(OwnedStudyAdmin):
    list_display = (
        "pseudonym",
        "study",
        "status",
        "is_pilot",
        "position",
        "consented_at",
        "completed_at",
    )
    list_filter = (StudyListFilter, "status", "is_pilot")
    readonly_fields = (
        "pseudonym",
        "study",
        "status",
        "is_pilot",
        "slot",
        "position",
        "recruitment",
        "completed_blocks",
        "created_at",
        "consented_at",
        "instructions_read_at",
        "completed_at",
        "last_seen_at",
        "withdrawn_at",
        "recruitment_id_erased_at",
    )
    # The encrypted recruitment id is read only on the owners' payments page, each read audited.
    exclude = ("recruitment_id_encrypted",)
    actions = ["exclude_selected"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Exclude selected participants (frees their slots)")
    def exclude_selected(self, request, queryset):
        form = ExcludeForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            done = 0
            for participant in queryset.select_related("study"):
                if not access.can(request.user, Action.EDIT, participant.study):
                    continue
                exclude_participant(
                    participant=participant, reason=form.cleaned_data["reason"], actor=request.user
                )
                done += 1
            self.message_user(request, f"{done} participant(s) excluded.", messages.SUCCESS)
            return None
        return render(
            request,
            "admin/annotation/participant/exclude.html",
            {
                **self.admin_site.each_context(request),
                "title": "Exclude participants",
                "participants": queryset,
                "form": form,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
        )


@admin.register(Slot)
class SlotAdmin(OwnedStudyAdmin):
    list_display = ("study", "index", "cell", "is_pilot", "status", "claimed_at")
    list_filter = (StudyListFilter, "status")
    readonly_fields = ("study", "index", "cell", "is_pilot", "status", "claimed_at")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
