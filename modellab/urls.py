"""Model lab URLs: researcher pages and the REST API (names live in "modellab:")."""

from django.urls import path

app_name = "modellab"

urlpatterns: list = [
    # model behaviour
    # end model behaviour
    # reward scoring
    # end reward scoring
    # false refusal
    # end false refusal
]
