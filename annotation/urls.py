"""Participant URLs, all under /s/<slug>/; human coding under /coding/ and /code/."""

from django.urls import path

from annotation import views
from annotation.coding import api as coding_api
from annotation.coding import views as coding

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
    # human coding: the researcher's tasks and results
    path("coding/", coding.task_list, name="coding-tasks"),
    path("coding/new/", coding.task_new, name="coding-new"),
    path("coding/<int:pk>/", coding.task_detail, name="coding-task"),
    path("coding/<int:pk>/coders/", coding.task_invite, name="coding-invite"),
    path("coding/<int:pk>/status/", coding.task_status, name="coding-status"),
    path("coding/<int:pk>/codes.csv", coding.task_csv, name="coding-csv"),
    # human coding: the coder's side
    path("code/", coding.my_tasks, name="coding-mine"),
    path("code/<int:pk>/", coding.code_item, name="coding-item"),
    path("code/<int:pk>/done/", coding.done, name="coding-done"),
    path("api/coding/", coding_api.CodingTaskListView.as_view(), name="api-coding-tasks"),
    path("api/coding/<int:pk>/", coding_api.CodingTaskDetailView.as_view(), name="api-coding-task"),
]
