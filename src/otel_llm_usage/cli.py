"""``otel-llm-usage``: check a price file; show what a model costs.

::

    otel-llm-usage prices check prices.yaml [more.json ...]
    otel-llm-usage prices show claude-3-5-sonnet-20241022 [--provider anthropic] [--prices FILE]

``check`` is strict: every problem is listed on stderr (each naming the file and the
field) and the exit status is 1; the instrumentation itself, given the same file, logs
the same problems and keeps the valid entries. ``show`` prints the rates a call of the
model would be priced at, with the user's file (``--prices``, else
``OTEL_LLM_USAGE_PRICES``) applied as the instrumentation applies it; with no
``--provider`` it searches every provider and says which matched (the same model may
cost differently through a reseller: Anthropic's own API, Bedrock, Vertex AI).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import TextIO

from otel_llm_usage.extract.providers import GENAI_PRICES_PROVIDERS, PROVIDER_NAMES
from otel_llm_usage.record.pricing import (
    PriceEntries,
    Pricing,
    Rate,
    Rates,
    load_price_file,
)
from otel_llm_usage.settings import PRICES_ENV, Settings
from otel_llm_usage.version import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-llm-usage",
        description="Prices used by the otel-llm-usage LangChain instrumentation.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.set_defaults(handler=None, usage_of=parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    prices = commands.add_parser("prices", help="check a price file, show a model's prices")
    prices.set_defaults(handler=None, usage_of=prices)
    actions = prices.add_subparsers(dest="action", metavar="ACTION")

    check = actions.add_parser(
        "check",
        help="validate price files (YAML, or JSON by the .json suffix)",
        description="Validate price files strictly: exit status 1 if any has a problem.",
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="a YAML or JSON price file")
    check.set_defaults(handler=_check)

    show = actions.add_parser(
        "show",
        help="what a model costs, in USD per million tokens",
        description="The rates a call of MODEL is priced at, and where they come from.",
    )
    show.add_argument("model", metavar="MODEL", help="the model name as the provider reports it")
    show.add_argument(
        "--provider",
        help="the gen_ai.provider.name the calls carry: openai, anthropic, aws.bedrock, "
        "azure.ai.openai, gcp.gemini, gcp.vertex_ai, mistral_ai, ...; LangChain's names "
        "(azure, bedrock, google_genai, ...) are accepted too. Default: search every "
        "provider and show each that has a price",
    )
    show.add_argument(
        "--prices",
        metavar="FILE",
        help=f"your price file (default: ${PRICES_ENV}, if set)",
    )
    show.set_defaults(handler=_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.handler is None:  # no command, or `prices` with no action
        args.usage_of.print_help(sys.stderr)
        return 2
    result: int = args.handler(args)
    return result


def _check(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        entries, errors = load_price_file(path)
        for error in errors:
            print(error, file=sys.stderr)
        if errors:
            status = 1
        else:
            count = len(entries)
            print(f"{path}: {count} model price{'' if count == 1 else 's'} OK")
    return status


def _show(args: argparse.Namespace) -> int:
    path = args.prices or Settings.from_env().prices
    entries: PriceEntries = {}
    if path is not None:
        entries, errors = load_price_file(path)
        for error in errors:  # left out, as the instrumentation leaves them out
            print(f"warning: {error} (left out)", file=sys.stderr)
    pricing = Pricing(entries, warn_missing=False)
    if args.provider is not None:
        provider = PROVIDER_NAMES.get(args.provider, args.provider)
        searched = [provider]
    else:  # every provider we know a price list of, and those of the user's file
        searched = list(GENAI_PRICES_PROVIDERS)
        searched += sorted({p for p, _ in entries if p is not None and p not in searched})
    found: dict[Rates, list[str]] = {}  # the same rates, by the providers that get them
    for provider in searched:
        rates = pricing.rates(provider, args.model)
        if rates is not None:
            found.setdefault(rates, []).append(provider)
    if not found:
        where = f"genai-prices or {path}" if path else "genai-prices"
        of = f"provider {searched[0]!r}" if args.provider is not None else "any provider"
        print(
            f"otel-llm-usage: no price known for model {args.model!r} of {of} "
            f"(looked in {where}); its calls get no cost. Add it to a price "
            f"file (--prices, ${PRICES_ENV}).",
            file=sys.stderr,
        )
        return 1

    def named(providers: list[str]) -> str:
        everyone = args.provider is None and len(providers) == len(searched)
        return "any provider" if everyone else ", ".join(providers)

    if args.provider is None:
        matched = ", ".join(named(providers) for providers in found.values())
        print(f"{args.model}: no --provider given, searched every provider; priced for {matched}")
    for rates, providers in found.items():
        _print_rates(args.model, named(providers), rates, sys.stdout)
    return 0


def _print_rates(model: str, provider: str, rates: Rates, out: TextIO) -> None:
    print(f"{model} ({provider}): USD per million tokens", file=out)
    rows: list[tuple[str, Rate | None, str]] = [
        ("input", rates.input, ""),
        ("output", rates.output, ""),
        ("cache_read", rates.cache_read, "input"),
        ("cache_write", rates.cache_write, "input"),
        ("reasoning", rates.reasoning, "output"),
    ]
    for name, rate, default in rows:
        if rate is None:
            fallback = rates.input if default == "input" else rates.output
            text = f"{_format(fallback)} (the {default} rate)"
        else:
            text = _format(rate)
        print(f"  {name:<12} {text}", file=out)
    print(f"  {'source':<12} {rates.source}", file=out)


def _format(rate: Rate) -> str:
    if isinstance(rate, Decimal):
        return _number(rate)
    base, tiers = rate
    above = ", ".join(f"{_number(price)} above {start} input tokens" for start, price in tiers)
    return f"{_number(base)}; {above}" if above else _number(base)


def _number(value: Decimal) -> str:
    """A price as written, without an exponent or trailing zeros: 0.15, 2.5, 3."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


if __name__ == "__main__":
    raise SystemExit(main())
