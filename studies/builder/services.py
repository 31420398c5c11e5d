"""Writes of the study builder: create, edit and duplicate a study, always through its spec.

Every write goes ``spec_dict`` → change → ``load_spec_data`` (the validator spec files use)
→ ``services.import_study``, so a study built in the browser is exactly a spec file's study.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Q

from studies import selectors, services
from studies.domain import RESPONSE_TYPES
from studies.errors import StudyStateError
from studies.models import Query, ResponseVariant, Scenario, Study
from studies.spec import SpecError, SpecProblem, load_spec, load_spec_data, spec_dict

SEED_SPEC_PATH = Path(settings.BASE_DIR) / "examples" / "refusal-perception" / "study.yaml"
# "new" would be shadowed by the builder's own /studies/new/ page.
RESERVED_SLUGS = frozenset({"new"})
FIVE_TYPES = list(RESPONSE_TYPES)


class SlugTaken(ValueError):
    """Another study already has this slug (a create never updates an existing study)."""


def _lock_slug(slug: str) -> None:
    # import_study updates a study that exists: two creates racing for one slug must not
    # let the second update the first's new study, so creates of a slug take turns.
    # SQLite (the demo's fallback) serialises every write transaction anyway.
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"study-slug:{slug}"])


def _check_slug_free(slug: str) -> None:
    if slug in RESERVED_SLUGS:
        raise SlugTaken(f"'{slug}' is reserved for the builder's pages; choose another slug")
    if Study.objects.filter(slug=slug).exists():
        raise SlugTaken(f"a study with the slug '{slug}' exists already; choose another slug")


def unique_slug(base: str) -> str:
    """``base``, or ``base-2``, ``base-3``… whichever no study uses yet (max 80 characters)."""
    base = base[:80].rstrip("-") or "study"
    slug, n = base, 1
    while slug in RESERVED_SLUGS or Study.objects.filter(slug=slug).exists():
        n += 1
        suffix = f"-{n}"
        slug = base[: 80 - len(suffix)].rstrip("-") + suffix
    return slug


def starting_spec(design: str, *, slug: str, title: str) -> dict:
    """The spec data a new study starts from (not yet validated)."""
    if design == "seed":
        with SEED_SPEC_PATH.open(encoding="utf-8") as handle:
            data = spec_dict(load_spec(handle.read(), str(SEED_SPEC_PATH)))
        data.pop("stimuli", None)  # the builder's study starts without stimuli
        return {**data, "slug": slug, "title": title}
    return {
        "slug": slug,
        "title": title,
        "description": "",
        "consent": (
            "## Consent to take part\n\nDescribe the study, that taking part is voluntary "
            "and how the data are used.\n\nBy continuing you agree to take part."
        ),
        "instructions": (
            "Imagine you are the person described in each scenario. Read the request and "
            "the assistant's response, then answer the statement below it."
        ),
        "target_participants": 100,
        "items_per_participant": len(FIVE_TYPES),
        "time_limit_minutes": 30,
        # A random code, so two new studies never share one by accident.
        "completion": {"code": secrets.token_hex(4).upper(), "url": ""},
        "anonymous_links": False,
        "topic_choice": False,
        "seed": secrets.randbelow(2**31),
        "factors": [
            {"name": "response_type", "levels": list(FIVE_TYPES), "assignment": "within"},
            {"name": "motivation", "levels": ["benign", "malicious"], "assignment": "between"},
        ],
        "response_rule": [{"show": "$response_type"}],
        "questions": [
            {
                "key": "helpfulness",
                "construct": "affect",
                "text": "The response was helpful to me.",
                "scale": {
                    "points": 7,
                    "anchors": {1: "Strongly disagree", 4: "Neutral", 7: "Strongly agree"},
                },
            }
        ],
        "attention_checks": [],
    }


@transaction.atomic
def create_study(*, data: dict, actor: AbstractBaseUser) -> Study:
    """A new draft study from spec data, owned by ``actor``; never touches an existing study.

    Raises SpecError (invalid data) or SlugTaken.
    """
    spec = load_spec_data(data)
    slug = spec_dict(spec)["slug"]
    _lock_slug(slug)
    _check_slug_free(slug)
    return services.import_study(spec=spec, actor=actor)


def create_study_from_form(*, title: str, slug: str, design: str, actor: AbstractBaseUser) -> Study:
    """A new draft study from the "new study" form's title, slug and starting design."""
    return create_study(data=starting_spec(design, slug=slug, title=title), actor=actor)


def create_study_from_upload(
    *, text: str, filename: str, actor: AbstractBaseUser, slug: str = ""
) -> Study:
    """A new draft study from an uploaded spec file's text (YAML or JSON, JSON being YAML).

    Problems carry the file's line numbers; a ``stimuli`` line is dropped (no file comes with
    the upload), and ``slug``, when given, replaces the file's slug.
    """
    spec = load_spec(text, filename)
    data = spec_dict(spec)
    data.pop("stimuli", None)
    if slug:
        data["slug"] = slug
    return create_study(data=data, actor=actor)


@transaction.atomic
def save_spec_changes(*, study: Study, changes: dict, actor: AbstractBaseUser) -> Study:
    """Replace some top-level sections of the study's spec; validate all of it; save.

    Raises SpecError (nothing saved) or StudyStateError (the study is no longer editable).
    """
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.status not in services.EDITABLE_STATUSES:
        raise StudyStateError(
            f"the study is {study.status}: the design of a live study can't change; "
            "duplicate it to make a new version"
        )
    data = spec_dict(selectors.study_spec(study))
    data.update(changes)
    data["slug"] = study.slug  # the builder never renames a study: its links would break
    spec = load_spec_data(data)
    return services.import_study(spec=spec, actor=actor)


def move_block(*, study: Study, key: str, offset: int, actor: AbstractBaseUser) -> Study:
    """Move a questionnaire block up (-1) or down (+1) among the blocks."""
    blocks = list(spec_dict(selectors.study_spec(study)).get("blocks") or [])
    keys = [b["key"] for b in blocks]
    if key not in keys:
        raise SpecError([SpecProblem("blocks", None, f"there is no block '{key}'")])
    i = keys.index(key)
    j = max(0, min(len(blocks) - 1, i + offset))
    blocks.insert(j, blocks.pop(i))
    return save_spec_changes(study=study, changes={"blocks": blocks}, actor=actor)


def delete_block(*, study: Study, key: str, actor: AbstractBaseUser) -> Study:
    blocks = spec_dict(selectors.study_spec(study)).get("blocks") or []
    kept = [b for b in blocks if b["key"] != key]
    if len(kept) == len(blocks):
        raise SpecError([SpecProblem("blocks", None, f"there is no block '{key}'")])
    return save_spec_changes(study=study, changes={"blocks": kept}, actor=actor)


@transaction.atomic
def duplicate_study(
    *, study: Study, slug: str, actor: AbstractBaseUser, title: str | None = None
) -> Study:
    """A new draft copy of any study (any status): its spec, queries, scenarios and texts.

    Response texts are copied when approved or written by hand; generated texts awaiting
    review and rejected ones stay behind. The copy is owned by ``actor``, remembers its
    source, and both studies get an audit row. Raises SlugTaken or SpecError.
    """
    source = study
    _lock_slug(slug)
    _check_slug_free(slug)
    data = spec_dict(selectors.study_spec(source))
    data["slug"] = slug
    if title:
        data["title"] = title
    copy = services.import_study(spec=load_spec_data(data), actor=actor)
    copy.duplicated_from = source
    copy.save(update_fields=["duplicated_from", "updated_at"])

    keep = ResponseVariant.objects.filter(
        Q(review_status=ResponseVariant.ReviewStatus.APPROVED)
        | Q(source=ResponseVariant.Source.WRITTEN),
        query__study=source,
    )
    variants_by_query: dict[int, list[ResponseVariant]] = {}
    for variant in keep:
        variants_by_query.setdefault(variant.query_id, []).append(variant)
    scenarios_by_query: dict[int, list[Scenario]] = {}
    for scenario in Scenario.objects.filter(query__study=source):
        scenarios_by_query.setdefault(scenario.query_id, []).append(scenario)

    queries = list(source.queries.order_by("query_id"))
    copies = Query.objects.bulk_create(
        Query(
            study=copy,
            query_id=q.query_id,
            text=q.text,
            category=q.category,
            topic=q.topic,
            source=q.source,
            metadata=q.metadata,
        )
        for q in queries
    )
    new_scenarios, new_variants = [], []
    for original, query in zip(queries, copies, strict=True):
        new_scenarios += [
            Scenario(query=query, motivation=s.motivation, text=s.text)
            for s in scenarios_by_query.get(original.pk, [])
        ]
        new_variants += [
            ResponseVariant(
                query=query,
                response_type=v.response_type,
                model_name=v.model_name,
                sample=v.sample,
                text=v.text,
                source=v.source,
                review_status=v.review_status,
                provenance=v.provenance,
            )
            for v in variants_by_query.get(original.pk, [])
        ]
    Scenario.objects.bulk_create(new_scenarios)
    ResponseVariant.objects.bulk_create(new_variants)

    services.record_audit(
        study=copy,
        action="study_duplicated_from",
        actor=actor,
        source=source.slug,
        queries=len(copies),
        texts=len(new_variants),
    )
    services.record_audit(study=source, action="study_duplicated", actor=actor, copy=copy.slug)
    return copy
