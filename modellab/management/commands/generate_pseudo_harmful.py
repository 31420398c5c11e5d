"""Generate pseudo-harmful prompts from the shell: seed material, a generator, target models
and a number of rounds; --wait prints the ranked candidates when the machine part is over."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.dispatch import QueueUnavailable
from modellab.classifiers import CLASSIFIERS
from modellab.management.commands._material import read_text
from modellab.pseudo_harmful import selectors, services
from modellab.pseudo_harmful.instruction import LENGTHS
from studies.management.commands._as_user import actor_from, add_as_argument, usable_model
from studies.management.commands._wait import add_wait_arguments, wait_until_finished

SEED_HELP = {
    "topics": "topics the prompts are about",
    "words": "harmful-looking words or phrases to use in a harmless sense (kill, attack, hack)",
    "categories": "categories of prompts",
    "examples": "example prompts shown to the generator in round 1",
}


class Command(BaseCommand):
    help = (
        "Generate pseudo-harmful prompts (they look harmful but are safe to answer), as USER: "
        "from seed material (--topics, --words, --categories, --examples: a file with one "
        "entry a line, or entries separated by '|'), a --generator model writes candidates "
        "for --rounds rounds; each --target model answers each candidate --samples times; "
        "candidates are ranked by how often they are refused and the best become the next "
        "round's examples, within --budget generator and target calls. Then a --harm-judge "
        "labels the kept ones and coders verify them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="name of the job (letters, digits, -)")
        parser.add_argument(
            "--generator", required=True, metavar="MODEL", help="the generator model"
        )
        parser.add_argument(
            "--target",
            action="append",
            required=True,
            metavar="MODEL",
            help="a target model whose refusals rank the candidates; repeat for several",
        )
        seed = parser.add_argument_group("seed material (a FILE, one entry a line, or a|b|c)")
        for field, text in SEED_HELP.items():
            seed.add_argument(f"--{field}", metavar="FILE_OR_LIST", help=text)
        parser.add_argument("--rounds", type=int, default=3, help="number of rounds (default 3)")
        parser.add_argument("--per-round", type=int, default=20, help="candidates per round")
        parser.add_argument(
            "--examples-per-round",
            type=int,
            default=5,
            help="best candidates shown as examples in the next round",
        )
        parser.add_argument("--samples", type=int, default=1, help="k answers per target")
        parser.add_argument("--length", choices=list(LENGTHS), default="short")
        parser.add_argument("--style", default="", help="style of the prompts, in words")
        parser.add_argument(
            "--instruction", metavar="FILE", help="the generator's instruction (default: ours)"
        )
        parser.add_argument(
            "--refusal",
            choices=["full_partial", "full"],
            default="full_partial",
            help="what counts as a refusal (default: full or partial)",
        )
        parser.add_argument("--classifier", choices=CLASSIFIERS, default="string_match")
        parser.add_argument("--classifier-model", metavar="MODEL", help="the judge (llm_judge)")
        parser.add_argument("--harm-judge", metavar="MODEL", help="labels the kept prompts")
        parser.add_argument("--embedding-model", metavar="MODEL", help="embedding dedup")
        parser.add_argument("--keep", type=int, help="keep at most N of the best")
        parser.add_argument("--budget", type=int, default=1000, help="generator + target calls")
        parser.add_argument("--overlap", type=int, default=2, help="coders per kept prompt")
        add_wait_arguments(parser, "job")
        add_as_argument(parser)

    def _entries(self, value: str | None) -> list[str]:
        if not value:
            return []
        path = Path(value)
        if path.is_file():
            try:
                return path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"cannot read {path}: {exc}") from None
        return value.split("|")

    def handle(self, *args, **options) -> None:
        actor = actor_from(options)
        model = lambda name: usable_model(actor, name) if name else None  # noqa: E731
        instruction = read_text(options["instruction"])
        try:
            job = services.start_pseudo_harmful_job(
                owner=actor,
                name=options["name"],
                generator=model(options["generator"]),
                targets=[model(name) for name in options["target"]],
                seed={field: self._entries(options[field]) for field in SEED_HELP},
                content={"length": options["length"], "style": options["style"]},
                instruction=instruction,
                per_round=options["per_round"],
                rounds=options["rounds"],
                examples_per_round=options["examples_per_round"],
                samples=options["samples"],
                refusal=options["refusal"],
                classifier=options["classifier"],
                classifier_model=model(options["classifier_model"]),
                harm_judge=model(options["harm_judge"]),
                embedding_model=model(options["embedding_model"]),
                keep=options["keep"],
                budget=options["budget"],
                verification_overlap=options["overlap"],
            )
        except (ValueError, PermissionDenied, QueueUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"job {job.pk} '{job.name}': {job.rounds} round(s) of {job.per_round} candidates, "
            f"{job.targets.count()} target(s) × {job.samples} sample(s), budget {job.budget} "
            f"calls ({job.status})"
        )
        if not options["wait"]:
            return
        progress = wait_until_finished(
            lambda: selectors.job_progress(job),
            lambda p: (
                f"  round {p['rounds_done']}/{p['rounds']}, {p['probes_labelled']}/{p['probes']} "
                f"probes labelled, {p['calls_used']}/{p['budget']} calls ({p['status']})"
            ),
            name=f"job {job.pk}",
            timeout=options["timeout"],
            write=self.stdout.write,
        )
        job.refresh_from_db()
        if progress["stop_reason"]:
            self.stdout.write(progress["stop_reason"])
        self.stdout.write("\nrank  share  kept  judge          prompt")
        for c in selectors.ranked_candidates(job):
            share = "-" if c.refusal_share is None else f"{c.refusal_share:.2f}"
            self.stdout.write(
                f"{c.rank or '-':>4}  {share:>5}  {'yes' if c.kept else 'no':>4}  "
                f"{c.judge_label or '-':<13}  {c.text}"
            )
        duplicates = selectors.duplicates(job).count()
        if duplicates:
            self.stdout.write(f"({duplicates} duplicate(s) set aside)")
        if job.status == job.Status.VERIFYING:
            self.stdout.write(
                f"\njob {job.pk} verifying: coding task {job.verification_task_id} "
                f"({job.verification_overlap} coder(s) per prompt)"
            )
        elif job.status != job.Status.DONE:
            raise CommandError(f"job {job.pk} ended {job.get_status_display()}: {job.error}")
        else:
            self.stdout.write(f"\njob {job.pk} done")
