"""LangChain ``Embeddings`` calls: an ``embeddings {model}`` span, input tokens where the
provider reports them, the dimension count, cost, the metrics and ``track_usage()``.

``Embeddings`` is abstract: every provider class defines its own ``embed_documents`` /
``embed_query`` (and often ``aembed_*``), so those are patched on each subclass: the ones
defined at ``instrument()`` and, through ``Embeddings.__init_subclass__``, every class
defined later (``opentelemetry-instrument`` runs before the application imports its
provider packages). ``uninstrument()`` restores them all.

LangChain returns only the vectors; the tokens come from the provider response, read by
the provider hooks in ``interop.py`` (OpenAI and Azure OpenAI ``usage.prompt_tokens``,
Bedrock's ``x-amzn-bedrock-input-token-count`` header, Cohere's billed input tokens).
Without them the span says ``llm_usage.usage.missing``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from wrapt import wrap_function_wrapper

from otel_llm_usage import semconv as sc
from otel_llm_usage.extract.outcome import Outcome
from otel_llm_usage.extract.providers import ModelInfo, _endpoint, parse_server
from otel_llm_usage.extract.usage import Usage
from otel_llm_usage.internal import internal_error
from otel_llm_usage.keys import ACTIVE_CALL_KEY
from otel_llm_usage.record.recorder import CallRecorder, Telemetry
from otel_llm_usage.wrap.wrappers import current_context, run_async_call, run_call

_SYNC_METHODS = ("embed_documents", "embed_query")
_ASYNC_METHODS = ("aembed_documents", "aembed_query")
# Wrappers of another Embeddings instance (the inner one makes the span).
_SKIPPED_CLASSES = frozenset({"CacheBackedEmbeddings"})

# Top-level package of the class → gen_ai.provider.name
_PACKAGE_PROVIDERS = {
    "langchain_openai": "openai",
    "langchain_aws": "aws.bedrock",
    "langchain_cohere": "cohere",
    "langchain_google_vertexai": "gcp.vertex_ai",
    "langchain_google_genai": "gcp.gemini",
    "langchain_mistralai": "mistral_ai",
    "langchain_ollama": "ollama",
    "langchain_voyageai": "voyage_ai",
    "langchain_ibm": "ibm.watsonx.ai",
}
_CLASS_PROVIDERS = {"AzureOpenAIEmbeddings": "azure.ai.openai"}
_MODEL_FIELDS = ("model", "model_id", "model_name", "deployment", "deployment_name")


def provider_of(model: Any) -> str:
    cls = type(model)
    for klass in cls.__mro__:
        found = _CLASS_PROVIDERS.get(klass.__name__)
        if found:
            return found
    package = (cls.__module__ or "").split(".", 1)[0]
    return _PACKAGE_PROVIDERS.get(package, "unknown")


def build_info(model: Any) -> ModelInfo:
    provider = provider_of(model)
    request_model = None
    for field in _MODEL_FIELDS:
        value = getattr(model, field, None)
        if isinstance(value, str) and value:
            request_model = value
            break
    attributes: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: sc.OPERATION_EMBEDDINGS,
        sc.GEN_AI_PROVIDER_NAME: provider,
    }
    if request_model:
        attributes[sc.GEN_AI_REQUEST_MODEL] = request_model
    dimensions = getattr(model, "dimensions", None)
    if isinstance(dimensions, int) and not isinstance(dimensions, bool):
        attributes[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
    address, port = parse_server(_endpoint(model))
    if address:
        attributes[sc.SERVER_ADDRESS] = address
        if port:
            attributes[sc.SERVER_PORT] = port
    return ModelInfo(sc.OPERATION_EMBEDDINGS, provider, request_model, attributes, address, port)


_infos: dict[int, tuple[weakref.ref[Any], ModelInfo]] = {}
_infos_lock = threading.Lock()


def model_info(model: Any) -> ModelInfo:
    entry = _infos.get(id(model))
    if entry is not None and entry[0]() is model:
        return entry[1]
    info = build_info(model)
    try:
        ref = weakref.ref(model)
    except TypeError:
        return info
    with _infos_lock:
        if len(_infos) >= 1024:
            _infos.clear()
        _infos[id(model)] = (ref, info)
    return info


def dimension_count(result: Any) -> int | None:
    """Length of the first vector (``embed_documents``) or of the vector (``embed_query``)."""
    if isinstance(result, Sequence) and result:
        first = result[0]
        if isinstance(first, Sequence):
            return len(first)
        if isinstance(first, (int, float)):
            return len(result)
    return None


class EmbeddingRecorder(CallRecorder):
    """One embeddings call; the provider hooks add the input tokens each response
    reports (LangChain may send several requests for one ``embed_documents``)."""

    __slots__ = ("_input_tokens",)

    def __init__(self, telemetry: Telemetry, model: Any, info: ModelInfo, parent: Any) -> None:
        self._input_tokens: int | None = None
        super().__init__(telemetry, model, info, parent, False)

    def add_provider_input_tokens(self, tokens: int) -> None:
        self._input_tokens = (self._input_tokens or 0) + tokens

    def finish(self, result: Any) -> None:
        self._finish(self._embeddings_outcome, result)

    def _embeddings_outcome(self, result: Any) -> Outcome:
        dimensions = dimension_count(result)
        if dimensions is not None and self.span.is_recording():
            self.span.set_attribute(sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT, dimensions)
        tokens = self._input_tokens
        return Outcome(usage=Usage(input=tokens) if tokens is not None else None)


def _begin(telemetry: Telemetry, instance: Any, on_call: Callable[[], None]) -> Any:
    parent = current_context()
    if parent.get(_SUPPRESS_INSTRUMENTATION_KEY):
        return None
    active = parent.get(ACTIVE_CALL_KEY)
    if active is not None and getattr(active, "model", None) is instance:
        return None  # embed_query calling embed_documents, a subclass calling super()
    try:
        on_call()
        return EmbeddingRecorder(telemetry, instance, model_info(instance), parent)
    except Exception:
        internal_error("could not start an embeddings span")
        return None


def make_embed(telemetry: Telemetry, on_call: Callable[[], None]) -> Any:
    def traced_embed(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        if not telemetry.listening():
            return wrapped(*args, **kwargs)
        recorder = _begin(telemetry, instance, on_call)
        if recorder is None:
            return wrapped(*args, **kwargs)
        return run_call(recorder, wrapped, args, kwargs)

    return traced_embed


def make_async_embed(telemetry: Telemetry, on_call: Callable[[], None]) -> Any:
    async def traced_aembed(
        wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> Any:
        if not telemetry.listening():
            return await wrapped(*args, **kwargs)
        recorder = _begin(telemetry, instance, on_call)
        if recorder is None:
            return await wrapped(*args, **kwargs)
        return await run_async_call(recorder, wrapped, args, kwargs)

    return traced_aembed


class EmbeddingsPatcher:
    """Patches ``embed_*`` on every ``Embeddings`` subclass, now and later."""

    def __init__(self, telemetry: Telemetry, on_call: Callable[[], None]) -> None:
        self._sync = make_embed(telemetry, on_call)
        self._async = make_async_embed(telemetry, on_call)
        self.patched: list[tuple[type, str]] = []
        self._base: type | None = None
        self._saved_hook: Any = None
        self._lock = threading.Lock()

    def install(self) -> None:
        try:
            from langchain_core.embeddings import Embeddings
        except ImportError:
            return
        self._base = Embeddings
        pending = list(Embeddings.__subclasses__())
        while pending:
            cls = pending.pop()
            self.patch_class(cls)
            pending.extend(cls.__subclasses__())
        self._saved_hook = vars(Embeddings).get("__init_subclass__")
        patcher = self

        saved = self._saved_hook

        def __init_subclass__(cls: Any, /, **kwargs: Any) -> None:
            if saved is not None:  # Embeddings' own hook, should a release add one
                saved.__get__(None, cls)(**kwargs)
            else:
                super(Embeddings, cls).__init_subclass__(**kwargs)  # type: ignore[misc]
            patcher.patch_class(cls)

        Embeddings.__init_subclass__ = classmethod(__init_subclass__)  # type: ignore[assignment]

    def patch_class(self, cls: type) -> None:
        if cls.__name__ in _SKIPPED_CLASSES:
            return
        try:
            with self._lock:
                for name in (*_SYNC_METHODS, *_ASYNC_METHODS):
                    function = vars(cls).get(name)
                    if function is None or getattr(function, "__isabstractmethod__", False):
                        continue
                    if getattr(function, "_self_wrapper", None) in (self._sync, self._async):
                        continue
                    wrapper = self._async if name in _ASYNC_METHODS else self._sync
                    wrap_function_wrapper(cls, name, wrapper)
                    self.patched.append((cls, name))
        except Exception:
            internal_error(f"could not patch {cls!r}; its embeddings calls are not instrumented")

    def uninstall(self) -> None:
        base = self._base
        if base is not None:
            if self._saved_hook is not None:
                base.__init_subclass__ = self._saved_hook  # type: ignore[assignment]
            elif "__init_subclass__" in vars(base):
                delattr(base, "__init_subclass__")
            self._base = None
        with self._lock:
            while self.patched:
                cls, name = self.patched.pop()
                current: Any = vars(cls).get(name)
                if getattr(current, "_self_wrapper", None) in (self._sync, self._async):
                    setattr(cls, name, current.__wrapped__)
