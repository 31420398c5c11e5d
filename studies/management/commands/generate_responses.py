"""Start a generation job for a study from the shell, optionally waiting for it to finish."""

import yaml
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.dispatch import QueueUnavailable
from studies.access import Action
from studies.errors import StudyStateError
from studies.generation import selectors, services
from studies.management.commands._as_user import (
    actor_from,
    add_as_argument,
    study_for,
    usable_model,
)
from studies.management.commands._wait import add_wait_arguments, wait_until_finished
from studies.models import GenerationJob


def read_instructions(path: str | None) -> dict[str, str] | None:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise CommandError(f"{path} is not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise CommandError(f"{path} must map response types to instruction texts")
    return data


class Command(BaseCommand):
    help = "Have a registered model write a study's responses, as USER (the job the UI starts)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--model", required=True, help="a registered model's name")
        parser.add_argument("--kind", default="strategy", choices=GenerationJob.Kind.values)
        parser.add_argument("--mode", default="per_type", choices=GenerationJob.Mode.values)
        parser.add_argument("--samples", type=int, default=1)
        parser.add_argument(
            "--instructions",
            help="YAML/JSON file mapping response types to instructions (others keep defaults)",
        )
        add_wait_arguments(parser, "job")
        add_as_argument(parser)

    def handle(self, *args, slug: str, model: str, **options) -> None:
        actor = actor_from(options)
        study = study_for(actor, slug, Action.EDIT)
        registered = usable_model(actor, model)
        instructions = read_instructions(options["instructions"])
        try:
            job = services.start_generation_job(
                study=study,
                model=registered,
                kind=options["kind"],
                mode=options["mode"],
                samples=options["samples"],
                instructions=instructions,
                actor=actor,
            )
        except (StudyStateError, ValueError, PermissionDenied, QueueUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"job {job.pk}: {job.items.count()} texts to write ({job.status})")
        if not options["wait"]:
            return
        wait_until_finished(
            lambda: selectors.job_progress(job),
            lambda p: f"  {p['done']}/{p['total']} done, {p['failed']} failed",
            name=f"job {job.pk}",
            timeout=options["timeout"],
            write=self.stdout.write,
        )
        job.refresh_from_db()
        if job.status != GenerationJob.Status.DONE:
            raise CommandError(f"job {job.pk} ended {job.status}: {job.error}")
        self.stdout.write(f"job {job.pk} done")
