"""Model lab URLs: researcher pages and the REST API (names live in "modellab:")."""

from django.urls import path

from modellab import views

app_name = "modellab"

urlpatterns: list = [
    path("lab/", views.index, name="index"),
    # model behaviour
    # end model behaviour
    # reward scoring
    # end reward scoring
    # false refusal
    # end false refusal
]
