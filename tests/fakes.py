"""Fake models with no I/O that report usage the way real providers do through LangChain."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, BaseLLM
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    ChatResult,
    Generation,
    GenerationChunk,
    LLMResult,
)


def usage_metadata(
    input_tokens: int = 11,
    output_tokens: int = 16,
    cache_read: int = 0,
    cache_creation: int = 0,
    reasoning: int = 0,
) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }
    if cache_read or cache_creation:
        usage["input_token_details"] = {"cache_read": cache_read, "cache_creation": cache_creation}
    if reasoning:
        usage["output_token_details"] = {"reasoning": reasoning}
    return usage


class ProviderError(RuntimeError):
    """What a provider SDK raises in these tests."""


class FakeChat(BaseChatModel):
    """A chat model that answers ``text`` with ``usage`` and streams it in ``chunks``."""

    model_name: str = "gpt-4o-mini"
    response_model: str = "gpt-4o-mini-2024-07-18"
    provider: str = "openai"
    text: str = "Why did the chicken cross the road? To get to the other side!"
    usage: dict[str, Any] | None = None
    chunks: int = 5
    temperature: float = 0.2
    max_tokens: int | None = 256
    base_url: str | None = "https://api.openai.com/v1"
    fail_with: BaseException | None = None
    fail_after_chunks: int | None = None
    streaming: bool = False
    tool_call: dict[str, Any] | None = None

    @property
    def _llm_type(self) -> str:
        return "fake-chat"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider=self.provider,
            ls_model_name=kwargs.get("model", self.model_name),
            ls_model_type="chat",
            ls_temperature=self.temperature,
        )
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        if stop:
            params["ls_stop"] = stop
        return params

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        from langchain_core.utils.function_calling import convert_to_openai_tool

        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _usage(self) -> dict[str, Any] | None:
        """``usage=None``: the default 11/16; ``usage={}``: the provider reports none."""
        if self.usage is None:
            return usage_metadata()
        return self.usage or None

    def _message(self, **kwargs: Any) -> AIMessage:
        tool_calls = []
        if kwargs.get("tools") and self.tool_call is not None:
            tool_calls = [dict(self.tool_call, type="tool_call")]
        return AIMessage(
            content="" if tool_calls else self.text,
            tool_calls=tool_calls,
            usage_metadata=self._usage(),
            response_metadata={
                "model_name": self.response_model,
                "finish_reason": "tool_calls" if tool_calls else "stop",
                "id": "chatcmpl-fake-1",
            },
            id="chatcmpl-fake-1",
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.fail_with is not None:
            raise self.fail_with
        return ChatResult(generations=[ChatGeneration(message=self._message(**kwargs))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._generate(messages, stop, **kwargs)

    def _pieces(self) -> list[str]:
        size = max(1, len(self.text) // self.chunks)
        pieces = [self.text[i * size : (i + 1) * size] for i in range(self.chunks - 1)]
        return [*pieces, self.text[(self.chunks - 1) * size :]]

    def _stream_chunks(self) -> Iterator[ChatGenerationChunk]:
        if self.fail_with is not None and self.fail_after_chunks is None:
            raise self.fail_with
        for index, piece in enumerate(self._pieces()):
            if self.fail_after_chunks is not None and index == self.fail_after_chunks:
                assert self.fail_with is not None
                raise self.fail_with
            last = index == self.chunks - 1
            metadata = {"finish_reason": "stop", "model_name": self.response_model} if last else {}
            yield ChatGenerationChunk(
                message=AIMessageChunk(content=piece, response_metadata=metadata, id="chatcmpl-s1")
            )
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=self._usage(),
                chunk_position="last",
                id="chatcmpl-s1",
            )
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._stream_chunks():
            if run_manager:
                run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._stream_chunks():
            if run_manager:
                await run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
            yield chunk


class FakeChatNoStream(FakeChat):
    """A model that implements no streaming: LangChain's stream() falls back to invoke()."""

    _stream = BaseChatModel._stream  # type: ignore[assignment]
    _astream = BaseChatModel._astream  # type: ignore[assignment]


class FakeCompletion(BaseLLM):
    """A legacy text-completion model reporting OpenAI-style ``llm_output['token_usage']``."""

    model_name: str = "gpt-3.5-turbo-instruct"
    prompt_tokens: int = 4
    completion_tokens: int = 14
    text: str = "\n\nWhy don't scientists trust atoms? They make up everything."
    base_url: str = "http://localhost:8000/v1"

    @property
    def _llm_type(self) -> str:
        return "fake-completion"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return LangSmithParams(
            ls_provider="openai", ls_model_name=self.model_name, ls_model_type="llm"
        )

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        n = len(prompts)
        return LLMResult(
            generations=[
                [Generation(text=self.text, generation_info={"finish_reason": "stop"})]
                for _ in prompts
            ],
            llm_output={
                "token_usage": {
                    "prompt_tokens": self.prompt_tokens * n,
                    "completion_tokens": self.completion_tokens * n,
                    "total_tokens": (self.prompt_tokens + self.completion_tokens) * n,
                },
                "model_name": self.model_name,
            },
        )

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        for piece in re.split(r"(?<= )", self.text):  # words with their spaces
            yield GenerationChunk(text=piece)


class ScriptedChat(FakeChat):
    """Answers each call with the next step of ``script``: a tool call or a text, each with
    its own usage. Models an agent's model: ask for a tool, then answer."""

    script: list[dict[str, Any]] = []
    calls: list[int] = []  # one entry per call made (shared list: the instance is copied)

    def _message(self, **kwargs: Any) -> AIMessage:
        step = self.script[len(self.calls) % len(self.script)]
        self.calls.append(1)
        tool_calls = [dict(step["tool_call"], type="tool_call")] if "tool_call" in step else []
        return AIMessage(
            content=step.get("text", ""),
            tool_calls=tool_calls,
            usage_metadata=step["usage"],
            response_metadata={
                "model_name": self.response_model,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            },
        )

    def _stream_chunks(self) -> Iterator[ChatGenerationChunk]:
        message = self._message()
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content=message.content,
                tool_call_chunks=[
                    {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
                    for i, c in enumerate(message.tool_calls)
                ],
                usage_metadata=message.usage_metadata,
                response_metadata=message.response_metadata,
            )
        )
