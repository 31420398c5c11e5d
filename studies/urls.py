"""Researcher URLs: pages and the REST API."""

from django.urls import path

from studies.api import generation as api
from studies.views import generation as views
from studies.views import results as results_views

app_name = "studies"

urlpatterns = [
    path("studies/", views.study_list, name="list"),
    path("studies/<slug:slug>/", views.study_detail, name="detail"),
    path("studies/<slug:slug>/generate/", views.start_generation, name="generate"),
    path("studies/<slug:slug>/jobs/<int:pk>/cancel/", views.cancel_generation, name="cancel-job"),
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
    path("models/", views.model_list, name="models"),
    path("api/models/", api.ModelListView.as_view(), name="api-models"),
    path("api/models/<slug:name>/", api.ModelDetailView.as_view(), name="api-model"),
    path(
        "api/studies/<slug:slug>/generation-jobs/",
        api.StudyJobsView.as_view(),
        name="api-study-jobs",
    ),
    path("api/generation-jobs/<int:pk>/", api.JobDetailView.as_view(), name="api-job"),
    path(
        "api/generation-jobs/<int:pk>/cancel/", api.JobCancelView.as_view(), name="api-job-cancel"
    ),
]
