"""Model lab URLs: researcher pages and the REST API (names live in "modellab:")."""

from django.urls import path

from modellab import views
from modellab.behaviour import api as behaviour_api
from modellab.behaviour import views as behaviour_views

app_name = "modellab"

urlpatterns: list = [
    path("lab/", views.index, name="index"),
    # model behaviour
    path("studies/<slug:slug>/lab/behaviour/", behaviour_views.behaviour_page, name="behaviour"),
    path(
        "studies/<slug:slug>/lab/behaviour/<int:pk>/",
        behaviour_views.behaviour_run,
        name="behaviour-run",
    ),
    path(
        "studies/<slug:slug>/lab/behaviour/<int:pk>/cancel/",
        behaviour_views.behaviour_cancel,
        name="behaviour-cancel",
    ),
    path(
        "studies/<slug:slug>/lab/behaviour/<int:pk>/labels.csv",
        behaviour_views.labels_csv,
        name="behaviour-labels-csv",
    ),
    path(
        "studies/<slug:slug>/lab/behaviour/<int:pk>/distribution.csv",
        behaviour_views.distribution_csv,
        name="behaviour-distribution-csv",
    ),
    path(
        "api/studies/<slug:slug>/lab/behaviour/runs/",
        behaviour_api.RunListView.as_view(),
        name="api-behaviour-runs",
    ),
    path(
        "api/studies/<slug:slug>/lab/behaviour/runs/<int:pk>/",
        behaviour_api.RunDetailView.as_view(),
        name="api-behaviour-run",
    ),
    # end model behaviour
    # reward scoring
    # end reward scoring
    # false refusal
    # end false refusal
]
