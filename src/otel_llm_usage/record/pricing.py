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

Prices are numbers (a quoted string is an error; ``1e-3`` is read as a number). A call
is priced by its response model, else its request model, the user's entries for either
first; ``provider`` may be a ``gen_ai.provider.name`` or a LangChain ``ls_provider``
("azure", "bedrock"), which is read as the ``gen_ai.provider.name`` it stands for.
A bad entry is reported (logged at runtime, listed by ``otel-llm-usage prices check``)
and left out; the valid ones are kept.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import threading
import time as _time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from otel_llm_usage.extract.providers import (
    GENAI_PRICES_PROVIDERS,
    PRICES_FALLBACKS,
    PROVIDER_NAMES,
)
from otel_llm_usage.extract.usage import Usage
from otel_llm_usage.internal import internal_error
from otel_llm_usage.settings import PRICES_ENV

logger = logging.getLogger(__name__)

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
        output = usage.output
        cache_read = usage.cache_read
        cache_write = usage.cache_creation
        reasoning = usage.reasoning
        # a detail never counts more than its whole
        if cache_read > total_input:
            cache_read = total_input
        if cache_write > total_input - cache_read:
            cache_write = total_input - cache_read
        if reasoning > output:
            reasoning = output
        uncached = total_input - cache_read - cache_write
        flat: tuple[float, ...] | None = self._flat  # type: ignore[attr-defined]
        if flat is not None:
            return (
                uncached * flat[0]
                + cache_read * flat[1]
                + cache_write * flat[2]
                + (output - reasoning) * flat[3]
                + reasoning * flat[4]
            ) / 1_000_000
        counts = (uncached, cache_read, cache_write, output - reasoning, reasoning)
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

PriceEntries = dict[tuple[str | None, str], Rates]


class PriceFileError(ValueError):
    """A price file that cannot be used as it is; the message names the file and field."""


def _decimal(value: Any, where: str) -> Decimal:
    # Strict: a price is a number. bool is an int subclass, and a quoted "3.0" is most
    # often a typo for something else; both are refused rather than guessed at.
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        kind = "a string" if isinstance(value, str) else type(value).__name__
        raise PriceFileError(
            f"{where}: expected a number of USD per million tokens, got {value!r} ({kind})"
        )
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        raise PriceFileError(f"{where}: {value!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise PriceFileError(f"{where}: {value!r} must be a finite number >= 0")
    return number


def _provider_name(value: str) -> str:
    """A LangChain ``ls_provider`` ("azure", "bedrock") as the ``gen_ai.provider.name`` our
    spans carry, so an entry written either way applies."""
    return PROVIDER_NAMES.get(value, value)


def _did_you_mean(name: str, allowed: frozenset[str]) -> str:
    """The close allowed name of a misspelt field ("cached_read" → "cache_read"), or ""."""
    close = difflib.get_close_matches(name, sorted(allowed), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _entry_errors(where: str, fields: Any) -> tuple[dict[str, Decimal], Any, list[str]]:
    """The rates and provider of one entry, and every problem found in it."""
    if not isinstance(fields, Mapping):
        return {}, None, [f"{where}: expected a mapping of prices, got {fields!r}"]
    allowed = ", ".join(sorted(_ALLOWED_FIELDS))
    errors = [
        f"{where}.{name}: unknown field{_did_you_mean(name, _ALLOWED_FIELDS)} (allowed: {allowed})"
        for name in sorted(map(str, set(fields) - _ALLOWED_FIELDS))
    ]
    errors += [
        f"{where}.{required}: missing (required)"
        for required in ("input", "output")
        if fields.get(required) is None
    ]
    rates: dict[str, Decimal] = {}
    for name in _RATE_FIELDS:
        if fields.get(name) is not None:
            try:
                rates[name] = _decimal(fields[name], f"{where}.{name}")
            except PriceFileError as exc:
                errors.append(str(exc))
    provider = fields.get("provider")
    if provider is not None:
        if not isinstance(provider, str) or not provider:
            errors.append(f"{where}.provider: expected a provider name, got {provider!r}")
        else:
            provider = _provider_name(provider)
    return rates, provider, errors


def parse_prices(data: Any, source: str) -> tuple[PriceEntries, list[str]]:
    """Entries and every error found. Valid entries are kept even when others are bad;
    an entry with any problem is left out whole."""
    entries: PriceEntries = {}
    errors: list[str] = []
    if not isinstance(data, Mapping) or not isinstance(data.get("models"), Mapping):
        return entries, [
            f"{source}: models: expected a top-level 'models' mapping of model → prices"
        ]
    for extra in sorted(map(str, set(data) - {"models"})):
        hint = _did_you_mean(extra, frozenset({"models"}))
        errors.append(f"{source}: {extra}: unknown top-level field{hint}")
    written: dict[tuple[str | None, str], str] = {}  # key → the model name as written
    for model, fields in data["models"].items():
        where = f"{source}: models.{model}"
        if not isinstance(model, str) or not model.strip():
            errors.append(f"{where}: a model name must be a non-empty string")
            continue
        rates, provider, problems = _entry_errors(where, fields)
        if not problems:
            key = (provider, model.lower())
            if key in written:
                problems.append(
                    f"{where}: the same model as models.{written[key]}"
                    + (f" (provider {provider})" if provider else "")
                    + "; model names are matched case-insensitively"
                )
            else:
                written[key] = model
                entries[key] = Rates(**rates, source=source, provider=provider)
        errors += problems
    return entries, errors


class _DuplicateKeys(list[str]):
    """Keys written twice in one mapping of a file: the parsers keep the last silently."""


def _yaml_loader(duplicates: _DuplicateKeys) -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in seen:
                        line = key_node.start_mark.line + 1
                        duplicates.append(f"{key} (line {line})")
                    seen.add(key)
                except TypeError:  # an unhashable key: the SafeLoader reports it
                    pass
            return super().construct_mapping(node, deep=deep)

    # YAML 1.1 (PyYAML) reads 1e-3 as a string; YAML 1.2 and JSON read it as a number.
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )
    return Loader


def _syntax(exc: Exception) -> str:
    """A parser's complaint on one line, with the line and column where it has them."""
    problem = getattr(exc, "problem", None)  # yaml.MarkedYAMLError
    mark = getattr(exc, "problem_mark", None)
    if isinstance(problem, str) and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


def load_price_file(path: str | os.PathLike[str]) -> tuple[PriceEntries, list[str]]:
    """Entries of a YAML or JSON (by the ``.json`` suffix) price file and the errors found,
    each naming the file and the field. Never raises for a bad or unreadable file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return {}, [f"{source}: cannot read the price file ({reason})"]
    is_json = source.lower().endswith(".json")
    duplicates = _DuplicateKeys()
    try:
        if is_json:

            def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
                seen: dict[str, Any] = {}
                for key, value in items:
                    if key in seen:
                        duplicates.append(key)
                    seen[key] = value
                return seen

            data = json.loads(text, object_pairs_hook=pairs)
        else:
            import yaml

            data = yaml.load(text, Loader=_yaml_loader(duplicates))  # a SafeLoader subclass
    except Exception as exc:  # json or yaml syntax errors
        return {}, [f"{source}: not valid {'JSON' if is_json else 'YAML'}: {_syntax(exc)}"]
    entries, errors = parse_prices(data, source)
    errors += [f"{source}: {key}: written twice; the last one is used" for key in duplicates]
    return entries, errors


# -- genai-prices --------------------------------------------------------------------------

# gen_ai.provider.name → genai-prices provider id
# A Bedrock model id: an optional inference-profile region, the vendor, the vendor's
# model, usually with a version suffix ("us.anthropic.claude-3-5-sonnet-20241022-v2:0").
_BEDROCK_ID = re.compile(
    r"^(?:(?:us|eu|apac|au|ca|jp|us-gov|global)\.)?(?P<vendor>[a-z0-9-]+)\.(?P<model>.+)$"
)
_BEDROCK_SUFFIXES = (re.compile(r":\d+$"), re.compile(r"-v\d+(?::\d+)?$"))
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


def _owner(snapshot: Any, provider: Any, found: Any) -> str:
    """The id of the provider whose list holds ``found``: genai-prices falls back from a
    reseller to the original (Azure → OpenAI) and says so only through the model object."""
    if any(model is found for model in provider.models):
        return str(provider.id)
    for fallback_id in getattr(provider, "fallback_model_providers", None) or ():
        for other in snapshot.providers:
            if other.id == fallback_id and any(model is found for model in other.models):
                return str(other.id)
    return str(provider.id)


FOREVER = float("inf")
_DAY = timedelta(days=1)


def _next_change(prices: Any, now: datetime) -> float:
    """When the price genai-prices gives at ``now`` may next change (epoch seconds): the
    next start date or time-of-day boundary of its conditional prices, else never."""
    if not isinstance(prices, list):
        return FOREVER
    changes: list[datetime] = []
    for conditional in prices:
        constraint = getattr(conditional, "constraint", None)
        start_date = getattr(constraint, "start_date", None)
        if isinstance(start_date, date):
            changes.append(datetime.combine(start_date, time(0), timezone.utc))
        for boundary in (
            getattr(constraint, "start_time", None),
            getattr(constraint, "end_time", None),
        ):
            if isinstance(boundary, time):
                utc = datetime.combine(now.date(), boundary).astimezone(timezone.utc)
                changes += [utc - _DAY, utc, utc + _DAY]
    later = [change.timestamp() for change in changes if change > now]
    return min(later, default=FOREVER)


def _genai_prices_rates(provider_id: str, model: str, at: float) -> tuple[Rates | None, float]:
    """The rates at ``at`` (epoch seconds), and until when they hold."""
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    try:
        provider, found = snapshot.find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None, FOREVER
    now = datetime.fromtimestamp(at, timezone.utc)
    price = found.get_prices(now)
    until = _next_change(found.prices, now)
    input_rate = _rate(getattr(price, "input_mtok", None))
    output_rate = _rate(getattr(price, "output_mtok", None))
    if output_rate is None and input_rate is not None and "embed" in str(found.id):
        output_rate = Decimal(0)  # embedding models are priced by input alone
    if input_rate is None or output_rate is None:
        return None, until
    owner = _owner(snapshot, provider, found)
    return Rates(
        input=input_rate,
        output=output_rate,
        cache_read=_rate(getattr(price, "cache_read_mtok", None)),
        cache_write=_rate(getattr(price, "cache_write_mtok", None)),
        reasoning=_rate(getattr(price, "output_reasoning_mtok", None)),
        source=f"genai-prices:{owner}/{found.id}",
        provider=owner,
    ), until


def _bedrock_candidates(model: str) -> list[tuple[str, str]]:
    """The vendor's own model for a Bedrock id: as written, then without its version."""
    match = _BEDROCK_ID.match(model)
    if not match or match.group("vendor") not in _BEDROCK_VENDORS:
        return []
    vendor = _BEDROCK_VENDORS[match.group("vendor")]
    names = [match.group("model")]
    for suffix in _BEDROCK_SUFFIXES:
        stripped = suffix.sub("", names[0])
        if stripped and stripped not in names:
            names.append(stripped)
    return [(vendor, name) for name in names]


def builtin_rates(provider: str, model: str, at: float | None = None) -> Rates | None:
    """Rates from genai-prices for our provider name and a LangChain model name, at the
    time ``at`` (epoch seconds; default now)."""
    return builtin_rates_until(provider, model, _time.time() if at is None else at)[0]


def builtin_rates_until(provider: str, model: str, at: float) -> tuple[Rates | None, float]:
    """:func:`builtin_rates` and until when (epoch seconds) that answer holds."""
    provider_id = GENAI_PRICES_PROVIDERS.get(provider, provider)
    candidates = [(provider_id, model)]
    candidates += [(fallback, model) for fallback in PRICES_FALLBACKS.get(provider_id, ())]
    if provider_id == "aws":
        candidates += _bedrock_candidates(model)
    until = FOREVER
    for candidate_provider, candidate_model in candidates:
        try:
            rates, holds = _genai_prices_rates(candidate_provider, candidate_model, at)
        except Exception:
            internal_error("genai-prices lookup failed")
            rates, holds = None, FOREVER
        until = min(until, holds)
        if rates is not None:
            return rates, until
    return None, until


# -- the memoised price book ---------------------------------------------------------------

_MEMO_LIMIT = 10_000


class Pricing:
    """Prices by (provider, model): the user's entries first, then genai-prices.

    A call is priced by its response model, else its request model (a deployment name,
    a fine-tune's base name): the user's entries for either come first, then genai-prices
    for either, at the time of the call (genai-prices has time-of-day and start-date
    prices). Looked up once per (provider, models) and remembered until the price can
    next change; a model with no price is logged once (a warning) and gets no cost, never
    a guess. ``clock`` gives the time in epoch seconds (for tests).
    """

    def __init__(
        self,
        overrides: Mapping[tuple[str | None, str], Rates] | None = None,
        *,
        warn_missing: bool = True,
        clock: Callable[[], float] = _time.time,
    ) -> None:
        self._overrides = dict(overrides or {})
        # (provider, model, request model) -> (rates, valid from, valid until)
        self._memo: dict[tuple[str, str | None, str | None], tuple[Rates | None, float, float]] = {}
        self._clock = clock
        self._warned: set[tuple[str, str]] = set()
        self._warn_missing = warn_missing
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, prices: Any = None) -> Pricing:
        """``prices``: a path, a mapping shaped like the file, or None (no user prices)."""
        if prices is None:
            return cls()
        if isinstance(prices, Mapping):
            entries, errors = parse_prices(prices, "prices")
        else:
            entries, errors = load_price_file(prices)
        for error in errors:
            logger.error("otel-llm-usage: price file problem, left out: %s", error)
        return cls(entries)

    @property
    def overrides(self) -> Mapping[tuple[str | None, str], Rates]:
        return self._overrides

    def _override(self, provider: str, model: str) -> Rates | None:
        lowered = model.lower()
        return self._overrides.get((provider, lowered)) or self._overrides.get((None, lowered))

    def rates(
        self, provider: str, model: str | None, request_model: str | None = None
    ) -> Rates | None:
        """The rates a call of ``model`` (else ``request_model``) is priced at now, or None."""
        key = (provider, model, request_model)
        now = self._clock()
        memo = self._memo.get(key)
        if memo is not None and memo[1] <= now < memo[2]:
            return memo[0]
        names = [name for name in (model, request_model) if name]
        if request_model == model:
            names = names[:1]
        rates: Rates | None = None
        until = FOREVER
        for name in names:
            rates = self._override(provider, name)
            if rates is not None:
                break
        else:
            for name in names:
                rates, holds = builtin_rates_until(provider, name, now)
                until = min(until, holds)
                if rates is not None:
                    break
        with self._lock:
            if len(self._memo) < _MEMO_LIMIT or key in self._memo:
                self._memo[key] = (rates, now, until)
            warn_key = (provider, names[0]) if names else None
            if (
                rates is None
                and warn_key is not None
                and self._warn_missing
                and warn_key not in self._warned
                and len(self._warned) < _MEMO_LIMIT
            ):
                self._warned.add(warn_key)
                logger.warning(
                    "otel-llm-usage: no price known for model %r of provider %r; its calls "
                    "get no cost (add it to a price file, see %s)",
                    names[0],
                    provider,
                    PRICES_ENV,
                )
        return rates

    def cost(
        self,
        provider: str,
        model: str | None,
        usage: Usage,
        request_model: str | None = None,
    ) -> float | None:
        """USD for ``usage``, or None when no price is known (or it cannot be computed)."""
        memo = self._memo.get((provider, model, request_model))
        if memo is not None and memo[1] <= self._clock() < memo[2]:
            rates = memo[0]
        else:
            rates = self.rates(provider, model, request_model)
        if rates is None:
            return None
        try:
            return rates.cost(usage)
        except Exception:
            internal_error("cost computation failed")
            return None
