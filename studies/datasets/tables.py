"""The tables an export writes: their columns (type and meaning) and where their rows come from.

Every table has a portable row source (Django ORM iterators yielding typed tuples: str, int,
float, bool, aware datetime, JSON values, None) that runs on any database; the two large,
participant-bound tables (ratings, trials) also have one SQL SELECT for PostgreSQL, which the
writers run as ``COPY (SELECT …) TO STDOUT`` so a million rows never become Python objects.
Both paths give the same values (tests/datasets/test_export_tables.py compares them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import sql

from annotation import selectors as annotation_selectors
from annotation.models import Participant, Rating, SlotItem, Trial
from studies import domain
from studies.models import Query, Question, ResponseVariant, Scenario, Study

TABLE_NAMES: tuple[str, ...] = ("ratings", "participants", "stimuli", "trials", "block_answers")
# Tables whose rows belong to participants: the inclusion rule picks which participants.
PARTICIPANT_TABLES: frozenset[str] = frozenset(
    {"ratings", "participants", "trials", "block_answers"}
)
TABLE_DESCRIPTIONS: dict[str, str] = {
    "ratings": "Long format: one row per participant × rated item × question (attention checks "
    "are rows with kind = attention). What `python -m studies.analysis` reads.",
    "participants": "One row per participant: status, exclusion decision and quality flags, "
    "between-participants cell, timings, device class and recruitment parameters.",
    "stimuli": "One row per response text (query × response type × model × sample), with the "
    "query, its scenarios and the text's provenance; queries without texts have one row.",
    "trials": "One row per participant × item shown: what was shown and the item's timings.",
    "block_answers": "One row per participant × question of every questionnaire block the "
    "participant submitted.",
}

# Logical column types and how each format writes them (the codebook repeats this).
TYPE_ENCODINGS: dict[str, dict[str, str]] = {
    "string": {"csv": "text", "jsonl": "string", "parquet": "string"},
    "category": {"csv": "text", "jsonl": "string", "parquet": "string"},
    "integer": {"csv": "decimal digits", "jsonl": "number", "parquet": "int64"},
    "float": {"csv": "decimal number", "jsonl": "number", "parquet": "float64"},
    "boolean": {"csv": "true / false", "jsonl": "true / false", "parquet": "bool"},
    "datetime": {
        "csv": "ISO 8601 in UTC, e.g. 2026-01-31T14:05:09.123456Z",
        "jsonl": "string, ISO 8601 in UTC",
        "parquet": "timestamp[us, tz=UTC]",
    },
    "json": {"csv": "JSON text", "jsonl": "JSON value", "parquet": "string (JSON text)"},
}
NULL_ENCODING = {"csv": "an empty cell", "jsonl": "null", "parquet": "null"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    meaning: str
    values: list[Any] | str = ""
    # The typed SQL expression (PostgreSQL) of tables that have a SELECT.
    expr: sql.Composable | None = None


@dataclass
class Table:
    name: str
    columns: list[Column]
    rows: Callable[[], Iterator[tuple]]
    # FROM … WHERE … ORDER BY of the PostgreSQL SELECT (None: rows only).
    sql_from: sql.Composable | None = None
    description: str = ""
    # FROM … WHERE of the rows alone (no joins that cannot change the count, no ORDER BY):
    # rows_total of the job's progress, cheaply.
    count_from: sql.Composable | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def typed_select(self) -> sql.Composable | None:
        """SELECT of the table's typed columns, in order (None where only rows exist)."""
        if self.sql_from is None:
            return None
        items = sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(c.expr, sql.Identifier(c.name)) for c in self.columns
        )
        return sql.SQL("SELECT {} {}").format(items, self.sql_from)


def _db(model) -> sql.Identifier:
    return sql.Identifier(model._meta.db_table)


def _inclusion_sql(inclusion: str) -> sql.Composable:
    """The WHERE condition on participant ``p`` of an inclusion rule (withdrawn: never)."""
    if inclusion not in domain.INCLUSION_RULES:
        raise ValueError(f"inclusion must be one of {', '.join(domain.INCLUSION_RULES)}")
    condition = "p.status <> 'withdrawn'"
    if inclusion in ("completed", "included"):
        condition = "p.status = 'completed'"
    if inclusion == "included":
        condition += " AND NOT p.excluded"
    return sql.SQL(condition)


def further_factors(study: Study) -> list[str]:
    """Factors with a column of their own in the long format (beyond motivation and type)."""
    base = set(domain.LONG_FORMAT_BASE)
    return [f["name"] for f in study.design.get("factors", []) if f["name"] not in base]


def _factor_levels(study: Study) -> dict[str, dict]:
    return {f["name"]: f for f in study.design.get("factors", [])}


def _blank(value: str | None) -> str | None:
    """Blank text fields of the database are absent values in an export."""
    return value if value else None


def _pid(pseudonym: str) -> str:
    return pseudonym[:16]


# --- ratings -------------------------------------------------------------------------------


def _ratings_columns(study: Study) -> list[Column]:
    factors = _factor_levels(study)
    questions = list(study.questions.filter(block__isnull=True).order_by("order", "pk"))
    max_points = max((q.points or 0 for q in questions), default=0)
    categories = sorted(set(study.queries.values_list("category", flat=True)))
    motivation = factors.get(domain.MOTIVATION_FACTOR, {}).get(
        "levels", list(domain.MOTIVATION_LEVELS)
    )
    described = domain.LONG_FORMAT_DESCRIPTIONS
    fixed: dict[str, tuple[str, Any, str]] = {
        "participant_id": ("string", "16 hexadecimal digits", "left(p.pseudonym, 16)"),
        "participant_status": ("category", list(Participant.Status.values), "p.status"),
        "excluded": ("boolean", "", "p.excluded"),
        "is_pilot": ("boolean", "", "p.is_pilot"),
        "query_id": (
            "string",
            "a query id of the study's stimuli; empty on attention rows",
            "q.query_id",
        ),
        "category": ("category", categories, "q.category"),
        "topic": ("string", "a topic of the study's stimuli", "q.topic"),
        domain.MOTIVATION_FACTOR: ("category", motivation, "NULLIF(si.motivation, '')"),
        domain.RESPONSE_TYPE_FACTOR: (
            "category",
            list(domain.RESPONSE_TYPES),
            "NULLIF(si.response_type, '')",
        ),
        "question": ("category", [q.key for q in questions], "qu.key"),
        "value": ("integer", f"1–{max_points}" if max_points else "from 1", "r.value"),
        "kind": ("category", list(SlotItem.Kind.values), "si.kind"),
        "correct": (
            "integer",
            "an attention check's correct point; empty for stimuli",
            "CASE WHEN qu.is_attention_check THEN qu.correct_value END",
        ),
        "item_position": ("integer", "from 1", "t.position"),
        "shown_at": ("datetime", "", "t.shown_at"),
        "answered_at": ("datetime", "", "t.answered_at"),
        "ms_on_page": ("integer", "0 or more", "t.ms_on_page"),
    }
    columns = []
    for name in annotation_selectors.long_format_columns(study):
        if name in fixed:
            kind, values, expr = fixed[name]
            columns.append(Column(name, kind, described.get(name, ""), values, sql.SQL(expr)))
        else:
            factor = factors.get(name, {})
            columns.append(
                Column(
                    name,
                    "category",
                    f"the level of the factor {name} ({factor.get('assignment', '')} participants)",
                    list(factor.get("levels", [])),
                    sql.SQL("si.levels ->> {}").format(sql.Literal(name)),
                )
            )
    return columns


def _ratings_table(study: Study, inclusion: str) -> Table:
    columns = _ratings_columns(study)
    factor_names = further_factors(study)
    sql_from = sql.SQL(
        "FROM {rating} r JOIN {participant} p ON p.id = r.participant_id "
        "JOIN {trial} t ON t.id = r.trial_id JOIN {item} si ON si.id = t.slot_item_id "
        "JOIN {question} qu ON qu.id = r.question_id LEFT JOIN {query} q ON q.id = t.query_id "
        "WHERE p.study_id = {study} AND {inclusion} "
        'ORDER BY p.id, t.position, qu."order", qu.id'
    ).format(
        rating=_db(Rating),
        participant=_db(Participant),
        trial=_db(Trial),
        item=_db(SlotItem),
        question=_db(Question),
        query=_db(Query),
        study=sql.Literal(study.pk),
        inclusion=_inclusion_sql(inclusion),
    )

    def rows() -> Iterator[tuple]:
        ratings = (
            Rating.objects.filter(
                participant__in=annotation_selectors.counted_participants(study, inclusion)
            )
            .order_by("participant_id", "trial__position", "question__order", "question_id")
            .values_list(
                "participant__pseudonym",
                "participant__status",
                "participant__excluded",
                "participant__is_pilot",
                "trial__query__query_id",
                "trial__query__category",
                "trial__query__topic",
                "trial__slot_item__motivation",
                "trial__slot_item__response_type",
                "question__key",
                "value",
                "trial__slot_item__levels",
                "trial__slot_item__kind",
                "question__is_attention_check",
                "question__correct_value",
                "trial__position",
                "trial__shown_at",
                "trial__answered_at",
                "trial__ms_on_page",
            )
        )
        for (
            pseudonym,
            status,
            excluded,
            is_pilot,
            query_id,
            category,
            topic,
            motivation,
            response_type,
            question,
            value,
            levels,
            kind,
            is_check,
            correct,
            position,
            shown_at,
            answered_at,
            ms_on_page,
        ) in ratings.iterator(chunk_size=5000):
            levels = levels or {}
            yield (
                _pid(pseudonym),
                status,
                excluded,
                is_pilot,
                query_id,
                category,
                topic,
                _blank(motivation),
                _blank(response_type),
                question,
                value,
                *(levels.get(name) for name in factor_names),
                kind,
                correct if is_check else None,
                position,
                shown_at,
                answered_at,
                ms_on_page,
            )

    count_from = sql.SQL(
        "FROM {rating} r JOIN {participant} p ON p.id = r.participant_id "
        "WHERE p.study_id = {study} AND {inclusion}"
    ).format(
        rating=_db(Rating),
        participant=_db(Participant),
        study=sql.Literal(study.pk),
        inclusion=_inclusion_sql(inclusion),
    )
    return Table("ratings", columns, rows, sql_from, TABLE_DESCRIPTIONS["ratings"], count_from)


# --- trials --------------------------------------------------------------------------------

_PARTICIPANT_COLUMNS = ("participant_id", "participant_status", "excluded", "is_pilot")


def _trials_table(study: Study, inclusion: str) -> Table:
    by_name = {c.name: c for c in _ratings_columns(study)}
    factor_names = further_factors(study)
    columns = [
        *(by_name[name] for name in _PARTICIPANT_COLUMNS),
        Column(
            "item_position",
            "integer",
            "page number of the item in the participant's sequence (from 1)",
            "from 1",
            sql.SQL("t.position"),
        ),
        by_name["kind"],
        by_name["query_id"],
        by_name["category"],
        by_name["topic"],
        by_name[domain.MOTIVATION_FACTOR],
        by_name[domain.RESPONSE_TYPE_FACTOR],
        *(by_name[name] for name in factor_names),
        Column(
            "response_model",
            "string",
            "the model that wrote the response text shown (empty for written or imported texts "
            "and attention checks)",
            "",
            sql.SQL("NULLIF(v.model_name, '')"),
        ),
        Column(
            "response_sample",
            "integer",
            "the sample number of the response text shown",
            "0 or more",
            sql.SQL("v.sample"),
        ),
        Column("shown_at", "datetime", "when the item was first shown", "", sql.SQL("t.shown_at")),
        Column(
            "answered_at",
            "datetime",
            "when the item's page was submitted (empty: not answered)",
            "",
            sql.SQL("t.answered_at"),
        ),
        Column(
            "ms_on_page",
            "integer",
            "milliseconds the participant spent on the item's page (empty if unknown)",
            "0 or more",
            sql.SQL("t.ms_on_page"),
        ),
    ]
    sql_from = sql.SQL(
        "FROM {trial} t JOIN {participant} p ON p.id = t.participant_id "
        "JOIN {item} si ON si.id = t.slot_item_id LEFT JOIN {query} q ON q.id = t.query_id "
        "LEFT JOIN {variant} v ON v.id = t.variant_id "
        "WHERE p.study_id = {study} AND {inclusion} ORDER BY p.id, t.position"
    ).format(
        trial=_db(Trial),
        participant=_db(Participant),
        item=_db(SlotItem),
        query=_db(Query),
        variant=_db(ResponseVariant),
        study=sql.Literal(study.pk),
        inclusion=_inclusion_sql(inclusion),
    )

    def rows() -> Iterator[tuple]:
        trials = (
            Trial.objects.filter(
                participant__in=annotation_selectors.counted_participants(study, inclusion)
            )
            .order_by("participant_id", "position")
            .values_list(
                "participant__pseudonym",
                "participant__status",
                "participant__excluded",
                "participant__is_pilot",
                "position",
                "slot_item__kind",
                "query__query_id",
                "query__category",
                "query__topic",
                "slot_item__motivation",
                "slot_item__response_type",
                "slot_item__levels",
                "variant__model_name",
                "variant__sample",
                "shown_at",
                "answered_at",
                "ms_on_page",
            )
        )
        for row in trials.iterator(chunk_size=5000):
            (pseudonym, status, excluded, is_pilot, position, kind, query_id, category, topic) = (
                row[:9]
            )
            motivation, response_type, levels, model_name, sample = row[9:14]
            levels = levels or {}
            yield (
                _pid(pseudonym),
                status,
                excluded,
                is_pilot,
                position,
                kind,
                query_id,
                category,
                topic,
                _blank(motivation),
                _blank(response_type),
                *(levels.get(name) for name in factor_names),
                _blank(model_name),
                sample,
                *row[14:],
            )

    count_from = sql.SQL(
        "FROM {trial} t JOIN {participant} p ON p.id = t.participant_id "
        "WHERE p.study_id = {study} AND {inclusion}"
    ).format(
        trial=_db(Trial),
        participant=_db(Participant),
        study=sql.Literal(study.pk),
        inclusion=_inclusion_sql(inclusion),
    )
    return Table("trials", columns, rows, sql_from, TABLE_DESCRIPTIONS["trials"], count_from)


# --- participants --------------------------------------------------------------------------


def _recruitment_keys(study: Study) -> list[str]:
    """The recruitment parameters other than the participant's own id, in a fixed order."""
    keys = [k for k in ("study", "session") if k in (study.recruitment_params or {})]
    keys += sorted(k for k in (study.recruitment_params or {}) if k not in (*keys, "participant"))
    return keys


def _between_factors(study: Study) -> list[dict]:
    return [f for f in study.design.get("factors", []) if f.get("assignment") == "between"]


def _reveal(token: str) -> str | None:
    """The raw recruitment id (owners' explicit export option only); None when absent."""
    if not token:
        return None
    from annotation.recruitment_ids import reveal_recruitment_id  # lands with that helper

    return reveal_recruitment_id(token)


def _participants_table(study: Study, inclusion: str, include_recruitment_ids: bool) -> Table:
    params = study.recruitment_params or {}
    between = _between_factors(study)
    keys = _recruitment_keys(study)
    columns = [
        Column(
            "participant_id",
            "string",
            domain.LONG_FORMAT_DESCRIPTIONS["participant_id"],
            "16 hexadecimal digits",
        ),
        Column(
            "status",
            "category",
            "the participant's status at export time",
            list(Participant.Status.values),
        ),
        Column(
            "excluded",
            "boolean",
            "true when the participant is excluded from analysis "
            "(the flags' verdict, unless a researcher decided)",
        ),
        Column(
            "exclusion_decision",
            "category",
            "the researcher's decision: excluded or kept; "
            "empty while undecided (the flags then decide)",
            ["excluded", "kept"],
        ),
        Column("exclusion_reason", "string", "why, as the researcher or the quality rule wrote it"),
        Column("exclusion_decided_at", "datetime", "when the researcher decided"),
        Column(
            "flags",
            "json",
            'what the quality rules found: a JSON list of {"rule", "reason"}; [] when nothing',
            "JSON list",
        ),
        Column("screened_at", "datetime", "when the quality rules last ran on this participant"),
        *(
            Column(
                f"cell_{f['name']}",
                "category",
                f"the participant's level of the between-participants factor {f['name']}",
                list(f.get("levels", [])),
            )
            for f in between
        ),
        Column("is_pilot", "boolean", domain.LONG_FORMAT_DESCRIPTIONS["is_pilot"]),
        Column("joined_at", "datetime", "when the participant first arrived"),
        Column("consented_at", "datetime", "when the participant consented (empty: never)"),
        Column("completed_at", "datetime", "when the participant finished (empty: not finished)"),
        Column("total_seconds", "float", "seconds from consent to completion (empty unless both)"),
        Column(
            "device_class",
            "category",
            "the kind of device (from the user agent, on the server)",
            ["phone", "tablet", "desktop"],
        ),
        *(
            Column(
                f"recruitment_{key}", "string", f"the recruitment link's {params[key]} parameter"
            )
            for key in keys
        ),
    ]
    if include_recruitment_ids:
        columns.append(
            Column(
                "recruitment_participant_id",
                "string",
                f"the recruitment platform's participant id ({params.get('participant', '')}): "
                "personal data, included on the owner's explicit request (audited); empty once "
                "erased after the retention period",
            )
        )

    def rows() -> Iterator[tuple]:
        participants = (
            annotation_selectors.counted_participants(study, inclusion)
            .select_related(None)
            .order_by("pk")
            .values_list(
                "pseudonym",
                "status",
                "excluded",
                "exclusion_decision",
                "exclusion_reason",
                "exclusion_decided_at",
                "flags",
                "screened_at",
                "slot__cell",
                "is_pilot",
                "created_at",
                "consented_at",
                "completed_at",
                "device_class",
                "recruitment",
                "recruitment_id_encrypted",
            )
        )
        for (
            pseudonym,
            status,
            excluded,
            decision,
            reason,
            decided_at,
            flags,
            screened_at,
            cell,
            is_pilot,
            joined_at,
            consented_at,
            completed_at,
            device_class,
            recruitment,
            encrypted,
        ) in participants.iterator(chunk_size=2000):
            cell, recruitment = cell or {}, recruitment or {}
            total = (
                (completed_at - consented_at).total_seconds()
                if completed_at and consented_at
                else None
            )
            row = (
                _pid(pseudonym),
                status,
                excluded,
                _blank(decision),
                _blank(reason),
                decided_at,
                flags if flags is not None else [],
                screened_at,
                *(cell.get(f["name"]) for f in between),
                is_pilot,
                joined_at,
                consented_at,
                completed_at,
                total,
                _blank(device_class),
                *(_blank(recruitment.get(key)) for key in keys),
            )
            yield (*row, _reveal(encrypted)) if include_recruitment_ids else row

    return Table("participants", columns, rows, None, TABLE_DESCRIPTIONS["participants"])


# --- stimuli -------------------------------------------------------------------------------


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _stimuli_table(study: Study) -> Table:
    motivations = (
        _factor_levels(study)
        .get(domain.MOTIVATION_FACTOR, {})
        .get("levels", list(domain.MOTIVATION_LEVELS))
    )
    categories = sorted(set(study.queries.values_list("category", flat=True)))
    columns = [
        Column("query_id", "string", "the query's id from the stimuli file"),
        Column("category", "category", "the query's safety category", categories),
        Column("topic", "string", "the query's topic"),
        Column("query", "string", "the query's text, verbatim"),
        Column("query_source", "string", "where the query came from (the stimuli file's source)"),
        *(
            Column(
                domain.scenario_column(m),
                "string",
                f"the scenario read before the query when motivation = {m}",
            )
            for m in motivations
        ),
        Column(
            "response_type",
            "category",
            "the response type the text was written as; empty for a model's natural response",
            list(domain.RESPONSE_TYPES),
        ),
        Column(
            "response_model", "string", "the model that wrote the text (empty: written or imported)"
        ),
        Column(
            "response_sample",
            "integer",
            "the sample number among a model's texts for the same query and type",
            "0 or more",
        ),
        Column("response_text", "string", "the response text, verbatim"),
        Column(
            "response_source",
            "category",
            "how the text came in",
            list(ResponseVariant.Source.values),
        ),
        Column(
            "review_status",
            "category",
            "the text's review (only approved texts are shown to participants)",
            list(ResponseVariant.ReviewStatus.values),
        ),
        Column("generation_job", "integer", "the generation job that wrote the text"),
        Column("generation_backend", "string", "the backend the model ran on"),
        Column("generation_prompt", "json", "the chat messages sent to the model, as JSON"),
        Column("generation_params", "json", "the generation parameters (temperature, …), as JSON"),
        Column("generated_at", "datetime", "when the model wrote the text"),
        Column("updated_at", "datetime", "when the text was last changed (e.g. edited in review)"),
    ]

    def rows() -> Iterator[tuple]:
        queries = Query.objects.filter(study=study).order_by("query_id")
        for query in queries.iterator(chunk_size=500):
            scenarios = dict(Scenario.objects.filter(query=query).values_list("motivation", "text"))
            head = (
                query.query_id,
                query.category,
                _blank(query.topic),
                query.text,
                _blank(query.source),
                *(scenarios.get(m) for m in motivations),
            )
            variants = ResponseVariant.objects.filter(query=query).order_by(
                "response_type", "model_name", "sample", "pk"
            )
            empty = True
            for v in variants:
                empty = False
                provenance = v.provenance if isinstance(v.provenance, dict) else {}
                job = provenance.get("job")
                yield (
                    *head,
                    _blank(v.response_type),
                    _blank(v.model_name),
                    v.sample,
                    v.text,
                    v.source,
                    v.review_status,
                    job if isinstance(job, int) else None,
                    _blank(provenance.get("backend")),
                    provenance.get("prompt"),
                    provenance.get("params"),
                    _parse_time(provenance.get("generated_at")),
                    v.updated_at,
                )
            if empty:
                yield (*head, *([None] * 12))

    return Table("stimuli", columns, rows, None, TABLE_DESCRIPTIONS["stimuli"])


# --- block answers -------------------------------------------------------------------------


def _block_answers_table(study: Study, inclusion: str) -> Table:
    from studies.datasets.codebook import BLOCK_ANSWER_DESCRIPTIONS

    kinds = {
        "participant_status": "category",
        "excluded": "boolean",
        "is_pilot": "boolean",
        "block": "category",
        "question": "category",
        "type": "category",
        "answered_at": "datetime",
    }
    columns = [
        Column(name, kinds.get(name, "string"), BLOCK_ANSWER_DESCRIPTIONS[name][1])
        for name in annotation_selectors.BLOCK_ANSWER_COLUMNS
    ]

    def rows() -> Iterator[tuple]:
        for row in annotation_selectors.block_answers_rows(study, inclusion):
            row = dict(row)
            row["answered_at"] = _parse_time(row["answered_at"])
            row["value"] = row["value"] if row["value"] != "" else None
            yield tuple(row[name] for name in annotation_selectors.BLOCK_ANSWER_COLUMNS)

    return Table("block_answers", columns, rows, None, TABLE_DESCRIPTIONS["block_answers"])


def build_tables(
    study: Study,
    names: list[str] | tuple[str, ...] = TABLE_NAMES,
    *,
    inclusion: str = domain.DEFAULT_INCLUSION,
    include_recruitment_ids: bool = False,
) -> list[Table]:
    """The export's tables, in TABLE_NAMES order."""
    if inclusion not in domain.INCLUSION_RULES:
        raise ValueError(f"inclusion must be one of {', '.join(domain.INCLUSION_RULES)}")
    unknown = [n for n in names if n not in TABLE_NAMES]
    if unknown:
        raise ValueError(f"unknown table {unknown[0]!r}: use {', '.join(TABLE_NAMES)}")
    makers = {
        "ratings": lambda: _ratings_table(study, inclusion),
        "participants": lambda: _participants_table(study, inclusion, include_recruitment_ids),
        "stimuli": lambda: _stimuli_table(study),
        "trials": lambda: _trials_table(study, inclusion),
        "block_answers": lambda: _block_answers_table(study, inclusion),
    }
    return [makers[name]() for name in TABLE_NAMES if name in names]
