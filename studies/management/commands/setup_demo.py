"""Prepare the demo: import and launch the example studies, create the researcher login."""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from studies import services
from studies.models import Study, StudyMembership
from studies.spec import load_spec_file
from studies.stimuli_file import read_stimuli_file

EXAMPLES = ("examples/refusal-perception/study.yaml", "examples/every-type/study.yaml")


class Command(BaseCommand):
    help = "Import and launch the example studies and print the URLs and the researcher login."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--username", default="researcher")

    @transaction.atomic
    def handle(self, *args, base_url: str, username: str, **options) -> None:
        password = os.environ.get("DEMO_PASSWORD") or secrets.token_urlsafe(9)
        user, _ = get_user_model().objects.get_or_create(username=username)
        # A researcher, as create_researcher makes them: not staff, roles per study only.
        user.is_staff = False
        user.set_password(password)
        user.save()

        base = base_url.rstrip("/")
        self.stdout.write(self.style.SUCCESS("\nRefusalLab demo is ready\n"))
        for relative in EXAMPLES:
            spec, stimuli_path = load_spec_file(Path(settings.BASE_DIR) / relative)
            study = Study.objects.filter(slug=spec.slug).first()
            if study is None or study.status == Study.Status.DRAFT:
                rows = read_stimuli_file(stimuli_path) if stimuli_path else None
                study = services.import_study(spec=spec, stimuli=rows, actor=user)
                services.launch_study(study=study, actor=user)
                study.refresh_from_db()
            StudyMembership.objects.get_or_create(
                study=study, user=user, defaults={"role": StudyMembership.Role.OWNER}
            )
            self.stdout.write(f"  {study.title} ({study.status})")
            self.stdout.write(
                f"    participant:  {base}/s/{study.slug}/?PROLIFIC_PID=demo-{secrets.token_hex(3)}"
            )
            self.stdout.write(f"    progress:     {base}/studies/{study.slug}/")
        self.stdout.write(f"\n  researcher pages: {base}/   (log in at {base}/accounts/login/)")
        self.stdout.write(f"  new study:        {base}/studies/new/   API docs: {base}/api/docs/")
        self.stdout.write(f"  login: {username} / {password}\n")
