"""Living beside the official OpenTelemetry GenAI instrumentations.

Our span describes a model call at LangChain's level; an instrumentation of the provider
SDK below it (``opentelemetry-instrumentation-genai-openai``, ``-genai-anthropic``,
``-openai-v2``, ``-botocore``) would describe the same call again: two ``chat`` spans and
the tokens twice in ``gen_ai.client.token.usage``. Two ways keep it to one:

* util-genai based packages (genai-openai, genai-anthropic, openai-v2's chat path) look
  for a running inference (embedding) in the context under util-genai's key and then make
  no span, metrics or events: :func:`mark` puts one there in our call's context;
* the others (openai-v2's embeddings path, botocore's Bedrock extension) have no such
  check: while one of our calls runs, :class:`ProviderHook` calls past their wrapper to
  the SDK method below it. The hook sits outermost on the SDK method, re-stacked after any
  instrumentor that wraps it later (:func:`install`), and also reads embeddings usage that
  LangChain drops (OpenAI's ``usage.prompt_tokens``, Bedrock's input-token header,
  Cohere's ``meta.billed_units.input_tokens``).

Outside our calls nothing changes: direct SDK calls keep their official spans.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

import wrapt
from opentelemetry import context as otel_context

from otel_llm_usage import semconv as sc
from otel_llm_usage.internal import internal_error
from otel_llm_usage.keys import ACTIVE_CALL_KEY

# operation → (util-genai context key, the util-genai data class its check wants); empty
# until some instrumentation loads util-genai
MARKS: dict[str, tuple[str, Callable[[], Any]]] = {}


def _load_marks() -> None:
    """util-genai's data classes, once some instrumentation has loaded util-genai's
    handler (checked at ``instrument()`` and after each other instrumentor's): with
    util-genai installed but unused, our calls pay nothing for it."""
    if MARKS or "opentelemetry.util.genai.handler" not in sys.modules:
        return
    try:
        inference = importlib.import_module("opentelemetry.util.genai._inference_invocation")
        embedding = importlib.import_module("opentelemetry.util.genai._embedding_invocation")
        inference_data = _cheap_factory(inference.InferenceData)
        embedding_data = _cheap_factory(embedding.EmbeddingData)
    except Exception:
        internal_error("opentelemetry-util-genai unusable")
        return
    for operation in (sc.OPERATION_CHAT, sc.OPERATION_TEXT_COMPLETION):
        MARKS[operation] = (sc.UTIL_GENAI_INFERENCE_CONTEXT_KEY, inference_data)
    MARKS[sc.OPERATION_EMBEDDINGS] = (sc.UTIL_GENAI_EMBEDDING_CONTEXT_KEY, embedding_data)


def _cheap_factory(data_class: type) -> Callable[[], Any]:
    """Instances of a util-genai data class without its ``__init__`` (50 fields, ~9 µs):
    the fields with plain defaults are read from the class, so only those made by a
    default factory are set per instance (~0.5 µs)."""
    fresh = [
        (f.name, f.default_factory)
        for f in dataclasses.fields(data_class)
        if f.default_factory is not dataclasses.MISSING
    ]
    if any(
        f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        for f in dataclasses.fields(data_class)
    ):
        return data_class  # a required field: build it the normal way

    def make() -> Any:
        data: Any = object.__new__(data_class)
        for name, factory in fresh:
            setattr(data, name, factory())
        return data

    return make


def mark(context: otel_context.Context, operation: str) -> otel_context.Context:
    """``context`` with util-genai's "inference (embedding) running" value set; as it is
    when util-genai is not installed (one dictionary look-up)."""
    found = MARKS.get(operation)
    if found is None:
        return context
    key, data_class = found
    try:
        return otel_context.set_value(key, data_class(), context)
    except Exception:
        internal_error("could not mark the context for util-genai")
        return context


# Modules of instrumentations whose GenAI spans have no util-genai check.
_FOREIGN_PREFIXES = (
    "opentelemetry.instrumentation.openai_v2",
    "opentelemetry.instrumentation.botocore",
)


def _foreign(layer: Any) -> bool:
    wrapper = getattr(layer, "_self_wrapper", None)
    module = getattr(wrapper, "__module__", None) or ""
    return module.startswith(_FOREIGN_PREFIXES)


def _has_foreign(layer: Any) -> bool:
    while hasattr(layer, "__wrapped__"):
        if _foreign(layer):
            return True
        layer = layer.__wrapped__
    return False


def _peel(wrapped: Any) -> Any:
    """``wrapped`` without the foreign GenAI wrappers on top of it."""
    # (wrapt 2's bound wrappers are not ObjectProxy instances: test the attributes)
    while _foreign(wrapped) and hasattr(wrapped, "__wrapped__"):
        wrapped = wrapped.__wrapped__
    return wrapped


def _active_call() -> Any:
    return otel_context.get_current().get(ACTIVE_CALL_KEY)


def _openai_input_tokens(result: Any) -> int | None:
    usage = getattr(result, "usage", None)
    tokens = getattr(usage, "prompt_tokens", None)
    return tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None


def _cohere_input_tokens(result: Any) -> int | None:
    billed = getattr(getattr(result, "meta", None), "billed_units", None)
    tokens = getattr(billed, "input_tokens", None)
    if isinstance(tokens, (int, float)) and not isinstance(tokens, bool):
        return int(tokens)
    return None


_BEDROCK_TOKEN_HEADER = "x-amzn-bedrock-input-token-count"


def _bedrock_input_tokens(result: Any) -> int | None:
    if not isinstance(result, Mapping):
        return None
    headers = (result.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    value = headers.get(_BEDROCK_TOKEN_HEADER)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _is_bedrock_runtime(instance: Any) -> bool:
    try:
        return bool(instance.meta.service_model.service_name == "bedrock-runtime")
    except Exception:
        return False


def _always(_instance: Any) -> bool:
    return True


class ProviderHook:
    """Our outermost wrapper on a provider SDK method. Inside one of our calls: past the
    foreign GenAI wrappers, and the response's input tokens to an embeddings recorder."""

    def __init__(
        self,
        applies: Callable[[Any], bool],
        input_tokens: Callable[[Any], int | None] | None,
        is_async: bool,
    ) -> None:
        self.alive = True
        self.applies = applies
        self.input_tokens = input_tokens
        self.is_async = is_async

    def __call__(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not self.alive:
            return wrapped(*args, **kwargs)
        try:
            recorder = _active_call()
            applies = recorder is not None and self.applies(instance)
            target = _peel(wrapped) if applies else wrapped
        except Exception:
            internal_error("provider hook failed")
            return wrapped(*args, **kwargs)
        if not applies:
            return wrapped(*args, **kwargs)
        add = getattr(recorder, "add_provider_input_tokens", None)
        if add is None or self.input_tokens is None:
            return target(*args, **kwargs)
        if self.is_async:
            return self._acall(target, args, kwargs, add)
        result = target(*args, **kwargs)
        self._note(result, add)
        return result

    async def _acall(self, target: Any, args: Any, kwargs: Any, add: Any) -> Any:
        result = await target(*args, **kwargs)
        self._note(result, add)
        return result

    def _note(self, result: Any, add: Callable[[int], None]) -> None:
        try:
            tokens = self.input_tokens(result) if self.input_tokens is not None else None
            if tokens is not None:
                add(tokens)
        except Exception:
            internal_error("unreadable provider usage")


# (module, class, method, applies, input tokens of a response, async)
PROVIDER_METHODS: tuple[
    tuple[str, str, str, Callable[[Any], bool], Callable[[Any], int | None] | None, bool], ...
] = (
    ("openai.resources.chat.completions", "Completions", "create", _always, None, False),
    ("openai.resources.chat.completions", "AsyncCompletions", "create", _always, None, True),
    ("openai.resources.embeddings", "Embeddings", "create", _always, _openai_input_tokens, False),
    (
        "openai.resources.embeddings",
        "AsyncEmbeddings",
        "create",
        _always,
        _openai_input_tokens,
        True,
    ),
    ("cohere.client", "Client", "embed", _always, _cohere_input_tokens, False),
    ("cohere.client", "AsyncClient", "embed", _always, _cohere_input_tokens, True),
    (
        "botocore.client",
        "BaseClient",
        "_make_api_call",
        _is_bedrock_runtime,
        _bedrock_input_tokens,
        False,
    ),
)


def _ours_outermost(owner: type, name: str) -> bool:
    current = vars(owner).get(name)
    wrapper = getattr(current, "_self_wrapper", None)
    return isinstance(wrapper, ProviderHook) and wrapper.alive


class Interop:
    """What :func:`install` did, so :meth:`remove` can undo it."""

    def __init__(self) -> None:
        self.hooks: list[tuple[type, str, ProviderHook]] = []
        self.instrument_hooks: list[_Restack] = []

    def stack(self) -> None:
        """Put a live hook outermost on every provider method already imported (we never
        import an SDK ourselves). Idempotent; run at ``instrument()``, after every other
        instrumentor's ``instrument()`` and at each embeddings call."""
        for module_name, class_name, method, applies, tokens, is_async in PROVIDER_METHODS:
            module = sys.modules.get(module_name)
            if module is None:
                continue
            owner = getattr(module, class_name, None)
            if not isinstance(owner, type) or method not in vars(owner):
                continue
            if _ours_outermost(owner, method):
                continue
            if tokens is None and not _has_foreign(vars(owner)[method]):
                continue  # nothing to call past, no usage to read: no layer, no cost
            for hooked_owner, hooked_name, old in self.hooks:  # ours, now under another
                if hooked_owner is owner and hooked_name == method:
                    old.alive = False
            hook = ProviderHook(applies, tokens, is_async)
            wrapt.wrap_function_wrapper(owner, method, hook)
            self.hooks.append((owner, method, hook))

    def remove_hooks(self) -> None:
        """Take our hooks out of the wrapper chains, outermost or not (a hook left under
        another instrumentor's wrapper is spliced out of it)."""
        for owner, method, hook in reversed(self.hooks):
            hook.alive = False
            above: Any = None
            layer: Any = vars(owner).get(method)
            while layer is not None and hasattr(layer, "__wrapped__"):
                if getattr(layer, "_self_wrapper", None) is hook:
                    if above is None:
                        setattr(owner, method, layer.__wrapped__)
                    else:
                        above.__wrapped__ = layer.__wrapped__
                    break
                above, layer = layer, layer.__wrapped__
        self.hooks.clear()

    def remove(self) -> None:
        self.remove_hooks()
        base = _base_instrumentor()
        for restack in self.instrument_hooks:
            restack.alive = False
            name = "uninstrument" if restack.unwrapping else "instrument"
            found: Any = vars(base).get(name) if base is not None else None
            if getattr(found, "_self_wrapper", None) is restack:
                setattr(base, name, found.__wrapped__)
        self.instrument_hooks.clear()


class _Restack:
    """Around ``BaseInstrumentor.instrument`` and ``uninstrument``: after another
    instrumentor wraps a provider method, our hook goes back on top
    (``opentelemetry-instrument`` loads them in no fixed order); before one unwraps
    (``unwrap`` takes off the outermost wrapper, whoever made it), ours comes off first."""

    def __init__(self, interop: Interop, unwrapping: bool) -> None:
        self.alive = True
        self.interop = interop
        self.unwrapping = unwrapping

    def __call__(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if self.alive and self.unwrapping:
            try:
                self.interop.remove_hooks()
            except Exception:
                internal_error("could not lift provider hooks")
        result = wrapped(*args, **kwargs)
        if self.alive:
            try:
                _load_marks()
                self.interop.stack()
            except Exception:
                internal_error("could not re-stack provider hooks")
        return result


def _base_instrumentor() -> Any:
    try:
        from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
            BaseInstrumentor,
        )
    except ImportError:
        return None
    return BaseInstrumentor


def install() -> Interop:
    """Called by ``instrument()``: util-genai marks, provider hooks, the re-stack hook."""
    interop = Interop()
    try:
        _load_marks()
        interop.stack()
        base = _base_instrumentor()
        if base is not None:
            for name, unwrapping in (("instrument", False), ("uninstrument", True)):
                restack = _Restack(interop, unwrapping)
                wrapt.wrap_function_wrapper(base, name, restack)
                interop.instrument_hooks.append(restack)
    except Exception:
        internal_error("interop setup failed")
    return interop


def uninstall(interop: Interop | None) -> None:
    MARKS.clear()
    if interop is not None:
        try:
            interop.remove()
        except Exception:
            internal_error("interop removal failed")
