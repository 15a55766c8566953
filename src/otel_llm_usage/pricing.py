"""USD cost of a call: genai-prices' database plus the user's own price file, memoised.

Every class of token is priced at its own rate. ``Usage.input`` includes cache reads and
writes (as genai-prices counts them), so the uncached part is priced at the input rate,
cache reads and writes at theirs; reasoning tokens are part of the output and priced at
the reasoning rate where one is set, else at the output rate.

The user's file (``OTEL_LLM_USAGE_PRICES`` or ``instrument(prices=...)``), YAML or JSON,
in USD per million tokens, wins over the built-in data::

    models:
      my-finetune:              # the model name as the provider reports it
        provider: openai        # optional: only for this gen_ai.provider.name
        input: 3.0
        output: 12.0
        cache_read: 0.3         # optional, default: input
        cache_write: 3.75       # optional, default: input
        reasoning: 12.0         # optional, default: output
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .usage import Usage

logger = logging.getLogger(__name__)

PRICES_ENV = "OTEL_LLM_USAGE_PRICES"
_MILLION = Decimal(1_000_000)

# A rate: USD per million tokens, flat or by tiers of the call's input size
# (base, ((above_input_tokens, rate), ...)), as genai-prices models long-context prices.
Rate = Decimal | tuple[Decimal, tuple[tuple[int, Decimal], ...]]


@dataclass(frozen=True)
class Rates:
    input: Rate
    output: Rate
    cache_read: Rate | None = None
    cache_write: Rate | None = None
    reasoning: Rate | None = None
    source: str = "genai-prices"
    provider: str | None = None

    def __post_init__(self) -> None:
        # The common case, flat rates, priced in floats: ~1 µs instead of ~4 with Decimal.
        classes = (
            self.input,
            self.cache_read if self.cache_read is not None else self.input,
            self.cache_write if self.cache_write is not None else self.input,
            self.output,
            self.reasoning if self.reasoning is not None else self.output,
        )
        flat = all(isinstance(rate, Decimal) for rate in classes)
        object.__setattr__(self, "_classes", classes)
        object.__setattr__(self, "_flat", tuple(float(r) for r in classes) if flat else None)  # type: ignore[arg-type]

    def cost(self, usage: Usage) -> float:
        total_input = usage.input
        cache_read = min(usage.cache_read, total_input)
        cache_write = min(usage.cache_creation, total_input - cache_read)
        reasoning = min(usage.reasoning, usage.output)
        counts = (
            total_input - cache_read - cache_write,
            cache_read,
            cache_write,
            usage.output - reasoning,
            reasoning,
        )
        flat: tuple[float, ...] | None = self._flat  # type: ignore[attr-defined]
        if flat is not None:
            return (
                counts[0] * flat[0]
                + counts[1] * flat[1]
                + counts[2] * flat[2]
                + counts[3] * flat[3]
                + counts[4] * flat[4]
            ) / 1_000_000
        classes: tuple[Rate, ...] = self._classes  # type: ignore[attr-defined]
        amount = sum(
            (count * _at(rate, total_input) for count, rate in zip(counts, classes, strict=True)),
            Decimal(0),
        )
        return float(amount / _MILLION)

    def describe(self) -> dict[str, Any]:
        def show(rate: Rate | None) -> Any:
            if rate is None or isinstance(rate, Decimal):
                return None if rate is None else float(rate)
            return {"base": float(rate[0]), "tiers": [[s, float(p)] for s, p in rate[1]]}

        return {
            "input": show(self.input),
            "output": show(self.output),
            "cache_read": show(self.cache_read),
            "cache_write": show(self.cache_write),
            "reasoning": show(self.reasoning),
            "source": self.source,
        }


def _at(rate: Rate, total_input: int) -> Decimal:
    if isinstance(rate, Decimal):
        return rate
    base, tiers = rate
    for start, price in reversed(tiers):
        if total_input > start:
            return price
    return base


# -- the user's price file --------------------------------------------------------------

_RATE_FIELDS = ("input", "output", "cache_read", "cache_write", "reasoning")
_ALLOWED_FIELDS = frozenset((*_RATE_FIELDS, "provider"))


class PriceFileError(ValueError):
    """A price file that cannot be used as it is; the message names the file and field."""


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise PriceFileError(f"{where}: expected a number of USD per million tokens, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise PriceFileError(f"{where}: {value!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise PriceFileError(f"{where}: {value!r} must be a finite number >= 0")
    return number


def parse_prices(data: Any, source: str) -> tuple[dict[tuple[str | None, str], Rates], list[str]]:
    """Entries and the errors found. Valid entries are kept even when others are bad."""
    entries: dict[tuple[str | None, str], Rates] = {}
    errors: list[str] = []
    if not isinstance(data, Mapping) or not isinstance(data.get("models"), Mapping):
        return entries, [f"{source}: expected a top-level 'models' mapping of model → prices"]
    for extra in set(data) - {"models"}:
        errors.append(f"{source}: unknown top-level field {extra!r}")
    for model, fields in data["models"].items():
        where = f"{source}: models.{model}"
        try:
            if not isinstance(model, str) or not model:
                raise PriceFileError(f"{where}: a model name must be a non-empty string")
            if not isinstance(fields, Mapping):
                raise PriceFileError(f"{where}: expected a mapping of prices, got {fields!r}")
            unknown = set(fields) - _ALLOWED_FIELDS
            if unknown:
                raise PriceFileError(f"{where}: unknown field(s) {sorted(map(str, unknown))}")
            for required in ("input", "output"):
                if required not in fields:
                    raise PriceFileError(f"{where}.{required}: missing (required)")
            rates = {
                name: _decimal(fields[name], f"{where}.{name}")
                for name in _RATE_FIELDS
                if name in fields and fields[name] is not None
            }
            provider = fields.get("provider")
            if provider is not None and not isinstance(provider, str):
                raise PriceFileError(f"{where}.provider: expected a string, got {provider!r}")
            entries[(provider, model.lower())] = Rates(**rates, source=source, provider=provider)
        except PriceFileError as exc:
            errors.append(str(exc))
    return entries, errors


def load_price_file(
    path: str | os.PathLike[str],
) -> tuple[dict[tuple[str | None, str], Rates], list[str]]:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        return {}, [f"{source}: cannot read the price file ({exc.strerror or exc})"]
    try:
        if source.endswith(".json"):
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # json or yaml syntax errors
        return {}, [f"{source}: not valid {'JSON' if source.endswith('.json') else 'YAML'}: {exc}"]
    return parse_prices(data, source)


# -- genai-prices --------------------------------------------------------------------------

# gen_ai.provider.name → genai-prices provider id
GENAI_PRICES_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "mistral_ai": "mistral",
    "groq": "groq",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "x_ai": "x-ai",
    "perplexity": "perplexity",
}
# Where a provider resells another's models, the original's price is the fallback.
_FALLBACK_PROVIDERS = {"azure": ("openai",), "google": ("anthropic",)}
_BEDROCK_ID = re.compile(
    r"^(?:(?:us|eu|apac|au|ca|jp|us-gov|global)\.)?(?P<vendor>[a-z0-9-]+)\.(?P<model>.+?)(?:-v\d+:\d+)?$"
)
_BEDROCK_VENDORS = {
    "anthropic": "anthropic",
    "meta": "meta",
    "mistral": "mistral",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "openai": "openai",
}


def _rate(value: Any) -> Rate | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    base = getattr(value, "base", None)
    tiers = getattr(value, "tiers", None)
    if isinstance(base, Decimal) and tiers is not None:
        return (base, tuple((int(t.start), Decimal(t.price)) for t in tiers))
    return None


def _genai_prices_rates(provider_id: str, model: str) -> Rates | None:
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    try:
        _, found = snapshot.find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None
    price = found.get_prices(datetime.now(timezone.utc))
    input_rate = _rate(getattr(price, "input_mtok", None))
    output_rate = _rate(getattr(price, "output_mtok", None))
    if input_rate is None or output_rate is None:
        return None
    return Rates(
        input=input_rate,
        output=output_rate,
        cache_read=_rate(getattr(price, "cache_read_mtok", None)),
        cache_write=_rate(getattr(price, "cache_write_mtok", None)),
        source=f"genai-prices:{provider_id}/{found.id}",
        provider=provider_id,
    )


def builtin_rates(provider: str, model: str) -> Rates | None:
    """Rates from genai-prices for our provider name and a LangChain model name."""
    provider_id = GENAI_PRICES_PROVIDERS.get(provider, provider)
    candidates = [(provider_id, model)]
    candidates += [(fallback, model) for fallback in _FALLBACK_PROVIDERS.get(provider_id, ())]
    if provider_id == "aws":
        match = _BEDROCK_ID.match(model)
        if match and match.group("vendor") in _BEDROCK_VENDORS:
            candidates.append((_BEDROCK_VENDORS[match.group("vendor")], match.group("model")))
    for candidate_provider, candidate_model in candidates:
        try:
            rates = _genai_prices_rates(candidate_provider, candidate_model)
        except Exception:
            logger.debug("otel-llm-usage: genai-prices lookup failed", exc_info=True)
            rates = None
        if rates is not None:
            return rates
    return None


# -- the memoised price book ---------------------------------------------------------------


class Pricing:
    """Prices by (provider, model): the user's entries first, then genai-prices."""

    def __init__(self, overrides: Mapping[tuple[str | None, str], Rates] | None = None) -> None:
        self._overrides = dict(overrides or {})
        self._memo: dict[tuple[str, str], Rates | None] = {}
        self._warned: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, prices: Any = None) -> Pricing:
        """``prices``: a path, a mapping shaped like the file, or None (then the env var)."""
        if prices is None:
            prices = os.environ.get(PRICES_ENV) or None
        if prices is None:
            return cls()
        if isinstance(prices, Mapping):
            entries, errors = parse_prices(prices, "prices")
        else:
            entries, errors = load_price_file(prices)
        for error in errors:
            logger.error("otel-llm-usage: price file error, entry ignored: %s", error)
        return cls(entries)

    def rates(self, provider: str, model: str | None) -> Rates | None:
        if not model:
            return None
        key = (provider, model)
        try:
            return self._memo[key]
        except KeyError:
            pass
        lowered = model.lower()
        rates = self._overrides.get((provider, lowered)) or self._overrides.get((None, lowered))
        if rates is None:
            rates = builtin_rates(provider, model)
        with self._lock:
            if len(self._memo) < 10_000:
                self._memo[key] = rates
            if rates is None and key not in self._warned and len(self._warned) < 10_000:
                self._warned.add(key)
                logger.warning(
                    "otel-llm-usage: no price known for model %r of provider %r; its calls "
                    "get no cost (add it to a price file, see %s)",
                    model,
                    provider,
                    PRICES_ENV,
                )
        return rates

    def cost(self, provider: str, model: str | None, usage: Usage) -> float | None:
        rates = self.rates(provider, model)
        if rates is None:
            return None
        try:
            return rates.cost(usage)
        except Exception:
            logger.debug("otel-llm-usage: cost computation failed", exc_info=True)
            return None
