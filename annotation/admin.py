"""Admin for the participant side: read-mostly views of participants and their progress."""

from django.contrib import admin

from annotation.models import Participant, Slot
from studies.admin import OwnedStudyAdmin


@admin.register(Participant)
class ParticipantAdmin(OwnedStudyAdmin):
    list_display = ("pseudonym", "study", "status", "position", "consented_at", "completed_at")
    list_filter = ("study", "status")
    readonly_fields = (
        "pseudonym",
        "study",
        "slot",
        "position",
        "recruitment",
        "created_at",
        "consented_at",
        "instructions_read_at",
        "completed_at",
        "last_seen_at",
    )


@admin.register(Slot)
class SlotAdmin(OwnedStudyAdmin):
    list_display = ("study", "index", "cell", "status", "claimed_at")
    list_filter = ("study", "status")
