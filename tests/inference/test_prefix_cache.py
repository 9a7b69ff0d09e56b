"""A slot's cached prompt prefix must not change the answer: the same prompt gives the same greedy answer on a
warm slot as on a cold one (hardening issue item 9: the second answer was "\\nJenkins:\\nJenkins:...")."""

from __future__ import annotations

import threading

import pytest

from jenkins_assistant.inference.model import REPLAYED_PROMPT_TOKENS, ChatModel, SamplingParams, limit_prefix_reuse
from jenkins_assistant.inference.model_source import resolve_model

PROMPT = ("The following is a conversation between a human and an AI assistant about Jenkins.\n"
          "Human: How do I restart Jenkins?\nAI:")
OTHER = "Human: Which file holds the Jenkins configuration?\nAI:"


@pytest.fixture(scope="module")
def model(smollm2_settings) -> ChatModel:
    loaded = ChatModel(smollm2_settings, resolve_model(smollm2_settings))
    yield loaded
    loaded.close()


def greedy(model: ChatModel, prompt: str, max_tokens: int = 48) -> str:
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, top_p=1.0, repeat_penalty=1.0, stop=[])
    pieces: list[str] = []
    model.slots[0].generate(model.tokenize(prompt), params, pieces.append, threading.Event())
    return "".join(pieces)


def test_the_same_prompt_twice_on_one_slot_gives_the_same_answer(model):
    model.slots[0].llama.reset()
    first = greedy(model, PROMPT)
    assert first.strip()
    assert greedy(model, PROMPT) == first  # whole prompt cached
    assert first.startswith(greedy(model, PROMPT, max_tokens=8))  # a shorter answer is its prefix
    greedy(model, OTHER)
    assert greedy(model, PROMPT) == first  # after another prompt


def test_a_warm_cache_replays_the_prompts_last_tokens(model):
    llama = model.slots[0].llama
    greedy(model, PROMPT)
    tokens = model.tokenize(PROMPT)
    assert llama.n_tokens > len(tokens)  # the cache holds the prompt and the answer
    limit_prefix_reuse(llama, tokens)
    assert llama.n_tokens == len(tokens) - REPLAYED_PROMPT_TOKENS
    limit_prefix_reuse(llama, tokens[:5] + [tokens[5] + 1] + tokens[6:])  # differs early: llama.cpp's own reuse
    assert llama.n_tokens == len(tokens) - REPLAYED_PROMPT_TOKENS
