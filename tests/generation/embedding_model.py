"""Builds a tiny random-weight BERT text encoder on disk, with no download, for embedding tests."""

from __future__ import annotations

from pathlib import Path

from tests.generation.tiny_model import build_tiny_tokenizer

#: Positions of the tiny encoder: a longer text is cut there (tests use it to check that).
MAX_POSITIONS = 64


def build_tiny_embedding_model(directory: Path, *, seed: int = 0) -> Path:
    """Write a tiny BERT encoder (hidden size 32, two layers, ``MAX_POSITIONS`` positions) and
    the tests' byte-level tokenizer into ``directory``; deterministic for a given ``seed``.
    Register it as ``--kind embedding --backend transformers --set path=<directory>``."""
    import torch
    from transformers import BertConfig, BertModel

    directory = Path(directory)
    tokenizer = build_tiny_tokenizer(directory)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=MAX_POSITIONS,
        pad_token_id=tokenizer.pad_token_id,
    )
    # fork_rng keeps the caller's global RNG state untouched while making the weights fixed.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(config)
    model.save_pretrained(directory)
    return directory
