"""Start a query–scenario generation job from the shell; --wait follows it to its verification."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from config.dispatch import QueueUnavailable
from modellab.management.commands._material import read_text
from modellab.query_scenarios import selectors, services
from modellab.query_scenarios.inputs import (
    InputFileError,
    categories_from_file,
    examples_from_upload,
)
from studies.access import Action
from studies.management.commands._as_user import (
    actor_from,
    add_as_argument,
    study_for,
    usable_model,
)
from studies.management.commands._wait import add_wait_arguments, wait_until_finished


class Command(BaseCommand):
    help = (
        "Have a generator model write ambiguous queries, each with a benign and a malicious "
        "second-person scenario, for your safety categories (--categories, seeded by "
        "--examples), or scenarios for the queries of a draft study that have none (--study). "
        "Each round's instances are deduplicated and read by an intent judge (--intent-judge); "
        "the accepted ones seed the next round. After --rounds rounds (or when --budget "
        "generator and judge calls are spent) the accepted ones go to coders in a verification "
        "task; finalise the job on its page or through the API. Acts as --as USER."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="the job's name (a slug)")
        parser.add_argument(
            "--categories",
            metavar="FILE",
            help="a .json array (or .jsonl lines) of {name, definition, topics: [...]}; "
            "required for new queries, optional context with --study",
        )
        parser.add_argument(
            "--examples",
            metavar="FILE",
            help="seed examples, a CSV or JSONL file with category, topic, query, "
            "benign_scenario, malicious_scenario",
        )
        parser.add_argument(
            "--study",
            metavar="SLUG",
            help="write scenarios for this draft study's queries that have none, instead of "
            "new queries",
        )
        parser.add_argument("--generator", required=True, metavar="MODEL")
        parser.add_argument("--intent-judge", required=True, metavar="MODEL")
        parser.add_argument(
            "--judge-prompt",
            metavar="FILE",
            help="the judging prompt ({scenario}, {query}); default: the project's",
        )
        parser.add_argument(
            "--instruction",
            metavar="FILE",
            help="the generator's instruction; default: the project's for the kind of job",
        )
        parser.add_argument(
            "--embedding-model", metavar="MODEL", help="also deduplicate by embedding similarity"
        )
        parser.add_argument("--rounds", type=int, default=3)
        parser.add_argument("--per-round", type=int, default=20, help="instances asked per round")
        parser.add_argument("--examples-per-round", type=int, default=5)
        parser.add_argument(
            "--budget", type=int, default=1000, help="generator and judge calls in all"
        )
        parser.add_argument("--overlap", type=int, default=2, help="coders per verification item")
        add_wait_arguments(parser, "job's rounds")
        add_as_argument(parser)

    def handle(self, *args, **options) -> None:
        actor = actor_from(options)
        generator = usable_model(actor, options["generator"])
        judge = usable_model(actor, options["intent_judge"])
        embedding = (
            usable_model(actor, options["embedding_model"]) if options["embedding_model"] else None
        )
        study = study_for(actor, options["study"], Action.EDIT) if options["study"] else None
        if study is None and not options["categories"]:
            raise CommandError("give --categories FILE for new queries (or --study SLUG)")
        try:
            categories = (
                categories_from_file(options["categories"]) if options["categories"] else None
            )
            examples = []
            if options["examples"]:
                path = Path(options["examples"])
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
                examples = examples_from_upload(data, path.name)
        except InputFileError as exc:
            raise CommandError(str(exc)) from None
        try:
            job = services.start_query_scenario_job(
                owner=actor,
                name=options["name"],
                generator=generator,
                intent_judge=judge,
                intent_judge_prompt=read_text(options["judge_prompt"]),
                instruction=read_text(options["instruction"]),
                embedding_model=embedding,
                categories=categories,
                examples=examples,
                study=study,
                rounds=options["rounds"],
                per_round=options["per_round"],
                examples_per_round=options["examples_per_round"],
                budget=options["budget"],
                verification_overlap=options["overlap"],
            )
        except services.QueryScenarioInputError as exc:
            lines = "\n".join(f"  {field}: {message}" for field, message in exc.problems.items())
            raise CommandError(f"the job was not started:\n{lines}") from None
        except QueueUnavailable as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"job {job.pk} '{job.name}': {job.rounds} round(s) of {job.per_round}, "
            f"budget {job.budget} calls ({services.job_kind(job)}; {job.status})"
        )
        if not options["wait"]:
            return
        progress = wait_until_finished(
            lambda: selectors.job_progress(job),
            lambda p: (
                f"  round {p['current_round']}/{p['rounds']}: {p['candidates']} candidates, "
                f"{p['duplicates']} repeated, {p['accepted']} accepted by the judge, "
                f"{p['calls_used']}/{p['budget']} calls"
            ),
            name=f"job {job.pk}",
            timeout=options["timeout"],
            write=self.stdout.write,
        )
        for note in progress["notes"]:
            self.stdout.write(f"note: {note}")
        job.refresh_from_db()
        if job.status == job.Status.VERIFYING:
            page = reverse("modellab:query-scenarios-job", args=[job.pk])
            self.stdout.write(
                f"job {job.pk} verifying: coders label the {progress['accepted']} accepted "
                f"instance(s) in coding task {job.verification_task_id}; then finalise at {page}"
            )
        elif job.status == job.Status.DONE:
            self.stdout.write(f"job {job.pk} done: {progress['kept']} kept")
        else:
            raise CommandError(f"job {job.pk} ended {job.get_status_display()}: {job.error}")
