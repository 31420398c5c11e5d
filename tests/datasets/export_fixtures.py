"""A study whose participants answered through the real participant flow, for the export tests."""

from __future__ import annotations

import zipfile
from pathlib import Path

from django.test import Client

from annotation import services as annotation_services
from annotation.models import Participant
from studies.datasets.exports import ExportOptions, export_to_path
from tests.annotation.block_fixtures import GOOD_AFTER, GOOD_BEFORE, add_blocks, take_part

RAW_IDS = ("PID-SECRET-1", "PID-SECRET-2", "PID-SECRET-3", "PID-SECRET-4", "PID-SECRET-5")


def recorded_study(make_study, target: int = 5, simulated: int = 0):
    """Participants through the pages (recruitment study and session ids in the link): three
    completed, one of them then excluded by a researcher's decision; one still before the last
    block; one declined. Every raw id is stored encrypted, as the entry page stores it.
    ``simulated`` more complete the items through the participant services first (before the
    questionnaire blocks exist), for an analysis with something to estimate."""
    study = make_study(target_participants=target)
    if simulated:
        from tests.analysis.test_platform_simulation import simulate_participants

        simulate_participants(study, simulated, seed=5, first=100)
    add_blocks(study)
    for pid in RAW_IDS[:3]:
        take_part(Client(), study, pid, before=GOOD_BEFORE, after=GOOD_AFTER)
    take_part(Client(), study, RAW_IDS[3], before=GOOD_BEFORE, after=None)
    declined = Client()
    declined.get(f"/s/{study.slug}/?PROLIFIC_PID={RAW_IDS[4]}&STUDY_ID=st-9&SESSION_ID=se-9")
    declined.post(f"/s/{study.slug}/consent/", {"decision": "decline"})
    _store_encrypted_ids(study)
    third = Participant.objects.filter(study=study, status="completed").order_by("pk")[2]
    annotation_services.exclude_participant(participant=third, reason="answered too fast")
    return study


def _store_encrypted_ids(study) -> None:
    """The entry page encrypts the raw id when a key is configured; make sure every
    participant has one, so 'no raw id in an export' is tested against ids that exist."""
    from annotation.recruitment_ids import encrypt_recruitment_id
    from annotation.selectors import participant_by_external_id

    for pid in RAW_IDS:
        participant = participant_by_external_id(study, pid)
        if participant is not None and not participant.recruitment_id_encrypted:
            Participant.objects.filter(pk=participant.pk).update(
                recruitment_id_encrypted=encrypt_recruitment_id(pid)
            )


def export_files(study, tmp_path: Path, **options) -> dict[str, bytes]:
    """Every file of an export (zip), by its path inside the archive's folder."""
    target = tmp_path / f"export-{len(list(tmp_path.iterdir()))}.zip"
    export_to_path(study, target, ExportOptions(**options))
    with zipfile.ZipFile(target) as archive:
        return {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()}
