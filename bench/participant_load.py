"""Participant load benchmark: simulated participants through a real gunicorn, per-step latency.

Everything is set up by the script and removed at the end: a fresh PostgreSQL database
(refusallab_bench_<pid> on the server of --pg-server), migrations, collectstatic, a
researcher, one study per design and N (imported and launched with manage.py), and gunicorn
serving config.wsgi with DEBUG off and the floor page on (BENCH_ENDPOINTS=1). Traffic goes to
127.0.0.1 only.

Each simulated participant joins through the recruitment link with unique ids, then fills
whatever form each page shows, generically (hidden inputs, radio groups, checkboxes, number
and text inputs, named submit buttons; consent: agree; an attention check that names its
answer in quotes gets that answer), follows redirects by hand and stops at the page without
a form (completion). A page that is not the expected next one is an error.

    .venv/bin/python bench/participant_load.py                         # both designs, N=50,200,500
    .venv/bin/python bench/participant_load.py --designs bench --n 200 --concurrency 20
    .venv/bin/python bench/participant_load.py --arrival-rate 5 --think 2 --n 200   # latency

Modes: --concurrency C (peak: N participants through C concurrent clients; the default) or
--arrival-rate R --think S (participants arrive at R per second, each pausing S seconds on
every page). Each run also measures the floor (/bench/floor/: one row read, a few bytes) at the
same concurrency. At the end the database is checked: every acknowledged answer (a submit that
got its redirect) is stored once with the value sent, and every participant who reached
completion has exactly the planned number of ratings. The last thing printed is a Markdown
table for bench/README.md. Exit status 1 when any run had an error or a check failed.

The drills in bench/drills/ and tests/bench/ reuse the pieces (Gunicorn, run_load, verify).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import dataclasses
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import aiohttp
import psycopg
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from annotation.pseudonyms import pseudonym_for  # noqa: E402  (pure function, no Django)

DESIGNS = {
    "bench": ROOT / "bench" / "participant_load.yaml",
    "seed": ROOT / "examples" / "refusal-perception" / "study.yaml",
}
BENCH_USER = "bench-researcher"
HOST = "127.0.0.1"  # the only host this script sends traffic to

# Rows of the latency table, in page order; a request's label is decided by the page it got.
STEPS = [
    "join",
    "consent page",
    "consent",
    "instructions page",
    "instructions",
    "block page",
    "block",
    "topic page",
    "topic",
    "item page GET",
    "item submit",
    "attention page",
    "attention",
    "done",
]
ANSWER_STEPS = {"item submit", "attention"}


# --------------------------------------------------------------------------- forms


@dataclasses.dataclass
class Form:
    action: str = ""
    hidden: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    # radio name -> [(value, label text)], and the legend of the fieldset it sits in
    radios: dict[str, list[tuple[str, str]]] = dataclasses.field(default_factory=dict)
    legends: dict[str, str] = dataclasses.field(default_factory=dict)
    checkboxes: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    # (name, type, attributes) of number/text-like inputs and textareas
    fields: list[tuple[str, str, dict]] = dataclasses.field(default_factory=list)
    selects: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    buttons: list[tuple[str, str]] = dataclasses.field(default_factory=list)


class PageParser(HTMLParser):
    """The first <form method="post"> of a page, with the label text of each radio, and the h1."""

    TEXT_TYPES = {"text", "number", "email", "url", "tel", "search", "date", ""}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.form: Form | None = None
        self.h1 = ""
        self._in_form = False
        self._done_form = False
        self._in_h1 = False
        self._legend_stack: list[str] = []
        self._in_legend = 0
        self._label_radios: list[tuple[str, str]] | None = None
        self._label_text: list[str] = []
        self._select: str | None = None
        self._row_text = ""

    def handle_starttag(self, tag: str, attrs_list: list) -> None:
        attrs = {k: (v or "") for k, v in attrs_list}
        if tag == "h1":
            self._in_h1 = True
        if tag == "form" and not self._done_form:
            if attrs.get("method", "get").lower() == "post":
                self.form = Form(action=attrs.get("action", ""))
                self._in_form = True
            return
        if not self._in_form or self.form is None:
            return
        form = self.form
        if tag == "tr":
            self._row_text = ""
        elif tag == "fieldset":
            self._legend_stack.append("")
        elif tag == "legend":
            self._in_legend += 1
        elif tag == "label":
            self._label_radios, self._label_text = [], []
        elif tag == "input":
            name, kind = attrs.get("name", ""), attrs.get("type", "text").lower()
            value = attrs.get("value", "")
            if kind == "hidden" and name:
                form.hidden.append((name, value))
            elif kind == "radio" and name:
                form.radios.setdefault(name, [])
                # A radio group's question: its fieldset's legend, or its table row's header.
                context = self._legend_stack[-1] if self._legend_stack else self._row_text
                form.legends.setdefault(name, " ".join(context.split()))
                if self._label_radios is not None:
                    self._label_radios.append((name, value))
                else:
                    form.radios[name].append((value, ""))
            elif kind == "checkbox" and name:
                form.checkboxes.setdefault(name, []).append(value or "on")
            elif kind == "submit":
                form.buttons.append((name, value))
            elif kind in self.TEXT_TYPES and name:
                form.fields.append((name, kind or "text", attrs))
        elif tag == "textarea" and attrs.get("name"):
            form.fields.append((attrs["name"], "textarea", attrs))
        elif tag == "select" and attrs.get("name"):
            self._select = attrs["name"]
            form.selects[self._select] = []
        elif tag == "option" and self._select is not None:
            form.selects[self._select].append(attrs.get("value", ""))
        elif tag == "button" and attrs.get("type", "submit").lower() == "submit":
            form.buttons.append((attrs.get("name", ""), attrs.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "h1":
            self._in_h1 = False
        if not self._in_form or self.form is None:
            return
        if tag == "form":
            self._in_form, self._done_form = False, True
        elif tag == "fieldset" and self._legend_stack:
            self._legend_stack.pop()
        elif tag == "legend":
            self._in_legend = max(0, self._in_legend - 1)
        elif tag == "label" and self._label_radios is not None:
            text = " ".join(" ".join(self._label_text).split())
            for name, value in self._label_radios:
                self.form.radios[name].append((value, text))
            self._label_radios = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._in_h1:
            self.h1 += data
        if self._in_legend and self._legend_stack:
            self._legend_stack[-1] += data
        if self._in_form:
            self._row_text += data
        if self._label_radios is not None:
            self._label_text.append(data)


# Per-request values of a page (CSRF token, submission id); the rest of a page repeats across
# participants who see the same item, so its parse is kept: the pure-Python HTML parser would
# otherwise cost the client a third of a core, taken from the server it measures.
_PER_REQUEST = re.compile(
    r'(<input type="hidden" name="(csrfmiddlewaretoken|submission_id)" value=")([^"]*)"'
)
_PARSED: dict[str, tuple[Form | None, str]] = {}
_PARSED_MAX = 4096


def _parse(html: str) -> tuple[Form | None, str]:
    parser = PageParser()
    parser.feed(html)
    parser.close()
    return parser.form, " ".join(parser.h1.split())


def parse_page(html: str) -> tuple[Form | None, str]:
    actual = {m.group(2): m.group(3) for m in _PER_REQUEST.finditer(html)}
    skeleton = _PER_REQUEST.sub(r'\1"', html)
    kept = _PARSED.get(skeleton)
    if kept is None:
        kept = _parse(skeleton)
        if len(_PARSED) < _PARSED_MAX:
            _PARSED[skeleton] = kept
    form, h1 = kept
    if form is None or not actual:
        return form, h1
    hidden = [(name, actual.get(name, value)) for name, value in form.hidden]
    return dataclasses.replace(form, hidden=hidden), h1


# Quoted phrases in a question: "please select 'Somewhat disagree'" names the answer.
QUOTED = re.compile(r"['\"‘“]([^'\"’”]{1,80})['\"’”]")


def instructed_value(legend: str, options: list[tuple[str, str]]) -> str | None:
    """The option a question tells the reader to pick ("please select 'Somewhat disagree'").

    An option's own words are its label's, less the words every label of the group starts with
    (a matrix repeats the statement in each label) and less the point numbers.
    """
    labels = [label.split() for _value, label in options]
    shared = 0
    while (
        labels
        and all(len(w) > shared for w in labels)
        and len({w[shared].lower() for w in labels}) == 1
    ):
        shared += 1
    phrases = QUOTED.findall(" ".join([legend, *(label for _v, label in options)]))
    for phrase in phrases:
        wanted = " ".join(phrase.lower().split())
        for (value, _label), words in zip(options, labels, strict=True):
            own = " ".join(w for w in words[shared:] if not w.isdigit()).lower()
            if own and (own == wanted or own.startswith(wanted + " ")):
                return value
    return None


def fill_form(form: Form, rng: random.Random) -> tuple[list[tuple[str, str]], dict, bool]:
    """Form data as a participant would send it; the radio answers; whether one was instructed."""
    data = list(form.hidden)
    answers: dict[str, str] = {}
    instructed = False
    for name, options in form.radios.items():
        if not options:
            continue
        value = instructed_value(form.legends.get(name, ""), options)
        if value is not None:
            instructed = True
        else:
            value = rng.choice(options)[0]
        answers[name] = value
        data.append((name, value))
    for name, values in form.checkboxes.items():
        data.append((name, values[0]))
    for name, kind, attrs in form.fields:
        if kind == "number":
            low, high = attrs.get("min", ""), attrs.get("max", "")
            data.append((name, low or ("0" if not high or float(high) >= 0 else high)))
        else:
            limit = int(attrs.get("maxlength") or 50)
            data.append((name, "load test answer"[:limit]))
    for name, options in form.selects.items():
        choices = [o for o in options if o]
        if choices:
            data.append((name, choices[0]))
    named = [(n, v) for n, v in form.buttons if n]
    if named:
        agree = [(n, v) for n, v in named if v.lower() in {"agree", "yes", "accept", "continue"}]
        data.append((agree or named)[0])
    return data, answers, instructed


# --------------------------------------------------------------------------- the client


@dataclasses.dataclass
class Progress:
    """Counters the drills watch while a load runs (they wait on progress, not on the clock)."""

    started: int = 0
    completed: int = 0
    acknowledged: int = 0  # answer submits that got their redirect
    failed: int = 0
    result: LoadResult | None = None  # the run's figures so far


@dataclasses.dataclass
class LoadResult:
    slug: str
    n: int
    wall_s: float = 0.0
    latencies: dict[str, list[float]] = dataclasses.field(default_factory=lambda: defaultdict(list))
    errors: list[dict] = dataclasses.field(default_factory=list)
    # participant (recruitment id) -> {(position, question key): value} of acknowledged answers
    acknowledged: dict[str, dict[tuple[int, str], int]] = dataclasses.field(
        default_factory=lambda: defaultdict(dict)
    )
    completed: set[str] = dataclasses.field(default_factory=set)
    requests: int = 0
    recoveries: int = 0
    client_cpu_s: float = 0.0

    def error_counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for error in self.errors:
            counts[error["kind"]] += 1
        return dict(counts)


class PageError(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


def _status_kind(status: int) -> str:
    if status == 503:
        return "http 503"
    if status >= 500:
        return "http 500" if status == 500 else f"http {status}"
    return f"http {status}"


def _rank(kind: str, path: str, blocks_seen: int, items_seen: bool) -> tuple:
    """Where a page sits in a participant's journey; every submit must move forward."""
    if kind == "consent":
        return (0,)
    if kind == "instructions":
        return (1,)
    if kind == "block":
        return (4 if items_seen else 2, blocks_seen, path)
    if kind in ("topic", "item", "attention"):
        position = int(re.search(r"/item/(\d+)/", path)[1])
        return (3, position, 0 if kind == "topic" else 1)
    if kind == "done":
        return (9,)
    return (-1,)


def _page_kind(path: str, form: Form | None, instructed: bool) -> str:
    if path.endswith("/consent/"):
        return "consent"
    if path.endswith("/instructions/"):
        return "instructions"
    if "/block/" in path:
        return "block"
    if "/item/" in path:
        if form is not None and "topic" in form.radios:
            return "topic"
        return "attention" if instructed else "item"
    if path.endswith("/done/"):
        return "done"
    return "unexpected"


PAGE_LABEL = {
    "consent": "consent page",
    "instructions": "instructions page",
    "block": "block page",
    "topic": "topic page",
    "item": "item page GET",
    "attention": "attention page",
    "done": "done",
}
SUBMIT_LABEL = {
    "consent": "consent",
    "instructions": "instructions",
    "block": "block",
    "topic": "topic",
    "item": "item submit",
    "attention": "attention",
}


@dataclasses.dataclass
class LoadPlan:
    base_url: str
    slug: str
    n: int
    positions: int  # item pages per participant (rated items and attention checks)
    concurrency: int = 10
    arrival_rate: float | None = None
    think_s: float = 0.0
    max_seconds: float = 900.0
    request_timeout_s: float = 60.0
    # 0: a participant stops at its first error (the benchmark); >0: it retries the submit
    # once and then reopens its link, up to this many times (the drills)
    max_recoveries: int = 0
    seed: int = 1
    tag: str = ""


class Participant:
    def __init__(
        self, plan: LoadPlan, index: int, session: aiohttp.ClientSession, result, progress
    ):
        self.plan, self.session, self.result, self.progress = plan, session, result, progress
        self.rng = random.Random(plan.seed * 1_000_003 + index)
        tag = plan.tag or f"{os.getpid()}x{plan.slug}"
        self.external_id = f"bench-{tag}-{index}"
        query = urlencode(
            {
                "PROLIFIC_PID": self.external_id,
                "STUDY_ID": f"bench-study-{plan.slug}",
                "SESSION_ID": f"bench-session-{tag}-{index}",
            }
        )
        self.entry_url = f"{plan.base_url}/s/{plan.slug}/?{query}"
        self.last_rank: tuple = (-2,)
        self.blocks_seen = 0
        self.items_seen: set[int] = set()

    async def request(self, method: str, url: str, data=None) -> tuple[int, str, str, float]:
        """One request, redirects not followed: (status, body, location, seconds)."""
        if urlsplit(url).hostname != HOST:
            raise PageError("refused", f"not sending traffic to {url}")
        started = time.perf_counter()
        self.result.requests += 1
        try:
            async with self.session.request(
                method, url, data=data, allow_redirects=False
            ) as response:
                body = await response.text()
                status = response.status
                location = response.headers.get("Location", "")
        except TimeoutError as exc:
            raise PageError("timeout", f"{method} {urlsplit(url).path}") from exc
        except aiohttp.ClientError as exc:
            raise PageError("connection", f"{method} {urlsplit(url).path}: {exc!r}"[:200]) from exc
        return status, body, location, time.perf_counter() - started

    def record(self, label: str, seconds: float) -> None:
        self.result.latencies[label].append(seconds)

    async def run(self) -> None:
        self.progress.started += 1
        recoveries = 0
        url, resuming = self.entry_url, False
        while True:
            try:
                await self.journey(url, resuming)
                self.result.completed.add(self.external_id)
                self.progress.completed += 1
                return
            except PageError as error:
                self.result.errors.append(
                    {"kind": error.kind, "detail": error.detail, "participant": self.external_id}
                )
                if recoveries >= self.plan.max_recoveries:
                    self.progress.failed += 1
                    return
                recoveries += 1
                self.result.recoveries += 1
                # Like a person reopening their study link a moment later.
                await asyncio.sleep(min(0.25 * recoveries, 2.0) + self.rng.random() * 0.25)
                url, resuming = self.entry_url, True

    async def journey(self, entry: str, resuming: bool) -> None:
        status, _body, location, seconds = await self.request("GET", entry)
        if status != 302 or not location:
            raise PageError(
                _status_kind(status) if status >= 400 else "unexpected page",
                f"join answered {status}",
            )
        self.record("join", seconds)
        url = urljoin(entry, location)
        for _ in range(self.plan.positions * 3 + 20):  # bounded: no page loop runs forever
            status, body, location, seconds = await self.request("GET", url)
            if status in (301, 302, 303):
                url = urljoin(url, location)
                continue
            if status != 200:
                raise PageError(_status_kind(status), f"GET {urlsplit(url).path} -> {status}")
            form, h1 = parse_page(body)
            path = urlsplit(url).path
            instructed = False
            if form is not None:
                instructed = any(
                    instructed_value(form.legends.get(n, ""), o) for n, o in form.radios.items()
                )
            kind = _page_kind(path, form, instructed)
            if kind == "unexpected" or (form is None and kind != "done"):
                raise PageError("unexpected page", f"{path}: {h1!r}")
            rank = _rank(kind, path, self.blocks_seen, bool(self.items_seen))
            moved = rank > self.last_rank or (resuming and rank == self.last_rank)
            if not moved:
                raise PageError("unexpected page", f"{path} ({kind}) after {self.last_rank}")
            if kind in ("item", "attention", "topic") and rank[1] not in self.items_seen:
                if rank[1] != len(self.items_seen) + 1:
                    raise PageError("unexpected page", f"item {rank[1]} after {self.items_seen}")
                self.items_seen.add(rank[1])
            self.last_rank, resuming = rank, False
            self.record(PAGE_LABEL[kind], seconds)
            if kind == "done":
                if len(self.items_seen) != self.plan.positions:
                    raise PageError(
                        "unexpected page",
                        f"completion after {len(self.items_seen)} of {self.plan.positions} items",
                    )
                return
            if kind == "block":
                self.blocks_seen += 1
            if self.plan.think_s:
                await asyncio.sleep(self.plan.think_s)
            data, answers, _ = fill_form(form, self.rng)
            target = urljoin(url, form.action) if form.action else url
            label = SUBMIT_LABEL[kind]
            location = await self.submit(target, data, label)
            if label in ANSWER_STEPS:
                position = rank[1]
                acked = self.result.acknowledged[self.external_id]
                for key, value in answers.items():
                    acked[(position, key)] = int(value)
                self.progress.acknowledged += 1
            url = urljoin(target, location)
        raise PageError("unexpected page", "no completion page within the page bound")

    async def submit(self, url: str, data: list, label: str) -> str:
        """POST a form; answered by a redirect. In the drills a failed submit is sent once more,
        unchanged (same submission id), as a browser's retry would."""
        tries = 2 if self.plan.max_recoveries else 1
        for attempt in range(tries):
            try:
                status, body, location, seconds = await self.request("POST", url, data=data)
            except PageError as error:
                if attempt + 1 == tries:
                    raise
                self.result.errors.append(
                    {"kind": error.kind, "detail": error.detail, "participant": self.external_id}
                )
            else:
                if status in (302, 303) and location:
                    self.record(label, seconds)
                    return location
                kind = _status_kind(status) if status >= 400 else "unexpected page"
                detail = f"POST {urlsplit(url).path} ({label}) -> {status}"
                if status < 500 or attempt + 1 == tries:
                    raise PageError(kind, detail + f": {parse_page(body)[1]!r}")
                self.result.errors.append(
                    {"kind": kind, "detail": detail, "participant": self.external_id}
                )
            await asyncio.sleep(0.5 + self.rng.random() * 0.5)
        raise AssertionError("unreachable")


async def run_load(
    plan: LoadPlan, progress: Progress | None = None, during: Callable | None = None
) -> LoadResult:
    """Run plan.n participants; ``during(progress)``, a coroutine function, runs alongside."""
    progress = progress or Progress()
    result = LoadResult(slug=plan.slug, n=plan.n)
    progress.result = result
    timeout = aiohttp.ClientTimeout(total=plan.request_timeout_s)
    limit = plan.concurrency if plan.arrival_rate is None else max(plan.n, 1)
    connector = aiohttp.TCPConnector(limit=min(limit, 1000), force_close=False)
    cpu0, wall0 = time.process_time(), time.perf_counter()

    async def one(index: int) -> None:
        async with aiohttp.ClientSession(
            connector=connector,
            connector_owner=False,
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies for an IP-address host
            timeout=timeout,
        ) as session:
            await Participant(plan, index, session, result, progress).run()

    async def peak() -> None:
        queue = iter(range(plan.n))

        async def client() -> None:
            for index in queue:
                await one(index)

        await asyncio.gather(*(client() for _ in range(min(plan.concurrency, plan.n))))

    async def arrivals() -> None:
        tasks = []
        for index in range(plan.n):
            tasks.append(asyncio.create_task(one(index)))
            await asyncio.sleep(1.0 / plan.arrival_rate)
        await asyncio.gather(*tasks)

    load = asyncio.create_task(peak() if plan.arrival_rate is None else arrivals())
    side = asyncio.create_task(during(progress)) if during else None
    try:
        await asyncio.wait_for(asyncio.shield(load), timeout=plan.max_seconds)
    except TimeoutError:
        load.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await load
        result.errors.append(
            {
                "kind": "deadline",
                "detail": f"run stopped after {plan.max_seconds:.0f} s",
                "participant": "",
            }
        )
    finally:
        if side is not None:
            try:
                await asyncio.wait_for(side, timeout=plan.max_seconds)
            except TimeoutError:
                side.cancel()
        await connector.close()
    result.wall_s = time.perf_counter() - wall0
    result.client_cpu_s = time.process_time() - cpu0
    return result


@dataclasses.dataclass
class FloorResult:
    requests: int
    wall_s: float
    latencies: list[float]
    errors: int

    @property
    def per_second(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0


async def run_floor(base_url: str, requests: int, concurrency: int, max_seconds: float = 120):
    """GET /bench/floor/ ``requests`` times through ``concurrency`` clients."""
    url = f"{base_url}/bench/floor/"
    assert urlsplit(url).hostname == HOST
    latencies: list[float] = []
    errors = 0
    remaining = iter(range(requests))
    deadline = time.perf_counter() + max_seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=60)
    ) as session:

        async def client() -> None:
            nonlocal errors
            for _ in remaining:
                if time.perf_counter() > deadline:
                    return
                started = time.perf_counter()
                try:
                    async with session.get(url) as response:
                        await response.read()
                        ok = response.status == 200
                except (TimeoutError, aiohttp.ClientError):
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

        wall0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        wall = time.perf_counter() - wall0
    return FloorResult(requests=len(latencies), wall_s=wall, latencies=latencies, errors=errors)


# --------------------------------------------------------------------------- the server side


def venv_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _bench_static_root() -> str:
    root = Path(tempfile.gettempdir()) / f"refusallab-bench-static-{os.getpid()}"
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return str(root)


def app_env(database_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    """The production settings, on plain HTTP to 127.0.0.1, with the floor page mounted."""
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=env.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(50),
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker_url,
        ALLOWED_HOSTS=HOST,
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SECURE_HSTS_SECONDS="0",
        BENCH_ENDPOINTS="1",
        LOG_LEVEL=env.get("LOG_LEVEL", "WARNING"),
        PYTHONUNBUFFERED="1",
    )
    # Every simulated participant arrives from 127.0.0.1: the per-address arrival limit (a
    # room's worth behind one NAT) would turn most of them away. The per-study limit stays.
    env.setdefault("ARRIVALS_PER_ADDRESS", "0")
    # Static files of its own: collectstatic rewrites hashed files in place, and a server or
    # test reading the checkout's staticfiles/ at that moment finds one missing.
    env.setdefault("STATIC_ROOT", _bench_static_root())
    env.update(extra)
    return env


def manage(env: dict, *args: str, timeout: float = 600) -> str:
    """Run a manage.py command; its output, or an exception carrying its error output."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip()


def server_url(database_url: str, dbname: str) -> str:
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path="/" + dbname))


@contextlib.contextmanager
def fresh_database(pg_server: str, name: str, keep: bool = False) -> Iterator[str]:
    """CREATE DATABASE name on the server; yields its URL; dropped afterwards."""
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"unsafe database name {name!r}")
    admin = server_url(pg_server, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server_url(pg_server, name)
    finally:
        if not keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare_app(env: dict) -> None:
    """Migrate, collect static files, create the benchmark's researcher."""
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "collectstatic", "--noinput", "-v0")
    manage(env, "create_researcher", BENCH_USER, "--email", "bench@example.org")


@dataclasses.dataclass
class StudyPlan:
    slug: str
    positions: int  # item pages per participant
    planned_ratings: int  # ratings a completed participant has


def prepare_study(env: dict, design: str | Path, slug: str, n: int) -> StudyPlan:
    """Import a copy of a design's spec under ``slug`` with ``n`` slots, and launch it."""
    spec_path = Path(DESIGNS.get(str(design), design))
    data = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    data["slug"], data["target_participants"] = slug, n
    if data.get("stimuli"):
        data["stimuli"] = str((spec_path.parent / data["stimuli"]).resolve())
    checks = data.get("attention_checks") or []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{slug}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")
        manage(env, "import_study", str(path), "--as", BENCH_USER)
    manage(env, "launch_study", slug, "--as", BENCH_USER)
    items = data["items_per_participant"]
    return StudyPlan(
        slug=slug,
        positions=items + len(checks),
        planned_ratings=items * len(data["questions"]) + len(checks),
    )


class Gunicorn:
    """gunicorn serving config.wsgi on 127.0.0.1:port; its own process group, stopped on exit."""

    def __init__(self, env: dict, port: int, workers: int, log_dir: Path) -> None:
        self.env, self.port, self.workers = env, port, workers
        self.log_path = log_dir / f"gunicorn-{port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, ready_timeout: float = 180) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                venv_bin("gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"{HOST}:{self.port}",
                "--workers",
                str(self.workers),
                "--timeout",
                "120",
                "--graceful-timeout",
                "10",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.wait_ready(ready_timeout)

    def wait_ready(self, timeout: float) -> None:
        """Until the floor page answers 200 from every worker's point of view, or the deadline."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/bench/floor/", timeout=5) as r:
                    if r.status == 200 and len(self.worker_pids()) >= self.workers:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def worker_pids(self) -> list[int]:
        return children_of(self.process.pid) if self.process else []

    def cpu_seconds(self) -> float:
        """CPU time of the master and its live workers (a killed worker's time is lost)."""
        if not self.process:
            return 0.0
        return sum(process_cpu_seconds(pid) for pid in [self.process.pid, *self.worker_pids()])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return sorted(children)


def process_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- checks


@dataclasses.dataclass
class Verification:
    completed_in_db: int
    ratings_in_db: int
    acknowledged: int
    lost: int  # acknowledged answers not stored
    changed: int  # stored with another value than the one acknowledged
    duplicated: int  # (participant, position, question) stored more than once
    wrong_count: int  # completed participants without exactly the planned ratings
    client_done_not_completed: int  # reached the completion page, not completed in the DB

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.changed
            or self.duplicated
            or self.wrong_count
            or self.client_done_not_completed
        )


def verify(database_url: str, plan: StudyPlan, result: LoadResult) -> Verification:
    """Compare what the client was acknowledged with what PostgreSQL holds."""
    with psycopg.connect(database_url) as conn:
        study_id, salt = conn.execute(
            "SELECT id, pseudonym_salt FROM studies_study WHERE slug = %s", [plan.slug]
        ).fetchone()
        participants = dict(
            conn.execute(
                "SELECT pseudonym, status FROM annotation_participant WHERE study_id = %s",
                [study_id],
            ).fetchall()
        )
        rows = conn.execute(
            """
            SELECT p.pseudonym, t.position, q.key, r.value, count(*) OVER (
                PARTITION BY p.id, t.position, q.id) AS copies
            FROM annotation_rating r
            JOIN annotation_trial t ON t.id = r.trial_id
            JOIN studies_question q ON q.id = r.question_id
            JOIN annotation_participant p ON p.id = r.participant_id
            WHERE p.study_id = %s
            """,
            [study_id],
        ).fetchall()
    stored: dict[str, dict[tuple[int, str], int]] = defaultdict(dict)
    duplicated = 0
    for pseudonym, position, key, value, copies in rows:
        stored[pseudonym][(position, key)] = value
        duplicated += copies > 1
    lost = changed = acknowledged = 0
    for external_id, answers in result.acknowledged.items():
        mine = stored.get(pseudonym_for(salt=salt, external_id=external_id), {})
        for answer_key, value in answers.items():
            acknowledged += 1
            if answer_key not in mine:
                lost += 1
            elif mine[answer_key] != value:
                changed += 1
    completed = [p for p, status in participants.items() if status == "completed"]
    wrong = sum(len(stored.get(p, {})) != plan.planned_ratings for p in completed)
    not_completed = sum(
        participants.get(pseudonym_for(salt=salt, external_id=e)) != "completed"
        for e in result.completed
    )
    return Verification(
        completed_in_db=len(completed),
        ratings_in_db=len(rows),
        acknowledged=acknowledged,
        lost=lost,
        changed=changed,
        duplicated=duplicated,
        wrong_count=wrong,
        client_done_not_completed=not_completed,
    )


# --------------------------------------------------------------------------- reporting


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(value: float) -> str:
    return "–" if value != value else f"{value * 1000:.0f}"


def step_table(result: LoadResult) -> str:
    lines = [f"  {'step':<18}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"]
    for step in STEPS:
        values = result.latencies.get(step)
        if values:
            lines.append(
                f"  {step:<18}{len(values):>7}{ms(percentile(values, 50)):>9}"
                f"{ms(percentile(values, 95)):>9}{ms(percentile(values, 99)):>9}"
            )
    return "\n".join(lines)


@dataclasses.dataclass
class RunSummary:
    design: str
    n: int
    mode: str
    result: LoadResult
    floor: FloorResult
    check: Verification
    server_cpu_s: float

    def row(self) -> dict:
        r = self.result
        answers = sum(len(r.latencies.get(s, [])) for s in ANSWER_STEPS)
        participants_s = len(r.completed) / r.wall_s if r.wall_s else 0.0
        requests_s = r.requests / r.wall_s if r.wall_s else 0.0
        return {
            "design": self.design,
            "n": self.n,
            "mode": self.mode,
            "completed": len(r.completed),
            "wall_s": round(r.wall_s, 2),
            "participants_per_s": round(participants_s, 2),
            "answers_per_s": round(answers / r.wall_s, 1) if r.wall_s else 0.0,
            "requests_per_s": round(requests_s, 1),
            "item_submit_ms": [
                round(percentile(r.latencies.get("item submit", []), q) * 1000, 1)
                for q in (50, 95, 99)
            ],
            "item_page_ms": [
                round(percentile(r.latencies.get("item page GET", []), q) * 1000, 1)
                for q in (50, 95, 99)
            ],
            "steps": {step: len(values) for step, values in r.latencies.items()},
            "errors": len(r.errors),
            "error_kinds": r.error_counts(),
            "floor_per_s": round(self.floor.per_second, 1),
            "floor_ms": [round(percentile(self.floor.latencies, q) * 1000, 1) for q in (50, 95)],
            "requests_vs_floor": round(requests_s / self.floor.per_second, 2)
            if self.floor.per_second
            else None,
            "participants_vs_floor": round(participants_s / self.floor.per_second, 4)
            if self.floor.per_second
            else None,
            "client_cpu_pct": round(100 * r.client_cpu_s / r.wall_s, 1) if r.wall_s else 0.0,
            "server_cpu_pct": round(100 * self.server_cpu_s / r.wall_s, 1) if r.wall_s else 0.0,
            "check": dataclasses.asdict(self.check) | {"ok": self.check.ok},
        }


def print_run(summary: RunSummary) -> None:
    row = summary.row()
    r = summary.result
    print(f"\n== {summary.design} design, N={summary.n}, {summary.mode}")
    print(step_table(r))
    print(
        f"  completed {row['completed']}/{summary.n} in {row['wall_s']} s: "
        f"{row['participants_per_s']} participants/s, {row['answers_per_s']} answer submits/s, "
        f"{row['requests_per_s']} requests/s"
    )
    print(
        f"  floor /bench/floor/: {row['floor_per_s']} requests/s (p50 {row['floor_ms'][0]} ms); "
        f"participant requests/s vs floor: {row['requests_vs_floor']}; "
        f"participants/s vs floor requests/s: {row['participants_vs_floor']}"
    )
    print(
        f"  CPU: load client {row['client_cpu_pct']}% of one core, "
        f"gunicorn {row['server_cpu_pct']}% (sum of master and workers)"
    )
    print(f"  errors: {row['errors']} {row['error_kinds'] or ''}")
    for error in r.errors[:5]:
        print(f"    {error['kind']}: {error['detail']}")
    c = summary.check
    print(
        f"  database: {c.completed_in_db} completed, {c.ratings_in_db} ratings; "
        f"{c.acknowledged} acknowledged answers: {c.lost} lost, {c.changed} changed, "
        f"{c.duplicated} duplicated; {c.wrong_count} completed with a wrong rating count; "
        f"{c.client_done_not_completed} saw completion but are not completed -> "
        f"{'OK' if c.ok else 'FAILED'}"
    )


def markdown_table(summaries: list[RunSummary], command: str) -> str:
    lines = [
        "| design | N | mode | participants/s | answer submits/s | item submit p50/p95/p99 ms "
        "| item page p50/p95/p99 ms | errors | floor req/s | participant req/s ÷ floor "
        "| client CPU | DB check |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        row = s.row()
        lines.append(
            f"| {row['design']} | {row['n']} | {row['mode']} | {row['participants_per_s']} "
            f"| {row['answers_per_s']} | {'/'.join(str(v) for v in row['item_submit_ms'])} "
            f"| {'/'.join(str(v) for v in row['item_page_ms'])} | {row['errors']} "
            f"| {row['floor_per_s']} | {row['requests_vs_floor']} | {row['client_cpu_pct']}% "
            f"| {'exact' if s.check.ok else 'FAILED'} |"
        )
    lines.append(f"\nCommand: `{command}`")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="50,200,500", help="participants per run, comma-separated")
    parser.add_argument(
        "--designs",
        default="bench,seed",
        help="bench (bench/participant_load.yaml), seed (the seed design) or a spec path",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="concurrent clients (peak mode; default: 2 x gunicorn workers)",
    )
    parser.add_argument(
        "--arrival-rate",
        type=float,
        default=None,
        help="participants arriving per second (latency mode)",
    )
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="seconds each participant pauses on a page (latency mode)",
    )
    # The participant path is CPU work in Python and PostgreSQL on the same cores, so a worker
    # per core plus one beats gunicorn's 2n+1 for waiting workloads (16.2 vs 13.8 participants/s
    # at N=200, C=32 on 2 cores).
    parser.add_argument("--workers", type=int, default=cores + 1, help="gunicorn workers")
    parser.add_argument("--port", type=int, default=8401)
    parser.add_argument(
        "--pg-server",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server (a URL; its database name is ignored)",
    )
    parser.add_argument(
        "--broker-url",
        default="redis://127.0.0.1:6379/6",
        help="Celery broker the app is given (the participant path never uses it)",
    )
    parser.add_argument("--floor-requests", type=int, default=2000)
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="unmeasured participants per design first (default: 2 x workers)",
    )
    parser.add_argument("--max-seconds", type=float, default=900, help="bound of one run")
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    parser.add_argument("--json-out", type=Path, help="write every run's figures here")
    args = parser.parse_args(argv)
    args.ns = [int(v) for v in args.n.split(",") if v.strip()]
    if not args.ns or min(args.ns) < 1:
        parser.error("--n needs positive participant counts, e.g. --n 50,200,500")
    if args.arrival_rate is not None and args.arrival_rate <= 0:
        parser.error("--arrival-rate must be positive")
    if args.think < 0:
        parser.error("--think must not be negative")
    args.concurrency = args.concurrency or 2 * args.workers
    args.warmup = 2 * args.workers if args.warmup is None else args.warmup
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    for design in args.designs.split(","):
        if design not in DESIGNS and not Path(design).is_file():
            parser.error(f"unknown design {design!r}: bench, seed or a spec file")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python bench/participant_load.py " + " ".join(sys.argv[1:] if argv is None else argv)
    mode = (
        f"arrival {args.arrival_rate}/s, think {args.think} s"
        if args.arrival_rate
        else f"peak, C={args.concurrency}"
    )
    print(f"{os.cpu_count()} cores, gunicorn {args.workers} workers, {mode}", flush=True)
    summaries: list[RunSummary] = []
    log_dir = Path(tempfile.mkdtemp(prefix="participant-load-"))
    with fresh_database(args.pg_server, f"refusallab_bench_{os.getpid()}", args.keep_db) as db:
        env = app_env(db, args.broker_url)
        setup0 = time.perf_counter()
        prepare_app(env)
        server = Gunicorn(env, args.port, args.workers, log_dir)
        try:
            for d_index, design in enumerate(args.designs.split(",")):
                if args.warmup:
                    # First requests to a worker compile templates and open connections:
                    # a few participants on a study of their own go through first, unmeasured.
                    warm = prepare_study(env, design, f"warmup-{d_index}", args.warmup)
                    if server.process is None:
                        server.start()
                    warm_plan = LoadPlan(
                        base_url=server.base_url,
                        slug=warm.slug,
                        n=args.warmup,
                        positions=warm.positions,
                        concurrency=min(args.concurrency, args.warmup),
                        max_seconds=args.max_seconds,
                    )
                    asyncio.run(run_load(warm_plan))
                    asyncio.run(run_floor(server.base_url, 20 * args.workers, args.concurrency))
                for n in args.ns:
                    slug = f"load-{d_index}-{n}"
                    study = prepare_study(env, design, slug, n)
                    if server.process is None:
                        server.start()
                        print(f"setup took {time.perf_counter() - setup0:.0f} s", flush=True)
                    plan = LoadPlan(
                        base_url=server.base_url,
                        slug=slug,
                        n=n,
                        positions=study.positions,
                        concurrency=args.concurrency,
                        arrival_rate=args.arrival_rate,
                        think_s=args.think,
                        max_seconds=args.max_seconds,
                    )
                    cpu0 = server.cpu_seconds()
                    result = asyncio.run(run_load(plan))
                    server_cpu = server.cpu_seconds() - cpu0
                    floor = asyncio.run(
                        run_floor(server.base_url, args.floor_requests, args.concurrency)
                    )
                    summary = RunSummary(
                        design=Path(design).stem if design not in DESIGNS else design,
                        n=n,
                        mode=mode,
                        result=result,
                        floor=floor,
                        check=verify(db, study, result),
                        server_cpu_s=server_cpu,
                    )
                    summaries.append(summary)
                    print_run(summary)
        finally:
            server.stop()
    print("\n" + markdown_table(summaries, command))
    if args.json_out:
        args.json_out.write_text(json.dumps([s.row() for s in summaries], indent=2) + "\n")
    failed = [s for s in summaries if s.result.errors or not s.check.ok]
    if not failed:
        shutil.rmtree(log_dir, ignore_errors=True)
    else:
        print(
            f"\n{len(failed)} run(s) had errors or failed the database check; "
            f"gunicorn log kept in {log_dir}"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
