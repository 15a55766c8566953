"""What a call is made to: provider name, model, request parameters, server address.

Computed once per (model class, model field values, model-relevant call arguments) and
memoised: some provider packages spend ~20 µs in ``_get_ls_params`` (ChatOpenAI builds
its whole invocation dict), which we must not pay on every call, nor for every new
instance of a model already seen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any
from urllib.parse import urlsplit

from otel_llm_usage import semconv as sc
from otel_llm_usage.internal import internal_error


@dataclass(frozen=True)
class Provider:
    """One provider, in one row: its ``gen_ai.provider.name`` (a semconv well-known
    value), the ``ls_provider`` names LangChain's integrations give it, and where its
    prices are in genai-prices (its id there, then the ids of the providers whose models
    it resells, tried next)."""

    name: str
    ls_providers: tuple[str, ...] = ()
    prices_id: str | None = None
    prices_fallbacks: tuple[str, ...] = ()


PROVIDERS = (
    Provider("openai", ("openai",), "openai"),
    Provider("anthropic", ("anthropic",), "anthropic"),
    Provider("azure.ai.openai", ("azure", "azure_openai"), "azure", ("openai",)),
    Provider("azure.ai.inference", ("azure_ai",), "azure", ("openai",)),
    Provider("aws.bedrock", ("amazon_bedrock", "bedrock", "bedrock_converse"), "aws"),
    Provider(
        "gcp.vertex_ai",
        ("google_vertexai", "vertexai", "google_anthropic_vertex"),
        "google",
        ("anthropic",),
    ),
    Provider("gcp.gemini", ("google_genai", "google_gemini"), "google", ("anthropic",)),
    Provider("gcp.gen_ai", (), "google", ("anthropic",)),
    Provider("mistral_ai", ("mistral", "mistralai"), "mistral"),
    Provider("groq", ("groq",), "groq"),
    Provider("cohere", ("cohere",), "cohere"),
    Provider("deepseek", ("deepseek",), "deepseek"),
    Provider("x_ai", ("xai",), "x-ai"),
    Provider("ollama", ("ollama",)),
    Provider("ibm.watsonx.ai", ("ibm", "watsonx")),
    Provider("perplexity", ("perplexity",), "perplexity"),
)

# LangChain's ``ls_provider`` → ``gen_ai.provider.name``; one not listed is used as it is.
PROVIDER_NAMES: dict[str, str] = {
    ls_provider: provider.name for provider in PROVIDERS for ls_provider in provider.ls_providers
}
# ``gen_ai.provider.name`` → genai-prices' provider id, and its fallbacks.
GENAI_PRICES_PROVIDERS: dict[str, str] = {
    provider.name: provider.prices_id for provider in PROVIDERS if provider.prices_id
}
PRICES_FALLBACKS: dict[str, tuple[str, ...]] = {
    provider.prices_id: provider.prices_fallbacks
    for provider in PROVIDERS
    if provider.prices_id and provider.prices_fallbacks
}

# Model fields that hold the endpoint, in the order we trust them.
_BASE_URL_FIELDS = (
    "openai_api_base",
    "azure_endpoint",
    "anthropic_api_url",
    "base_url",
    "api_base",
    "endpoint_url",
    "endpoint",
)
_DEFAULT_PORTS = {"https": 443, "http": 80}

# Call kwargs that change what the span says (model and request parameters).
_RELEVANT_KWARGS = (
    "model",
    "model_name",
    "model_id",
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "top_p",
    "top_k",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "n",
    "service_tier",
)

_RELEVANT = frozenset(_RELEVANT_KWARGS)

_FLOAT_PARAMS = (
    (sc.GEN_AI_REQUEST_TOP_P, ("top_p",)),
    (sc.GEN_AI_REQUEST_FREQUENCY_PENALTY, ("frequency_penalty",)),
    (sc.GEN_AI_REQUEST_PRESENCE_PENALTY, ("presence_penalty",)),
)
_INT_PARAMS = (
    (sc.GEN_AI_REQUEST_TOP_K, ("top_k",)),
    (sc.GEN_AI_REQUEST_SEED, ("seed",)),
)
_MAX_TOKENS_FIELDS = (
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "max_tokens_to_sample",
    "num_predict",
)


class ModelInfo:
    """The request side of a call: constant for a model instance and its call options."""

    __slots__ = (
        "__weakref__",
        "metric_key",
        "operation",
        "provider",
        "request_model",
        "server_address",
        "server_port",
        "span_attributes",
        "span_name",
        "stream_span_attributes",
    )

    def __init__(
        self,
        operation: str,
        provider: str,
        request_model: str | None,
        span_attributes: dict[str, Any],
        server_address: str | None,
        server_port: int | None,
    ) -> None:
        self.operation = operation
        self.provider = provider
        self.request_model = request_model
        self.span_name = f"{operation} {request_model}" if request_model else operation
        self.span_attributes = span_attributes
        self.stream_span_attributes = {**span_attributes, sc.GEN_AI_REQUEST_STREAM: True}
        self.server_address = server_address
        self.server_port = server_port
        # What identifies this call's metric series: equal for equal models, so a new
        # model instance per request does not make a new series.
        self.metric_key = (operation, provider, request_model, server_address, server_port)


def provider_name(ls_provider: str | None) -> str:
    if not ls_provider:
        return "unknown"
    return PROVIDER_NAMES.get(ls_provider, ls_provider)


_url_cache: dict[str, tuple[str | None, int | None]] = {}


def parse_server(url: Any) -> tuple[str | None, int | None]:
    """(host, port) of a base URL; the scheme's default port when none is written."""
    text = str(url) if url else ""
    if not text:
        return None, None
    cached = _url_cache.get(text)
    if cached is not None:
        return cached
    try:
        parts = urlsplit(text if "//" in text else f"//{text}")
        host = parts.hostname
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
        # never keep credentials or paths: only host and port leave this function
        found: tuple[str | None, int | None] = (host, port) if host else (None, None)
    except ValueError:
        found = (None, None)
    if len(_url_cache) < 1024:
        _url_cache[text] = found
    return found


def _endpoint(model: Any) -> Any:
    for field in _BASE_URL_FIELDS:
        value = getattr(model, field, None)
        if value and isinstance(value, str):
            return value
    client = getattr(model, "root_client", None) or getattr(model, "client", None)
    url = getattr(client, "base_url", None)
    if url:
        return url
    # Fern-generated SDKs (Cohere): the URL lives in the client's wrapper
    get_base_url = getattr(getattr(client, "_client_wrapper", None), "get_base_url", None)
    if callable(get_base_url):
        try:
            url = get_base_url()
        except Exception:
            url = None
        if url:
            return url
    meta = getattr(client, "meta", None)  # boto3 clients (Bedrock)
    return getattr(meta, "endpoint_url", None)


def _param(model: Any, kwargs: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if name in kwargs:
            return kwargs[name]
    extra = getattr(model, "model_kwargs", None)
    for name in names:
        if isinstance(extra, Mapping) and name in extra:
            return extra[name]
        value = getattr(model, name, None)
        if value is not None:
            return value
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _integer(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


# Call kwargs that belong to LangChain's plumbing, not to the model.
_PLUMBING_KWARGS = frozenset(
    {"stop", "run_manager", "run_managers", "new_arg_supported", "config", "stream"}
)


def _ls_params(model: Any, stop: Any, kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    try:
        options = {k: v for k, v in kwargs.items() if k not in _PLUMBING_KWARGS}
        params = model._get_ls_params(stop=stop, **options)
        return params if isinstance(params, Mapping) else {}
    except Exception:
        internal_error("_get_ls_params failed")
        return {}


def build_model_info(model: Any, operation: str, stop: Any, kwargs: Mapping[str, Any]) -> ModelInfo:
    ls = _ls_params(model, stop, kwargs)
    provider = provider_name(ls.get("ls_provider"))
    request_model = ls.get("ls_model_name")
    if not isinstance(request_model, str) or not request_model:
        request_model = None
    attributes: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: operation,
        sc.GEN_AI_PROVIDER_NAME: provider,
    }
    if request_model:
        attributes[sc.GEN_AI_REQUEST_MODEL] = request_model
    temperature = _number(ls.get("ls_temperature"))
    if temperature is None:
        temperature = _number(_param(model, kwargs, ("temperature",)))
    if temperature is not None:
        attributes[sc.GEN_AI_REQUEST_TEMPERATURE] = temperature
    max_tokens = _integer(ls.get("ls_max_tokens"))
    if max_tokens is None:
        max_tokens = _integer(_param(model, kwargs, _MAX_TOKENS_FIELDS))
    if max_tokens is not None:
        attributes[sc.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    for key, names in _FLOAT_PARAMS:
        number = _number(_param(model, kwargs, names))
        if number is not None:
            attributes[key] = number
    for key, names in _INT_PARAMS:
        integer = _integer(_param(model, kwargs, names))
        if integer is not None:
            attributes[key] = integer
    stop_sequences = stop if stop is not None else _param(model, kwargs, ("stop", "stop_sequences"))
    if isinstance(stop_sequences, str):
        stop_sequences = [stop_sequences]
    if isinstance(stop_sequences, (list, tuple)) and stop_sequences:
        attributes[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(str(s) for s in stop_sequences)
    choices = _integer(_param(model, kwargs, ("n",)))
    if choices is not None and choices != 1:
        attributes[sc.GEN_AI_REQUEST_CHOICE_COUNT] = choices
    service_tier = _param(model, kwargs, ("service_tier",))
    if isinstance(service_tier, str) and service_tier and provider in _OPENAI_PROVIDERS:
        attributes[sc.OPENAI_REQUEST_SERVICE_TIER] = service_tier
    address, port = parse_server(_endpoint(model))
    if address:
        attributes[sc.SERVER_ADDRESS] = address
        if port:
            attributes[sc.SERVER_PORT] = port
    return ModelInfo(operation, provider, request_model, attributes, address, port)


_OPENAI_PROVIDERS = ("openai", "azure.ai.openai")


# Model fields that build_model_info's result can depend on (through _get_ls_params,
# _param or _endpoint): with the class and the call's options, the memo's key. A field
# not listed here (a client object, a header) is assumed not to change the span.
_KEY_FIELDS = (
    "model_name",
    "model",
    "model_id",
    "base_model_id",
    "deployment_name",
    "provider",
    "region_name",
    "temperature",
    *_MAX_TOKENS_FIELDS,
    "top_p",
    "top_k",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "stop_sequences",
    "n",
    "service_tier",
    *_BASE_URL_FIELDS,
    "model_kwargs",
)
_getters: dict[type, Callable[[Any], Any] | None] = {}
_cache: dict[tuple[Any, ...], ModelInfo] = {}
_cache_lock = threading.Lock()
_CACHE_LIMIT = 4096


def _values_getter(cls: type) -> Callable[[Any], Any] | None:
    """Reads the key fields a pydantic model class has from an instance's ``__dict__``
    (one C call, ~0.2 µs); None for classes that are not pydantic models."""
    fields = getattr(cls, "model_fields", None)
    if not isinstance(fields, Mapping):
        return None
    names = [name for name in _KEY_FIELDS if name in fields]
    return itemgetter(*names) if names else _no_values


def _no_values(_: Any) -> tuple[()]:
    return ()


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a key part with lists or dicts in it."""
    if isinstance(value, Mapping):
        return tuple((k, _frozen(v)) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return tuple(_frozen(v) for v in value)
    return value


def _key(model: Any, operation: str, stop: Any, kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    cls = type(model)
    try:
        getter = _getters[cls]
    except KeyError:
        getter = _getters[cls] = _values_getter(cls)
    if getter is None:
        values: Any = tuple(getattr(model, name, None) for name in _KEY_FIELDS)
    else:
        values = getter(model.__dict__)
    key: tuple[Any, ...] = (cls, operation, stop, values)
    if kwargs and not _RELEVANT.isdisjoint(kwargs):  # usually only LangChain's plumbing
        key += tuple((name, kwargs[name]) for name in _RELEVANT_KWARGS if name in kwargs)
    return key


def model_info(model: Any, operation: str, stop: Any, kwargs: Mapping[str, Any]) -> ModelInfo:
    """Memoised :func:`build_model_info`, keyed by what the model's values are (class,
    key fields) and the call's model options: a changed field shows on the next call, and
    a new instance with known values costs a look-up."""
    try:
        key = _key(model, operation, stop, kwargs)
        try:
            found = _cache.get(key)
        except TypeError:  # a list or a dict among the values (stop, model_kwargs)
            key = _frozen(key)
            found = _cache.get(key)
    except Exception:  # an unreadable field or an unhashable value: no memo for this call
        return build_model_info(model, operation, stop, kwargs)
    if found is not None:
        return found
    info = build_model_info(model, operation, stop, kwargs)
    with _cache_lock:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[key] = info
    return info
