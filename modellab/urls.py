"""Model lab URLs: researcher pages and the REST API (names live in "modellab:")."""

from django.urls import path

from modellab import views
from modellab.behaviour import api as behaviour_api
from modellab.behaviour import views as behaviour_views
from modellab.false_refusal import api as frr_api
from modellab.false_refusal import views as frr_views
from modellab.pseudo_harmful import outcome_api as ph_outcome_api
from modellab.pseudo_harmful import outcome_views as ph_outcome_views
from modellab.rewards import api as rewards_api
from modellab.rewards import views as rewards_views

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
        behaviour_api.BehaviourRunListView.as_view(),
        name="api-behaviour-runs",
    ),
    path(
        "api/studies/<slug:slug>/lab/behaviour/runs/<int:pk>/",
        behaviour_api.BehaviourRunDetailView.as_view(),
        name="api-behaviour-run",
    ),
    # end model behaviour
    # reward scoring
    path("studies/<slug:slug>/lab/rewards/", rewards_views.rewards_page, name="rewards"),
    path(
        "studies/<slug:slug>/lab/rewards/<int:pk>/cancel/",
        rewards_views.rewards_cancel,
        name="rewards-cancel",
    ),
    path(
        "studies/<slug:slug>/lab/rewards/<int:pk>/scores.csv",
        rewards_views.rewards_csv,
        name="rewards-csv",
    ),
    path(
        "studies/<slug:slug>/lab/rewards/<int:pk>/agreement.csv",
        rewards_views.agreement_csv,
        name="rewards-agreement-csv",
    ),
    path(
        "api/studies/<slug:slug>/lab/rewards/runs/",
        rewards_api.RewardRunListView.as_view(),
        name="api-reward-runs",
    ),
    path(
        "api/studies/<slug:slug>/lab/rewards/runs/<int:pk>/",
        rewards_api.RewardRunDetailView.as_view(),
        name="api-reward-run",
    ),
    path(
        "api/studies/<slug:slug>/lab/rewards/runs/<int:pk>/cancel/",
        rewards_api.RewardRunCancelView.as_view(),
        name="api-reward-run-cancel",
    ),
    path(
        "api/studies/<slug:slug>/lab/rewards/runs/<int:pk>/scores/",
        rewards_api.RewardScoresView.as_view(),
        name="api-reward-run-scores",
    ),
    path(
        "api/studies/<slug:slug>/lab/rewards/runs/<int:pk>/agreement/",
        rewards_api.RewardAgreementView.as_view(),
        name="api-reward-run-agreement",
    ),
    # end reward scoring
    # false refusal
    path("lab/false-refusal/", frr_views.false_refusal_page, name="false-refusal"),
    path("lab/false-refusal/sets/<int:pk>/", frr_views.prompt_set_page, name="false-refusal-set"),
    path("lab/false-refusal/runs/<int:pk>/", frr_views.run_page, name="false-refusal-run"),
    path("lab/false-refusal/runs/<int:pk>/retry/", frr_views.retry_run, name="false-refusal-retry"),
    path(
        "lab/false-refusal/runs/<int:pk>/cancel/",
        frr_views.cancel_run,
        name="false-refusal-cancel",
    ),
    path(
        "lab/false-refusal/runs/<int:pk>/responses.csv",
        frr_views.responses_csv,
        name="false-refusal-responses-csv",
    ),
    path(
        "api/lab/false-refusal/prompt-sets/",
        frr_api.PromptSetListView.as_view(),
        name="api-false-refusal-prompt-sets",
    ),
    path(
        "api/lab/false-refusal/prompt-sets/<int:pk>/",
        frr_api.PromptSetDetailView.as_view(),
        name="api-false-refusal-prompt-set",
    ),
    path(
        "api/lab/false-refusal/runs/",
        frr_api.FalseRefusalRunListView.as_view(),
        name="api-false-refusal-runs",
    ),
    path(
        "api/lab/false-refusal/runs/<int:pk>/",
        frr_api.FalseRefusalRunDetailView.as_view(),
        name="api-false-refusal-run",
    ),
    path(
        "api/lab/false-refusal/runs/<int:pk>/cancel/",
        frr_api.FalseRefusalRunCancelView.as_view(),
        name="api-false-refusal-run-cancel",
    ),
    path(
        "api/lab/false-refusal/runs/<int:pk>/resume/",
        frr_api.FalseRefusalRunResumeView.as_view(),
        name="api-false-refusal-run-resume",
    ),
    # end false refusal
    path(
        "lab/pseudo-harmful/<int:pk>/finalise/",
        ph_outcome_views.finalise_page,
        name="pseudo-harmful-finalise",
    ),
    path(
        "lab/pseudo-harmful/<int:pk>/report/",
        ph_outcome_views.report_page,
        name="pseudo-harmful-report",
    ),
    path(
        "lab/pseudo-harmful/<int:pk>/report.json",
        ph_outcome_views.report_json,
        name="pseudo-harmful-report-json",
    ),
    path(
        "lab/pseudo-harmful/<int:pk>/export.csv",
        ph_outcome_views.export_csv,
        name="pseudo-harmful-export-csv",
    ),
    path(
        "lab/pseudo-harmful/<int:pk>/export.jsonl",
        ph_outcome_views.export_jsonl,
        name="pseudo-harmful-export-jsonl",
    ),
    path(
        "lab/pseudo-harmful/<int:pk>/measure/",
        ph_outcome_views.measure,
        name="pseudo-harmful-measure",
    ),
    path(
        "lab/pseudo-harmful/<int:pk>/queries/",
        ph_outcome_views.use_as_queries,
        name="pseudo-harmful-queries",
    ),
    path(
        "api/lab/pseudo-harmful/<int:pk>/finalise/",
        ph_outcome_api.FinaliseView.as_view(),
        name="api-pseudo-harmful-finalise",
    ),
    path(
        "api/lab/pseudo-harmful/<int:pk>/report/",
        ph_outcome_api.ReportView.as_view(),
        name="api-pseudo-harmful-report",
    ),
    path(
        "api/lab/pseudo-harmful/<int:pk>/export/",
        ph_outcome_api.ExportView.as_view(),
        name="api-pseudo-harmful-export",
    ),
    path(
        "api/lab/pseudo-harmful/<int:pk>/measure/",
        ph_outcome_api.MeasureView.as_view(),
        name="api-pseudo-harmful-measure",
    ),
    path(
        "api/lab/pseudo-harmful/<int:pk>/queries/",
        ph_outcome_api.QueriesView.as_view(),
        name="api-pseudo-harmful-queries",
    ),
]

# A block of its own at the end, so parallel sections of this file do not touch each other.
from modellab.query_scenarios import api as qs_api  # noqa: E402
from modellab.query_scenarios import views as qs_views  # noqa: E402

urlpatterns += [
    path("lab/query-scenarios/", qs_views.query_scenarios_page, name="query-scenarios"),
    path("lab/query-scenarios/<int:pk>/", qs_views.job_page, name="query-scenarios-job"),
    path(
        "lab/query-scenarios/<int:pk>/cancel/",
        qs_views.cancel_job,
        name="query-scenarios-cancel",
    ),
    path(
        "lab/query-scenarios/<int:pk>/resume/",
        qs_views.resume_job,
        name="query-scenarios-resume",
    ),
    path(
        "lab/query-scenarios/<int:pk>/finalise/",
        qs_views.finalise_job,
        name="query-scenarios-finalise",
    ),
    path(
        "lab/query-scenarios/<int:pk>/add-to-study/",
        qs_views.add_to_study,
        name="query-scenarios-add",
    ),
    path(
        "lab/query-scenarios/<int:pk>/stimuli.csv",
        qs_views.stimuli_csv,
        name="query-scenarios-csv",
    ),
    path(
        "lab/query-scenarios/<int:pk>/stimuli.jsonl",
        qs_views.stimuli_jsonl,
        name="query-scenarios-jsonl",
    ),
    path(
        "api/lab/query-scenarios/jobs/",
        qs_api.JobListView.as_view(),
        name="api-query-scenario-jobs",
    ),
    path(
        "api/lab/query-scenarios/jobs/<int:pk>/",
        qs_api.JobDetailView.as_view(),
        name="api-query-scenario-job",
    ),
    path(
        "api/lab/query-scenarios/jobs/<int:pk>/cancel/",
        qs_api.JobCancelView.as_view(),
        name="api-query-scenario-job-cancel",
    ),
    path(
        "api/lab/query-scenarios/jobs/<int:pk>/resume/",
        qs_api.JobResumeView.as_view(),
        name="api-query-scenario-job-resume",
    ),
    path(
        "api/lab/query-scenarios/jobs/<int:pk>/finalise/",
        qs_api.JobFinaliseView.as_view(),
        name="api-query-scenario-job-finalise",
    ),
    path(
        "api/lab/query-scenarios/jobs/<int:pk>/add-to-study/",
        qs_api.JobAddToStudyView.as_view(),
        name="api-query-scenario-job-add",
    ),
    path(
        "api/lab/query-scenarios/jobs/<int:pk>/candidates/",
        qs_api.JobCandidatesView.as_view(),
        name="api-query-scenario-candidates",
    ),
]

# A block of its own at the end, so parallel sections of this file do not touch each other.
from modellab.pseudo_harmful import api as ph_api  # noqa: E402
from modellab.pseudo_harmful import views as ph_views  # noqa: E402

urlpatterns += [
    path("lab/pseudo-harmful/", ph_views.job_list, name="pseudo-harmful"),
    path("lab/pseudo-harmful/<int:pk>/", ph_views.job_page, name="pseudo-harmful-job"),
    path("lab/pseudo-harmful/<int:pk>/cancel/", ph_views.cancel, name="pseudo-harmful-cancel"),
    path("lab/pseudo-harmful/<int:pk>/resume/", ph_views.resume, name="pseudo-harmful-resume"),
    path("api/lab/pseudo-harmful/", ph_api.JobListView.as_view(), name="api-pseudo-harmful-jobs"),
    path(
        "api/lab/pseudo-harmful/<int:pk>/",
        ph_api.JobDetailView.as_view(),
        name="api-pseudo-harmful-job",
    ),
    path(
        "api/lab/pseudo-harmful/<int:pk>/cancel/",
        ph_api.JobCancelView.as_view(),
        name="api-pseudo-harmful-cancel",
    ),
    path(
        "api/lab/pseudo-harmful/<int:pk>/resume/",
        ph_api.JobResumeView.as_view(),
        name="api-pseudo-harmful-resume",
    ),
    path(
        "api/lab/pseudo-harmful/<int:pk>/candidates/",
        ph_api.CandidateListView.as_view(),
        name="api-pseudo-harmful-candidates",
    ),
]
