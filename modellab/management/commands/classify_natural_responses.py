"""Classify a study's natural responses from the shell (the model-behaviour page's run)."""

from __future__ import annotations

import json

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.dispatch import QueueUnavailable
from modellab.behaviour import selectors, services
from modellab.classifiers import CLASSIFIERS
from modellab.classifiers.labels import SCHEMES, THREE_WAY
from modellab.models import ClassificationRun
from studies.access import Action
from studies.management.commands._as_user import (
    actor_from,
    add_as_argument,
    study_for,
    usable_model,
)
from studies.management.commands._wait import add_wait_arguments, wait_until_finished


def _read(path: str | None, what: str) -> str | None:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise CommandError(f"cannot read the {what} {path}: {exc.strerror}") from exc


class Command(BaseCommand):
    help = (
        "Label a study's natural responses with a classifier, as USER; the same settings again "
        "label only what the earlier run did not."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--classifier", required=True, choices=CLASSIFIERS)
        parser.add_argument("--scheme", default=THREE_WAY, choices=SCHEMES)
        parser.add_argument(
            "--model",
            action="append",
            dest="models",
            metavar="NAME",
            help="a model whose natural responses to classify (repeat it; default: every "
            "model with natural responses in the study)",
        )
        parser.add_argument("--judge-model", help="llm_judge: the registry model that judges")
        parser.add_argument("--judge-prompt", help="llm_judge: a file with the judging prompt")
        parser.add_argument(
            "--phrases",
            help='string_match: a JSON file {"refusal": [...], "partial": [...], "window": N}',
        )
        add_wait_arguments(parser)
        add_as_argument(parser)

    def handle(self, *args, slug: str, **options) -> None:
        actor = actor_from(options)
        study = study_for(actor, slug, Action.EDIT)
        available = services.models_with_natural_responses(study)
        names = options["models"] or list(available.values_list("name", flat=True))
        if not names:
            raise CommandError(f"study '{slug}' has no natural responses yet; generate them first")
        models = {m.name: m for m in available.filter(name__in=names)}
        missing = [n for n in names if n not in models]
        if missing:
            raise CommandError(f"no natural responses of {', '.join(missing)} in study '{slug}'")
        judge = None
        if options["judge_model"]:
            judge = usable_model(actor, options["judge_model"])
        phrases = _read(options["phrases"], "phrase file")
        if phrases is not None:
            try:
                phrases = json.loads(phrases)
            except json.JSONDecodeError as exc:
                raise CommandError(f"{options['phrases']} is not valid JSON: {exc}") from exc
        try:
            run = services.start_classification_run(
                study=study,
                classifier=options["classifier"],
                scheme=options["scheme"],
                models=[models[n] for n in dict.fromkeys(names)],
                judge_model=judge,
                judge_prompt=_read(options["judge_prompt"], "judging prompt"),
                phrases=phrases,
                actor=actor,
            )
        except (ValueError, PermissionDenied, QueueUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        progress = selectors.run_progress(run)
        self.stdout.write(
            f"run {run.pk} ({run.display_name}): {run.queued} of {progress['total']} "
            "responses queued"
        )
        if not options["wait"]:
            return
        progress = wait_until_finished(
            lambda: selectors.run_progress(run),
            lambda p: f"  {p['done']}/{p['total']} classified",
            name=f"run {run.pk}",
            timeout=options["timeout"],
            write=self.stdout.write,
        )
        run.refresh_from_db()
        self.stdout.write(
            f"run {run.pk} {run.status}: {progress['done']} classified, "
            f"{progress['unparsed']} unparsed, {progress['failed']} failed"
        )
        if run.status != ClassificationRun.Status.DONE:
            raise CommandError(f"run {run.pk} ended {run.status}: {run.error}")
