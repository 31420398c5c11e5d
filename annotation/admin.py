"""Admin for the participant side: read-mostly views of participants and their progress."""

from django.contrib import admin

from annotation.models import BlockAnswer, Participant, Slot
from studies.admin import OwnedStudyAdmin


class BlockAnswerInline(admin.TabularInline):
    """A participant's questionnaire answers, as stored: never edited by hand."""

    model = BlockAnswer
    extra = 0
    can_delete = False
    fields = ("question", "value_number", "value_text", "value_choices", "answered_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Participant)
class ParticipantAdmin(OwnedStudyAdmin):
    list_display = ("pseudonym", "study", "status", "position", "consented_at", "completed_at")
    list_filter = ("study", "status")
    inlines = [BlockAnswerInline]
    # A participant's status and progress change only through the participant services
    # (slots must be freed, answers kept consistent), so none of it is editable here.
    readonly_fields = (
        "pseudonym",
        "study",
        "status",
        "slot",
        "position",
        "is_pilot",
        "completed_blocks",
        "recruitment",
        "created_at",
        "consented_at",
        "instructions_read_at",
        "completed_at",
        "last_seen_at",
    )

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Slot)
class SlotAdmin(OwnedStudyAdmin):
    list_display = ("study", "index", "cell", "status", "claimed_at")
    list_filter = ("study", "status")
