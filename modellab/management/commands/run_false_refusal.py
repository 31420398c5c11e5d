"""Run the false-refusal benchmark from the shell: models answer a prompt set, then a classifier
labels every answer; --wait prints each model's rates when it is done."""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.text import slugify

from config.dispatch import QueueUnavailable
from modellab.classifiers import CLASSIFIERS
from modellab.false_refusal import selectors, services
from modellab.false_refusal.prompt_file import PHTEST_MAPPING, PromptSetError, clean_mapping
from modellab.false_refusal.rates import GroupRates, Proportion
from modellab.management.commands.false_refusal_rate import render_table
from modellab.models import FalseRefusalRun, PromptSet
from studies.management.commands._as_user import actor_from, add_as_argument, usable_model
from studies.management.commands._wait import add_wait_arguments, wait_until_finished


def rates_from_dict(data: dict) -> GroupRates:
    return GroupRates(
        **{
            **data,
            "full": Proportion(**data["full"]),
            "full_or_partial": Proportion(**data["full_or_partial"]),
        }
    )


class Command(BaseCommand):
    help = (
        "Have registered models answer a prompt set (a file, imported first, or one imported "
        "before) and label every answer, as USER; --wait prints each model's false-refusal rates."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--input", metavar="FILE", help="a CSV/JSONL file to import first")
        source.add_argument("--prompt-set", metavar="NAME", help="a prompt set you imported")
        parser.add_argument("--name", help="name of the prompt set --input creates")
        for key, default in PHTEST_MAPPING.items():
            parser.add_argument(
                f"--{key}-column",
                default=default,
                metavar="C",
                help=f"column of the {key} in --input (default: {default or 'none'})",
            )
        parser.add_argument(
            "--model", action="append", required=True, metavar="NAME", help="repeat for several"
        )
        parser.add_argument("--classifier", default="string_match", choices=CLASSIFIERS)
        parser.add_argument("--judge-model", metavar="NAME", help="the judge (llm_judge)")
        parser.add_argument(
            "--judge-prompt",
            metavar="FILE",
            help="a text file with the judging prompt ({prompt}, {response}); default: the "
            "project's three-way prompt",
        )
        parser.add_argument("--limit", type=int, help="only the first N prompts")
        parser.add_argument("--sample", type=int, help="N prompts drawn at random (see --seed)")
        parser.add_argument("--seed", type=int, default=0)
        add_wait_arguments(parser)
        add_as_argument(parser)

    def _prompt_set(self, actor, options: dict) -> PromptSet:
        if options["prompt_set"]:
            found = selectors.prompt_set_named(actor, options["prompt_set"])
            if found is None:
                raise CommandError(
                    f"{actor.get_username()} has no prompt set named '{options['prompt_set']}'"
                )
            return found
        path = Path(options["input"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            mapping = clean_mapping({k: options[f"{k}_column"] for k in PHTEST_MAPPING})
        except PromptSetError as exc:
            raise CommandError(str(exc)) from None
        sha256 = hashlib.sha256(data).hexdigest()
        same = selectors.prompt_sets_for(actor).filter(owner=actor, sha256=sha256, mapping=mapping)
        if existing := same.order_by("-created_at").first():
            self.stdout.write(f"prompt set '{existing.name}': {path.name} was imported before")
            return existing
        name = options["name"] or slugify(path.stem)[:90] or "prompts"
        if not options["name"]:
            taken = set(selectors.prompt_sets_for(actor).values_list("name", flat=True))
            base, number = name, 2
            while name in taken:
                name, number = f"{base}-{number}", number + 1
        try:
            prompt_set = services.import_prompt_set(
                name=name, data=data, filename=path.name, mapping=mapping, actor=actor
            )
        except PromptSetError as exc:
            raise CommandError(f"{path}: {exc}") from None
        self.stdout.write(
            f"prompt set '{prompt_set.name}': {prompt_set.row_count} prompts imported "
            f"from {path.name} (sha256 {sha256[:12]}…)"
        )
        return prompt_set

    def handle(self, *args, **options) -> None:
        actor = actor_from(options)
        models = [usable_model(actor, name) for name in options["model"]]
        judge = usable_model(actor, options["judge_model"]) if options["judge_model"] else None
        judge_prompt = None
        if options["judge_prompt"]:
            try:
                judge_prompt = Path(options["judge_prompt"]).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"cannot read {options['judge_prompt']}: {exc}") from None
        prompt_set = self._prompt_set(actor, options)
        try:
            run = services.start_false_refusal_run(
                prompt_set=prompt_set,
                models=models,
                classifier=options["classifier"],
                judge_model=judge,
                judge_prompt=judge_prompt,
                limit=options["limit"],
                sample=options["sample"],
                seed=options["seed"],
                actor=actor,
            )
        except (ValueError, PermissionDenied, QueueUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        progress = selectors.run_progress(run)
        self.stdout.write(
            f"run {run.pk}: {progress['total']} responses to write and label "
            f"({len(models)} model(s), classifier {run.classifier}; {run.status})"
        )
        if not options["wait"]:
            return
        wait_until_finished(
            lambda: selectors.run_progress(run),
            lambda p: (
                f"  {p['generated']}/{p['total']} answered, {p['labelled']} labelled, "
                f"{p['failed']} failed"
            ),
            name=f"run {run.pk}",
            timeout=options["timeout"],
            write=self.stdout.write,
        )
        for model in selectors.run_rates(run):
            self.stdout.write(
                f"\n{model['model']}" + (f" ({model['failed']} failed)" * bool(model["failed"]))
            )
            rows = [rates_from_dict(g) for g in model["groups"]]
            self.stdout.write(render_table(rows, "group") if rows else "  no labelled responses")
        run.refresh_from_db()
        if run.status != FalseRefusalRun.Status.DONE:
            raise CommandError(f"run {run.pk} ended {run.get_status_display()}: {run.error}")
        self.stdout.write(f"\nrun {run.pk} done")
