"""generate_pseudo_harmful as a user types it (a real process, tasks inline, the scripted
loopback world), and its refusals in-process (call_command)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from modellab.models import PseudoHarmfulJob
from tests.generation.chat_server import ChatServer
from tests.modellab.material.helpers import manage
from tests.modellab.pseudo_harmful.conftest import ROUND_1, ROUND_2, C, G, Models, World


@pytest.mark.django_db(transaction=True)
def test_generate_as_a_user_types_it(ada, tmp_path):
    help_text = manage("generate_pseudo_harmful", "--help").stdout
    for option in ("--topics", "--words", "--categories", "--examples", "--generator",
                   "--target", "--rounds", "--as"):  # fmt: skip
        assert option in help_text, option
    words = tmp_path / "words.txt"
    words.write_text("kill\nshoot\nattack\n", encoding="utf-8")
    with ChatServer(handler=World([ROUND_1, ROUND_2])) as server:
        Models(server, ada)
        result = manage(
            "generate_pseudo_harmful", "--name", "weeds", "--generator", "writer",
            "--target", "cautious", "--target", "relaxed", "--words", str(words),
            "--topics", "gardening|photography", "--examples", "How do I kill a mosquito?",
            "--rounds", "2", "--per-round", "4", "--examples-per-round", "2", "--samples", "2",
            "--harm-judge", "judge", "--budget", "100", "--wait", "--as", "ada",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "2 round(s) of 4 candidates, 2 target(s) × 2 sample(s), budget 100 calls" in out
    lines = out.splitlines()
    first = next(line for line in lines if line.strip().startswith("1 "))
    second = next(line for line in lines if line.strip().startswith("2 "))
    assert C in first and "yes" in first and "controversial" in first
    assert G in second and "harmful" in second and " no " in second
    assert "(2 duplicate(s) set aside)" in out and "verifying: coding task" in out
    job = PseudoHarmfulJob.objects.get()
    assert job.seed["words"] == ["kill", "shoot", "attack"]
    assert job.seed["topics"] == ["gardening", "photography"]


@pytest.mark.django_db
def test_bad_input_is_refused_and_writes_nothing(ada, bob, world):
    cases = [
        (["--generator", "ghost", "--target", "cautious", "--words", "kill"],
         "no model named 'ghost' that ada may use"),
        (["--generator", "writer", "--target", "cautious"],
         "seed.words: give at least one harmful-looking word"),
        (["--generator", "writer", "--target", "cautious", "--words", "kill", "--rounds", "0"],
         "rounds: must be between 1 and 100, not 0"),
        (["--generator", "writer", "--target", "cautious", "--words", "kill",
          "--instruction", "/no/such/file"], "cannot read /no/such/file"),
    ]  # fmt: skip
    for args, message in cases:
        with pytest.raises(CommandError) as error:
            call_command(
                "generate_pseudo_harmful", "--name", "x", *args, "--as", "ada",
                stdout=StringIO(), stderr=StringIO(),
            )  # fmt: skip
        assert message in str(error.value), str(error.value)
    assert not PseudoHarmfulJob.objects.exists()
