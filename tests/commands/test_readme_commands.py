"""Every management command the README documents, run once in a real shell as the README
writes it (placeholders filled in), and the --as checks of the commands that change studies.

A real process, not call_command: Django's own option parsing is part of what is tested
(register_model's --set once collided with Django's --settings and crashed in a shell only).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from annotation import services as participant_services
from studies import services
from studies.models import GenerationJob, LanguageModel, Study, StudyMembership
from studies.spec import load_spec_file
from studies.stimuli_file import read_stimuli_file
from tests.api.readme import README, commands, shell_blocks
from tests.generation.chat_server import ChatServer

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = README.parent
EXAMPLES = ROOT / "examples"


def documented_commands() -> list[str]:
    """Every ``python manage.py …`` line of the README's shell blocks, in README order."""
    text = README.read_text(encoding="utf-8")
    found = []
    for block in shell_blocks(text):
        found += [line for line in commands(block) if line.startswith("python manage.py ")]
    return found


def concrete(line: str, values: dict[str, str]) -> str:
    """The README's line with its notation resolved: ``[--x]`` kept, ``a|b`` → a, ``...``
    dropped, UPPERCASE placeholders replaced by ``values``."""
    line = line.replace(" ...", "")
    line = re.sub(r"\[([^\]]*)\]", r"\1", line)
    line = re.sub(r"(\S+?)\|\S+", r"\1", line)
    for placeholder, value in values.items():
        line = re.sub(rf"(?<![\w-]){re.escape(placeholder)}(?![\w-])", value, line)
    return line.replace("python manage.py", f"{sys.executable} {ROOT / 'manage.py'}", 1)


def shell(line: str, cwd: Path) -> subprocess.CompletedProcess:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_TASK_ALWAYS_EAGER": "1",
    }
    return subprocess.run(
        ["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_every_documented_command_runs_in_a_shell(tmp_path):
    users = get_user_model().objects
    ada = users.create_user("ada", password="pw-ada-123")
    # A second study, still a draft, for the generation command (the first one is launched).
    spec, _ = load_spec_file(EXAMPLES / "every-type" / "study.yaml")
    draft = services.import_study(
        spec=spec,
        stimuli=read_stimuli_file(EXAMPLES / "refusal-perception" / "stimuli.csv"),
        actor=ada,
    )
    stimuli = str(EXAMPLES / "refusal-perception" / "stimuli.csv")
    with ChatServer() as server:
        values: dict[str, dict[str, str]] = {
            "import_study": {"FILE": str(EXAMPLES / "refusal-perception" / "study.yaml")},
            "import_stimuli": {"SLUG": "refusal-perception", "FILE": stimuli},
            "launch_study": {"SLUG": "refusal-perception", "N": "4"},
            "export_study_spec": {"SLUG": "refusal-perception", "FILE": "spec.yaml"},
            "export_stimuli": {"SLUG": "refusal-perception", "FILE": "stimuli-export.csv"},
            "register_model": {
                "NAME": "loopback",
                "KEY=VALUE": f"base_url={server.url} --set model=m --set max_retries=0",
                "T": "0.2",
                "N": "40",
                "S": "7",
            },
            "generate_responses": {"SLUG": draft.slug, "NAME": "loopback", "N": "1"},
            # The loopback judge answers in prose: every score ends unparsed, counted.
            "score_rewards": {"SLUG": draft.slug, "NAME": "loopback"},
            # The first line imports the sample as the set "phtest-sample"; the loopback judge of
            # the second answers in prose, so its labels end unparsed (counted, out of n).
            "run_false_refusal": {
                "FILE": str(EXAMPLES / "false-refusal" / "phtest-sample.csv"),
                "NAME": "loopback",
                "N": "4",
                "SET": "phtest-sample",
                "JUDGE": "loopback",
            },
            "false_refusal_rate": {
                "FILE": str(EXAMPLES / "false-refusal" / "labelled-example.csv"),
                "LABEL": "label",
                "GROUP": "Harmfulness",
            },
            "export_ratings": {"SLUG": "refusal-perception"},
            "export_study": {"SLUG": "refusal-perception"},
            "rotate_recruitment_keys": {"N": "100"},
            "delete_participant_data": {"SLUG": "refusal-perception", "ID": "PPX-readme-1"},
            "classify_responses": {
                "FILE": str(
                    ROOT / "tests" / "modellab" / "classifiers" / "fixtures" / "responses.csv"
                ),
                "PROMPT": "prompt",
                "RESPONSE": "response",
                "OUT": "labelled.csv",
                "NAME": "loopback",
            },
            # The loopback generator answers in prose: every round's answer is unreadable, so
            # the job ends done with nothing to verify (and says so).
            "generate_query_scenarios": {
                "NAME": "readme-set",
                "FILE": str(EXAMPLES / "query-scenarios" / "categories.json"),
                "EXAMPLES": str(EXAMPLES / "query-scenarios" / "seed-examples.jsonl"),
                "MODEL": "loopback",
                "JUDGE": "loopback",
                "N": "30",
            },
            # The loopback generator answers in prose: each round asks three times, reads no
            # array and goes on without candidates; nothing is kept, so the job ends done.
            "generate_pseudo_harmful": {
                "NAME": "readme-prompts",
                "MODEL": "loopback",
                "WORDS": str(EXAMPLES / "pseudo-harmful" / "words.txt"),
                "TOPICS": str(EXAMPLES / "pseudo-harmful" / "topics.txt"),
                "EXAMPLES": str(EXAMPLES / "pseudo-harmful" / "examples.txt"),
                "N": "1",
                "K": "1",
                "B": "20",
            },
            "create_researcher": {
                "USER": "grace",
                "E": "grace@example.org",
                "URL": "https://lab.example.org",
            },
        }
        expected = {
            "import_study": "refusal-perception",
            "import_stimuli": "16 queries created",
            "launch_study": "is live with 4 pilot participant slots",
            "export_study_spec": "slug: refusal-perception",
            "export_stimuli": "16 queries written to stimuli-export.csv",
            "register_model": "loopback: openai on queue default",
            "generate_responses": "done",
            "score_rewards": "judge answer(s) could not be parsed",
            "run_false_refusal": "done",
            "false_refusal_rate": '"method": "wilson"',
            "export_ratings": "",
            "export_study": "replication package of refusal-perception written to export.zip",
            "classify_responses": "17 responses classified with",
            "generate_query_scenarios": "done: 0 kept",
            "generate_pseudo_harmful": "done",
            "create_researcher": "https://lab.example.org/accounts/",
            "rotate_recruitment_keys": "recruitment ids re-encrypted with the first key",
            "delete_participant_data": "is withdrawn and their answers are deleted",
        }
        ran = set()
        for line in documented_commands():
            name = line.split()[2]
            assert name in values, f"README documents '{name}' but this test does not run it"
            command = concrete(line, {"USER": "ada", **values[name]})
            if name == "delete_participant_data":
                # Someone to delete: they joined the study launched above through its link.
                study = Study.objects.get(slug="refusal-perception")
                participant_services.join_study(
                    study=study, external_id="PPX-readme-1", recruitment={}
                )
            result = shell(command, tmp_path)
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
            assert expected[name] in result.stdout + result.stderr, (command, result.stdout)
            ran.add(name)
    assert ran == set(values), f"documented commands not found in the README: {set(values) - ran}"
    study = Study.objects.get(slug="refusal-perception")
    assert study.status == "live" and study.pilot_slots == 4
    assert StudyMembership.objects.get(study=study).user == ada
    model = LanguageModel.objects.get(name="loopback")
    assert model.owner == ada and model.backend_settings["model"] == "m"
    assert GenerationJob.objects.get().status == "done"
    grace = users.get(username="grace")
    assert not grace.is_staff and not grace.has_usable_password()
    assert (tmp_path / "ratings.csv").exists()
    labelled = (tmp_path / "labelled.csv").read_text(encoding="utf-8")
    assert labelled.splitlines()[0].endswith(",label,rationale")
    with zipfile.ZipFile(tmp_path / "export.zip") as archive:
        names = archive.namelist()
    assert "refusal-perception-replication-package/MANIFEST.sha256" in names


def test_create_researcher_prints_a_working_one_time_link(client):
    result = shell(
        f"{sys.executable} {ROOT / 'manage.py'} create_researcher grace --email g@example.org "
        "--base-url https://lab.example.org",
        ROOT,
    )
    assert result.returncode == 0, result.stderr
    link = re.search(r"https://lab\.example\.org(\S+)", result.stdout)
    assert link, result.stdout
    response = client.get(link[1], follow=True)
    assert response.status_code == 200
    assert b"password" in response.content.lower()
    again = shell(
        f"{sys.executable} {ROOT / 'manage.py'} create_researcher grace --email x@example.org",
        ROOT,
    )
    assert again.returncode != 0 and "exists already" in again.stderr


def test_as_is_required_and_checked():
    users = get_user_model().objects
    ada = users.create_user("ada", password="pw")
    vic = users.create_user("vic", password="pw")
    users.create_user("bob", password="pw")
    spec = EXAMPLES / "refusal-perception" / "study.yaml"
    missing = shell(f"{sys.executable} {ROOT / 'manage.py'} import_study {spec}", ROOT)
    assert missing.returncode != 0 and "--as" in missing.stderr
    assert not Study.objects.exists()

    def run(*args: str) -> str:
        out = StringIO()
        call_command(*args, stdout=out)
        return out.getvalue()

    with pytest.raises(CommandError, match="no account named 'ghost'"):
        run("import_study", str(spec), "--as", "ghost")
    run("import_study", str(spec), "--as", "ada")
    study = Study.objects.get()
    assert study.memberships.get().user == ada
    StudyMembership.objects.create(study=study, user=vic, role="viewer")
    with pytest.raises(CommandError, match="vic is viewer of study 'refusal-perception'"):
        run("launch_study", "refusal-perception", "--as", "vic")
    with pytest.raises(CommandError, match="bob is not a member"):
        run("import_study", str(spec), "--as", "bob")  # updating someone else's study
    with pytest.raises(CommandError, match="bob is not a member"):
        run(
            "import_stimuli",
            "refusal-perception",
            str(EXAMPLES / "refusal-perception" / "stimuli.csv"),
            "--as",
            "bob",
        )
    with pytest.raises(CommandError, match="no study with slug 'nope'"):
        run("launch_study", "nope", "--as", "ada")
    assert Study.objects.get().status == "draft"
    # A model belongs to whoever registered it; another researcher cannot change it.
    run(
        "register_model",
        "m1",
        "--backend",
        "openai",
        "--set",
        "base_url=http://127.0.0.1:1/v1",
        "--set",
        "model=m",
        "--as",
        "ada",
    )
    with pytest.raises(CommandError, match="only the owner"):
        run(
            "register_model",
            "m1",
            "--backend",
            "openai",
            "--set",
            "base_url=http://127.0.0.1:1/v1",
            "--set",
            "model=x",
            "--as",
            "bob",
        )
    assert LanguageModel.objects.get().backend_settings["model"] == "m"
