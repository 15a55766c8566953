"""The local provider the tests and the examples talk to: the OpenAI chat-completions,
Responses and embeddings APIs, the Anthropic messages API, AWS Bedrock and Cohere on
``127.0.0.1`` (a free port, a server thread), streaming and not. Standard library only.

Tests script what the provider says, call by call: exact usage of every token class,
errors, a slow first chunk, a stream that breaks off. ``_local_provider.py`` (what the
examples run against) answers from a function of the request instead (tokens are words,
a repeated prompt is a cache hit, tools are called).

Every request is answered from the script (:meth:`ProviderServer.script`), one
:class:`Reply` per request in arrival order, else from ``default``; with neither, the
server answers 500 so that a test that sent more requests than it scripted fails loudly.

Usage is written as each provider writes it:

* OpenAI (``POST /v1/chat/completions``, or the Azure path
  ``/openai/deployments/{deployment}/chat/completions``): ``prompt_tokens`` = ``input``
  (which INCLUDES ``cache_read``, as OpenAI counts), ``prompt_tokens_details.cached_tokens``
  = ``cache_read``, ``completion_tokens`` = ``output`` (which includes ``reasoning``),
  ``completion_tokens_details.reasoning_tokens`` = ``reasoning``. A stream carries usage
  only when the request asked for it (``stream_options.include_usage``), in a last chunk
  with no choices, as OpenAI does.
* OpenAI Responses API (``POST /v1/responses``): ``usage.input_tokens`` = ``input``
  (INCLUDING ``input_tokens_details.cached_tokens`` = ``cache_read``),
  ``usage.output_tokens`` = ``output`` (including
  ``output_tokens_details.reasoning_tokens`` = ``reasoning``); a stream always ends with
  ``response.completed``, which carries the usage (the API has no option for it).
* Anthropic (``POST /v1/messages``): ``input_tokens`` = ``input`` (which EXCLUDES the cache,
  as Anthropic counts), ``cache_read_input_tokens`` = ``cache_read``,
  ``cache_creation_input_tokens`` = ``cache_creation``, ``output_tokens`` = ``output``. A
  stream has the input side in ``message_start`` (with ``output_tokens`` 1, as the API
  sends) and the cumulative counts in ``message_delta``: all of them
  (``delta_usage="full"``, what the API sends today) or only ``output_tokens``
  (``delta_usage="output"``, what it sent until 2025; see the recorded
  ``anthropic_messages_streaming.yaml``).

* AWS Bedrock runtime (``POST /model/{model id}/{action}``, a boto3 client's
  ``endpoint_url`` pointed at the server): ``invoke`` answers the Anthropic body above
  and, as Bedrock does, the token counts in ``X-Amzn-Bedrock-*-Token-Count`` headers;
  ``invoke-with-response-stream`` answers the Anthropic stream events, each one a ``chunk``
  event of AWS's binary event-stream format (``application/vnd.amazon.eventstream``),
  the last (``message_stop``) carrying ``amazon-bedrock-invocationMetrics`` with
  ``inputTokenCount`` = ``input`` (EXCLUDING the cache), ``outputTokenCount``,
  ``cacheReadInputTokenCount`` and ``cacheWriteInputTokenCount``, as Bedrock does;
  ``converse`` and ``converse-stream`` answer the Converse API (``inputTokens`` EXCLUDES
  ``cacheReadInputTokens`` and ``cacheWriteInputTokens``; the stream's usage is in its
  last event, ``metadata``). ``cut_after`` on a Bedrock stream sends Bedrock's in-stream
  error instead (an ``exception`` message, ``modelStreamErrorException``), and an error
  status names its AWS error code in ``x-amzn-ErrorType`` (e.g. ``ThrottlingException``).

* OpenAI chat answers ``n`` choices when the request asks for them (one usage for the
  call, as OpenAI reports it) and ``service_tier`` when the reply sets one.

* Embeddings: OpenAI ``POST /v1/embeddings`` (Azure:
  ``/openai/deployments/{deployment}/embeddings``) answers one vector of ``dimensions``
  floats per input (base64 when the request asks, as the OpenAI SDK does by default) and
  ``usage.prompt_tokens`` = ``input``; Bedrock ``invoke`` of a model id with ``embed`` in
  it answers Titan's body (``embedding``, ``inputTextTokenCount`` = ``input``) and the
  ``X-Amzn-Bedrock-Input-Token-Count`` header; Cohere ``POST /v1/embed`` answers
  ``embeddings.float`` and ``meta.billed_units.input_tokens`` = ``input``.

* Cohere v2 chat (``POST /v2/chat``), not streaming only (the recorded
  ``lc_chain_stream_cohere_usage.yaml`` is the stream): ``usage.billed_units`` =
  (``input``, ``output``), ``usage.tokens`` = (``used_input``, ``output``),
  ``cached_tokens`` = ``cache_read``.

Streams use HTTP/1.1 chunked encoding, so a stream cut off by ``cut_after`` (the server
closes the socket after that many events) is an incomplete body to the client, as a
dropped connection is, not a short but complete answer.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import unquote

OPENAI_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"
OPENAI_EMBEDDINGS_PATH = "/v1/embeddings"
ANTHROPIC_PATH = "/v1/messages"
AZURE_PREFIX = "/openai/deployments/"
COHERE_PATH = "/v2/chat"
COHERE_EMBED_PATH = "/v1/embed"
BEDROCK_PREFIX = "/model/"
BEDROCK_ACTIONS = ("invoke", "invoke-with-response-stream", "converse", "converse-stream")


@dataclass
class Reply:
    """What the provider answers to one request."""

    text: str = "Spans all the way down."
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_creation: int = 0  # Anthropic only: OpenAI reports no cache writes
    reasoning: int = 0  # OpenAI only (completion_tokens_details.reasoning_tokens)
    model: str | None = None  # the response model; default: the request's model
    id: str | None = None  # default: a fresh id per request
    finish_reason: str | None = None  # default: "stop" (OpenAI), "end_turn" (Anthropic)
    status: int = 200
    error_type: str | None = None  # the provider's error type, for a status >= 400
    retry_after: str | None = None  # the Retry-After header, e.g. "1"
    first_chunk_delay: float = 0.0  # seconds between the response headers and 1st event
    cut_after: int | None = None  # stream: close the socket after this many events
    delta_usage: Literal["full", "output"] = "full"  # Anthropic message_delta usage
    used_input: int = 0  # Cohere only: the input tokens used, where ``input`` is billed
    headers: dict[str, str] = field(default_factory=dict)
    # OpenAI chat only: tool calls instead of text, each {"id", "name", "arguments" (JSON)}
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    error_message: str | None = None  # for a status >= 400; default "scripted error N"
    latency: float = 0.0  # seconds before answering (a model thinking)
    chunk_delay: float = 0.0  # seconds between streamed events
    dimensions: int = 4  # embeddings: floats per vector
    service_tier: str | None = None  # OpenAI: the response's service_tier


@dataclass
class Received:
    """One request as the server got it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class ProviderServer:
    """The server (a context manager). ``url`` is the scheme, host and port."""

    def __init__(self, default: Reply | Callable[[Received], Reply] | None = None) -> None:
        self.default = default
        self.requests: list[Received] = []
        self.replies: list[Reply] = []  # the reply given to each request, in order
        self._script: deque[Reply | Callable[[Received], Reply]] = deque()
        self._lock = threading.Lock()
        self._count = 0
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    @property
    def openai_url(self) -> str:
        """``base_url`` for the OpenAI SDK."""
        return f"{self.url}/v1"

    def script(self, *replies: Reply | Callable[[Received], Reply]) -> ProviderServer:
        """Queue replies (or functions of the request giving one), used in order."""
        with self._lock:
            self._script.extend(replies)
        return self

    def reset(self) -> None:
        """Forget the script, the default and what was received (a server shared by tests)."""
        with self._lock:
            self._script.clear()
            self.default = None
            self.requests.clear()
            self.replies.clear()

    @property
    def pending(self) -> int:
        """Scripted replies not used yet."""
        with self._lock:
            return len(self._script)

    def start(self) -> ProviderServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ProviderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next(self, received: Received) -> tuple[Reply | None, int]:
        with self._lock:
            self.requests.append(received)
            self._count += 1
            number = self._count
            step = self._script.popleft() if self._script else self.default
        reply = step(received) if callable(step) else step
        if reply is not None:
            with self._lock:
                self.replies.append(reply)
        return reply, number


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 resets connections under concurrent load

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that resets an idle keep-alive connection is not a server error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


# -- the wire formats --------------------------------------------------------------------


def openai_usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.input,
        "completion_tokens": reply.output,
        "total_tokens": reply.input + reply.output,
        "prompt_tokens_details": {"cached_tokens": reply.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def anthropic_usage(reply: Reply, output: int | None = None) -> dict[str, Any]:
    return {
        "input_tokens": reply.input,
        "cache_creation_input_tokens": reply.cache_creation,
        "cache_read_input_tokens": reply.cache_read,
        "output_tokens": reply.output if output is None else output,
    }


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [word if index == 0 else " " + word for index, word in enumerate(words)]


def openai_events(reply: Reply, model: str, response_id: str, usage: bool) -> Iterator[bytes]:
    def chunk(choices: list[dict[str, Any]], usage_part: Any = None) -> bytes:
        data: dict[str, Any] = {
            "id": response_id,
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "system_fingerprint": "fp_test",
            "choices": choices,
        }
        if usage:
            data["usage"] = usage_part
        return b"data: " + json.dumps(data).encode("utf-8") + b"\n\n"

    def delta(content: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}

    if reply.tool_calls:  # each call first (id and name), then its arguments
        calls = [_tool_call(call) for call in reply.tool_calls]
        for index, call in enumerate(calls):
            call["index"] = index
            call["function"] = {"name": call["function"]["name"], "arguments": ""}
        yield chunk([delta({"role": "assistant", "content": None, "tool_calls": calls})])
        for index, call in enumerate(reply.tool_calls):
            arguments = {"index": index, "function": {"arguments": call["arguments"]}}
            yield chunk([delta({"tool_calls": [arguments]})])
        yield chunk([delta({}, reply.finish_reason or "tool_calls")])
    else:
        yield chunk([delta({"role": "assistant", "content": ""})])
        for piece in _pieces(reply.text):
            yield chunk([delta({"content": piece})])
        yield chunk([delta({}, reply.finish_reason or "stop")])
    if usage:
        yield chunk([], openai_usage(reply))
    yield b"data: [DONE]\n\n"


def _openai_body(reply: Reply, model: str, response_id: str, n: int = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
    finish = reply.finish_reason or "stop"
    if reply.tool_calls:
        message = {"role": "assistant", "content": None, "refusal": None}
        message["tool_calls"] = [_tool_call(call) for call in reply.tool_calls]
        finish = reply.finish_reason or "tool_calls"
    body = {
        "id": response_id,
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": index,
                "message": message,
                "logprobs": None,
                "finish_reason": finish,
            }
            for index in range(n)
        ],
        "usage": openai_usage(reply),
        "system_fingerprint": "fp_test",
    }
    if reply.service_tier:
        body["service_tier"] = reply.service_tier
    return body


def responses_usage(reply: Reply) -> dict[str, Any]:
    return {
        "input_tokens": reply.input,
        "input_tokens_details": {"cached_tokens": reply.cache_read},
        "output_tokens": reply.output,
        "output_tokens_details": {"reasoning_tokens": reply.reasoning},
        "total_tokens": reply.input + reply.output,
    }


def _responses_body(reply: Reply, model: str, response_id: str, status: str) -> dict[str, Any]:
    message = {
        "type": "message",
        "id": f"msg_{response_id}",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
    }
    return {
        "id": response_id,
        "object": "response",
        "created_at": 1700000000,
        "status": status,
        "model": model,
        "output": [message] if status == "completed" else [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": responses_usage(reply) if status == "completed" else None,
    }


def responses_events(reply: Reply, model: str, response_id: str) -> Iterator[bytes]:
    item_id = f"msg_{response_id}"
    sequence = iter(range(1_000_000))

    def event(kind: str, **data: Any) -> bytes:
        return _sse(kind, {"type": kind, "sequence_number": next(sequence), **data})

    yield event(
        "response.created", response=_responses_body(reply, model, response_id, "in_progress")
    )
    item = {"type": "message", "id": item_id, "status": "in_progress", "role": "assistant"}
    yield event("response.output_item.added", output_index=0, item={**item, "content": []})
    part = {"type": "output_text", "text": "", "annotations": []}
    yield event(
        "response.content_part.added", item_id=item_id, output_index=0, content_index=0, part=part
    )
    for piece in _pieces(reply.text):
        yield event(
            "response.output_text.delta",
            item_id=item_id,
            output_index=0,
            content_index=0,
            delta=piece,
        )
    yield event(
        "response.output_text.done",
        item_id=item_id,
        output_index=0,
        content_index=0,
        text=reply.text,
    )
    done = _responses_body(reply, model, response_id, "completed")
    yield event("response.output_item.done", output_index=0, item=done["output"][0])
    yield event("response.completed", response=done)


def _tool_call(call: dict[str, str]) -> dict[str, Any]:
    return {
        "id": call["id"],
        "type": "function",
        "function": {"name": call["name"], "arguments": call["arguments"]},
    }


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def anthropic_events(reply: Reply, model: str, response_id: str) -> Iterator[bytes]:
    message: dict[str, Any] = {
        "id": response_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": anthropic_usage(reply, output=1),
    }
    yield _sse("message_start", {"type": "message_start", "message": message})
    block = {"type": "text", "text": ""}
    yield _sse(
        "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
    )
    yield _sse("ping", {"type": "ping"})
    for piece in _pieces(reply.text):
        text_delta = {"type": "text_delta", "text": piece}
        yield _sse(
            "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": text_delta}
        )
    yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    delta_usage = (
        anthropic_usage(reply) if reply.delta_usage == "full" else {"output_tokens": reply.output}
    )
    yield _sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": reply.finish_reason or "end_turn", "stop_sequence": None},
            "usage": delta_usage,
        },
    )
    yield _sse("message_stop", {"type": "message_stop"})


def _anthropic_body(reply: Reply, model: str, response_id: str) -> dict[str, Any]:
    return {
        "id": response_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": reply.text}],
        "stop_reason": reply.finish_reason or "end_turn",
        "stop_sequence": None,
        "usage": anthropic_usage(reply),
    }


# -- AWS Bedrock ----------------------------------------------------------------------


def eventstream_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message of AWS's binary event-stream format: a prelude (total length, headers
    length, their CRC32), string headers (type 7), the payload and the message's CRC32."""
    encoded = b"".join(
        struct.pack(">B", len(name))
        + name.encode()
        + b"\x07"
        + struct.pack(">H", len(value.encode()))
        + value.encode()
        for name, value in headers.items()
    )
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def bedrock_event(event_type: str, data: dict[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json"}
    headers[":message-type"] = "event"
    return eventstream_message(headers, json.dumps(data).encode("utf-8"))


def bedrock_stream_error(message: str) -> bytes:
    """The error Bedrock sends inside a stream that fails after it began."""
    headers = {":exception-type": "modelStreamErrorException"}
    headers[":content-type"] = "application/json"
    headers[":message-type"] = "exception"
    return eventstream_message(headers, json.dumps({"message": message}).encode("utf-8"))


def bedrock_invocation_metrics(reply: Reply) -> dict[str, Any]:
    return {
        "inputTokenCount": reply.input,
        "outputTokenCount": reply.output,
        "invocationLatency": 320,
        "firstByteLatency": 110,
        "cacheReadInputTokenCount": reply.cache_read,
        "cacheWriteInputTokenCount": reply.cache_creation,
    }


def bedrock_invoke_events(reply: Reply, model: str, response_id: str) -> Iterator[bytes]:
    """InvokeModelWithResponseStream of an Anthropic model: the messages stream events,
    base64 in ``chunk`` events, Bedrock's own token counts on the last one."""
    for sse in anthropic_events(reply, model, response_id):
        data = json.loads(sse.split(b"data: ", 1)[1])
        if data["type"] == "ping":
            continue  # Bedrock does not forward Anthropic's pings
        if data["type"] == "message_stop":
            data["amazon-bedrock-invocationMetrics"] = bedrock_invocation_metrics(reply)
        raw = base64.b64encode(json.dumps(data).encode("utf-8")).decode("ascii")
        yield bedrock_event("chunk", {"bytes": raw})


def converse_usage(reply: Reply) -> dict[str, Any]:
    total = reply.input + reply.cache_read + reply.cache_creation + reply.output
    return {
        "inputTokens": reply.input,
        "outputTokens": reply.output,
        "totalTokens": total,
        "cacheReadInputTokens": reply.cache_read,
        "cacheWriteInputTokens": reply.cache_creation,
    }


def converse_events(reply: Reply) -> Iterator[bytes]:
    yield bedrock_event("messageStart", {"role": "assistant"})
    for piece in _pieces(reply.text):
        yield bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
    yield bedrock_event("contentBlockStop", {"contentBlockIndex": 0})
    yield bedrock_event("messageStop", {"stopReason": reply.finish_reason or "end_turn"})
    usage = {"usage": converse_usage(reply), "metrics": {"latencyMs": 320}}
    yield bedrock_event("metadata", usage)


def _converse_body(reply: Reply) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": reply.text}]}},
        "stopReason": reply.finish_reason or "end_turn",
        "usage": converse_usage(reply),
        "metrics": {"latencyMs": 320},
    }


def _cohere_body(reply: Reply, response_id: str) -> dict[str, Any]:
    return {
        "id": response_id,
        "finish_reason": reply.finish_reason or "COMPLETE",
        "message": {"role": "assistant", "content": [{"type": "text", "text": reply.text}]},
        "usage": {
            "billed_units": {"input_tokens": reply.input, "output_tokens": reply.output},
            "tokens": {"input_tokens": reply.used_input, "output_tokens": reply.output},
            "cached_tokens": reply.cache_read,
        },
    }


_OPENAI_ERRORS = {429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}
_ANTHROPIC_ERRORS = {429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}
_BEDROCK_ERRORS = {429: "ThrottlingException", 500: "InternalServerException"}


def _vector(dimensions: int, index: int) -> list[float]:
    return [round(0.125 * (index + 1) * (d + 1), 3) for d in range(dimensions)]


def _openai_embeddings_body(reply: Reply, model: str, body: dict[str, Any]) -> dict[str, Any]:
    inputs = body.get("input")
    count = len(inputs) if isinstance(inputs, list) and not _is_token_list(inputs) else 1
    dimensions = int(body.get("dimensions") or reply.dimensions)
    data = []
    for index in range(count):
        vector: Any = _vector(dimensions, index)
        if body.get("encoding_format") == "base64":
            vector = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": reply.input, "total_tokens": reply.input},
    }


def _cohere_embed_body(reply: Reply, body: dict[str, Any], number: int) -> dict[str, Any]:
    texts = body.get("texts") or []
    vectors = [_vector(reply.dimensions, index) for index in range(len(texts))]
    return {
        "id": reply.id or f"co-embed-{number}",
        "response_type": "embeddings_by_type",
        "embeddings": {"float": vectors},
        "texts": texts,
        "meta": {"api_version": {"version": "1"}, "billed_units": {"input_tokens": reply.input}},
    }


def _is_token_list(inputs: list[Any]) -> bool:
    return bool(inputs) and all(isinstance(item, int) for item in inputs)


def _error_body(api: str, reply: Reply) -> dict[str, Any]:
    message = reply.error_message or f"scripted error {reply.status}"
    if api in ("bedrock", "cohere"):
        return {"message": message}
    if api == "anthropic":
        kind = reply.error_type or _ANTHROPIC_ERRORS.get(reply.status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    kind = reply.error_type or _OPENAI_ERRORS.get(reply.status, "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}


def _handler(server: ProviderServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, and chunked streams

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            action = ""
            if path == ANTHROPIC_PATH:
                api = "anthropic"
            elif path == RESPONSES_PATH:
                api = "responses"
            elif path == COHERE_PATH:
                api = "cohere"
            elif path == COHERE_EMBED_PATH:
                api, action = "cohere", "embed"
            elif path.startswith(BEDROCK_PREFIX) and path.rsplit("/", 1)[-1] in BEDROCK_ACTIONS:
                api, action = "bedrock", path.rsplit("/", 1)[-1]
            elif path == OPENAI_PATH or (
                path.startswith(AZURE_PREFIX) and path.endswith("/chat/completions")
            ):
                api = "openai"
            elif path == OPENAI_EMBEDDINGS_PATH or (
                path.startswith(AZURE_PREFIX) and path.endswith("/embeddings")
            ):
                api, action = "openai", "embeddings"
            else:
                self._json(404, {"error": {"message": f"unknown path {self.path}"}}, {})
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._json(400, {"error": {"message": "the body is not JSON"}}, {})
                return
            received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            reply, number = server._next(received)
            if reply is None:
                self._json(500, {"error": {"message": "no scripted reply left"}}, {})
                return
            if reply.latency:
                time.sleep(reply.latency)
            headers = dict(reply.headers)
            if reply.retry_after is not None:
                headers["Retry-After"] = reply.retry_after
            if reply.status >= 400:
                if api == "bedrock":
                    code = reply.error_type or _BEDROCK_ERRORS.get(reply.status, "ServiceError")
                    headers["x-amzn-ErrorType"] = code
                self._json(reply.status, _error_body(api, reply), headers)
                return
            if api == "bedrock":
                self._bedrock(action, path, reply, number, headers)
                return
            model = reply.model or str(body.get("model") or "unknown")
            if action == "embeddings":
                self._json(200, _openai_embeddings_body(reply, model, body), headers)
                return
            if action == "embed":
                self._json(200, _cohere_embed_body(reply, body, number), headers)
                return
            if api == "cohere":
                if body.get("stream"):
                    self._json(400, {"message": "this server's Cohere API does not stream"}, {})
                else:
                    self._json(200, _cohere_body(reply, reply.id or f"co-test-{number}"), headers)
                return
            if api == "anthropic":
                response_id = reply.id or f"msg_test_{number}"
            elif api == "responses":
                response_id = reply.id or f"resp_test_{number}"
            else:
                response_id = reply.id or f"chatcmpl-test-{number}"
            if not body.get("stream"):
                if api == "anthropic":
                    payload = _anthropic_body(reply, model, response_id)
                elif api == "responses":
                    payload = _responses_body(reply, model, response_id, "completed")
                else:
                    payload = _openai_body(reply, model, response_id, int(body.get("n") or 1))
                self._json(200, payload, headers)
                return
            if api == "anthropic":
                events = anthropic_events(reply, model, response_id)
            elif api == "responses":
                events = responses_events(reply, model, response_id)
            else:
                include = bool((body.get("stream_options") or {}).get("include_usage"))
                events = openai_events(reply, model, response_id, include)
            self._stream(reply, events, headers)

        def _bedrock(
            self, action: str, path: str, reply: Reply, number: int, headers: dict[str, str]
        ) -> None:
            model = reply.model or unquote(path[len(BEDROCK_PREFIX) :].rsplit("/", 1)[0])
            response_id = reply.id or f"msg_bdrk_test_{number}"
            headers["x-amzn-RequestId"] = f"req-test-{number}"
            if action == "invoke" and "embed" in model:  # Titan text embeddings
                headers["X-Amzn-Bedrock-Input-Token-Count"] = str(reply.input)
                titan = {"embedding": _vector(reply.dimensions, 0)}
                titan["inputTextTokenCount"] = reply.input  # type: ignore[assignment]
                self._json(200, titan, headers)
            elif action == "invoke":  # InvokeModel's token counts are response headers
                headers["X-Amzn-Bedrock-Input-Token-Count"] = str(reply.input)
                headers["X-Amzn-Bedrock-Output-Token-Count"] = str(reply.output)
                headers["X-Amzn-Bedrock-Cache-Read-Input-Token-Count"] = str(reply.cache_read)
                headers["X-Amzn-Bedrock-Cache-Write-Input-Token-Count"] = str(reply.cache_creation)
                headers["X-Amzn-Bedrock-Invocation-Latency"] = "320"
                self._json(200, _anthropic_body(reply, model, response_id), headers)
            elif action == "converse":
                self._json(200, _converse_body(reply), headers)
            else:
                if action == "converse-stream":
                    events = converse_events(reply)
                else:
                    events = bedrock_invoke_events(reply, model, response_id)
                    headers["X-Amzn-Bedrock-Content-Type"] = "application/json"
                content_type = "application/vnd.amazon.eventstream"
                self._stream(reply, events, headers, content_type, bedrock=True)

        def _stream(
            self,
            reply: Reply,
            events: Iterator[bytes],
            headers: dict[str, str],
            content_type: str = "text/event-stream; charset=utf-8",
            bedrock: bool = False,
        ) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.flush()
            if reply.first_chunk_delay:
                time.sleep(reply.first_chunk_delay)
            for sent, event in enumerate(events):
                if reply.cut_after is not None and sent >= reply.cut_after:
                    if bedrock:  # Bedrock reports a failed stream in the stream
                        error = bedrock_stream_error("scripted stream error")
                        self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(error), error))
                        self.wfile.flush()
                        return
                    self._cut()
                    return
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
                if reply.chunk_delay:
                    time.sleep(reply.chunk_delay)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _cut(self) -> None:
            """Drop the connection mid-body, as a failing network or server does."""
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    return Handler
