"""Researcher URLs."""

from django.urls import path

from studies import views

app_name = "studies"

urlpatterns = [
    path("studies/", views.study_list, name="list"),
    path("studies/<slug:slug>/", views.study_detail, name="detail"),
]
