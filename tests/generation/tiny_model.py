"""Builds a tiny random-weight Llama chat model on disk, with no download, for generation tests."""

from __future__ import annotations

from pathlib import Path

# A chat template in the usual Jinja shape: BOS, one "<role>: content" line per message, then
# the assistant cue. The backend must render prompts through it, so tests can spot its marks.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<{{ message['role'] }}>: {{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<assistant>:{% endif %}"
)

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]

_CORPUS = [
    "How do I bake bread at home?",
    "I can't help with that request, but here is some safer information.",
    "Sure! Here is a short answer to your question about chemistry.",
    "Please explain how vaccines work in simple words.",
    "system: You are a helpful assistant. user: hello assistant: hi there",
    "The quick brown fox jumps over the lazy dog 0123456789.",
]


def build_tiny_tokenizer(directory: Path):
    """Write the tiny byte-level BPE tokenizer (with the chat template) into ``directory``
    and return it: ~300 tokens trained in memory, so any text encodes without ``<unk>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=SPECIAL_TOKENS,
        # The full byte alphabet means no input ever maps to <unk>.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_CORPUS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        # The template writes BOS itself; prompts are tokenized without added specials.
        add_bos_token=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(directory)
    return tokenizer


def build_tiny_chat_model(
    directory: Path,
    *,
    seed: int = 0,
    eos_bias: float | None = None,
    hidden_size: int = 32,
    intermediate_size: int = 64,
    layers: int = 2,
    heads: int = 2,
) -> Path:
    """Write a tiny Llama causal LM and its tokenizer (with a chat template) into ``directory``.

    Deterministic for a given ``seed`` and fast (well under two seconds): a byte-level BPE
    tokenizer trained in memory on a few sentences (~300 tokens, so any text encodes without
    ``<unk>``), special tokens ``<s>`` (BOS), ``</s>`` (EOS), ``<pad>``, ``<unk>``, and a
    two-layer Llama with hidden size 32. Returns ``directory``, ready for
    ``from_pretrained(directory, local_files_only=True)``.

    Random weights almost never pick EOS, so answers run to ``max_tokens``. ``eos_bias`` adds
    that much to EOS's logit at every step (``sequence_bias`` in generation_config.json, which
    ``generate`` applies by itself); the logits are tiny, so with seed 0 a bias of 0.2 makes
    greedy answers end after differing numbers of tokens, and 2.0 ends them at once.
    The size arguments let benchmarks build a larger model of the same architecture (e.g. a
    ~1B-parameter Llama shape on a GPU host); the defaults are the tests' tiny one.
    """
    # Imported here so that importing this module (e.g. for collection) stays cheap.
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    directory = Path(directory)
    tokenizer = build_tiny_tokenizer(directory)

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    # fork_rng keeps the caller's global RNG state untouched while making the weights fixed.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    if eos_bias is not None:
        model.generation_config.sequence_bias = [[[tokenizer.eos_token_id], float(eos_bias)]]
    model.save_pretrained(directory)
    return directory


def build_tiny_reward_model(
    directory: Path,
    *,
    seed: int = 0,
    hidden_size: int = 32,
    intermediate_size: int = 64,
    layers: int = 2,
    heads: int = 2,
) -> Path:
    """Write a tiny random-weight Llama *sequence-classification* model with one output (a
    reward model's shape: num_labels=1, pad_token_id set so batches of several score) and the
    same tokenizer into ``directory``. Deterministic for a given ``seed``; the size arguments
    let benchmarks build a larger one of the same architecture."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    directory = Path(directory)
    tokenizer = build_tiny_tokenizer(directory)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=1,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForSequenceClassification(config)
    model.save_pretrained(directory)
    return directory
