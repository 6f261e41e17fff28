"""Amazon Bedrock vectorizers: a prompt flow (InvokeFlow) or a model via Converse (Nova Pro).

Both send the customer's message as data (JSON-encoded between tags, see prompt.py), parse
the answer strictly (parsing.py) and turn every failure into VectorizerUnavailable (or its
subclass InvalidModelOutput) with a `reason` matching the outcome label of
gateway_bedrock_calls_total, so the chain can fall back and count why.

Credentials come only from the standard AWS chain (environment, shared config/credentials
files, SSO, container/instance roles); this module never accepts, stores or logs them.
Clients use botocore's adaptive retry mode (exponential backoff plus client-side rate
limiting when throttled) and connect/read timeouts; boto3 clients are thread-safe and built
once per vectorizer, lazily, so start-up never waits on the credential chain.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions as bce
import urllib3.exceptions
from botocore.config import Config

from gateway import metrics
from gateway.vectorizers import prompt
from gateway.vectorizers.base import (
    BEDROCK_CONVERSE,
    BEDROCK_FLOW,
    InvalidModelOutput,
    VectorizeResult,
    VectorizerUnavailable,
)
from gateway.vectorizers.parsing import parse_model_text, parse_vector_value

log = logging.getLogger(__name__)

DEFAULT_MODEL_ID = "amazon.nova-pro-v1:0"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_ATTEMPTS = 3  # total attempts per call, including the first
DEFAULT_MAX_TOKENS = 200  # a vector answer is ~40 tokens; the cap bounds cost and latency

# Error codes that mean "slow down" (counted as outcome=throttled).
_THROTTLING_CODES = {
    "ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException",
    "throttlingException", "serviceQuotaExceededException",
}
_CREDENTIAL_ERRORS = (
    bce.NoCredentialsError, bce.PartialCredentialsError, bce.CredentialRetrievalError,
    bce.NoAuthTokenError,
)
_TIMEOUT_ERRORS = (bce.ReadTimeoutError, bce.ConnectTimeoutError, urllib3.exceptions.TimeoutError)


class BedrockUnavailable(VectorizerUnavailable):
    """Bedrock did not answer usably; `reason` is the metrics outcome (throttled, timeout, ...)."""

    def __init__(self, message: str, reason: str = "error"):
        super().__init__(message)
        self.reason = reason


def language_of(text: str) -> str:
    """'ko' when the text contains Hangul, else 'en' (what VectorizeResult.language reports)."""
    for ch in text:
        if "\uac00" <= ch <= "\ud7a3" or "\u1100" <= ch <= "\u11ff" or "\u3130" <= ch <= "\u318f":
            return "ko"
    return "en"


def resolve_region(region: str | None) -> str:
    """The explicit region, else the AWS chain's (AWS_REGION, AWS_DEFAULT_REGION, profile)."""
    resolved = region or boto3.session.Session().region_name
    if not resolved:
        raise ValueError(
            "no AWS region for Bedrock: pass --bedrock-region, set it in the flow config file, "
            "or set AWS_REGION"
        )
    return resolved


@dataclass(frozen=True)
class ClientSettings:
    region: str
    endpoint_url: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_pool_connections: int = 32  # the gateway calls from many RPC threads at once

    def botocore_config(self) -> Config:
        return Config(
            region_name=self.region,
            connect_timeout=self.timeout_s,
            read_timeout=self.timeout_s,
            retries={"mode": "adaptive", "total_max_attempts": max(1, self.max_attempts)},
            max_pool_connections=self.max_pool_connections,
        )


class _LazyClient:
    """One boto3 client, created on first use (thread-safe). A Session per client because
    boto3 sessions are not thread-safe, while the clients they make are."""

    def __init__(self, service: str, settings: ClientSettings):
        self._service = service
        self._settings = settings
        self._client: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    session = boto3.session.Session()
                    self._client = session.client(
                        self._service,
                        region_name=self._settings.region,
                        endpoint_url=self._settings.endpoint_url,
                        config=self._settings.botocore_config(),
                    )
        return self._client


def _classify(exc: BaseException, api: str) -> BedrockUnavailable:
    """Map a botocore/urllib3 failure to BedrockUnavailable with an actionable message."""
    if isinstance(exc, _CREDENTIAL_ERRORS):
        return BedrockUnavailable(
            f"Bedrock {api}: no AWS credentials found in the standard chain "
            "(env, ~/.aws, SSO, instance/container role)", "no_credentials")
    if isinstance(exc, _TIMEOUT_ERRORS):
        return BedrockUnavailable(f"Bedrock {api} timed out: {type(exc).__name__}", "timeout")
    if isinstance(exc, bce.ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
        reason = "throttled" if code in _THROTTLING_CODES or status == 429 else "error"
        return BedrockUnavailable(
            f"Bedrock {api} failed with {code} (HTTP {status}) after {attempts} attempt(s)", reason)
    if isinstance(exc, bce.EndpointConnectionError | urllib3.exceptions.HTTPError):
        return BedrockUnavailable(f"Bedrock {api} endpoint unreachable: {type(exc).__name__}", "error")
    return BedrockUnavailable(f"Bedrock {api} failed: {type(exc).__name__}", "error")


class _BedrockCall:
    """Times one call and records its outcome once (latency histogram + outcome counter)."""

    def __init__(self, api: str):
        self.api = api

    def __enter__(self) -> _BedrockCall:
        self._start = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        elapsed = time.perf_counter() - self._start
        metrics.BEDROCK_LATENCY.labels(api=self.api).observe(elapsed)
        if exc is None:
            outcome = "ok"
        elif isinstance(exc, InvalidModelOutput):
            outcome = "bad_output"
        else:
            outcome = getattr(exc, "reason", "error")
        metrics.BEDROCK_CALLS.labels(api=self.api, outcome=outcome).inc()
        level = logging.INFO if outcome == "ok" else logging.WARNING
        log.log(level, "event=bedrock_call api=%s outcome=%s latency_ms=%.1f%s", self.api, outcome,
                elapsed * 1000, "" if exc is None else f" error={str(exc)!r}")


# --------------------------------------------------------------------------- Converse


class BedrockConverseVectorizer:
    """`bedrock-runtime` Converse with a foundation model (Nova Pro by default).

    output="tool" (default) offers one tool whose input schema is generated from the schema
    and forces the model to call it; output="json" asks for exactly one JSON object as text.
    Either way the answer is parsed strictly and validated."""

    name = BEDROCK_CONVERSE
    api = "converse"

    def __init__(self, *, region: str, model_id: str = DEFAULT_MODEL_ID, endpoint_url: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 output: str = "tool", max_tokens: int = DEFAULT_MAX_TOKENS):
        if output not in ("tool", "json"):
            raise ValueError(f"output must be 'tool' or 'json', got {output!r}")
        self.model_id = model_id
        self.output = output
        self.max_tokens = max_tokens
        self._system = prompt.render_instructions(output)
        self._client = _LazyClient(
            "bedrock-runtime", ClientSettings(region, endpoint_url, timeout_s, max_attempts))

    def request(self, text: str) -> dict[str, Any]:
        """The Converse arguments for one message (public so tests and docs can show them)."""
        kwargs: dict[str, Any] = {
            "modelId": self.model_id,
            "system": [{"text": self._system}],
            "messages": [{"role": "user", "content": [{"text": prompt.user_message(text)}]}],
            "inferenceConfig": {"maxTokens": self.max_tokens, "temperature": 0.0},
        }
        if self.output == "tool":
            kwargs["toolConfig"] = {
                "tools": [{"toolSpec": {
                    "name": prompt.TOOL_NAME,
                    "description": "Record the customer vector read from the customer's message.",
                    "inputSchema": {"json": prompt.vector_json_schema()},
                }}],
                "toolChoice": {"tool": {"name": prompt.TOOL_NAME}},
            }
        return kwargs

    def vectorize(self, text: str) -> VectorizeResult:
        log.debug("event=bedrock_converse_request chars=%d text=%r", len(text), text)
        with _BedrockCall(self.api):
            try:
                response = self._client.get().converse(**self.request(text))
            except (bce.BotoCoreError, bce.ClientError, urllib3.exceptions.HTTPError) as exc:
                raise _classify(exc, self.api) from exc
            features = self._parse(response)
        return VectorizeResult(features, BEDROCK_CONVERSE, language_of(text))

    def _parse(self, response: dict[str, Any]) -> tuple[float, ...]:
        stop = response.get("stopReason")
        if stop not in ("end_turn", "tool_use", "stop_sequence"):
            raise InvalidModelOutput(f"model stopped with {stop!r} instead of answering")
        content = (response.get("output") or {}).get("message", {}).get("content") or []
        log.debug("event=bedrock_converse_output content=%r", content)
        if self.output == "tool":
            calls = [b["toolUse"] for b in content if "toolUse" in b]
            if len(calls) != 1:
                raise InvalidModelOutput(f"model must call {prompt.TOOL_NAME} exactly once, called {len(calls)} tools")
            if calls[0].get("name") != prompt.TOOL_NAME:
                raise InvalidModelOutput("model called an unknown tool")
            return parse_vector_value(calls[0].get("input"))
        texts = [b["text"] for b in content if "text" in b]
        if len(texts) != 1 or len(texts) != len(content):
            raise InvalidModelOutput(f"model must answer with one text block, got {len(content)} blocks")
        return parse_model_text(texts[0])


# --------------------------------------------------------------------------- prompt flow

_FLOW_CONFIG_KEYS = {"region", "flowIdentifier", "flowAliasIdentifier", "inputNodeName", "inputNodeOutputName"}
_SECRET_HINTS = ("secret", "accesskey", "access_key", "sessiontoken", "session_token", "password")


@dataclass(frozen=True)
class FlowConfig:
    """The JSON config file of the bedrock-flow vectorizer (docs/bedrock.md). No credentials."""

    flow_identifier: str
    flow_alias_identifier: str
    region: str | None = None
    input_node_name: str = "FlowInputNode"
    input_node_output_name: str = "document"

    @classmethod
    def load(cls, path: str | Path) -> FlowConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"cannot read Bedrock flow config {path}: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise ValueError(f"Bedrock flow config {path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"Bedrock flow config {path} must be a JSON object")
        secrets = [k for k in data if any(h in k.lower().replace("-", "_") for h in _SECRET_HINTS)]
        if secrets:
            raise ValueError(
                f"Bedrock flow config {path} must not contain credentials ({', '.join(secrets)}); "
                "they come from the standard AWS chain (env, ~/.aws, SSO, instance role)")
        unknown = sorted(set(data) - _FLOW_CONFIG_KEYS)
        if unknown:
            raise ValueError(f"Bedrock flow config {path} has unknown keys {unknown}; "
                             f"allowed: {sorted(_FLOW_CONFIG_KEYS)}")
        for key in ("flowIdentifier", "flowAliasIdentifier"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ValueError(f"Bedrock flow config {path} needs a non-empty string {key!r}")
        return cls(
            flow_identifier=data["flowIdentifier"],
            flow_alias_identifier=data["flowAliasIdentifier"],
            region=data.get("region"),
            input_node_name=data.get("inputNodeName", "FlowInputNode"),
            input_node_output_name=data.get("inputNodeOutputName", "document"),
        )


class BedrockFlowVectorizer:
    """`bedrock-agent-runtime` InvokeFlow on a flow alias (input -> prompt -> output).

    The message goes in JSON-encoded as the input node's document; the response is an event
    stream read to its end: exactly one flowOutputEvent (the prompt's answer) and a
    flowCompletionEvent with completionReason SUCCESS."""

    name = BEDROCK_FLOW
    api = "invoke_flow"

    def __init__(self, config: FlowConfig, *, region: str | None = None, endpoint_url: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, max_attempts: int = DEFAULT_MAX_ATTEMPTS):
        self.config = config
        self._client = _LazyClient(
            "bedrock-agent-runtime",
            ClientSettings(resolve_region(region or config.region), endpoint_url, timeout_s, max_attempts))

    @classmethod
    def from_config_file(cls, path: str | Path, **kwargs: Any) -> BedrockFlowVectorizer:
        return cls(FlowConfig.load(path), **kwargs)

    def request(self, text: str) -> dict[str, Any]:
        return {
            "flowIdentifier": self.config.flow_identifier,
            "flowAliasIdentifier": self.config.flow_alias_identifier,
            "inputs": [{
                "nodeName": self.config.input_node_name,
                "nodeOutputName": self.config.input_node_output_name,
                "content": {"document": prompt.encode_customer_text(text)},
            }],
        }

    def vectorize(self, text: str) -> VectorizeResult:
        log.debug("event=bedrock_flow_request chars=%d text=%r", len(text), text)
        with _BedrockCall(self.api):
            try:
                response = self._client.get().invoke_flow(**self.request(text))
                document = self._read_stream(response["responseStream"])
            except (bce.BotoCoreError, bce.ClientError, urllib3.exceptions.HTTPError) as exc:
                raise _classify(exc, self.api) from exc
            if isinstance(document, str):
                features = parse_model_text(document)
            else:  # an output node of type Object/Array hands over decoded JSON
                features = parse_vector_value(document)
        return VectorizeResult(features, BEDROCK_FLOW, language_of(text))

    @staticmethod
    def _read_stream(stream: Any) -> Any:
        outputs: list[Any] = []
        completion = None
        try:
            for event in stream:  # an error event raises botocore EventStreamError (a ClientError)
                if "flowOutputEvent" in event:
                    outputs.append(event["flowOutputEvent"].get("content", {}).get("document"))
                elif "flowCompletionEvent" in event:
                    completion = event["flowCompletionEvent"].get("completionReason")
                elif "flowMultiTurnInputRequestEvent" in event:
                    raise BedrockUnavailable(
                        "Bedrock flow asked for more input (multi-turn); the vectorizer flow must be "
                        "input -> prompt -> output", "error")
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()
        log.debug("event=bedrock_flow_output outputs=%r completion=%s", outputs, completion)
        if completion != "SUCCESS":
            raise BedrockUnavailable(f"Bedrock flow did not complete successfully (completionReason={completion})",
                                     "error")
        if len(outputs) != 1:
            raise InvalidModelOutput(f"Bedrock flow must produce exactly one output, produced {len(outputs)}")
        return outputs[0]
