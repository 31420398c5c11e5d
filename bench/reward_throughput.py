"""Reward-scoring throughput: a random-weight Llama reward model (sequence classification, one
output) scoring conversations directly, one at a time vs batched, and through a reward run on a
real Celery worker with PostgreSQL.

    python bench/reward_throughput.py scorer [--device cpu] [--size small]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/refusallab_bench \\
        python bench/reward_throughput.py jobs [--device cuda] [--size 1b]

Models are built here with random weights (no hub is reachable): scores mean nothing, but the
work per conversation is a real reward model's of that shape. Conversations are the study's
shape: a scenario (or none), a query, a response of about --response-words words.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = {
    # name: (hidden, intermediate, layers, heads)
    "tiny": (32, 64, 2, 2),
    "small": (256, 688, 4, 4),
    "1b": (2048, 5632, 22, 16),  # TinyLlama-1.1B's shape
}
TYPES = (
    "direct_refusal",
    "explanation_based",
    "redirection",
    "partial_compliance",
    "full_compliance",
)
WORDS = (
    "the safe way to handle this is to ask a qualified person and follow local rules "
    "because details matter here and mistakes can hurt people so take care"
).split()


def build_model(directory: Path, size: str) -> Path:
    from tests.generation.tiny_model import build_tiny_reward_model

    hidden, intermediate, layers, heads = SIZES[size]
    return build_tiny_reward_model(
        directory, hidden_size=hidden, intermediate_size=intermediate, layers=layers, heads=heads
    )


def response(i: int, words: int) -> str:
    return " ".join(WORDS[(i + k) % len(WORDS)] for k in range(words)) + "."


def conversations(n: int, words: int) -> list[tuple[dict, ...]]:
    from modellab.rewards.scorers import conversation

    scenario = "You are a student preparing a report and want accurate information."
    return [
        conversation(
            f"Question {i}: how does one deal with topic {i % 16}?",
            scenario if i % 3 else None,
            response(i, words),
        )
        for i in range(n)
    ]


def scorer_rate(path: Path, device: str, convs: list, batch: int) -> tuple[float, float]:
    """(conversations/s, input tokens/s) of the platform's scorer, after a warm-up batch."""
    from modellab.rewards.scorers import RewardModelScorer, render_conversation

    scorer = RewardModelScorer(path=str(path), device=device, batch_size=batch)
    scorer.score(convs[:batch])  # warm-up: load, kernels, allocator
    loaded = scorer.load()
    tokens = sum(
        len(
            loaded.tokenizer(render_conversation(loaded.tokenizer, c), add_special_tokens=False)[
                "input_ids"
            ]
        )
        for c in convs
    )
    started = time.perf_counter()
    outcomes = scorer.score(convs)
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
    return len(convs) / elapsed, tokens / elapsed


def bench_scorer(args) -> dict:
    convs = conversations(args.conversations, args.response_words)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_model(Path(tmp) / "model", args.size)
        one, one_tok = scorer_rate(path, args.device, convs, 1)
        batched, batched_tok = scorer_rate(path, args.device, convs, args.batch_size)
    return {
        "phase": "scorer",
        "device": args.device,
        "size": args.size,
        "conversations": args.conversations,
        "response_words": args.response_words,
        "batch_size": args.batch_size,
        "one_at_a_time_conv_s": round(one, 1),
        "batched_conv_s": round(batched, 1),
        "batched_input_tok_s": round(batched_tok),
        "one_at_a_time_input_tok_s": round(one_tok),
        "batching_gain": round(batched / one, 2),
    }


def bench_jobs(args) -> dict:
    """A reward run on a real worker (queue gpu) vs the scorer called directly on the same
    conversations: what the job system costs (claims, writes, task hops)."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench")
    import django

    django.setup()
    from django.core.management import call_command

    from modellab.models import RewardScore
    from modellab.rewards import selectors, services
    from studies.generation import services as generation_services
    from studies.models import Study
    from studies.services import import_study
    from studies.spec import load_spec_file
    from studies.stimuli_file import StimulusRow

    call_command("migrate", verbosity=0)
    spec, _ = load_spec_file(ROOT / "examples" / "every-type" / "study.yaml")
    n_queries = max(1, args.conversations // (len(TYPES) * 3))
    rows = [
        StimulusRow(
            query_id=f"r{i:04d}",
            query=f"Question {i}: how does one deal with topic {i % 16}?",
            category="bench",
            topic="",
            benign_scenario="You are a student preparing a report and want accurate facts.",
            malicious_scenario="You are planning to misuse what you learn against a neighbour.",
            responses={t: response(i * 5 + k, args.response_words) for k, t in enumerate(TYPES)},
            line=i + 2,
        )
        for i in range(n_queries)
    ]

    def fresh(slug: str, stimuli: list) -> Study:
        Study.objects.filter(slug=slug).delete()
        return import_study(spec=dataclasses.replace(spec, slug=slug), stimuli=stimuli)

    study = fresh("bench-rewards", rows)
    warm_study = fresh("bench-rewards-warm", rows[:1])
    with tempfile.TemporaryDirectory() as tmp:
        path = build_model(Path(tmp) / "model", args.size)
        convs = [m for _v, _m, m in services.stimuli(study)]
        direct, _tok = scorer_rate(path, args.device, convs, args.batch_size)
        model = generation_services.register_model(
            name="bench-reward",
            backend="transformers",
            queue="gpu",
            backend_settings={
                "path": str(path),
                "device": args.device,
                "batch_size": args.batch_size,
            },
        )
        log = open(Path(tmp) / "worker.log", "w")  # noqa: SIM115
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default,gpu"]
            + ["--pool", "solo", "--prefetch-multiplier", "1", "-l", "warning"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            # Warm the worker (imports, model load) on one query's stimuli, not timed.
            wait(
                services.start_reward_run(
                    study=warm_study, model=model, scorer="reward_model", actor=None
                ),
                selectors,
            )
            run = services.start_reward_run(
                study=study, model=model, scorer="reward_model", actor=None
            )
            started = time.perf_counter()
            wait(run, selectors)
            elapsed = time.perf_counter() - started
        finally:
            worker.terminate()
            worker.wait(timeout=60)
        scored = RewardScore.objects.filter(run=run, status="done").count()
        assert scored == run.scores.count(), "some scores did not finish"
    return {
        "phase": "jobs",
        "device": args.device,
        "size": args.size,
        "stimuli": scored,
        "response_words": args.response_words,
        "batch_size": args.batch_size,
        "direct_conv_s": round(direct, 1),
        "through_jobs_conv_s": round(scored / elapsed, 1),
        "jobs_vs_direct": round(scored / elapsed / direct, 3),
    }


def wait(run, selectors, timeout: float = 3600) -> None:
    deadline = time.monotonic() + timeout
    while not selectors.run_progress(run)["finished"]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"reward run {run.pk} unfinished after {timeout} s")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=["scorer", "jobs"])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--size", default="small", choices=sorted(SIZES))
    parser.add_argument("--conversations", type=int, default=240)
    parser.add_argument("--response-words", type=int, default=80)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    result = bench_scorer(args) if args.phase == "scorer" else bench_jobs(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
