"""Embeddings calls through the real provider packages against the local server: one
``embeddings {model}`` span per LangChain call, exact input tokens and cost, metrics and
``track_usage()``."""

from __future__ import annotations

import pytest
from _provider_server import ProviderServer, Reply
from langchain_core.embeddings import Embeddings
from langchain_openai import AzureOpenAIEmbeddings, OpenAIEmbeddings

from otel_llm_usage import LangChainUsageInstrumentor, track_usage
from otel_llm_usage import semconv as sc

# genai-prices: text-embedding-3-small is $0.02 per million input tokens
SMALL_PRICE = 0.02 / 1_000_000


def openai_embeddings(server: ProviderServer, **kwargs: object) -> OpenAIEmbeddings:
    return OpenAIEmbeddings(
        model="text-embedding-3-small",
        base_url=server.openai_url,
        api_key="sk-test",
        check_embedding_ctx_length=False,
        max_retries=0,
        **kwargs,  # type: ignore[arg-type]
    )


def embeddings_spans(telemetry):  # type: ignore[no-untyped-def]
    return [
        s
        for s in telemetry.model_spans()
        if s.attributes.get(sc.GEN_AI_OPERATION_NAME) == sc.OPERATION_EMBEDDINGS
    ]


def test_openai_embed_documents_span_tokens_cost_metrics(telemetry, server) -> None:  # type: ignore[no-untyped-def]
    server.script(Reply(input=12, dimensions=3))
    with track_usage() as usage:
        vectors = openai_embeddings(server).embed_documents(["a b c", "d e f"])
    assert [len(v) for v in vectors] == [3, 3]
    (span,) = embeddings_spans(telemetry)
    assert span.name == "embeddings text-embedding-3-small"
    attributes = dict(span.attributes)
    assert attributes[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert attributes[sc.GEN_AI_REQUEST_MODEL] == "text-embedding-3-small"
    assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 12
    assert sc.GEN_AI_USAGE_OUTPUT_TOKENS not in attributes
    assert attributes[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == 3
    assert attributes[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(12 * SMALL_PRICE)
    assert attributes[sc.GEN_AI_USAGE_COST_CURRENCY] == "USD"
    assert attributes[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert attributes[sc.SERVER_PORT] == server.port
    assert telemetry.tokens("input") == 12
    assert telemetry.tokens("output") == 0
    assert telemetry.counter("llm_usage.cost") == pytest.approx(12 * SMALL_PRICE)
    points = telemetry.metrics()[sc.GEN_AI_CLIENT_TOKEN_USAGE]
    assert [(p.attributes[sc.GEN_AI_TOKEN_TYPE], p.sum) for p in points] == [("input", 12)]
    assert [p.count for p in telemetry.metrics()[sc.GEN_AI_CLIENT_OPERATION_DURATION]] == [1]
    assert (usage.successful_requests, usage.input_tokens, usage.output_tokens) == (1, 12, 0)
    assert usage.total_cost == pytest.approx(12 * SMALL_PRICE)


def test_embed_query_is_one_span(telemetry, server) -> None:  # type: ignore[no-untyped-def]
    server.script(Reply(input=5))
    vector = openai_embeddings(server).embed_query("hello")
    assert len(vector) == 4
    (span,) = embeddings_spans(telemetry)
    assert span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 5
    assert span.attributes[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == 4


def test_requested_dimensions_and_batches_sum(telemetry, server) -> None:  # type: ignore[no-untyped-def]
    server.script(Reply(input=7), Reply(input=9))
    model = openai_embeddings(server, dimensions=2, chunk_size=2)
    vectors = model.embed_documents(["a", "b", "c"])  # two requests: 2 + 1 texts
    assert [len(v) for v in vectors] == [2, 2, 2]
    assert len(server.requests) == 2
    (span,) = embeddings_spans(telemetry)
    assert span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 16
    assert span.attributes[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == 2
    assert telemetry.tokens("input") == 16


async def test_async_embed_documents_and_query(telemetry, server) -> None:  # type: ignore[no-untyped-def]
    server.script(Reply(input=3), Reply(input=4))
    model = openai_embeddings(server)
    with track_usage() as usage:
        await model.aembed_documents(["x"])
        await model.aembed_query("y")
    spans = embeddings_spans(telemetry)
    assert [s.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] for s in spans] == [3, 4]
    assert (usage.successful_requests, usage.input_tokens) == (2, 7)


def test_azure_embeddings(telemetry, server) -> None:  # type: ignore[no-untyped-def]
    server.script(Reply(input=8))
    model = AzureOpenAIEmbeddings(
        model="text-embedding-3-small",
        azure_deployment="emb",
        azure_endpoint=server.url,
        api_key="test",
        api_version="2024-10-21",
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    model.embed_documents(["a"])
    assert server.requests[0].path.startswith("/openai/deployments/emb/embeddings")
    (span,) = embeddings_spans(telemetry)
    assert span.attributes[sc.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"
    assert span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 8
    assert span.attributes[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(8 * SMALL_PRICE)


def test_bedrock_titan_embeddings(telemetry, server, aws) -> None:  # type: ignore[no-untyped-def]
    import boto3
    from langchain_aws import BedrockEmbeddings

    server.script(Reply(input=6, dimensions=5))
    client = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=server.url)
    model = BedrockEmbeddings(model_id="amazon.titan-embed-text-v2:0", client=client)
    vector = model.embed_query("hello")
    assert len(vector) == 5
    (span,) = embeddings_spans(telemetry)
    assert span.name == "embeddings amazon.titan-embed-text-v2:0"
    assert span.attributes[sc.GEN_AI_PROVIDER_NAME] == "aws.bedrock"
    assert span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 6
    assert span.attributes[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == 5


def test_error_passes_through(telemetry, server) -> None:  # type: ignore[no-untyped-def]
    import openai

    server.script(Reply(status=400, error_type="invalid_request_error"))
    with pytest.raises(openai.BadRequestError):
        openai_embeddings(server).embed_documents(["a"])
    (span,) = embeddings_spans(telemetry)
    assert span.attributes[sc.ERROR_TYPE] == "openai.BadRequestError"


class Later(Embeddings):
    """Defined after the module's imports, like an application's own class."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[1.0, 2.0] for _ in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def test_class_defined_after_instrument_and_uninstrument_restores(telemetry) -> None:  # type: ignore[no-untyped-def]
    class Mine(Later):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return super().embed_documents(texts)

    original = Mine.__dict__["embed_documents"]
    assert hasattr(original, "__wrapped__")  # patched when the class was made
    Mine().embed_query("q")  # embed_query → embed_documents → super(): one span
    (span,) = embeddings_spans(telemetry)
    assert span.name == "embeddings"
    assert span.attributes[sc.LLM_USAGE_USAGE_MISSING] is True
    assert span.attributes[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == 2
    LangChainUsageInstrumentor().uninstrument()
    try:
        assert not hasattr(Mine.__dict__["embed_documents"], "__wrapped__")
        assert not hasattr(OpenAIEmbeddings.__dict__["embed_documents"], "__wrapped__")
        assert "__init_subclass__" not in vars(Embeddings)
    finally:
        LangChainUsageInstrumentor().instrument(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )


async def test_cohere_embeddings_sync_and_async(telemetry, server) -> None:  # type: ignore[no-untyped-def]
    from langchain_cohere import CohereEmbeddings

    server.script(Reply(input=4, dimensions=3), Reply(input=2, dimensions=3))
    model = CohereEmbeddings(
        model="embed-english-v3.0",
        base_url=server.url,
        cohere_api_key="test",  # type: ignore[arg-type]
    )  # type: ignore[call-arg]
    assert [len(v) for v in model.embed_documents(["a", "b"])] == [3, 3]
    assert len(await model.aembed_query("c")) == 3
    assert [r.path for r in server.requests] == ["/v1/embed", "/v1/embed"]
    spans = embeddings_spans(telemetry)
    assert [s.name for s in spans] == ["embeddings embed-english-v3.0"] * 2
    assert {s.attributes[sc.GEN_AI_PROVIDER_NAME] for s in spans} == {"cohere"}
    assert [s.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] for s in spans] == [4, 2]
    assert telemetry.tokens("input") == 6
