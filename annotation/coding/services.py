"""Writes of human coding: tasks and their items, inviting coders, claiming items, codes."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from annotation.coding.models import CodingAssignment, CodingItem, CodingMember, CodingTask
from modellab.classifiers.labels import INTENT, MATERIAL_SCHEMES, SCHEMES, labels_of
from studies import access
from studies.generation.prompts import natural_messages
from studies.models import GenerationItem, Scenario, Study

# Accounts made on the invite page to code and nothing else are in this group (studies.access
# keeps them off the researcher side); the coder role itself is per task (CodingMember), so a
# researcher can code a colleague's task too.
CODER_GROUP = access.CODER_GROUP
NATURAL_FRAMINGS: tuple[str, ...] = (
    GenerationItem.Framing.QUERY_ONLY,
    GenerationItem.Framing.BENIGN,
    GenerationItem.Framing.MALICIOUS,
)
MAX_OVERLAP = 20
MAX_CLAIM_MINUTES = 24 * 60
# A claimer that loses a race for a candidate (see next_assignment) tries the next one; a
# bound keeps a pathological case from looping, and the coder is simply shown the done page.
MAX_CANDIDATES = 50


class CodingInputError(Exception):
    """Bad input for a coding write; ``problems`` maps each field to its message."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(f"{key}: {message}" for key, message in problems.items()))
        self.problems = problems


class ClaimLost(Exception):
    """The coder answered an item they no longer hold (their claim ran out and went to
    another coder, or it was never theirs)."""


def natural_responses(
    study: Study, *, model_names: Sequence[str] = (), framings: Sequence[str] = NATURAL_FRAMINGS
):
    """The study's finished natural responses of these models (all when empty) and framings."""
    items = GenerationItem.objects.filter(
        study=study,
        response_type="",
        framing__in=list(framings),
        status=GenerationItem.Status.DONE,
    )
    if model_names:
        items = items.filter(model__name__in=list(model_names))
    return items


def _prompt_text(item: GenerationItem, scenarios: dict[tuple[int, str], str]) -> str:
    """What the model was sent: the stored user message, else the message generation builds."""
    for message in reversed(item.prompt or []):
        if isinstance(message, dict) and message.get("role") == "user" and message.get("content"):
            return str(message["content"])
    scenario = None
    if item.framing != GenerationItem.Framing.QUERY_ONLY:
        scenario = scenarios.get((item.query_id, item.framing))
    return natural_messages(item.query.text, scenario)[-1]["content"]


@transaction.atomic
def create_task(
    *,
    owner,
    title: str,
    study: Study | None,
    scheme: str,
    overlap: int,
    instructions: str = "",
    model_names: Sequence[str] = (),
    framings: Sequence[str] = NATURAL_FRAMINGS,
    sample: int | None = None,
    seed: int = 0,
    claim_minutes: int = 30,
) -> CodingTask:
    """A coding task over a study's natural responses; the owner must be able to view it.

    Items are put in a random order fixed by ``seed``; with ``sample`` only the first
    ``sample`` of that order are kept (a simple random sample). Raises CodingInputError
    naming each bad field; nothing is written then.
    """
    problems: dict[str, str] = {}
    title = (title or "").strip()
    if (problem := _title_problem(title)) is not None:
        problems["title"] = problem
    # Response schemes only: the study-material schemes (intent, harmfulness) judge no
    # response; their tasks come from create_verification_task.
    if scheme not in SCHEMES:
        problems["scheme"] = f"The scheme must be one of {', '.join(SCHEMES)}."
    if not isinstance(overlap, int) or not 1 <= overlap <= MAX_OVERLAP:
        problems["overlap"] = f"Coders per item must be a whole number from 1 to {MAX_OVERLAP}."
    if not isinstance(claim_minutes, int) or not 1 <= claim_minutes <= MAX_CLAIM_MINUTES:
        problems["claim_minutes"] = f"The claim time must be 1 to {MAX_CLAIM_MINUTES} minutes."
    bad_framings = sorted(set(framings) - set(NATURAL_FRAMINGS))
    if not framings or bad_framings:
        problems["framings"] = "Choose at least one of: " + ", ".join(NATURAL_FRAMINGS) + "."
    if sample is not None and (not isinstance(sample, int) or sample < 1):
        problems["sample"] = "The sample size must be a whole number of at least 1."
    if study is None or not access.can(owner, access.Action.VIEW, study):
        problems["study"] = "Choose one of your studies."
    items: list[GenerationItem] = []
    if not problems:
        items = list(
            natural_responses(study, model_names=model_names, framings=framings)
            .select_related("query", "model")
            .order_by("pk")
        )
        if not items:
            problems["study"] = (
                "This study has no finished natural responses for these models and framings."
            )
    if problems:
        raise CodingInputError(problems)

    random.Random(seed).shuffle(items)
    if sample is not None:
        items = items[:sample]
    task = CodingTask.objects.create(
        title=title,
        owner=owner,
        study=study,
        scheme=scheme,
        overlap=overlap,
        instructions=instructions or "",
        claim_minutes=claim_minutes,
        source={
            "study": study.slug,
            "models": sorted(model_names),
            "framings": [f for f in NATURAL_FRAMINGS if f in framings],
            "sample": sample,
            "seed": seed,
        },
    )
    scenarios = {
        (s.query_id, s.motivation): s.text
        for s in Scenario.objects.filter(query__in={i.query_id for i in items})
    }
    CodingItem.objects.bulk_create(
        [
            CodingItem(
                task=task,
                position=position,
                generation_item=item,
                model_name=item.model.name,
                framing=item.framing,
                query_key=item.query.query_id,
                category=item.query.category,
                prompt_text=_prompt_text(item, scenarios),
                response_text=item.text,
            )
            for position, item in enumerate(items, 1)
        ],
        batch_size=1000,
    )
    return task


@dataclass(frozen=True)
class VerificationItem:
    """One piece of generated study material for coders to judge.

    ``source_key``: the caller's own key (at most 100 characters, unique in the task), the
    key of ``selectors.verification_outcomes``. ``prompt_text``: the request (intent) or the
    prompt (harmfulness). ``context_text``: the scenario an intent item's request is read
    with (required for intent, empty for harmfulness). ``category``: shown to the researcher.
    """

    source_key: str
    prompt_text: str
    context_text: str = ""
    category: str = ""


_SOURCE_KEY_MAX = CodingItem._meta.get_field("source_key").max_length
_CATEGORY_MAX = CodingItem._meta.get_field("category").max_length


def _title_problem(title: str) -> str | None:
    if not title:
        return "Give the task a title."
    if len(title) > 200:
        return "The title can be at most 200 characters."
    return None


def _item_problems(scheme: str, items: Sequence[VerificationItem]) -> dict[str, str]:
    """Each bad item field as ``items[i].field`` (i from 0, the caller's sequence order)."""
    problems: dict[str, str] = {}
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, VerificationItem):
            problems[where] = "Each item must be a VerificationItem."
            continue
        key = item.source_key if isinstance(item.source_key, str) else ""
        if not key.strip():
            problems[f"{where}.source_key"] = "Give every item its own source key."
        elif len(key) > _SOURCE_KEY_MAX:
            problems[f"{where}.source_key"] = (
                f"The source key can be at most {_SOURCE_KEY_MAX} characters."
            )
        elif key in seen:
            problems[f"{where}.source_key"] = (
                f"The source key '{key}' is used by items[{seen[key]}] already."
            )
        else:
            seen[key] = index
        if not isinstance(item.prompt_text, str) or not item.prompt_text.strip():
            what = "request" if scheme == INTENT else "prompt"
            problems[f"{where}.prompt_text"] = f"The {what} to judge is empty."
        context = item.context_text if isinstance(item.context_text, str) else None
        if context is None:
            problems[f"{where}.context_text"] = "The scenario must be text."
        elif scheme == INTENT and not context.strip():
            problems[f"{where}.context_text"] = (
                "An intent item needs the scenario its request is read with."
            )
        elif scheme != INTENT and context.strip():
            problems[f"{where}.context_text"] = (
                "Coders judge a prompt's harmfulness on its own: leave the scenario empty."
            )
        if not isinstance(item.category, str) or len(item.category) > _CATEGORY_MAX:
            problems[f"{where}.category"] = (
                f"The category must be text of at most {_CATEGORY_MAX} characters."
            )
    return problems


@transaction.atomic
def create_verification_task(
    *,
    owner,
    title: str,
    scheme: str,
    overlap: int,
    items: Sequence[VerificationItem],
    instructions: str = "",
    source: dict | None = None,
    claim_minutes: int = 30,
) -> CodingTask:
    """A human verification task over generated study material (no study), owned by the
    researcher who decides its ties.

    ``scheme`` is ``intent`` (each request read with its scenario: benign, malicious,
    ambiguous) or ``harmfulness`` (each prompt: harmless, controversial, harmful). Items keep
    the given order. ``source`` (JSON) records where the material came from. Raises
    CodingInputError naming each bad field (``items[i].source_key`` and so on); nothing is
    written then.
    """
    # Imported here: the selectors import this module.
    from annotation.coding.selectors import may_run_tasks

    problems: dict[str, str] = {}
    title = (title or "").strip()
    if (problem := _title_problem(title)) is not None:
        problems["title"] = problem
    if not may_run_tasks(owner):
        problems["owner"] = "Only a signed-in researcher can own a verification task."
    if scheme not in MATERIAL_SCHEMES:
        problems["scheme"] = f"The scheme must be one of {', '.join(MATERIAL_SCHEMES)}."
    if not isinstance(overlap, int) or not 1 <= overlap <= MAX_OVERLAP:
        problems["overlap"] = f"Coders per item must be a whole number from 1 to {MAX_OVERLAP}."
    if not isinstance(claim_minutes, int) or not 1 <= claim_minutes <= MAX_CLAIM_MINUTES:
        problems["claim_minutes"] = f"The claim time must be 1 to {MAX_CLAIM_MINUTES} minutes."
    instructions = instructions or ""
    if not isinstance(instructions, str):
        problems["instructions"] = "The instructions must be text."
    source = {} if source is None else source
    try:
        if not isinstance(source, dict):
            raise TypeError
        json.dumps(source)
    except (TypeError, ValueError):
        problems["source"] = "The source must be a JSON object."
    try:
        items = [] if isinstance(items, str | bytes) else list(items)
    except TypeError:
        items = []
    if not items:
        problems["items"] = "Give at least one item to verify."
    elif scheme in MATERIAL_SCHEMES:
        problems.update(_item_problems(scheme, items))
    if problems:
        raise CodingInputError(problems)

    task = CodingTask.objects.create(
        title=title,
        owner=owner,
        study=None,
        scheme=scheme,
        overlap=overlap,
        instructions=instructions,
        claim_minutes=claim_minutes,
        source=source,
    )
    CodingItem.objects.bulk_create(
        [
            CodingItem(
                task=task,
                position=position,
                source_key=item.source_key,
                category=item.category,
                context_text=item.context_text,
                prompt_text=item.prompt_text,
                response_text="",
            )
            for position, item in enumerate(items, 1)
        ],
        batch_size=1000,
    )
    return task


@transaction.atomic
def set_status(*, task: CodingTask, status: str) -> CodingTask:
    """Close a task (no new claims; answers to claims already held are still taken) or reopen."""
    if status not in CodingTask.Status.values:
        raise CodingInputError({"status": "The status must be open or closed."})
    CodingTask.objects.filter(pk=task.pk).update(status=status)
    task.status = status
    return task


@transaction.atomic
def invite_coder(*, task: CodingTask, username: str, actor) -> CodingMember:
    """Invite an existing active account by username; inviting someone twice changes nothing."""
    username = (username or "").strip()
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CodingInputError({"username": f"There is no active account named '{username}'."})
    member, _ = CodingMember.objects.get_or_create(
        task=task, user=user, defaults={"invited_by": actor}
    )
    return member


@transaction.atomic
def create_coder(*, task: CodingTask, username: str, email: str = "", actor) -> CodingMember:
    """A new account that only codes (in the ``coder`` group, no usable password until its
    owner sets one through the one-time link), invited to ``task``."""
    users = get_user_model()
    username = (username or "").strip()
    email = (email or "").strip()
    if not username:
        raise CodingInputError({"new_username": "Give the new coder a username."})
    if users.objects.filter(username=username).exists():
        raise CodingInputError({"new_username": f"An account named '{username}' exists already."})
    if email and users.objects.filter(email__iexact=email).exists():
        raise CodingInputError({"email": f"An account with the e-mail '{email}' exists already."})
    user = users(username=username, email=email, is_staff=False, is_superuser=False)
    user.set_unusable_password()
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as exc:
        names = {"username": "new_username", "email": "email"}
        raise CodingInputError(
            {names.get(f, f): " ".join(m) for f, m in exc.message_dict.items()}
        ) from None
    user.save()
    group, _ = Group.objects.get_or_create(name=CODER_GROUP)
    user.groups.add(group)
    return CodingMember.objects.create(task=task, user=user, invited_by=actor)


def _lock_member(task: CodingTask, coder) -> CodingMember:
    """The coder's membership row, locked: one coder's tabs and double submits run one at a
    time, so a coder never holds two claims. Raises CodingMember.DoesNotExist if uninvited."""
    return CodingMember.objects.select_for_update().get(task_id=task.pk, user_id=coder.pk)


_CANDIDATE_SQL = f"""
SELECT i.id FROM {CodingItem._meta.db_table} i
WHERE i.task_id = %s
  AND NOT (i.id = ANY(%s))
  AND NOT EXISTS (
    SELECT 1 FROM {CodingAssignment._meta.db_table} a WHERE a.item_id = i.id AND a.coder_id = %s
  )
  AND (
    SELECT count(*) FROM {CodingAssignment._meta.db_table} a
    WHERE a.item_id = i.id AND a.released_at IS NULL
      AND (a.answered_at IS NOT NULL OR a.claimed_at > %s)
  ) < %s
ORDER BY i.position
LIMIT 1
FOR UPDATE OF i SKIP LOCKED
"""


@transaction.atomic
def next_assignment(*, task: CodingTask, coder, now: datetime | None = None):
    """The coder's current claim, or a new claim on the next item that still needs coders;
    None when nothing is left for them (or the task is closed).

    An item is held by at most k coders at any time, answers and unexpired claims together,
    and offered to a coder at most once (a claim that ran out and went to someone else is
    not offered back). Claimers lock candidate item rows with ``FOR UPDATE SKIP
    LOCKED``, so concurrent coders take different items instead of queueing on one.
    Raises CodingMember.DoesNotExist for an account not invited to the task.
    """
    now = now or timezone.now()
    _lock_member(task, coder)
    task = CodingTask.objects.get(pk=task.pk)
    cutoff = now - timedelta(minutes=task.claim_minutes)
    current = (
        CodingAssignment.objects.select_for_update(of=("self",))
        .select_related("item")
        .filter(task=task, coder=coder, answered_at__isnull=True, released_at__isnull=True)
        .first()
    )
    if current is not None:
        # Still theirs even if it ran out: nobody has taken its place (that releases it).
        if current.claimed_at <= cutoff:
            current.claimed_at = now
            current.save(update_fields=["claimed_at"])
        return current
    if task.status != CodingTask.Status.OPEN:
        return None
    passed: list[int] = []
    with connection.cursor() as cursor:
        for _ in range(MAX_CANDIDATES):
            cursor.execute(_CANDIDATE_SQL, [task.pk, passed, coder.pk, cutoff, task.overlap])
            row = cursor.fetchone()
            if row is None:
                return None
            item_id = row[0]
            # Expired claims make room; the condition is repeated so a claim its coder renewed
            # or answered meanwhile (they lock their row first) is kept.
            CodingAssignment.objects.filter(
                item_id=item_id,
                answered_at__isnull=True,
                released_at__isnull=True,
                claimed_at__lte=cutoff,
            ).update(released_at=now)
            # Counted again in a statement of its own: the candidate query's snapshot may be
            # older than a claim on this item committed just before we got its lock.
            rows = list(
                CodingAssignment.objects.filter(item_id=item_id).values_list(
                    "coder_id", "released_at"
                )
            )
            held = sum(released is None for _, released in rows)
            if any(c == coder.pk for c, _ in rows) or held >= task.overlap:
                passed.append(item_id)
                continue
            assignment = CodingAssignment.objects.create(
                task=task, item_id=item_id, coder=coder, claimed_at=now
            )
            return CodingAssignment.objects.select_related("item").get(pk=assignment.pk)
    return None


@transaction.atomic
def record_code(
    *, task: CodingTask, coder, item_id: int, label: str, now: datetime | None = None
) -> tuple[CodingAssignment, bool]:
    """Store the coder's one category for an item they hold; (assignment, created).

    A resubmit (double click, back button) changes nothing: the first answer stands and
    ``created`` is False. Raises CodingInputError for a label outside the task's scheme and
    ClaimLost when the coder does not hold the item.
    """
    if label not in labels_of(task.scheme):
        raise CodingInputError({"label": "Choose one of the categories."})
    _lock_member(task, coder)
    assignment = (
        CodingAssignment.objects.select_for_update(of=("self",))
        .filter(task=task, coder=coder, item_id=item_id)
        .first()
    )
    if assignment is None or assignment.released_at is not None:
        raise ClaimLost(item_id)
    if assignment.answered_at is not None:
        return assignment, False
    assignment.label = label
    assignment.answered_at = now or timezone.now()
    assignment.save(update_fields=["label", "answered_at"])
    return assignment, True
