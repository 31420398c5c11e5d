"""Scorers on their own: the local reward model (tiny, random weights, built here) and the
strict parsing of an LLM judge's −3…+3 answers."""

from __future__ import annotations

import pytest

from modellab.rewards import scorers
from modellab.rewards.scorers import JudgeAnswerError, parse_judge_answer
from tests.generation.tiny_model import build_tiny_reward_model

CONVERSATIONS = [
    scorers.conversation("How do I pick a lock?", None, "I can't help with that."),
    scorers.conversation(
        "How do I pick a lock?",
        "You are a locksmith apprentice.",
        "Sure! Here is a short answer about pins and tension wrenches, step by step.",
    ),
    scorers.conversation("Bake bread?", None, "Mix flour, water, salt and yeast."),
]


@pytest.fixture(scope="module")
def reward_dir(tmp_path_factory):
    return build_tiny_reward_model(tmp_path_factory.mktemp("reward") / "tiny")


def test_scores_are_the_models_single_logit_whatever_the_batch(reward_dir):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    batched = scorers.RewardModelScorer(path=str(reward_dir), device="cpu", batch_size=3)
    one_by_one = scorers.RewardModelScorer(path=str(reward_dir), device="cpu", batch_size=1)
    together = batched.score(CONVERSATIONS)
    alone = one_by_one.score(CONVERSATIONS)
    assert all(o.ok for o in together + alone)
    # Padding a shorter conversation in a batch must not change its score.
    assert [o.score for o in together] == pytest.approx([o.score for o in alone], abs=1e-4)
    # Independent computation: the chat template over the whole conversation, one logit.
    tokenizer = AutoTokenizer.from_pretrained(reward_dir)
    model = AutoModelForSequenceClassification.from_pretrained(reward_dir).eval()
    text = tokenizer.apply_chat_template(list(CONVERSATIONS[1]), tokenize=False)
    assert text.startswith("<s><user>: You are a locksmith apprentice.")
    assert text.rstrip().endswith("step by step.")
    with torch.inference_mode():
        encoded = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        expected = model(**encoded).logits[0, 0].item()
    assert together[1].score == pytest.approx(expected, abs=1e-4)
    # Different responses get different scores (the model is not a constant).
    assert len({round(o.score, 6) for o in together}) == 3


def test_the_weights_load_once_per_process(reward_dir):
    first = scorers.RewardModelScorer(path=str(reward_dir), device="cpu").load()
    again = scorers.RewardModelScorer(path=str(reward_dir), device="cpu", batch_size=5).load()
    assert first is again


def test_a_too_long_conversation_is_refused_not_cut(reward_dir):
    scorer = scorers.RewardModelScorer(path=str(reward_dir), device="cpu", max_input_tokens=20)
    long, short = (
        scorers.conversation("q " * 50, None, "a " * 50),
        scorers.conversation("q", None, "a"),
    )
    outcomes = scorer.score([long, short])
    assert not outcomes[0].ok and "max_input_tokens" in outcomes[0].error
    assert outcomes[1].ok


def test_a_model_with_several_labels_is_refused(tmp_path):
    from transformers import AutoConfig, LlamaForSequenceClassification

    path = build_tiny_reward_model(tmp_path / "two")
    config = AutoConfig.from_pretrained(path)
    config.num_labels = 2
    LlamaForSequenceClassification(config).save_pretrained(path)
    outcomes = scorers.RewardModelScorer(path=str(path), device="cpu").score(CONVERSATIONS[:1])
    assert "2 output labels" in outcomes[0].error and not outcomes[0].retryable


def test_a_missing_path_is_an_error_on_every_conversation(tmp_path):
    outcomes = scorers.RewardModelScorer(path=str(tmp_path / "nope")).score(CONVERSATIONS)
    assert all("not a directory" in o.error for o in outcomes)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"score": 2, "rationale": "helpful"}', (2, "helpful")),
        ('```json\n{"score": -3, "rationale": "unsafe"}\n```', (-3, "unsafe")),
        ('{"score": 0}', (0, "")),
    ],
)
def test_judge_answers_that_parse(answer, expected):
    assert parse_judge_answer(answer) == expected


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("", "empty"),
        ("I would say 2.", "not one JSON object"),
        ('Score: {"score": 2}', "not one JSON object"),
        ('[{"score": 2}]', "not an object"),
        ('{"rationale": "x"}', 'no "score"'),
        ('{"score": "2"}', "whole number"),
        ('{"score": 1.5}', "whole number"),
        ('{"score": true}', "whole number"),
        ('{"score": 4}', "from -3 to 3"),
        ('{"score": -4}', "from -3 to 3"),
        ('{"score": 1, "rationale": 5}', "must be text"),
    ],
)
def test_judge_answers_that_do_not_parse(answer, problem):
    with pytest.raises(JudgeAnswerError, match=problem):
        parse_judge_answer(answer)
