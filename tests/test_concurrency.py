"""Exact spans and counters under asyncio concurrency and threads."""

from __future__ import annotations

import asyncio
import threading

from fakes import FakeChat, usage_metadata


async def test_200_concurrent_ainvoke_plus_8_threads(telemetry):
    model = FakeChat()
    threaded = FakeChat(usage=usage_metadata(7, 3))
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for index in range(25):
                if index % 2:
                    threaded.invoke("hi")
                else:
                    list(threaded.stream("hi"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("fan-out") as parent:
        results = await asyncio.gather(*(model.ainvoke(f"q{i}") for i in range(200)))
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 200
    spans = telemetry.model_spans()
    assert len(spans) == 200 + 8 * 25
    async_spans = [s for s in spans if s.parent is not None]
    assert len(async_spans) == 200
    assert {s.parent.span_id for s in async_spans} == {parent.get_span_context().span_id}
    assert telemetry.tokens("input") == 200 * 11 + 200 * 7
    assert telemetry.tokens("output") == 200 * 16 + 200 * 3
    assert telemetry.counter("llm_usage.requests") == 400
