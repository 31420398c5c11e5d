"""URLs of the REST API (included under /api/ by studies.urls; names live in "studies:")."""

from django.urls import path

from studies.api import exports as export_api
from studies.api import (
    generation,
    lifecycle,
    members,
    models,
    participants,
    results,
    review,
    studies,
    tokens,
)
from studies.api import power as power_api

S = "studies/<slug:slug>/"

urlpatterns = [
    path("token/", tokens.TokenView.as_view(), name="api-token"),
    # Studies and their design
    path("studies/", studies.StudyListView.as_view(), name="api-studies"),
    path(S, studies.StudyDetailView.as_view(), name="api-study"),
    path(S + "duplicate/", studies.StudyDuplicateView.as_view(), name="api-study-duplicate"),
    path(S + "stimuli/", studies.StimuliView.as_view(), name="api-study-stimuli"),
    path(S + "queries/", studies.QueryListView.as_view(), name="api-study-queries"),
    path(S + "audit/", studies.AuditListView.as_view(), name="api-study-audit"),
    # Review of response texts
    path(S + "variants/", review.VariantListView.as_view(), name="api-variants"),
    path(S + "variants/approve/", review.BulkApproveView.as_view(), name="api-variants-approve"),
    path(S + "variants/<int:pk>/", review.VariantDetailView.as_view(), name="api-variant"),
    path(
        S + "variants/<int:pk>/approve/", review.ApproveView.as_view(), name="api-variant-approve"
    ),
    path(S + "variants/<int:pk>/reject/", review.RejectView.as_view(), name="api-variant-reject"),
    # Lifecycle
    path(S + "launch/", lifecycle.LaunchView.as_view(), name="api-study-launch"),
    path(S + "launch-full/", lifecycle.LaunchFullView.as_view(), name="api-study-launch-full"),
    path(S + "pause/", lifecycle.PauseView.as_view(), name="api-study-pause"),
    path(S + "resume/", lifecycle.ResumeView.as_view(), name="api-study-resume"),
    path(S + "close/", lifecycle.CloseView.as_view(), name="api-study-close"),
    path(S + "add-slots/", lifecycle.AddSlotsView.as_view(), name="api-study-add-slots"),
    path(S + "archive/", lifecycle.ArchiveView.as_view(), name="api-study-archive"),
    path(S + "delete/", lifecycle.DeleteView.as_view(), name="api-study-delete"),
    # Members
    path(S + "members/", members.MemberListView.as_view(), name="api-members"),
    path(S + "members/<str:username>/", members.MemberDetailView.as_view(), name="api-member"),
    # What the study yields
    path(S + "dashboard/", results.DashboardView.as_view(), name="api-study-dashboard"),
    # Participants, quality flags and exclusion decisions
    path(
        S + "participants/",
        participants.ParticipantListView.as_view(),
        name="api-study-participants",
    ),
    path(
        S + "participants/<int:pk>/decision/",
        participants.DecisionView.as_view(),
        name="api-participant-decision",
    ),
    path(
        S + "quality-checks/",
        participants.QualityChecksView.as_view(),
        name="api-study-quality-checks",
    ),
    path(S + "analysis/", results.AnalysisView.as_view(), name="api-study-analysis"),
    path(
        S + "power-analyses/",
        power_api.PowerAnalysisListView.as_view(),
        name="api-study-power-analyses",
    ),
    path(
        S + "power-analyses/<int:pk>/",
        power_api.PowerAnalysisDetailView.as_view(),
        name="api-study-power-analysis",
    ),
    # Exports
    path(S + "exports/", export_api.ExportListView.as_view(), name="api-exports"),
    path(S + "exports/<int:pk>/", export_api.ExportDetailView.as_view(), name="api-export"),
    path(
        S + "exports/<int:pk>/download/",
        export_api.ExportDownloadView.as_view(),
        name="api-export-download",
    ),
    # Generation jobs and the model registry
    path(S + "generation-jobs/", generation.StudyJobsView.as_view(), name="api-study-jobs"),
    path("generation-jobs/<int:pk>/", generation.JobDetailView.as_view(), name="api-job"),
    path(
        "generation-jobs/<int:pk>/cancel/",
        generation.JobCancelView.as_view(),
        name="api-job-cancel",
    ),
    path("models/", models.ModelListView.as_view(), name="api-models"),
    path("models/<slug:name>/", models.ModelDetailView.as_view(), name="api-model"),
]
