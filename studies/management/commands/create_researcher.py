"""Create a researcher account and print the one-time link where they choose a password."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies.accounts import create_researcher, password_set_path


class Command(BaseCommand):
    help = (
        "Create a researcher (not staff; /admin/ is for superusers) and print a one-time "
        "link to set the password."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", required=True, help="the researcher's e-mail address")
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="the platform's address, as researchers reach it (default %(default)s)",
        )

    def handle(self, *args, username: str, email: str, base_url: str, **options) -> None:
        try:
            user = create_researcher(username=username, email=email)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        except ValidationError as exc:  # from full_clean: a bad username or e-mail
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"researcher {user.get_username()} created")
        self.stdout.write(
            f"one-time link to set the password: {base_url.rstrip('/')}{password_set_path(user)}"
        )
