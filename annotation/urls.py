"""Participant URLs, all under /s/<slug>/."""

from django.urls import path

from annotation import views

app_name = "annotation"

urlpatterns = [
    path("s/<slug:slug>/", views.entry, name="entry"),
    path("s/<slug:slug>/resume/", views.resume, name="resume"),
    path("s/<slug:slug>/consent/", views.consent, name="consent"),
    path("s/<slug:slug>/declined/", views.declined, name="declined"),
    path("s/<slug:slug>/instructions/", views.instructions, name="instructions"),
    path("s/<slug:slug>/block/<slug:key>/", views.block, name="block"),
    path("s/<slug:slug>/item/<int:position>/", views.item, name="item"),
    path("s/<slug:slug>/done/", views.done, name="done"),
    path("s/<slug:slug>/ended/", views.ended, name="ended"),
    path("s/<slug:slug>/withdraw/", views.withdraw, name="withdraw"),
    path("s/<slug:slug>/withdrawn/", views.withdrawn, name="withdrawn"),
]
