"""Score a study's responses with a reward model or an LLM judge from the shell, as USER."""

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.dispatch import QueueUnavailable
from modellab.models import RewardRun
from modellab.rewards import selectors, services
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
        "Score every (query[, scenario], response) of a study with a registered model, as USER "
        "(the run the rewards page starts); the same model, scorer and prompt resume their run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--model", required=True, help="a registered model's name")
        parser.add_argument(
            "--scorer", default=RewardRun.Scorer.REWARD_MODEL, choices=RewardRun.Scorer.values
        )
        parser.add_argument(
            "--judge-prompt-file", help="llm_judge: a text file with the judge's instructions"
        )
        add_wait_arguments(parser)
        add_as_argument(parser)

    def handle(self, *args, slug: str, model: str, **options) -> None:
        actor = actor_from(options)
        study = study_for(actor, slug, Action.EDIT)
        registered = usable_model(actor, model)
        judge_prompt = None
        if options["judge_prompt_file"]:
            if options["scorer"] != RewardRun.Scorer.LLM_JUDGE:
                raise CommandError("--judge-prompt-file is for --scorer llm_judge only")
            try:
                with open(options["judge_prompt_file"], encoding="utf-8") as handle:
                    judge_prompt = handle.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"cannot read {options['judge_prompt_file']}: {exc}") from exc
            if not judge_prompt.strip():
                raise CommandError(f"{options['judge_prompt_file']} is empty")
        try:
            run = services.start_reward_run(
                study=study,
                model=registered,
                scorer=options["scorer"],
                judge_prompt=judge_prompt,
                actor=actor,
            )
        except (ValueError, PermissionDenied, QueueUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        progress = selectors.run_progress(run)
        self.stdout.write(
            f"reward run {run.pk}: {progress['total']} stimuli, "
            f"{progress['pending']} to score ({run.status})"
        )
        if not options["wait"]:
            return
        wait_until_finished(
            lambda: selectors.run_progress(run),
            lambda p: (
                f"  {p['done']}/{p['total']} scored, {p['failed']} failed, {p['unparsed']} unparsed"
            ),
            name=f"run {run.pk}",
            timeout=options["timeout"],
            write=self.stdout.write,
        )
        run.refresh_from_db()
        if run.status != RewardRun.Status.DONE:
            raise CommandError(f"run {run.pk} ended {run.status}: {run.error}")
        for row in selectors.results_by_type(run):
            self.stdout.write(
                f"  {row['response_type']}: n={row['n']} mean={row['mean']:.4f} "
                f"z={row['z_mean'] if row['z_mean'] is None else round(row['z_mean'], 4)}"
            )
        self.stdout.write(f"run {run.pk} done" + (f" ({run.error})" if run.error else ""))
