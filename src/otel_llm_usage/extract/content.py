"""Message content, only when ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` says
so (``SPAN_ONLY`` or ``true``: span attributes; ``EVENT_ONLY``: a
``gen_ai.client.inference.operation.details`` event, a log record in the span's context;
``SPAN_AND_EVENT``: both; see ``settings.py``), in the GenAI semantic conventions' JSON shape::

    gen_ai.system_instructions  [{"type": "text", "content": "..."}]
    gen_ai.input.messages       [{"role": "user", "parts": [{"type": "text", "content": "..."}]}]
    gen_ai.output.messages      [{"role": "assistant", "parts": [...], "finish_reason": "stop"}]

Each attribute is valid JSON of at most ``max_length`` characters: long texts are cut
(marked with "…"), then the oldest messages are dropped. Only message content is read:
never the model's settings, so API keys, headers and base-URL credentials cannot leak.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import trace

from otel_llm_usage import semconv as sc

logger = logging.getLogger(__name__)

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
_ELLIPSIS = "…"


def _text_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    parts: list[dict[str, Any]] = []
    if isinstance(content, Sequence):
        for block in content:
            if isinstance(block, str):
                parts.append({"type": "text", "content": block})
            elif isinstance(block, Mapping):
                kind = block.get("type")
                if kind == "text" and isinstance(block.get("text"), str):
                    parts.append({"type": "text", "content": block["text"]})
                elif kind in ("reasoning", "thinking"):
                    text = block.get("reasoning") or block.get("thinking") or ""
                    parts.append({"type": "reasoning", "content": str(text)})
                elif kind:
                    # images, audio, files: say what was there, not the bytes
                    parts.append({"type": str(kind)})
    return parts


def _message(message: Any) -> dict[str, Any]:
    kind = getattr(message, "type", None)
    role = _ROLES.get(str(kind), str(kind or "user"))
    if role == "tool":
        return {
            "role": "tool",
            "parts": [
                {
                    "type": "tool_call_response",
                    "id": getattr(message, "tool_call_id", None),
                    "response": getattr(message, "content", None),
                }
            ],
        }
    parts = _text_parts(getattr(message, "content", message))
    for call in getattr(message, "tool_calls", None) or ():
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": call.get("name"),
                "arguments": call.get("args"),
            }
        )
    return {"role": role, "parts": parts}


def input_messages(messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system instruction parts, other messages) from LangChain messages or prompts."""
    if isinstance(messages, str):
        return [], [{"role": "user", "parts": _text_parts(messages)}]
    system: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for message in messages or ():
        if isinstance(message, str):  # legacy LLM prompts
            others.append({"role": "user", "parts": _text_parts(message)})
            continue
        converted = _message(message)
        if converted["role"] == "system":
            system.extend(converted["parts"])
        else:
            others.append(converted)
    return system, others


def output_message(message: Any, finish_reason: str | None) -> list[dict[str, Any]]:
    converted = (
        _message(message)
        if not isinstance(message, str)
        else {"role": "assistant", "parts": _text_parts(message)}
    )
    converted["role"] = "assistant"
    if finish_reason:
        converted["finish_reason"] = finish_reason
    return [converted]


def bounded_json(items: list[dict[str, Any]], max_length: int) -> str:
    """JSON of ``items`` in at most ``max_length`` characters, still valid JSON."""
    text = json.dumps(items, default=str, ensure_ascii=False)
    if len(text) <= max_length:
        return text
    texts = [
        part
        for item in items
        for part in (item.get("parts") or [item])
        if isinstance(part, dict) and isinstance(part.get("content"), str)
    ]
    if texts:
        budget = max(16, max_length // (2 * len(texts)))
        for part in texts:
            if len(part["content"]) > budget:
                part["content"] = part["content"][:budget] + _ELLIPSIS
        text = json.dumps(items, default=str, ensure_ascii=False)
    while len(text) > max_length and len(items) > 1:
        items = items[1:]  # keep the newest messages
        text = json.dumps(items, default=str, ensure_ascii=False)
    if len(text) > max_length:
        text = json.dumps([{"truncated": True}])
    return text


class DetailsEvents:
    """Emits the ``gen_ai.client.inference.operation.details`` event of a call whose
    content goes to events, on the Logs API (util-genai's event; a log record with the
    span's context, so a backend links it to the span)."""

    def __init__(self, logger: Any) -> None:
        self.logger = logger

    def emit(
        self, span: Any, info: Any, inputs: Mapping[str, Any] | None, output_json: str
    ) -> None:
        try:
            attributes: dict[str, Any] = {
                sc.GEN_AI_OPERATION_NAME: info.operation,
                sc.GEN_AI_PROVIDER_NAME: info.provider,
            }
            if info.request_model:
                attributes[sc.GEN_AI_REQUEST_MODEL] = info.request_model
            if inputs:
                attributes.update(inputs)
            attributes[sc.GEN_AI_OUTPUT_MESSAGES] = output_json
            self.logger.emit(
                event_name=sc.GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS,
                attributes=attributes,
                context=trace.set_span_in_context(span),
            )
        except Exception:
            logger.debug("otel-llm-usage: could not emit a content event", exc_info=True)
