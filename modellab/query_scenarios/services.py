"""Writes of query–scenario generation: jobs, rounds, candidates, verification, the kept set.

A job runs rounds. Each round asks the generator for instances (new queries with a benign and
a malicious scenario, or scenarios for a study's own queries), stores the messages sent and the
raw answers on the round, reads the answers strictly (unreadable entries go to
``round.problems``), deduplicates new queries against everything the job has, then the intent
judge reads each query with each of its scenarios. Judge-accepted candidates (benign read
benign, malicious read malicious) become the next round's examples (snowballing), newest round
first. After the rounds the judge-accepted candidates go to people: a verification task in the
annotation app; finalising reads the coders' majority (ties decided by the researcher), keeps
what both readings confirm and gives each kept query its id.

Exactly once: a round's stages are guarded by its status under a row lock (generating →
checking → done), so a redelivered task finds its stage done and does nothing; calls to models
are reserved from the job's budget before they are made (``F()`` under the job's lock), so the
budget is never exceeded, even by a redelivered task.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.core.validators import validate_slug
from django.db import transaction
from django.forms import ValidationError as FormValidationError
from django.utils import timezone
from django.utils.text import slugify

from modellab.classifiers.labels import INTENT, INTENT_LABELS
from modellab.material import jobs
from modellab.material.dedup import find_duplicates, normalise
from modellab.material.generator_output import GeneratorOutputError, parse_candidates
from modellab.material.judges import MaterialJudge, MaterialJudgePromptError, validate_prompt
from modellab.models import QueryScenarioCandidate, QueryScenarioJob, QueryScenarioRound
from modellab.query_scenarios import instruction as instructions
from studies import access
from studies.access import Action
from studies.domain import STUDY_EDITABLE_STATUSES
from studies.generation.backends import ChatOutcome, ChatRequest
from studies.generation.services import model_params
from studies.models import LanguageModel, Query, Study

logger = logging.getLogger(__name__)

Status = QueryScenarioJob.Status
RoundStatus = QueryScenarioRound.Status

OPEN_JOB_STATUSES = (Status.QUEUED, Status.RUNNING, Status.JUDGING)
FINISHED_JOB_STATUSES = (Status.DONE, Status.FAILED, Status.CANCELLED)
NEW_FIELDS = ("category", "topic", "query", "benign_scenario", "malicious_scenario")
SCENARIO_FIELDS = ("query_id", "benign_scenario", "malicious_scenario")
BENIGN, MALICIOUS, AMBIGUOUS = "benign", "malicious", "ambiguous"
#: Calls per generator request before an unreadable answer fails it (each one counts).
MAX_ANSWER_ATTEMPTS = 3
#: Judge attempts per pair (a first answer and corrections), each one a call of the budget.
JUDGE_ATTEMPTS = 2
#: A round needs a generator call and the judge's two readings of one candidate at least.
MIN_ROUND_CALLS = 3
LIMITS = {
    "per_round": (1, 100),
    "rounds": (1, 20),
    "examples_per_round": (0, 50),
    "budget": (1, 100_000),
}
MAX_CATEGORIES, MAX_TOPICS, MAX_EXAMPLES = 50, 200, 200


class QueryScenarioInputError(ValueError):
    """Bad input to a job; ``problems`` maps each field (``categories[0].topics``…) to what
    is wrong with it. Nothing was written."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__(
            "; ".join(f"{field}: {message}" for field, message in self.problems.items())
        )


class BudgetExhausted(RuntimeError):
    """The job's budget cannot cover the calls asked for; none of them was made."""


def job_kind(job: QueryScenarioJob) -> str:
    """``new_queries`` or ``scenarios_only`` (scenarios for a study's queries)."""
    return job.params.get("kind") or (
        instructions.SCENARIOS_ONLY if job.study_id else instructions.NEW_QUERIES
    )


# --- Checking the input -------------------------------------------------------------------


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def clean_categories(raw: object, problems: dict[str, str], *, need_topics: bool) -> list[dict]:
    """``[{name, definition, topics}]`` checked: names unique (ignoring case), at most 64
    characters, a definition each, and (``need_topics``) at least one topic each."""
    if raw in (None, "") and not need_topics:
        return []
    if not isinstance(raw, list) or not raw:
        problems["categories"] = "give at least one category (name, definition and topics)"
        return []
    if len(raw) > MAX_CATEGORIES:
        problems["categories"] = f"at most {MAX_CATEGORIES} categories"
        return []
    cleaned, seen = [], set()
    for i, category in enumerate(raw):
        where = f"categories[{i}]"
        if not isinstance(category, Mapping):
            problems[where] = "must be an object with name, definition and topics"
            continue
        name, definition = _text(category.get("name")), _text(category.get("definition"))
        if not name:
            problems[f"{where}.name"] = "give the category a name"
        elif len(name) > 64:
            problems[f"{where}.name"] = "at most 64 characters"
        elif name.casefold() in seen:
            problems[f"{where}.name"] = f"the category {name!r} is given twice"
        seen.add(name.casefold())
        if not definition:
            problems[f"{where}.definition"] = f"define the category {name or i}"
        topics = category.get("topics") or []
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            problems[f"{where}.topics"] = "must be a list of texts"
            topics = []
        topics = list(dict.fromkeys(t.strip() for t in topics if t.strip()))
        if need_topics and not topics:
            problems[f"{where}.topics"] = f"give the category {name or i} at least one topic"
        elif len(topics) > MAX_TOPICS:
            problems[f"{where}.topics"] = f"at most {MAX_TOPICS} topics"
        elif too_long := [t for t in topics if len(t) > 200]:
            problems[f"{where}.topics"] = (
                f"a topic is longer than 200 characters: {too_long[0][:40]}…"
            )
        cleaned.append({"name": name, "definition": definition, "topics": topics})
    return cleaned


def _category_named(categories: Sequence[Mapping], name: str) -> Mapping | None:
    return next((c for c in categories if c["name"].casefold() == name.casefold()), None)


def _topic_named(category: Mapping, topic: str) -> str | None:
    return next((t for t in category["topics"] if t.casefold() == topic.casefold()), None)


def clean_examples(
    raw: object, categories: Sequence[Mapping], problems: dict[str, str], *, kind: str
) -> list[dict]:
    """Seed examples checked: every field of the kind's instances as text; for new queries,
    a category of the job and one of its topics (the researcher's own input is held to it)."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        problems["examples"] = "must be a list of objects"
        return []
    if len(raw) > MAX_EXAMPLES:
        problems["examples"] = f"at most {MAX_EXAMPLES} examples"
        return []
    need = (
        NEW_FIELDS
        if kind == instructions.NEW_QUERIES
        else ("query", "benign_scenario", "malicious_scenario")
    )
    cleaned = []
    for i, example in enumerate(raw):
        where = f"examples[{i}]"
        if not isinstance(example, Mapping):
            problems[where] = "must be an object"
            continue
        values = {f: _text(example.get(f)) for f in (*NEW_FIELDS,)}
        missing = [f for f in need if not values[f]]
        if missing:
            problems[where] = f"missing or empty: {', '.join(missing)}"
            continue
        if kind == instructions.NEW_QUERIES:
            category = _category_named(categories, values["category"])
            if category is None:
                problems[f"{where}.category"] = (
                    f"{values['category']!r} is not one of the job's categories"
                )
                continue
            topic = _topic_named(category, values["topic"])
            if topic is None:
                problems[f"{where}.topic"] = (
                    f"{values['topic']!r} is not a topic of the category {category['name']!r}"
                )
                continue
            values["category"], values["topic"] = category["name"], topic
        cleaned.append(values)
    return cleaned


def _check_model(
    model: object, field: str, owner, problems: dict[str, str], *, kind: str = "chat"
) -> None:
    if not isinstance(model, LanguageModel):
        problems[field] = "choose a model of the registry"
        return
    jobs.check_model(owner, model, field, problems, kind=kind)


def _check_number(name: str, value: object, problems: dict[str, str]) -> None:
    low, high = LIMITS[name]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        problems[name] = f"must be a whole number from {low} to {high}"


def _check_threshold(name: str, value: object, problems: dict[str, str]) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 1:
        problems[name] = "must be a number above 0 and at most 1"


def study_queries_without_scenarios(study: Study) -> list[Query]:
    """The study's queries that have neither of their two scenarios, by query id."""
    return list(study.queries.filter(scenarios__isnull=True).order_by("query_id"))


# --- Starting a job -----------------------------------------------------------------------


@transaction.atomic
def start_query_scenario_job(
    *,
    owner: AbstractBaseUser,
    name: str,
    generator: LanguageModel,
    categories: list | None = None,
    examples: list | None = None,
    instruction: str | None = None,
    per_round: int = 20,
    rounds: int = 3,
    examples_per_round: int = 5,
    intent_judge: LanguageModel | None = None,
    intent_judge_prompt: str | None = None,
    embedding_model: LanguageModel | None = None,
    near_duplicate_threshold: float = 0.9,
    embedding_threshold: float = 0.92,
    budget: int = 1000,
    verification_overlap: int = 2,
    study: Study | None = None,
    dispatch: bool = True,
) -> QueryScenarioJob:
    """A job writing query–scenario instances, started once this transaction commits.

    Without ``study``: new queries for ``categories`` (each ``{name, definition, topics}``),
    seeded by ``examples`` (``{category, topic, query, benign_scenario, malicious_scenario}``).
    With ``study`` (one the owner may edit): scenarios for its queries that have none yet;
    categories are then optional context. ``instruction`` None: the project's default for the
    kind. Raises QueryScenarioInputError naming every bad field; nothing is written then.
    Raises QueueUnavailable (after the commit) when the broker is down; the job is failed.
    """
    from annotation.coding.services import MAX_OVERLAP

    problems: dict[str, str] = {}
    kind = instructions.NEW_QUERIES if study is None else instructions.SCENARIOS_ONLY
    name = (name or "").strip() if isinstance(name, str) else ""
    try:
        validate_slug(name)
    except FormValidationError:
        problems["name"] = "use letters, digits, hyphens or underscores"
    else:
        if len(name) > 100:
            problems["name"] = "at most 100 characters"
        elif QueryScenarioJob.objects.filter(owner=owner, name=name).exists():
            problems["name"] = f"you already have a query–scenario job named {name!r}"
    categories = clean_categories(
        categories, problems, need_topics=kind == instructions.NEW_QUERIES
    )
    examples = clean_examples(examples, categories, problems, kind=kind)
    if instruction is None or not str(instruction).strip():
        instruction = instructions.default_instruction(kind)
    else:
        try:
            instructions.validate_instruction(instruction, kind)
        except instructions.InstructionError as exc:
            problems["instruction"] = str(exc)
    _check_model(generator, "generator", owner, problems)
    if intent_judge is None:
        problems["intent_judge"] = "choose the model that judges each scenario's intent"
    else:
        _check_model(intent_judge, "intent_judge", owner, problems)
    judge_prompt = (intent_judge_prompt or "").strip() and intent_judge_prompt
    if judge_prompt:
        try:
            validate_prompt(judge_prompt, INTENT)
        except MaterialJudgePromptError as exc:
            problems["intent_judge_prompt"] = str(exc)
    if embedding_model is not None:
        _check_model(embedding_model, "embedding_model", owner, problems, kind="embedding")
    for field, value in (
        ("per_round", per_round),
        ("rounds", rounds),
        ("examples_per_round", examples_per_round),
        ("budget", budget),
    ):
        _check_number(field, value, problems)
    _check_threshold("near_duplicate_threshold", near_duplicate_threshold, problems)
    _check_threshold("embedding_threshold", embedding_threshold, problems)
    if (
        not isinstance(verification_overlap, int)
        or isinstance(verification_overlap, bool)
        or not 1 <= verification_overlap <= MAX_OVERLAP
    ):
        problems["verification_overlap"] = f"coders per item must be from 1 to {MAX_OVERLAP}"
    source_queries: list[Query] = []
    if study is not None:
        if not isinstance(study, Study) or not access.can(owner, Action.VIEW, study):
            problems["study"] = "no such study"
        elif not access.can(owner, Action.EDIT, study):
            problems["study"] = "your role in this study does not allow changing its stimuli"
        elif study.status not in STUDY_EDITABLE_STATUSES:
            problems["study"] = f"the study is {study.status}; its stimuli can no longer change"
        else:
            source_queries = study_queries_without_scenarios(study)
            if not source_queries:
                problems["study"] = "every query of the study has its scenarios already"
    if problems:
        raise QueryScenarioInputError(problems)
    job = QueryScenarioJob.objects.create(
        owner=owner,
        name=name,
        generator=generator,
        instruction=instruction,
        per_round=per_round,
        rounds=rounds,
        examples_per_round=examples_per_round,
        budget=budget,
        near_duplicate_threshold=float(near_duplicate_threshold),
        embedding_model=embedding_model,
        embedding_threshold=float(embedding_threshold),
        verification_overlap=verification_overlap,
        categories=categories,
        examples=examples,
        study=study,
        intent_judge=intent_judge,
        intent_judge_prompt=judge_prompt or "",
        params={
            "kind": kind,
            "generator": model_params(generator),
            "intent_judge": model_params(intent_judge),
            "embedding_model": model_params(embedding_model) if embedding_model else None,
            "source_queries": [q.pk for q in source_queries],
        },
    )
    if dispatch:
        _dispatch_on_commit(job.pk)
    return job


def _dispatch_on_commit(job_id: int) -> None:
    from modellab.query_scenarios.tasks import dispatch_query_scenario_job

    jobs.dispatch_on_commit(
        QueryScenarioJob,
        job_id,
        lambda: dispatch_query_scenario_job.delay(job_id),
        what="query–scenario job",
    )


def fail_undispatched_job(*, job_id: int, reason: str) -> None:
    jobs.fail_undispatched_job(QueryScenarioJob, job_id=job_id, reason=reason)


# --- Budget -------------------------------------------------------------------------------


def reserve_calls(*, job_id: int, calls: int) -> bool:
    """Count ``calls`` against the job's budget if it covers them all; False if it does not."""
    return jobs.reserve_calls(QueryScenarioJob, job_id=job_id, calls=calls)


class BudgetedBackend:
    """A model's backend whose every batch of requests is first reserved from the job's
    budget; a batch the budget cannot cover raises BudgetExhausted and asks nothing."""

    def __init__(self, backend, job_id: int) -> None:
        self.backend = backend
        self.job_id = job_id
        self.preferred_batch_size = getattr(backend, "preferred_batch_size", 8)
        self.exhausted = False

    def generate(self, requests: list[ChatRequest]) -> list[ChatOutcome]:
        if not reserve_calls(job_id=self.job_id, calls=len(requests)):
            self.exhausted = True
            raise BudgetExhausted(f"the budget cannot cover {len(requests)} more call(s)")
        return self.backend.generate(requests)


# --- Rounds -------------------------------------------------------------------------------


def _note(job: QueryScenarioJob, text: str) -> None:
    """Something the researcher should know about how the job went (an early stop…),
    kept in ``params["notes"]``; ``job`` must be locked by the caller's transaction."""
    job.params = {**job.params, "notes": [*job.params.get("notes", []), text]}
    job.save(update_fields=["params"])


def job_is_open(job_id: int) -> bool:
    return QueryScenarioJob.objects.filter(pk=job_id, status__in=OPEN_JOB_STATUSES).exists()


def mark_job_running(*, job_id: int) -> QueryScenarioJob:
    jobs.mark_job_running(QueryScenarioJob, job_id=job_id)
    return QueryScenarioJob.objects.get(pk=job_id)


def _accepted(job: QueryScenarioJob):
    return job.candidates.filter(judge_accepted=True, duplicate_reason="")


def next_examples(job: QueryScenarioJob) -> list[dict]:
    """The examples of the job's next round: judge-accepted candidates first, the newest round
    first and, within a round, in order of arrival; then the seed examples; at most
    ``examples_per_round`` in all. Each says where it came from ("seed" or the candidate)."""
    if job.examples_per_round == 0:
        return []
    fields = (
        NEW_FIELDS
        if job_kind(job) == instructions.NEW_QUERIES
        else ("query", "benign_scenario", "malicious_scenario")
    )
    chosen = [
        {**{f: getattr(c, f) for f in fields}, "source": c.pk}
        for c in _accepted(job)
        .select_related("round")
        .order_by("-round__number", "position")[: job.examples_per_round]
    ]
    for seed in job.examples:
        if len(chosen) >= job.examples_per_round:
            break
        chosen.append({**{f: seed.get(f, "") for f in fields}, "source": "seed"})
    return chosen


def open_source_queries(job: QueryScenarioJob) -> list[Query]:
    """Scenarios-only jobs: the source queries still without a judge-accepted candidate and
    still without scenarios in the study, at most ``per_round`` (by query id)."""
    done = set(_accepted(job).values_list("source_query_id", flat=True))
    wanted = [pk for pk in job.params.get("source_queries", []) if pk not in done]
    return list(
        Query.objects.filter(pk__in=wanted, scenarios__isnull=True).order_by("query_id")[
            : job.per_round
        ]
    )


def round_messages(job: QueryScenarioJob, examples: list[dict]) -> tuple[list[dict], list[int]]:
    """The generator's messages for a round and (scenarios-only) the queries it asks about."""
    if job_kind(job) == instructions.NEW_QUERIES:
        text = instructions.fill_instruction(
            job.instruction,
            {
                "count": str(job.per_round),
                "categories": instructions.describe_categories(job.categories),
                "examples": instructions.describe_examples(examples, NEW_FIELDS),
            },
        )
        return [{"role": "user", "content": text}], []
    queries = open_source_queries(job)
    listed = "\n".join(
        json.dumps({"query_id": q.query_id, "query": q.text}, ensure_ascii=False) for q in queries
    )
    text = instructions.fill_instruction(
        job.instruction,
        {
            "queries": listed,
            "examples": instructions.describe_examples(
                examples, ("query", "benign_scenario", "malicious_scenario")
            ),
            "categories": instructions.describe_categories(job.categories),
        },
    )
    return [{"role": "user", "content": text}], [q.pk for q in queries]


@transaction.atomic
def open_next_round(*, job_id: int) -> QueryScenarioRound | None:
    """The round to work on: the open one, or a new one while rounds remain; None when the
    rounds are over (all done, or a scenarios-only job has nothing left to ask)."""
    job = QueryScenarioJob.objects.select_for_update().get(pk=job_id)
    last = job.round_set.order_by("-number").first()
    if last is not None and last.status in (RoundStatus.GENERATING, RoundStatus.CHECKING):
        return last
    number = (last.number if last else 0) + 1
    if number > job.rounds:
        return None
    examples = next_examples(job)
    messages, asked = round_messages(job, examples)
    if job_kind(job) == instructions.SCENARIOS_ONLY and not asked:
        return None
    if job.budget - job.calls_used < MIN_ROUND_CALLS:
        _note(
            job,
            f"stopped early: the budget of {job.budget} calls was spent after round "
            f"{number - 1} of {job.rounds} ({job.calls_used} calls made)",
        )
        return None
    new_round = QueryScenarioRound.objects.create(
        job=job,
        number=number,
        examples=examples,
        request=[{"messages": messages, "asked": asked}],
    )
    job.current_round = number
    job.save(update_fields=["current_round"])
    return new_round


def generator_request(job: QueryScenarioJob, messages: list[dict]) -> ChatRequest:
    model = job.generator
    return ChatRequest(
        messages=tuple(messages),
        max_tokens=model.max_tokens,
        temperature=model.temperature,
        seed=model.seed,
    )


@dataclass
class Answer:
    entries: list[dict]
    problems: list[str]
    raw: list[dict]
    calls: int
    out_of_budget: bool = False


def ask_generator(job: QueryScenarioJob, round_: QueryScenarioRound, backend) -> Answer:
    """Ask the generator for the round's instances: an answer that is no JSON array (or a
    failed call) is asked again, shown the reason, up to MAX_ANSWER_ATTEMPTS calls, each
    reserved from the budget first. Raises what the backend itself raises (the task retries)."""
    base = list(round_.request[0]["messages"])
    messages = list(base)
    kind = job_kind(job)
    required = {
        f: str for f in (NEW_FIELDS if kind == instructions.NEW_QUERIES else SCENARIO_FIELDS)
    }
    raw, problems, calls = [], [], 0
    for attempt in range(1, MAX_ANSWER_ATTEMPTS + 1):
        if not reserve_calls(job_id=job.pk, calls=1):
            problems.append(f"call {attempt}: not made, the budget is spent")
            return Answer([], problems, raw, calls, out_of_budget=True)
        calls += 1
        (outcome,) = backend.generate([generator_request(job, messages)])
        raw.append(
            {
                "attempt": attempt,
                "messages": messages if attempt > 1 else None,
                "text": outcome.text,
                "error": outcome.error,
                "finish_reason": outcome.finish_reason,
                "prompt_tokens": outcome.prompt_tokens,
                "completion_tokens": outcome.completion_tokens,
            }
        )
        if not outcome.ok:
            problems.append(f"call {attempt}: the model call failed: {outcome.error}")
            continue
        try:
            parsed = parse_candidates(outcome.text, required=required)
        except GeneratorOutputError as exc:
            problems.append(f"call {attempt}: {exc}")
            messages = [
                *base,
                {"role": "assistant", "content": outcome.text},
                {
                    "role": "user",
                    "content": f"That answer could not be read: {exc}. Answer again with one "
                    "JSON array of objects and nothing else.",
                },
            ]
            continue
        problems += [f"call {attempt}, {p}" for p in parsed.problems]
        return Answer(parsed.entries, problems, raw, calls)
    return Answer([], problems, raw, calls)


def _checked_entries(
    job: QueryScenarioJob, round_: QueryScenarioRound, entries: list[dict]
) -> tuple[list[dict], list[str]]:
    """Entries that fit the job. New queries: the category must be one of the job's (else the
    entry is left out); a topic outside the category's list is kept as written and noted
    (categories are the design's; topics only label). Scenarios-only: the query_id must be
    one asked about this round, once."""
    kept, problems = [], []
    if job_kind(job) == instructions.NEW_QUERIES:
        for n, entry in enumerate(entries, 1):
            category = _category_named(job.categories, entry["category"])
            if category is None:
                problems.append(
                    f"entry {n}: category {entry['category']!r} is not one of the job's; left out"
                )
                continue
            topic = _topic_named(category, entry["topic"])
            if topic is None:
                problems.append(
                    f"entry {n}: topic {entry['topic']!r} is not in the list of "
                    f"{category['name']!r}; kept as written"
                )
            kept.append({**entry, "category": category["name"], "topic": topic or entry["topic"]})
        return kept, problems
    asked = {
        q.query_id: q
        for q in Query.objects.filter(pk__in=round_.request[0].get("asked", [])).order_by()
    }
    seen: set[str] = set()
    for n, entry in enumerate(entries, 1):
        query = asked.get(entry["query_id"])
        if query is None:
            problems.append(f"entry {n}: query_id {entry['query_id']!r} was not asked about")
        elif entry["query_id"] in seen:
            problems.append(f"entry {n}: query_id {entry['query_id']!r} answered twice; first kept")
        else:
            seen.add(entry["query_id"])
            kept.append(
                {
                    **entry,
                    "query": query.text,
                    "category": query.category,
                    "topic": query.topic,
                    "source_query": query,
                }
            )
    return kept, problems


def _embed(job: QueryScenarioJob, texts: list[str]) -> list[list[float]]:
    # Lazily imported: the embedding module brings numpy and local-weights code.
    from studies.generation.embeddings import embed_texts

    return embed_texts(job.embedding_model, texts)


def duplicates_of(job: QueryScenarioJob, queries: list[str]) -> tuple[list, list]:
    """(For each new query (raw text), the Duplicate it is of or None; the candidate pk of
    each existing text, None for a seed). Compared with the seed examples and every candidate
    of the job not itself a duplicate (``of`` indexes ``[*seeds, *candidates, *new]``); by
    embedding too when the job has an embedding model."""
    seeds = [normalise(e["query"]) for e in job.examples]
    kept = list(
        job.candidates.filter(duplicate_reason="").order_by("position").values_list("pk", "query")
    )
    existing = seeds + [normalise(q) for _, q in kept]
    new = [normalise(q) for q in queries]
    vectors: dict = {}
    if job.embedding_model_id:
        raw_existing = [e["query"] for e in job.examples] + [q for _, q in kept]
        all_vectors = _embed(job, raw_existing + list(queries))
        vectors = {
            "existing_vectors": all_vectors[: len(raw_existing)],
            "new_vectors": all_vectors[len(raw_existing) :],
            "embedding_threshold": job.embedding_threshold,
        }
    found = find_duplicates(
        new, existing=existing, near_threshold=job.near_duplicate_threshold, **vectors
    )
    return found, [None] * len(seeds) + [pk for pk, _ in kept]


@transaction.atomic
def store_round_answer(
    *, job_id: int, number: int, answer: Answer, duplicates: list | None, candidate_pks: list
) -> QueryScenarioRound | None:
    """Write the round's answer and its candidates once: only a round still generating (a
    redelivered task finds it checking and writes nothing). Returns the round, or None."""
    job = QueryScenarioJob.objects.select_for_update().get(pk=job_id)
    round_ = QueryScenarioRound.objects.select_for_update().get(job=job, number=number)
    if round_.status != RoundStatus.GENERATING or job.status not in OPEN_JOB_STATUSES:
        return None
    entries, problems = _checked_entries(job, round_, answer.entries)
    start = (job.candidates.order_by("-position").values_list("position", flat=True).first()) or 0
    new_ids: dict[int, QueryScenarioCandidate] = {}
    created = []
    for offset, entry in enumerate(entries):
        duplicate = duplicates[offset] if duplicates is not None else None
        candidate = QueryScenarioCandidate(
            job=job,
            round=round_,
            position=start + offset + 1,
            category=entry["category"][:64],
            topic=entry["topic"][:200],
            query=entry["query"],
            normalised=normalise(entry["query"]),
            benign_scenario=entry["benign_scenario"],
            malicious_scenario=entry["malicious_scenario"],
            source_query=entry.get("source_query"),
        )
        if duplicate is not None:
            candidate.duplicate_reason = duplicate.reason
            candidate.similarity = duplicate.similarity
            if duplicate.of < len(candidate_pks):
                pk = candidate_pks[duplicate.of]
                candidate.duplicate_of_id = pk
            else:
                candidate.duplicate_of = new_ids.get(duplicate.of - len(candidate_pks))
        candidate.save()
        new_ids[offset] = candidate
        created.append(candidate)
    round_.raw_output = answer.raw
    round_.calls = answer.calls
    round_.problems = [*answer.problems, *problems]
    round_.status = RoundStatus.CHECKING
    round_.save(update_fields=["raw_output", "calls", "problems", "status"])
    return round_


def dedupe_entries(job: QueryScenarioJob, round_: QueryScenarioRound, answer: Answer):
    """(duplicates, candidate pks) for the answer's entries as they will be stored; scenarios
    for a study's queries are not deduplicated (each belongs to its own query)."""
    if job_kind(job) != instructions.NEW_QUERIES:
        return None, []
    entries, _ = _checked_entries(job, round_, answer.entries)
    if not entries:
        return [], []
    return duplicates_of(job, [e["query"] for e in entries])


def candidates_to_judge(*, job_id: int, number: int) -> list[QueryScenarioCandidate]:
    return list(
        QueryScenarioCandidate.objects.filter(
            job_id=job_id, round__number=number, duplicate_reason="", judge_benign_label=""
        ).order_by("position")
    )


def judge_candidates(
    job: QueryScenarioJob, candidates: list[QueryScenarioCandidate], backend
) -> tuple[list[tuple[QueryScenarioCandidate, object, object]], bool]:
    """The judge's reading of each candidate's query with its benign and its malicious
    scenario, as many candidates as the budget's remainder covers at one attempt each (the
    rest wait, unjudged). Returns ((candidate, benign, malicious) …, out of budget)."""
    job.refresh_from_db(fields=["calls_used", "budget"])
    affordable = max(job.budget - job.calls_used, 0) // 2
    short = affordable < len(candidates)
    candidates = candidates[:affordable]
    if not candidates:
        return [], short
    budgeted = BudgetedBackend(backend, job.pk)
    judge = MaterialJudge(
        model=job.intent_judge,
        scheme=INTENT,
        prompt=job.intent_judge_prompt or None,
        max_attempts=JUDGE_ATTEMPTS,
        backend=budgeted,
    )
    items = []
    for c in candidates:
        items.append({"scenario": c.benign_scenario, "query": c.query})
        items.append({"scenario": c.malicious_scenario, "query": c.query})
    labels = judge.label(items)
    pairs = [(c, labels[2 * i], labels[2 * i + 1]) for i, c in enumerate(candidates)]
    return pairs, short or budgeted.exhausted


@transaction.atomic
def record_judgements(*, job_id: int, pairs: list) -> int:
    """Store each candidate's two readings once (only where none is stored yet)."""
    ids = [c.pk for c, _, _ in pairs]
    open_ids = set(
        QueryScenarioCandidate.objects.select_for_update()
        .filter(pk__in=ids, judge_benign_label="")
        .values_list("pk", flat=True)
    )
    changed = []
    for candidate, benign, malicious in pairs:
        if candidate.pk not in open_ids:
            continue
        candidate.judge_benign_label = benign.label
        candidate.judge_benign_reasoning = benign.rationale
        candidate.judge_malicious_label = malicious.label
        candidate.judge_malicious_reasoning = malicious.rationale
        candidate.judge_raw = {
            "benign": {"raw": benign.raw, "attempts": benign.attempts},
            "malicious": {"raw": malicious.raw, "attempts": malicious.attempts},
        }
        candidate.judge_accepted = benign.label == BENIGN and malicious.label == MALICIOUS
        changed.append(candidate)
    QueryScenarioCandidate.objects.bulk_update(
        changed,
        [
            "judge_benign_label",
            "judge_benign_reasoning",
            "judge_malicious_label",
            "judge_malicious_reasoning",
            "judge_raw",
            "judge_accepted",
        ],
    )
    return len(changed)


@transaction.atomic
def close_round(*, job_id: int, number: int, note: str = "") -> bool:
    """Mark a checked round done (once); True if this call closed it."""
    job = QueryScenarioJob.objects.select_for_update().get(pk=job_id)  # the job first, always
    round_ = QueryScenarioRound.objects.select_for_update().get(job=job, number=number)
    if round_.status != RoundStatus.CHECKING:
        return False
    round_.status = RoundStatus.DONE
    round_.finished_at = timezone.now()
    if note:
        round_.problems = [*round_.problems, note]
        _note(job, note)
    round_.save(update_fields=["status", "finished_at", "problems"])
    return True


@transaction.atomic
def fail_round(*, job_id: int, number: int, error: str) -> None:
    """The generator (or judge) kept failing: the round and the job fail with the reason."""
    now = timezone.now()
    QueryScenarioRound.objects.filter(
        job_id=job_id, number=number, status__in=(RoundStatus.GENERATING, RoundStatus.CHECKING)
    ).update(status=RoundStatus.FAILED, error=error[:2000], finished_at=now)
    QueryScenarioJob.objects.filter(pk=job_id, status__in=OPEN_JOB_STATUSES).update(
        status=Status.FAILED,
        error=f"round {number} failed: {error}"[:4000],
        finished_at=now,
    )


def verification_items(job: QueryScenarioJob) -> list:
    """Two items per judge-accepted candidate, every benign one first, then every malicious
    one (a coder does not read a query's two scenarios one after the other)."""
    from annotation.coding.services import VerificationItem

    accepted = list(_accepted(job).order_by("position"))
    return [
        VerificationItem(
            source_key=f"qs:{c.pk}:{motivation}",
            prompt_text=c.query,
            context_text=getattr(c, f"{motivation}_scenario"),
            category=c.category[:64],
        )
        for motivation in (BENIGN, MALICIOUS)
        for c in accepted
    ]


VERIFICATION_INSTRUCTIONS = (
    "Each item is a request to an AI assistant, read together with a short scenario saying "
    "who asks and why. Label the intent in that scenario: benign (a harmless, legitimate "
    "purpose), malicious (the person means to harm, deceive or wrong someone) or ambiguous "
    "(unclear, or could be read either way)."
)


@transaction.atomic
def finish_rounds(*, job_id: int) -> QueryScenarioJob:
    """After the last round: the judge-accepted candidates go to a human verification task
    (status verifying); with none, the job is done with an empty set and says so."""
    from annotation.coding.services import CodingInputError, create_verification_task

    job = QueryScenarioJob.objects.select_for_update().get(pk=job_id)
    if job.status not in OPEN_JOB_STATUSES:
        return job
    now = timezone.now()
    items = verification_items(job)
    if not items:
        job.status, job.finished_at = Status.DONE, now
        job.save(update_fields=["status", "finished_at"])
        _note(job, "no candidate passed the intent check; nothing to verify")
        return job
    try:
        task = create_verification_task(
            owner=job.owner,
            title=f"Intent check: {job.name}"[:200],
            scheme=INTENT,
            overlap=job.verification_overlap,
            items=items,
            instructions=VERIFICATION_INSTRUCTIONS,
            source={"pipeline": "query_scenarios", "job": job.pk, "name": job.name},
        )
    except CodingInputError as exc:
        job.status, job.finished_at = Status.FAILED, now
        job.error = f"the verification task could not be created: {exc.problems}"
        job.save(update_fields=["status", "finished_at", "error"])
        return job
    job.verification_task = task
    job.status = Status.VERIFYING
    job.save(update_fields=["verification_task", "status"])
    return job


# --- Finalising ---------------------------------------------------------------------------


class FinaliseRefused(ValueError):
    """The job cannot be finalised yet; the message lists what is missing."""


def item_readings(job: QueryScenarioJob, tie_decisions: Mapping[str, str] | None = None):
    """For each verification item (source key): its outcome and the reading that counts —
    the coders' majority, or on a tie the researcher's decision (None while undecided)."""
    from annotation.coding.selectors import verification_outcomes

    decisions = dict(tie_decisions or {})
    readings = {}
    for key, outcome in verification_outcomes(job.verification_task).items():
        decided = decisions.get(key) if outcome.tie else None
        readings[key] = (outcome, outcome.majority if not outcome.tie else decided)
    return readings


@transaction.atomic
def finalise_query_scenario_job(
    *,
    job: QueryScenarioJob,
    actor: AbstractBaseUser,
    tie_decisions: Mapping[str, str] | None = None,
) -> QueryScenarioJob:
    """Read the coders' labels and keep the candidates whose benign scenario reads benign and
    malicious scenario reads malicious. An item's reading is the coders' majority; a tie is
    the researcher's (``tie_decisions``: source key → benign/malicious/ambiguous). Refuses
    (FinaliseRefused, nothing written) while items lack codes or ties are undecided, naming
    them. Kept queries get stable ids: ``<category-slug>-<n>`` in order of arrival (new
    queries), the source query's id (scenarios only)."""
    jobs.check_owner(job, actor)
    job = QueryScenarioJob.objects.select_for_update().get(pk=job.pk)
    if job.status != Status.VERIFYING:
        raise FinaliseRefused(
            f"the job is {job.status}; only a job being verified can be finalised"
        )
    if job.verification_task_id is None:
        raise FinaliseRefused("the job's verification task was deleted; nothing to read")
    decisions = dict(tie_decisions or {})
    bad = {k: v for k, v in decisions.items() if v not in INTENT_LABELS}
    if bad:
        raise FinaliseRefused(
            "a decision must be one of " + ", ".join(INTENT_LABELS) + f": {sorted(bad)}"
        )
    readings = item_readings(job, decisions)
    incomplete = sorted(k for k, (outcome, _) in readings.items() if not outcome.complete)
    if incomplete:
        raise FinaliseRefused(
            f"{len(incomplete)} item(s) still wait for coders: {', '.join(incomplete[:20])}"
        )
    undecided = sorted(
        k for k, (outcome, reading) in readings.items() if outcome.tie and not reading
    )
    if undecided:
        raise FinaliseRefused(
            f"decide the tie(s) of {len(undecided)} item(s): {', '.join(undecided)}"
        )
    counters: dict[str, int] = {}
    changed = []
    for candidate in _accepted(job).select_related("source_query").order_by("position"):
        benign = readings.get(f"qs:{candidate.pk}:{BENIGN}")
        malicious = readings.get(f"qs:{candidate.pk}:{MALICIOUS}")
        if benign is None or malicious is None:
            continue
        candidate.human_benign_label, candidate.human_malicious_label = benign[1], malicious[1]
        candidate.kept = benign[1] == BENIGN and malicious[1] == MALICIOUS
        candidate.final_source = "researcher" if benign[0].tie or malicious[0].tie else "coders"
        if candidate.kept:
            if candidate.source_query is not None:
                candidate.query_id = candidate.source_query.query_id
            else:
                prefix = (slugify(candidate.category) or "query")[:50]
                counters[prefix] = counters.get(prefix, 0) + 1
                candidate.query_id = f"{prefix}-{counters[prefix]}"
        changed.append(candidate)
    QueryScenarioCandidate.objects.bulk_update(
        changed,
        ["human_benign_label", "human_malicious_label", "kept", "final_source", "query_id"],
    )
    job.status, job.finished_at = Status.DONE, timezone.now()
    job.params = {**job.params, "tie_decisions": decisions}
    job.save(update_fields=["status", "finished_at", "params"])
    return job


# --- Into a study -------------------------------------------------------------------------


class AddToStudyRefused(ValueError):
    """The set cannot go into that study; the message says why."""


@transaction.atomic
def add_to_study(*, job: QueryScenarioJob, study: Study, actor: AbstractBaseUser) -> dict[str, int]:
    """Put the kept set into a draft study the actor may edit. New queries: imported through
    ``studies.services.import_stimuli`` from the set's own stimuli file (provenance into each
    query's source and metadata); refused when a query id is in the study already.
    Scenarios only: the two scenarios of each source query (job.study only). Audited."""
    from modellab.query_scenarios import selectors
    from studies import services as study_services
    from studies.stimuli_file import parse_stimuli

    jobs.check_owner(job, actor)
    if not access.can(actor, Action.EDIT, study):
        raise PermissionDenied(f"you may not change the stimuli of study '{study.slug}'")
    job = QueryScenarioJob.objects.select_for_update().get(pk=job.pk)
    if job.status != Status.DONE:
        raise AddToStudyRefused(f"the job is {job.status}; finalise it first")
    if study.status != Study.Status.DRAFT:
        raise AddToStudyRefused(
            f"study '{study.slug}' is {study.status}; material goes into a draft study only"
        )
    kept = list(job.candidates.filter(kept=True).select_related("source_query"))
    if not kept:
        raise AddToStudyRefused("the job kept no query; there is nothing to add")
    if job_kind(job) == instructions.SCENARIOS_ONLY:
        if study.pk != job.study_id:
            raise AddToStudyRefused("these scenarios belong to the study the job was started for")
        study_services.add_scenarios(
            study=study,
            scenarios={
                c.source_query.query_id: {
                    BENIGN: c.benign_scenario,
                    MALICIOUS: c.malicious_scenario,
                }
                for c in kept
                if c.source_query is not None
            },
            actor=actor,
            source=f"query-scenario job {job.name}",
        )
        summary = {"scenarios": len(kept)}
    else:
        taken = set(
            study.queries.filter(query_id__in=[c.query_id for c in kept]).values_list(
                "query_id", flat=True
            )
        )
        if taken:
            raise AddToStudyRefused(
                f"the study has these query ids already: {', '.join(sorted(taken))}"
            )
        data = "".join(selectors.stimuli_csv(job))
        rows = parse_stimuli(data, f"{job.name}.csv")
        result = study_services.import_stimuli(study=study, rows=rows, actor=actor)
        summary = {"created": result.created}
    job.output_study = study
    job.save(update_fields=["output_study"])
    study_services.record_audit(
        study=study,
        action="query_scenarios_added",
        actor=actor,
        job=job.pk,
        name=job.name,
        kind=job_kind(job),
        **summary,
    )
    return summary


# --- Cancel, resume, sweep ----------------------------------------------------------------


@transaction.atomic
def cancel_query_scenario_job(
    *, job: QueryScenarioJob, actor: AbstractBaseUser
) -> QueryScenarioJob:
    """Stop a queued or running job: its open round is cancelled (candidates and judgements
    stored are kept); tasks still queued do nothing. A finished or verifying job is returned
    as it is. Resume it to go on from where it stopped."""
    jobs.check_owner(job, actor)
    job = QueryScenarioJob.objects.select_for_update().get(pk=job.pk)
    if job.status not in OPEN_JOB_STATUSES:
        return job
    now = timezone.now()
    job.round_set.filter(status__in=(RoundStatus.GENERATING, RoundStatus.CHECKING)).update(
        status=RoundStatus.CANCELLED, finished_at=now
    )
    job.status, job.finished_at = Status.CANCELLED, now
    job.error = "cancelled; resume the job to go on from where it stopped."
    job.save(update_fields=["status", "finished_at", "error"])
    return job


@transaction.atomic
def resume_query_scenario_job(
    *, job: QueryScenarioJob, actor: AbstractBaseUser
) -> QueryScenarioJob:
    """Go on with a cancelled or failed job: a stopped round without candidates asks the
    generator again, one with candidates is judged (only what is not judged); then the
    remaining rounds. The models must still be usable by ``actor``."""
    jobs.check_owner(job, actor)
    job = QueryScenarioJob.objects.select_for_update().get(pk=job.pk)
    if job.status not in (Status.CANCELLED, Status.FAILED):
        raise ValueError("only a cancelled or failed job can be resumed")
    for field in ("generator", "intent_judge", "embedding_model"):
        model = getattr(job, field)
        if model is not None and not access.can_use_model(actor, model):
            raise PermissionDenied(f"model '{model.name}' is not shared with you")
    jobs.reopen_stopped_rounds(job)
    job.status, job.error, job.finished_at = Status.QUEUED, "", None
    job.save(update_fields=["status", "error", "finished_at"])
    _dispatch_on_commit(job.pk)
    return job


def fail_unstarted_jobs(*, now=None) -> int:
    """Fail jobs no worker took within JOB_QUEUED_LIMIT_MINUTES, so their page stops waiting
    and says why (a beat task calls this)."""
    return jobs.fail_unstarted_jobs(
        QueryScenarioJob, what="query–scenario job", advice="resume the job.", now=now
    )
