"""Register (or update) a model: a chat model for generation and judging, or an embedding model."""

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies.generation import services
from studies.management.commands._as_user import actor_from, add_as_argument
from studies.models import LanguageModel


def parse_setting(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise CommandError(f"--set takes KEY=VALUE, got {text!r}")
    value = value.strip()
    for convert in (int, float):
        try:
            return key.strip(), convert(value)
        except ValueError:
            pass
    return key.strip(), value


class Command(BaseCommand):
    help = (
        "Register a model owned by USER: its kind (chat or embedding), backend, its settings "
        "(--set KEY=VALUE), queue and parameters; an existing model can be changed by its "
        "owner or a superuser only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument(
            "--kind",
            choices=LanguageModel.Kind.values,
            default=None,
            help="chat (writes text; the default for a new model) or embedding (texts to "
            "vectors, for near-duplicate detection); left out, a registered model keeps its kind",
        )
        parser.add_argument("--backend", required=True, choices=LanguageModel.Backend.values)
        parser.add_argument("--queue", default="default", choices=LanguageModel.Queue.values)
        parser.add_argument(
            "--set",
            # Not "settings": Django reads options["settings"] as its own --settings module.
            dest="backend_settings",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a backend setting; repeat as needed",
        )
        parser.add_argument("--temperature", type=float, default=0.7)
        parser.add_argument("--max-tokens", type=int, default=512)
        parser.add_argument("--seed", type=int, default=None)
        sharing = parser.add_mutually_exclusive_group()
        sharing.add_argument(
            "--shared",
            dest="shared",
            action="store_const",
            const=True,
            default=None,
            help="other researchers may use the model (the default for a new model)",
        )
        sharing.add_argument(
            "--private", dest="shared", action="store_const", const=False, help="only you"
        )
        add_as_argument(parser)

    def handle(self, *args, **options) -> None:
        actor = actor_from(options)
        settings = dict(parse_setting(item) for item in options["backend_settings"])
        try:
            model = services.register_model(
                name=options["name"],
                kind=options["kind"],
                backend=options["backend"],
                backend_settings=settings,
                queue=options["queue"],
                temperature=options["temperature"],
                max_tokens=options["max_tokens"],
                seed=options["seed"],
                shared=options["shared"],
                actor=actor,
            )
        except (ValueError, PermissionDenied) as exc:
            raise CommandError(str(exc)) from exc
        kind = " (embedding)" if model.kind == LanguageModel.Kind.EMBEDDING else ""
        self.stdout.write(f"{model.name}: {model.backend}{kind} on queue {model.queue}")
