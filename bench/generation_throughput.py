"""Generation throughput of the transformers backend: batched vs one prompt at a time, and
through the job system (real Celery worker, PostgreSQL) vs the same model called directly.

    python bench/generation_throughput.py backend [--device cpu] [--size small]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/refusallab_bench \\
        python bench/generation_throughput.py jobs [--device cuda] [--size 1b]

Models are built here with random weights (no hub is reachable); EOS is suppressed so every
answer is exactly --new-tokens long and tokens/s compare like with like.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
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


def build_model(directory: Path, size: str) -> Path:
    from tests.generation.tiny_model import build_tiny_chat_model

    hidden, intermediate, layers, heads = SIZES[size]
    return build_tiny_chat_model(
        directory,
        hidden_size=hidden,
        intermediate_size=intermediate,
        layers=layers,
        heads=heads,
        eos_bias=-100.0,
    )


def prompts(n: int) -> list[str]:
    topics = ["bread", "locks", "vaccines", "batteries", "rivers", "taxes", "chess", "tides"]
    return [f"Question {i}: how does one learn about {topics[i % len(topics)]}?" for i in range(n)]


def direct_loop(
    path: Path, device: str, conversations: list[tuple[dict, ...]], batch: int, new_tokens: int
) -> float:
    """The baseline: Hugging Face generate called in a plain loop; returns tokens/s."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, padding_side="left")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=dtype)
    model = model.to(device).eval()
    rendered = [
        tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        for messages in conversations
    ]

    def run() -> int:
        produced = 0
        for start in range(0, len(rendered), batch):
            enc = tokenizer(
                rendered[start : start + batch],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            ).to(device)
            with torch.inference_mode():
                out = model.generate(
                    **enc,
                    max_new_tokens=new_tokens,
                    min_new_tokens=new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                )
            produced += (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0]
        return produced

    run_first_chunk_only(run)
    started = time.perf_counter()
    produced = run()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return produced / (time.perf_counter() - started)


def run_first_chunk_only(run) -> None:
    """Warm-up pass (kernels, allocator) so neither side pays start-up costs in the timing."""
    run()


def backend_rate(path: Path, device: str, texts: list[str], batch: int, new_tokens: int) -> float:
    from studies.generation.backends import ChatRequest, build_backend

    backend = build_backend(
        "transformers", {"path": str(path), "device": device, "batch_size": batch}
    )
    requests = [
        ChatRequest(
            messages=({"role": "user", "content": t},),
            max_tokens=new_tokens,
            min_tokens=new_tokens,
            temperature=0.0,
        )
        for t in texts
    ]
    backend.generate(requests[:batch])  # warm-up
    started = time.perf_counter()
    outcomes = backend.generate(requests)
    elapsed = time.perf_counter() - started
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
    return sum(o.completion_tokens for o in outcomes) / elapsed


def bench_backend(args) -> dict:
    texts = prompts(args.prompts)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_model(Path(tmp) / "model", args.size)
        one = backend_rate(path, args.device, texts, 1, args.new_tokens)
        batched = backend_rate(path, args.device, texts, args.batch_size, args.new_tokens)
    return {
        "phase": "backend",
        "device": args.device,
        "size": args.size,
        "prompts": args.prompts,
        "new_tokens": args.new_tokens,
        "batch_size": args.batch_size,
        "one_at_a_time_tok_s": round(one, 1),
        "batched_tok_s": round(batched, 1),
        "batching_gain": round(batched / one, 2),
    }


def bench_jobs(args) -> dict:
    """Same prompts and batch size: a generation job on a real worker vs the direct loop."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench")
    import django

    django.setup()
    from django.core.management import call_command

    from studies.domain import RESPONSE_TYPES
    from studies.generation import prompts as prompts_module
    from studies.generation import selectors, services
    from studies.models import GenerationItem, Study
    from studies.spec import load_spec_file
    from studies.stimuli_file import StimulusRow

    call_command("migrate", verbosity=0)
    Study.objects.filter(slug="bench-generation").delete()
    spec, _ = load_spec_file(ROOT / "examples" / "every-type" / "study.yaml")
    spec = dataclasses.replace(spec, slug="bench-generation")
    texts = prompts(args.prompts)
    rows = [
        StimulusRow(
            query_id=f"b{i:04d}",
            query=t,
            category="bench",
            topic="",
            benign_scenario="You are curious.",
            malicious_scenario="You are curious.",
            responses={},
            metadata={},
            line=i + 2,
        )
        for i, t in enumerate(texts)
    ]
    study = services_import(spec, rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_model(Path(tmp) / "model", args.size)
        # The direct loop gets exactly the conversations the job will send, in the same order.
        instructions = prompts_module.instructions_with_defaults(None)
        conversations = [
            prompts_module.strategy_messages(t, response_type, instructions)
            for t in texts
            for response_type in RESPONSE_TYPES
        ]
        direct = direct_loop(path, args.device, conversations, args.batch_size, args.new_tokens)
        model = services.register_model(
            name="bench-local",
            backend="transformers",
            queue="gpu",
            backend_settings={
                "path": str(path),
                "device": args.device,
                "batch_size": args.batch_size,
            },
            temperature=0.0,
            max_tokens=args.new_tokens,
        )
        log = open(Path(tmp) / "worker.log", "w")  # noqa: SIM115
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                "default,gpu",
                "--pool",
                "solo",
                "--prefetch-multiplier",
                "1",
                "-l",
                "warning",
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            # Warm the worker (imports, model load) with one job on one query, not timed.
            warm_study = services_import(dataclasses.replace(spec, slug="bench-warm"), rows[:1])
            wait(services.start_generation_job(study=warm_study, model=model), selectors)
            job = services.start_generation_job(study=study, model=model)
            started = time.perf_counter()
            wait(job, selectors)
            elapsed = time.perf_counter() - started
        finally:
            worker.terminate()
            worker.wait(timeout=60)
        items = GenerationItem.objects.filter(job=job)
        tokens = sum(items.values_list("completion_tokens", flat=True))
        assert items.filter(status="done").count() == items.count()
    through_jobs = tokens / elapsed
    return {
        "phase": "jobs",
        "device": args.device,
        "size": args.size,
        "items": items.count(),
        "new_tokens": args.new_tokens,
        "batch_size": args.batch_size,
        "direct_loop_tok_s": round(direct, 1),
        "through_jobs_tok_s": round(through_jobs, 1),
        "jobs_vs_direct": round(through_jobs / direct, 3),
    }


def services_import(spec, rows: list):
    from studies.models import Study
    from studies.services import import_study

    Study.objects.filter(slug=spec.slug).delete()
    return import_study(spec=spec, stimuli=rows)


def wait(job, selectors, timeout: float = 3600) -> None:
    deadline = time.monotonic() + timeout
    while not selectors.job_progress(job)["finished"]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job.pk} unfinished after {timeout} s")
        time.sleep(0.5)  # gentle: on a 2-core host polling competes with the model for CPU


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=["backend", "jobs"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", default="small", choices=sorted(SIZES))
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    result = bench_backend(args) if args.phase == "backend" else bench_jobs(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
