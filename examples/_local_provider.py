"""A local stand-in for the OpenAI chat-completions API, so the examples run offline.

:class:`LocalProvider` is a tiny HTTP server (stdlib ``http.server``, one thread) on
``127.0.0.1`` and a free port. It answers ``POST /v1/chat/completions`` the way OpenAI
does: a JSON body with ``usage`` (``prompt_tokens``, ``completion_tokens``,
``total_tokens``, ``prompt_tokens_details.cached_tokens``), or, with ``"stream": true``,
server-sent events ending in a usage chunk when ``stream_options.include_usage`` is set.

Its answers are deterministic, so the examples print exact numbers:

* tokens are words: ``prompt_tokens`` = 4 per message + the words of its content;
  ``completion_tokens`` = the words of the answer;
* a prompt (the whole message list) seen before is a prompt-cache hit: all of its
  prompt tokens are reported as ``cached_tokens``, as OpenAI reports cache reads;
* the answer is picked from a few canned ones by a checksum of the last message.

With tools (a request with ``tools``, as an agent's model sends), it answers like a
tool-calling model, so an agent loop runs offline:

* last message from the user: one call of the first tool, its first parameter set to
  the user's text (``finish_reason`` ``tool_calls``; ``completion_tokens`` = the words of
  the tool's name and of the arguments JSON);
* last message a tool result: the final answer ``According to {tool}: {result}``;
* every tool definition adds 4 + the words of its name and description to
  ``prompt_tokens``, and an assistant message's tool calls add the words of their names
  and arguments JSON.

Requests without ``tools`` are answered as before.

:func:`chat_model` returns the client: the real ``langchain_openai.ChatOpenAI`` pointed at
the server when ``langchain-openai`` is installed, else :class:`LocalChatModel`, a small
LangChain chat model that speaks the same HTTP API with the standard library only.
"""

from __future__ import annotations

import json
import threading
import urllib.request
import zlib
from collections.abc import Iterator
from typing import Any

from _provider_server import ProviderServer, Received, Reply
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

ANSWERS = (
    "A span walks into a bar. The bartender says: we do not serve your kind here. "
    "The span says: that is fine, I am just passing through.",
    "Why did the metric break up with the log? It needed more space.",
    "I asked the trace for directions. It gave me the whole call stack.",
    "Observability is like a joke: if you have to explain it, the dashboard is wrong.",
)
MESSAGE_OVERHEAD = 4  # prompt tokens per message, on top of its words


def words(text: str) -> int:
    return len(text.split())


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return " ".join(
            str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content
        )
    return ""


def _tool_call_words(message: dict[str, Any]) -> int:
    """Words of the tool calls an assistant message made (name and arguments JSON)."""
    total = 0
    for call in message.get("tool_calls") or ():
        function = (call.get("function") or {}) if isinstance(call, dict) else {}
        total += words(str(function.get("name") or "")) + words(
            str(function.get("arguments") or "")
        )
    return total


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(
        MESSAGE_OVERHEAD + words(_text(m.get("content"))) + _tool_call_words(m) for m in messages
    )


def tool_definition_tokens(tools: list[dict[str, Any]]) -> int:
    """Prompt tokens of the tool definitions: 4 + the words of name and description each."""
    total = 0
    for tool in tools:
        function = tool.get("function") or {}
        total += (
            MESSAGE_OVERHEAD
            + words(str(function.get("name") or ""))
            + words(str(function.get("description") or ""))
        )
    return total


def tool_call_for(tools: list[dict[str, Any]], messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The call of the first tool a tool-calling model makes for the user's last message:
    ``{"name": ..., "arguments": <JSON text>}``, the first parameter set to that message."""
    function = tools[0].get("function") or {}
    parameters = function.get("parameters") or {}
    names = list(parameters.get("required") or ()) or list(parameters.get("properties") or ())
    text = _text(messages[-1].get("content"))
    arguments = {names[0]: text} if names else {}
    return {"name": str(function.get("name") or "tool"), "arguments": json.dumps(arguments)}


def answer_after_tool(messages: list[dict[str, Any]]) -> str:
    """The final answer once the last message is a tool's result: it quotes the result."""
    result = messages[-1]
    name = "the tool"
    for message in reversed(messages[:-1]):
        for call in message.get("tool_calls") or ():
            if call.get("id") == result.get("tool_call_id"):
                name = str((call.get("function") or {}).get("name") or name)
    return f"According to {name}: {_text(result.get('content'))}"


def answer_for(messages: list[dict[str, Any]]) -> str:
    last = _text(messages[-1].get("content")) if messages else ""
    return ANSWERS[zlib.crc32(last.encode("utf-8")) % len(ANSWERS)]


class LocalProvider:
    """An OpenAI-compatible chat-completions server on 127.0.0.1 (a context manager): the
    shared :class:`_provider_server.ProviderServer`, answering every request from
    :meth:`reply`.

    ``url`` is the ``base_url`` to give a client. ``chunk_delay`` (seconds) is slept
    between streamed chunks. ``requests`` keeps every request body received.
    ``reject_stream_options`` makes it answer 400 to ``stream_options``, as some
    OpenAI-compatible servers do. ``latency`` (seconds) is slept before each answer, as a
    real model takes time to think.

    Optional, off by default: ``azure=True`` also answers Azure OpenAI's path,
    ``POST /openai/deployments/{deployment}/chat/completions?api-version=...``
    (``endpoint`` is the ``azure_endpoint`` to give ``AzureChatOpenAI``: the scheme, host
    and port); ``response_model`` is the model every answer names, as Azure names the model
    behind a deployment, instead of the request's. ``paths`` keeps the path (with its
    query) of every request received.
    """

    def __init__(
        self,
        chunk_delay: float = 0.0,
        reject_stream_options: bool = False,
        latency: float = 0.0,
        *,
        azure: bool = False,
        response_model: str | None = None,
    ) -> None:
        self.chunk_delay = chunk_delay
        self.azure = azure
        self.response_model = response_model
        self.paths: list[str] = []
        self.latency = latency
        self.reject_stream_options = reject_stream_options
        self.requests: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._count = 0
        self._server = ProviderServer(default=self._answer)

    @property
    def url(self) -> str:
        return self._server.openai_url

    @property
    def endpoint(self) -> str:
        """The scheme, host and port, without a path (Azure's ``azure_endpoint``)."""
        return self._server.url

    def start(self) -> LocalProvider:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> LocalProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the API --------------------------------------------------------------------------

    def complete(self, body: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        """(response id, answer, usage) for one request; notes the prompt as cached."""
        response_id, answer, _, usage = self.reply(body)
        return response_id, answer, usage

    def reply(self, body: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]], dict[str, Any]]:
        """(response id, answer, tool calls, usage) for one request; notes the prompt as
        cached. Tool calls (``[{"id", "name", "arguments"}]``) only for requests with
        ``tools`` whose last message is the user's; the answer is then empty."""
        messages = body.get("messages") or []
        tools = body.get("tools") or []
        key = json.dumps(messages, sort_keys=True)
        prompt = prompt_tokens(messages) + tool_definition_tokens(tools)
        tool_calls: list[dict[str, Any]] = []
        last_role = messages[-1].get("role") if messages else None
        if tools and last_role == "user":
            answer = ""
            call = tool_call_for(tools, messages)
            tool_calls.append(call)
            completion = words(call["name"]) + words(call["arguments"])
        else:
            answer = (
                answer_after_tool(messages)
                if tools and last_role == "tool"
                else answer_for(messages)
            )
            completion = words(answer)
        with self._lock:
            self.requests.append(body)
            self._count += 1
            response_id = f"chatcmpl-local-{self._count}"
            for index, call in enumerate(tool_calls):
                call["id"] = f"call_local_{self._count}_{index}"
            cached = prompt if key in self._seen else 0
            self._seen.add(key)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }
        return response_id, answer, tool_calls, usage

    def _answer(self, received: Received) -> Reply:
        """The server's reply to one request: :meth:`reply`, as a :class:`Reply`."""
        self.paths.append(received.path)
        if not _answers(received.path, self.azure):
            return Reply(status=404, error_message=f"unknown path {received.path}")
        body = received.body
        if self.reject_stream_options and "stream_options" in body:
            self.requests.append(body)
            message = "Unrecognized request argument supplied: stream_options"
            return Reply(status=400, error_type="invalid_request_error", error_message=message)
        response_id, answer, tool_calls, usage = self.reply(body)
        return Reply(
            text=answer,
            input=usage["prompt_tokens"],
            output=usage["completion_tokens"],
            cache_read=usage["prompt_tokens_details"]["cached_tokens"],
            model=self.response_model or str(body.get("model") or "gpt-4o-mini"),
            id=response_id,
            tool_calls=tool_calls,
            latency=self.latency,
            chunk_delay=self.chunk_delay,
        )


def _answers(path: str, azure: bool) -> bool:
    """True for the chat-completions path (and Azure's deployment path when ``azure``)."""
    if path.rstrip("/") == "/v1/chat/completions":
        return True
    route = path.split("?", 1)[0].rstrip("/")
    parts = route.split("/")  # "", "openai", "deployments", name, "chat", "completions"
    return (
        azure
        and len(parts) == 6
        and parts[1:3] == ["openai", "deployments"]
        and bool(parts[3])
        and parts[4:] == ["chat", "completions"]
    )


# -- the clients ------------------------------------------------------------------------------


def _role(message: BaseMessage) -> str:
    return {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}.get(
        message.type, message.type
    )


def _usage_metadata(usage: dict[str, Any]) -> UsageMetadata:
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return UsageMetadata(
        input_tokens=usage["prompt_tokens"],
        output_tokens=usage["completion_tokens"],
        total_tokens=usage["total_tokens"],
        input_token_details={"cache_read": cached},
    )


class LocalChatModel(BaseChatModel):
    """A LangChain chat model for an OpenAI-compatible endpoint, standard library only.

    The fallback when ``langchain-openai`` is not installed. It reports usage as
    ``ChatOpenAI`` does (``usage_metadata`` on the message, on the last chunk of a
    stream) and calls itself ``openai`` for LangChain (``ls_provider``), since it speaks
    OpenAI's API: so its calls are priced at the model's OpenAI prices.
    """

    model_name: str = "gpt-4o-mini"
    base_url: str
    timeout: float = 30.0

    @property
    def _llm_type(self) -> str:
        return "local-openai-compatible"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return LangSmithParams(
            ls_provider="openai", ls_model_name=self.model_name, ls_model_type="chat"
        )

    def _post(self, messages: list[BaseMessage], stream: bool) -> Any:
        body: dict[str, Any] = {
            "model": self.model_name,
            "messages": [{"role": _role(m), "content": m.content} for m in messages],
        }
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        request = urllib.request.Request(
            self.base_url.rstrip("/") + "/chat/completions",
            data=json.dumps(body).encode("utf-8"),
            headers={"Content-Type": "application/json"},
        )
        # No proxy: the server is on this machine, whatever HTTP(S)_PROXY says.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        return opener.open(request, timeout=self.timeout)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._post(messages, stream=False) as response:
            data = json.load(response)
        choice = data["choices"][0]
        message = AIMessage(
            content=choice["message"]["content"],
            usage_metadata=_usage_metadata(data["usage"]),
            response_metadata={
                "model_name": data["model"],
                "finish_reason": choice["finish_reason"],
                "id": data["id"],
            },
            id=data["id"],
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        with self._post(messages, stream=True) as response:
            for raw in response:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data: "):
                    continue
                payload = line[len("data: ") :]
                if payload == "[DONE]":
                    break
                data = json.loads(payload)
                usage = data.get("usage")
                if not data["choices"]:
                    message = AIMessageChunk(
                        content="", usage_metadata=_usage_metadata(usage) if usage else None
                    )
                    yield ChatGenerationChunk(message=message)
                    continue
                choice = data["choices"][0]
                metadata: dict[str, Any] = {}
                if choice.get("finish_reason"):
                    metadata = {
                        "finish_reason": choice["finish_reason"],
                        "model_name": data["model"],
                    }
                chunk = ChatGenerationChunk(
                    message=AIMessageChunk(
                        content=choice["delta"].get("content") or "",
                        response_metadata=metadata,
                        id=data["id"],
                    )
                )
                if run_manager:
                    run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
                yield chunk


def chat_model(base_url: str, client: str = "auto", model: str = "gpt-4o-mini") -> BaseChatModel:
    """The client for ``base_url``. ``client``: ``auto`` (``langchain-openai`` when it is
    installed, else the standard-library one), ``langchain-openai`` or ``stdlib``."""
    if client in ("auto", "langchain-openai"):
        try:
            import httpx
            from langchain_openai import ChatOpenAI
        except ImportError:
            if client == "langchain-openai":
                raise
        else:
            return ChatOpenAI(
                model=model,
                base_url=base_url,
                api_key="sk-demo",  # type: ignore[arg-type]
                stream_usage=True,
                max_retries=0,
                # No proxy: the server is on this machine, whatever HTTP(S)_PROXY says.
                http_client=httpx.Client(trust_env=False),
                http_async_client=httpx.AsyncClient(trust_env=False),
            )
    return LocalChatModel(model_name=model, base_url=base_url)


def client_name(model: BaseChatModel) -> str:
    if isinstance(model, LocalChatModel):
        return "LocalChatModel (a standard-library HTTP client)"
    return f"langchain_openai.{type(model).__name__}"
