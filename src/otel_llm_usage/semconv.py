"""Every span attribute, metric name and well-known value we emit, in one place.

GenAI names follow the OpenTelemetry GenAI semantic conventions, semantic-conventions-genai
v0.1.0 (their first standalone release, after semantic-conventions v1.41). Names with the
``llm_usage.`` prefix have no released convention yet and are ours.
"""

# The scope's schema URL (tracer and meter).
SCHEMA_URL = "https://opentelemetry.io/schemas/gen-ai/0.1.0"

# Span attributes: request
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K = "gen_ai.request.top_k"
GEN_AI_REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_SEED = "gen_ai.request.seed"
GEN_AI_REQUEST_FREQUENCY_PENALTY = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
GEN_AI_REQUEST_ENCODING_FORMATS = "gen_ai.request.encoding_formats"
GEN_AI_EMBEDDINGS_DIMENSION_COUNT = "gen_ai.embeddings.dimension.count"
OPENAI_REQUEST_SERVICE_TIER = "openai.request.service_tier"
OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"

# Span attributes: response
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"

# Span attributes: usage (input INCLUDES cache-read and cache-write tokens)
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"

# Span attributes: cost, on inference and embeddings spans only, shaped like the open
# proposal (semantic-conventions-genai PR #443: amount double, currency ISO 4217, source
# provider|local). Agent spans carry their roll-ups under llm_usage.agent.* instead, so
# a backend summing gen_ai.usage.cost.amount does not count a call twice.
GEN_AI_USAGE_COST_AMOUNT = "gen_ai.usage.cost.amount"
GEN_AI_USAGE_COST_CURRENCY = "gen_ai.usage.cost.currency"
GEN_AI_USAGE_COST_SOURCE = "gen_ai.usage.cost.source"

# Agents and tools
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_TOOL_DESCRIPTION = "gen_ai.tool.description"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"

# Content (only when capture is switched on)
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"

SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

# Our own span attributes
LLM_USAGE_USAGE_MISSING = "llm_usage.usage.missing"
LLM_USAGE_USAGE_INVALID = "llm_usage.usage.invalid"
LLM_USAGE_USAGE_ESTIMATED = "llm_usage.usage.estimated"
LLM_USAGE_PRICE_MISSING = "llm_usage.price.missing"
LLM_USAGE_CACHE_HIT = "llm_usage.cache_hit"
# A model span whose model called another model: the inner span carries the usage.
LLM_USAGE_DELEGATED = "llm_usage.delegated"
LLM_USAGE_CACHE_HITS = "llm_usage.cache_hits"  # agent spans: calls the LLM cache answered
LLM_USAGE_STREAM_CLOSED_EARLY = "llm_usage.stream.closed_early"
LLM_USAGE_STREAM_CHUNKS = "llm_usage.stream.chunks"
LLM_USAGE_MODEL_CALLS = "llm_usage.model_calls"
LLM_USAGE_CALLS_WITHOUT_USAGE = "llm_usage.calls_without_usage"
# Agent roll-ups: the sums over the model calls below an agent span
LLM_USAGE_AGENT_INPUT_TOKENS = "llm_usage.agent.input_tokens"
LLM_USAGE_AGENT_OUTPUT_TOKENS = "llm_usage.agent.output_tokens"
LLM_USAGE_AGENT_CACHE_READ_INPUT_TOKENS = "llm_usage.agent.cache_read.input_tokens"
LLM_USAGE_AGENT_CACHE_CREATION_INPUT_TOKENS = "llm_usage.agent.cache_creation.input_tokens"
LLM_USAGE_AGENT_REASONING_OUTPUT_TOKENS = "llm_usage.agent.reasoning.output_tokens"
LLM_USAGE_AGENT_COST_AMOUNT = "llm_usage.agent.cost.amount"
LLM_USAGE_AGENT_COST_CURRENCY = "llm_usage.agent.cost.currency"

# Metric attributes
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
LLM_USAGE_USAGE_SOURCE = "llm_usage.usage.source"

# Metrics: standard
GEN_AI_CLIENT_OPERATION_DURATION = "gen_ai.client.operation.duration"
GEN_AI_CLIENT_TOKEN_USAGE = "gen_ai.client.token.usage"
GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK = "gen_ai.client.operation.time_per_output_chunk"

# Metrics: ours (no released convention for counters of tokens, cost, requests)
LLM_USAGE_TOKENS = "llm_usage.tokens"
LLM_USAGE_COST = "llm_usage.cost"
LLM_USAGE_REQUESTS = "llm_usage.requests"

# Values
OPERATION_CHAT = "chat"
OPERATION_TEXT_COMPLETION = "text_completion"
OPERATION_EMBEDDINGS = "embeddings"
OPERATION_INVOKE_AGENT = "invoke_agent"
OPERATION_EXECUTE_TOOL = "execute_tool"
TOOL_TYPE_FUNCTION = "function"
TOKEN_TYPE_INPUT = "input"
TOKEN_TYPE_OUTPUT = "output"
TOKEN_TYPE_CACHE_READ = "cache_read"
TOKEN_TYPE_CACHE_CREATION = "cache_creation"
TOKEN_TYPE_REASONING = "reasoning"
USAGE_SOURCE_REPORTED = "reported"
USAGE_SOURCE_MISSING = "missing"
USAGE_SOURCE_ESTIMATED = "estimated"
USAGE_SOURCE_CACHE = "cache"
USAGE_SOURCE_ERROR = "error"
USAGE_SOURCE_INVALID = "invalid"  # the provider reported counts that cannot be real
COST_CURRENCY_USD = "USD"
COST_SOURCE_LOCAL = "local"

# OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT values (util-genai's names), plus
# the older true/false (true: on the span, as this package always did).
CONTENT_NO_CONTENT = "NO_CONTENT"
CONTENT_SPAN_ONLY = "SPAN_ONLY"
CONTENT_EVENT_ONLY = "EVENT_ONLY"
CONTENT_SPAN_AND_EVENT = "SPAN_AND_EVENT"
# The event that carries content when it goes to events (a log record)
GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS = "gen_ai.client.inference.operation.details"

# Context keys of opentelemetry-util-genai: a value there marks a running inference
# (embedding) whose span describes the call, so util-genai based instrumentations of the
# provider SDK below it make no second span and record no second set of metrics.
UTIL_GENAI_INFERENCE_CONTEXT_KEY = "opentelemetry.genai.client.inference.context"
UTIL_GENAI_EMBEDDING_CONTEXT_KEY = "opentelemetry.genai.client.embedding.context"

# Bucket advice from the GenAI metrics conventions.
DURATION_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
TOKEN_BUCKETS = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
# The conventions advise the duration buckets for the chunk-timing histograms too
# (0.01 … 81.92 s: reasoning models take longer than 10 s to a first chunk).
FIRST_CHUNK_BUCKETS = DURATION_BUCKETS
PER_CHUNK_BUCKETS = DURATION_BUCKETS
