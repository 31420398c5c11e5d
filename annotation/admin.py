"""Admin for the participant side: read-mostly views of participants and their progress."""

from django.contrib import admin

from annotation.models import Participant, Slot


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
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

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(study__owners=request.user)


@admin.register(Slot)
class SlotAdmin(admin.ModelAdmin):
    list_display = ("study", "index", "cell", "status", "claimed_at")
    list_filter = ("study", "status")

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(study__owners=request.user)
