"""Re-encrypt every stored recruitment id with the first key of RECRUITMENT_ID_KEYS."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation import services
from annotation.recruitment_ids import RecruitmentKeyError


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored recruitment id with the first key of RECRUITMENT_ID_KEYS "
        "(put the new key first, keep the old ones after it, run this, then drop the old keys). "
        "Safe to run again: ids the first key already reads are left alone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=500, help="rows per transaction (default 500)"
        )

    def handle(self, *args, batch_size: int, **options) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            counts = services.rotate_recruitment_ids(batch_size=batch_size)
        except RecruitmentKeyError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{counts.rotated} recruitment ids re-encrypted with the first key, "
            f"{counts.current} already current, {counts.unreadable} unreadable"
        )
        if counts.unreadable:
            # The old key they need is missing from RECRUITMENT_ID_KEYS: keep it until fixed.
            raise CommandError(
                f"{counts.unreadable} recruitment ids could not be read by any configured key; "
                "add the key they were stored with back to RECRUITMENT_ID_KEYS and run again"
            )
