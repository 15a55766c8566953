"""No-I/O fake chat model for the overhead benchmark (self-contained copy of the idea of
the shared peer bench's ``fake_model.py``).

* ``_generate``/``_agenerate`` return one ``AIMessage`` with OpenAI-style
  ``usage_metadata`` (11 in / 16 out / 27 total, cache_read 3, reasoning 5) and
  ``response_metadata = {'model_name': 'gpt-4o-mini', 'finish_reason': 'stop'}``.
* ``_stream``/``_astream`` yield ``chunks`` (K) one-character content chunks, then one
  final empty-content chunk carrying the usage (what ChatOpenAI does with
  ``stream_usage=True``).
* It presents as OpenAI: class name, ``_llm_type == 'openai-chat'``,
  ``ls_provider='openai'`` / ``ls_model_name`` from ``_get_ls_params``, serializable
  with ``model_name`` in its kwargs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

TRUTH_IN = 11
TRUTH_OUT = 16
TRUTH_TOTAL = 27
TRUTH_CACHE_READ = 3
TRUTH_REASONING = 5
MODEL_NAME = "gpt-4o-mini"


def _usage() -> dict[str, Any]:
    return {
        "input_tokens": TRUTH_IN,
        "output_tokens": TRUTH_OUT,
        "total_tokens": TRUTH_TOTAL,
        "input_token_details": {"cache_read": TRUTH_CACHE_READ},
        "output_token_details": {"reasoning": TRUTH_REASONING},
    }


def _response_metadata() -> dict[str, Any]:
    return {"model_name": MODEL_NAME, "finish_reason": "stop"}


class FakeChatOpenAI(BaseChatModel):
    """Deterministic, allocation-light fake. ``chunks`` = K for streaming."""

    model_name: str = MODEL_NAME
    chunks: int = 20
    temperature: float = 0.0
    text: str = "Why did the chicken cross the road? To get to the other side!"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @property
    def _llm_type(self) -> str:
        return "openai-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model": self.model_name,
            "temperature": self.temperature,
            "stream_usage": True,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="openai",
            ls_model_name=self.model_name,
            ls_model_type="chat",
            ls_temperature=self.temperature,
        )
        if stop:
            params["ls_stop"] = stop
        return params

    # -- non-streaming ---------------------------------------------------------------

    def _result(self) -> ChatResult:
        message = AIMessage(
            content=self.text,
            usage_metadata=_usage(),  # type: ignore[arg-type]
            response_metadata=_response_metadata(),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._result()

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._result()

    # -- streaming -------------------------------------------------------------------

    def _chunk(self, i: int) -> tuple[str, ChatGenerationChunk]:
        piece = self.text[i % len(self.text)]
        metadata = (
            {"finish_reason": "stop", "model_name": self.model_name} if i == self.chunks - 1 else {}
        )
        message = AIMessageChunk(content=piece, response_metadata=metadata)
        return piece, ChatGenerationChunk(message=message)

    @staticmethod
    def _usage_chunk() -> ChatGenerationChunk:
        message = AIMessageChunk(
            content="",
            usage_metadata=_usage(),  # type: ignore[arg-type]
            chunk_position="last",
        )
        return ChatGenerationChunk(message=message)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for i in range(self.chunks):
            piece, chunk = self._chunk(i)
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        yield self._usage_chunk()

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for i in range(self.chunks):
            piece, chunk = self._chunk(i)
            if run_manager:
                await run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        yield self._usage_chunk()
