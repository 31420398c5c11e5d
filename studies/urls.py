"""Researcher URLs: pages and the REST API."""

from django.urls import include, path

from studies.views import builder as builder_views
from studies.views import dashboard as dashboard_views
from studies.views import exports as export_views
from studies.views import generation as views
from studies.views import lifecycle as lifecycle_views
from studies.views import members as member_views
from studies.views import models as model_views
from studies.views import participants as participant_views
from studies.views import payments as payment_views
from studies.views import power as power_views
from studies.views import preview as preview_views
from studies.views import results as results_views
from studies.views import review as review_views
from studies.views import stimuli as stimuli_views
from studies.views import study as study_views

app_name = "studies"

urlpatterns = [
    path("studies/", study_views.study_list, name="list"),
    # builder (studies/new/ must come before studies/<slug>/)
    path("studies/new/", builder_views.new_study, name="new"),
    path("studies/<slug:slug>/design/", builder_views.design, name="design"),
    path("studies/<slug:slug>/design/blocks/", builder_views.blocks, name="design-blocks"),
    path(
        "studies/<slug:slug>/design/blocks/new-block/",
        builder_views.edit_block,
        name="design-block-new",
    ),
    path(
        "studies/<slug:slug>/design/blocks/<slug:key>/",
        builder_views.edit_block,
        name="design-block",
    ),
    path(
        "studies/<slug:slug>/design/blocks/<slug:key>/action/",
        builder_views.block_action,
        name="design-block-action",
    ),
    path(
        "studies/<slug:slug>/design/<slug:section>/",
        builder_views.edit_section,
        name="design-section",
    ),
    path("studies/<slug:slug>/spec.yaml", builder_views.download_spec, name="spec-download"),
    path("studies/<slug:slug>/duplicate/", builder_views.duplicate, name="duplicate"),
    path("studies/<slug:slug>/plan/", builder_views.plan, name="plan"),
    # end builder
    path("studies/<slug:slug>/", study_views.study_detail, name="detail"),
    # lifecycle, dashboard, preview
    *(
        path(
            f"studies/<slug:slug>/{key}/",
            lifecycle_views.lifecycle_action,
            {"action": key},
            name=key,
        )
        for key in lifecycle_views.ACTIONS
    ),
    path("studies/<slug:slug>/audit/", study_views.audit_log, name="audit"),
    # participants and quality screening
    path(
        "studies/<slug:slug>/participants/",
        participant_views.participant_list,
        name="participants",
    ),
    path(
        "studies/<slug:slug>/participants/quality-checks/",
        participant_views.run_quality_checks,
        name="participants-screen",
    ),
    path(
        "studies/<slug:slug>/participants/confirm-flagged/",
        participant_views.confirm_flagged,
        name="participants-confirm-flagged",
    ),
    path(
        "studies/<slug:slug>/participants/<int:pk>/decide/",
        participant_views.decide,
        name="participant-decide",
    ),
    # end participants and quality screening
    path(
        "studies/<slug:slug>/dashboard.json", dashboard_views.dashboard_json, name="dashboard-json"
    ),
    path("studies/<slug:slug>/preview/", preview_views.preview_start, name="preview"),
    path("studies/<slug:slug>/preview/page/", preview_views.preview_page, name="preview-page"),
    # end lifecycle, dashboard, preview
    path("studies/<slug:slug>/generate/", views.start_generation, name="generate"),
    path("studies/<slug:slug>/jobs/<int:pk>/cancel/", views.cancel_generation, name="cancel-job"),
    # stimuli and review
    path("studies/<slug:slug>/stimuli/upload/", stimuli_views.upload, name="stimuli-upload"),
    path("studies/<slug:slug>/stimuli/confirm/", stimuli_views.confirm, name="stimuli-confirm"),
    path("studies/<slug:slug>/stimuli.csv", stimuli_views.download, name="stimuli-download"),
    path("studies/<slug:slug>/queries/", stimuli_views.query_list, name="queries"),
    path("studies/<slug:slug>/queries/<path:query_id>/", stimuli_views.query_detail, name="query"),
    path("studies/<slug:slug>/review/", review_views.review_table, name="review"),
    path(
        "studies/<slug:slug>/review/approve/",
        review_views.approve_selected,
        name="review-approve-selected",
    ),
    path(
        "studies/<slug:slug>/review/<int:pk>/approve/",
        review_views.approve,
        name="review-approve",
    ),
    path("studies/<slug:slug>/review/<int:pk>/reject/", review_views.reject, name="review-reject"),
    path("studies/<slug:slug>/review/<int:pk>/edit/", review_views.edit, name="review-edit"),
    # end stimuli and review
    path("studies/<slug:slug>/results/", results_views.results, name="results"),
    path("studies/<slug:slug>/results/recompute/", results_views.recompute, name="recompute"),
    path(
        "studies/<slug:slug>/results/<str:include>/table/<slug:name>.csv",
        results_views.download_table,
        name="results-table",
    ),
    path(
        "studies/<slug:slug>/results/<str:include>/figure/<slug:name>.html",
        results_views.download_figure,
        name="results-figure",
    ),
    path(
        "studies/<slug:slug>/results/<str:include>/report.html",
        results_views.download_report,
        name="results-report",
    ),
    path(
        "studies/<slug:slug>/results/<str:include>/ratings.csv",
        results_views.download_ratings,
        name="results-ratings",
    ),
    path(
        "studies/<slug:slug>/results/<str:include>/block-answers.csv",
        results_views.download_block_answers,
        name="results-block-answers",
    ),
    path(
        "studies/<slug:slug>/results/codebook.md",
        results_views.download_codebook_md,
        name="results-codebook-md",
    ),
    path(
        "studies/<slug:slug>/results/codebook.json",
        results_views.download_codebook_json,
        name="results-codebook-json",
    ),
    # power planning
    path("studies/<slug:slug>/power/", power_views.power_page, name="power"),
    path("studies/<slug:slug>/power/<int:pk>/", power_views.power_run, name="power-run"),
    path(
        "studies/<slug:slug>/power/<int:pk>/power.csv",
        power_views.power_csv_download,
        name="power-csv",
    ),
    # end power planning
    # exports
    path("studies/<slug:slug>/exports/", export_views.export_list, name="exports"),
    path(
        "studies/<slug:slug>/exports/<int:pk>/download/",
        export_views.export_download,
        name="export-download",
    ),
    # end exports
    # members and models
    path("studies/<slug:slug>/members/", member_views.member_list, name="members"),
    path("studies/<slug:slug>/members/add/", member_views.member_add, name="member-add"),
    path(
        "studies/<slug:slug>/members/<str:username>/role/",
        member_views.member_change,
        name="member-change",
    ),
    path(
        "studies/<slug:slug>/members/<str:username>/remove/",
        member_views.member_remove,
        name="member-remove",
    ),
    # recruitment ids (owners and superusers)
    path("studies/<slug:slug>/payments/", payment_views.payments, name="payments"),
    path(
        "studies/<slug:slug>/payments/bonus.csv",
        payment_views.download_bonus,
        name="payments-bonus",
    ),
    path(
        "studies/<slug:slug>/payments/<slug:name>.txt",
        payment_views.download_list,
        name="payments-list",
    ),
    path(
        "studies/<slug:slug>/payments/delete/",
        payment_views.delete_data,
        name="payments-delete",
    ),
    # end recruitment ids
    path("models/", model_views.model_list, name="models"),
    path("models/<slug:name>/edit/", model_views.model_edit, name="model-edit"),
    # end members and models
    # api
    path("api/", include("studies.api.urls")),
    # end api
]
