"""Amazon Bedrock vectorizers: a prompt flow (InvokeFlow) or a model via Converse (Nova Pro).

Both send the customer's message as data (JSON-encoded between tags, see prompt.py), parse
the answer strictly (parsing.py) and turn every failure into VectorizerUnavailable (or its
subclass InvalidModelOutput) with a `reason` matching the outcome label of
gateway_bedrock_calls_total, so the chain can fall back and count why.

Failures are of two sorts, and are treated differently:
- transient (throttling, 5xx, timeouts, a dropped connection): retried with exponential
  backoff and jitter, each attempt's read timeout cut to the time the caller has left
  (gateway/vectorizers/deadlines.py), and no retry started that could not finish in time;
- permanent (ValidationException, AccessDeniedException, ResourceNotFoundException, rejected
  or missing credentials): never retried, since the next call would fail the same way. The
  first one is logged once with its remedy and marks the vectorizer degraded
  (`BedrockHealth`: the gateway's health detail and the gateway_vectorizer_degraded gauge);
  while degraded, calls fail at once (the fallback answers) and one real call is let through
  every `recheck_s` seconds, so a fixed IAM policy or model access heals without a restart.

Credentials come only from the standard AWS chain (environment, shared config/credentials
files, SSO, container/instance roles); this module never accepts, stores or logs them.
boto3 clients are thread-safe and built once per vectorizer, lazily, so start-up never waits
on the credential chain; botocore's own retries are off (the loop here knows the deadline).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions as bce
import botocore.session
import urllib3.exceptions
from botocore.config import Config

from gateway import metrics
from gateway.vectorizers import deadlines, prompt
from gateway.vectorizers.base import (
    BEDROCK_CONVERSE,
    BEDROCK_FLOW,
    InvalidModelOutput,
    VectorizeResult,
    VectorizerUnavailable,
)
from gateway.vectorizers.parsing import parse_model_text, parse_vector_value
from recommender.text import detect_language

log = logging.getLogger(__name__)

# No fixed model id: Nova Pro is called through the region's inference profile
# (default_model_id); None here tells callers "let the region decide".
DEFAULT_MODEL_ID = None
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_ATTEMPTS = 3  # total attempts per call, including the first
DEFAULT_MAX_TOKENS = 200  # a vector answer is ~40 tokens; the cap bounds cost and latency
DEFAULT_RECHECK_S = 30.0  # while degraded by a permanent error, one real call per this many seconds
CONNECT_TIMEOUT_S = 2.0  # at most this long to open a connection to Bedrock
MIN_ATTEMPT_S = 0.05  # an attempt with less time than this left is not started
# Time kept back from the caller's deadline (at most this, at most 10% of what is left) so the
# fallback can still answer and the reply reach the caller when Bedrock uses up its share.
FALLBACK_RESERVE_S = 0.25
BACKOFF_BASE_S = 0.1
BACKOFF_MAX_S = 2.0

# Error codes that mean "slow down" (counted as outcome=throttled). Event stream exceptions
# arrive in lower camel case (throttlingException), rest-json errors in upper camel case.
_THROTTLING_CODES = {"throttlingexception", "toomanyrequestsexception", "servicequotaexceededexception",
                     "modelnotreadyexception"}
# Permanent errors: the same request fails the same way until someone changes the setup.
# code (lower case) -> (metrics outcome, remedy template; {api} {region} {target} filled in)
_PERMANENT_CODES: dict[str, tuple[str, str]] = {
    "accessdeniedexception": (
        "access_denied",
        "the gateway's AWS identity may not call {api} on {target}: allow bedrock:InvokeFlow / "
        "bedrock:InvokeModel in every region the inference profile routes to (the policy printed by "
        "`python -m gateway bedrock setup`, docs/bedrock.md 'Permissions') and enable model access "
        "to Nova Pro in region {region}"),
    "validationexception": (
        "validation",
        "Bedrock refused the request to {target} in region {region} as invalid: most often the model "
        "needs an inference profile there (run `python -m gateway bedrock setup --region {region}` "
        "or pass --model-id with the region's profile, e.g. apac.amazon.nova-pro-v1:0 in "
        "ap-northeast-2) or model access is not enabled"),
    "resourcenotfoundexception": (
        "not_found",
        "{target} does not exist in region {region}: check the ids and region in --bedrock-config "
        "or re-create them with `python -m gateway bedrock setup --region {region}`"),
    "unrecognizedclientexception": (
        "bad_credentials",
        "AWS rejected the credentials (unknown or revoked key): fix the identity the gateway runs as"),
    "invalidsignatureexception": (
        "bad_credentials", "AWS rejected the request signature: check the secret key and the clock"),
    "expiredtokenexception": (
        "bad_credentials", "the AWS credentials have expired: refresh them (aws sso login, a new role session)"),
    "expiredtoken": (
        "bad_credentials", "the AWS credentials have expired: refresh them (aws sso login, a new role session)"),
}
PERMANENT_OUTCOMES = ("access_denied", "validation", "not_found", "bad_credentials", "no_credentials")
_CREDENTIAL_ERRORS = (
    bce.NoCredentialsError, bce.PartialCredentialsError, bce.CredentialRetrievalError,
    bce.NoAuthTokenError,
)
_TIMEOUT_ERRORS = (bce.ReadTimeoutError, bce.ConnectTimeoutError, urllib3.exceptions.TimeoutError)
_CALL_ERRORS = (bce.BotoCoreError, bce.ClientError, urllib3.exceptions.HTTPError)

# The read timeout of the attempt under way on this thread (see _LazyClient's before-call hook).
_ATTEMPT_READ_TIMEOUT: ContextVar[float | None] = ContextVar("bedrock_attempt_read_timeout", default=None)


class BedrockUnavailable(VectorizerUnavailable):
    """Bedrock did not answer usably. `reason` is the metrics outcome (throttled, timeout,
    access_denied, ...); `permanent` errors are not retried and degrade the vectorizer;
    `remedy` says what an operator should do about a permanent one."""

    def __init__(self, message: str, reason: str = "error", *, permanent: bool = False,
                 retryable: bool | None = None, remedy: str = ""):
        super().__init__(message)
        self.reason = reason
        self.permanent = permanent
        self.retryable = (not permanent) if retryable is None else retryable
        self.remedy = remedy


def resolve_region(region: str | None) -> str:
    """The explicit region, else the AWS chain's (AWS_REGION, AWS_DEFAULT_REGION, profile)."""
    resolved = region or boto3.session.Session().region_name
    if not resolved:
        raise ValueError(
            "no AWS region for Bedrock: pass --region, set \"region\" in the flow config file "
            "(--bedrock-config), or set AWS_REGION (the gateway's --region default) or AWS_DEFAULT_REGION")
    return resolved


def default_model_id(region: str) -> str:
    """Nova Pro through the region's inference profile (gateway/bedrock/profiles.py)."""
    from gateway.bedrock.profiles import default_model_id as by_region

    return by_region(region)


@dataclass(frozen=True)
class ClientSettings:
    region: str
    endpoint_url: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_pool_connections: int = 32  # the gateway calls from many RPC threads at once

    def botocore_config(self) -> Config:
        return Config(
            region_name=self.region,
            # The caller's deadline cuts read timeouts per attempt; botocore has no per-request
            # connect timeout, so opening a new connection (rare: connections are kept alive)
            # is bounded here instead.
            connect_timeout=min(self.timeout_s, CONNECT_TIMEOUT_S),
            read_timeout=self.timeout_s,
            # One attempt per botocore call: the retry loop in _BedrockVectorizer knows the deadline.
            retries={"mode": "standard", "total_max_attempts": 1},
            max_pool_connections=self.max_pool_connections,
        )


_LOADER_LOCK = threading.Lock()
_LOADER: Any = None


def new_session() -> boto3.session.Session:
    """A boto3 session of its own (sessions are not thread-safe; credentials are resolved per
    session) sharing one botocore data loader per process: service models and endpoint rules
    are parsed once (~0.5 s of JSON per client otherwise), not once per client."""
    global _LOADER
    core = botocore.session.Session()
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = core.get_component("data_loader")
        core.register_component("data_loader", _LOADER)
    return boto3.session.Session(botocore_session=core)


def _apply_attempt_timeout(context: dict, **_: Any) -> None:
    """botocore before-call hook: this attempt's read timeout (botocore honours
    context["read_timeout"] per request, over the client's configured one)."""
    timeout = _ATTEMPT_READ_TIMEOUT.get()
    if timeout is not None:
        context["read_timeout"] = timeout


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
                    client = new_session().client(
                        self._service,
                        region_name=self._settings.region,
                        endpoint_url=self._settings.endpoint_url,
                        config=self._settings.botocore_config(),
                    )
                    client.meta.events.register("before-call", _apply_attempt_timeout)
                    self._client = client
        return self._client


def _error_code(exc: bce.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def classify(exc: BaseException, api: str, *, region: str = "", target: str = "",
             attempts: int = 1) -> BedrockUnavailable:
    """Map a botocore/urllib3 failure to BedrockUnavailable with an actionable message."""
    tried = f" after {attempts} attempt(s)"
    if isinstance(exc, _CREDENTIAL_ERRORS):
        return BedrockUnavailable(
            f"Bedrock {api}: no AWS credentials found in the standard chain "
            "(env, ~/.aws, SSO, instance/container role)", "no_credentials", permanent=True,
            remedy="give the gateway an AWS identity: a role (instance, ECS, EKS), AWS_PROFILE "
                   "with `aws sso login`, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    if isinstance(exc, _TIMEOUT_ERRORS):
        return BedrockUnavailable(f"Bedrock {api} timed out{tried}: {type(exc).__name__}", "timeout")
    if isinstance(exc, bce.ClientError):
        code = _error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        detail = str(exc.response.get("Error", {}).get("Message", ""))[:300]
        where = f"Bedrock {api} failed with {code} (HTTP {status}){tried}"
        permanent = _PERMANENT_CODES.get(code.lower())
        if permanent:
            outcome, remedy = permanent
            remedy = remedy.format(api=api, region=region or "?", target=target or "the resource")
            return BedrockUnavailable(f"{where}: {detail}" if detail else where, outcome,
                                      permanent=True, remedy=remedy)
        if code.lower() in _THROTTLING_CODES or status == 429:
            return BedrockUnavailable(where, "throttled")
        return BedrockUnavailable(where, "error")
    if isinstance(exc, bce.EndpointConnectionError | urllib3.exceptions.HTTPError):
        return BedrockUnavailable(f"Bedrock {api} endpoint unreachable{tried}: {type(exc).__name__}", "error")
    return BedrockUnavailable(f"Bedrock {api} failed{tried}: {type(exc).__name__}", "error")


# --------------------------------------------------------------------------- health


class BedrockHealth:
    """Whether the Bedrock vectorizer is degraded by a permanent error.

    Degraded after a permanent error (logged once, with its remedy; gauge
    gateway_vectorizer_degraded{vectorizer,kind} = 1); healthy again after the next successful
    call. While degraded, `short_circuit()` answers the last error at once, except one call
    per `recheck_s` seconds that goes to Bedrock to see whether the setup was fixed.
    Listeners (the server's health service) are called with the detail dict on every change."""

    def __init__(self, vectorizer: str, recheck_s: float = DEFAULT_RECHECK_S):
        self.vectorizer = vectorizer
        self.recheck_s = recheck_s
        self._lock = threading.Lock()
        self._error: BedrockUnavailable | None = None
        self._since = 0.0
        self._next_check = 0.0
        self._listeners: list[Callable[[dict | None], None]] = []
        metrics.VECTORIZER_DEGRADED.labels(vectorizer=vectorizer, kind="none").set(0)

    @property
    def degraded(self) -> bool:
        return self._error is not None

    def detail(self) -> dict | None:
        """None when healthy; else what is wrong and what to do."""
        error = self._error
        if error is None:
            return None
        return {"vectorizer": self.vectorizer, "kind": error.reason, "error": str(error),
                "remedy": error.remedy, "since_unix": self._since}

    def add_listener(self, listener: Callable[[dict | None], None]) -> None:
        self._listeners.append(listener)

    def short_circuit(self) -> BedrockUnavailable | None:
        """The error to answer without calling Bedrock, or None to make the call."""
        with self._lock:
            if self._error is None:
                return None
            now = time.monotonic()
            if now >= self._next_check:
                self._next_check = now + self.recheck_s  # this caller re-checks; others wait
                return None
            error = self._error
        return BedrockUnavailable(f"{error} (degraded: not retried for {self.recheck_s:g} s)",
                                  error.reason, permanent=True, remedy=error.remedy)

    def record_ok(self) -> None:
        if self._error is None:
            return
        with self._lock:
            previous, self._error = self._error, None
        if previous is not None:
            metrics.VECTORIZER_DEGRADED.labels(vectorizer=self.vectorizer, kind=previous.reason).set(0)
            log.warning("event=bedrock_recovered vectorizer=%s was=%s", self.vectorizer, previous.reason)
            self._notify(None)

    def record_permanent(self, error: BedrockUnavailable) -> None:
        with self._lock:
            previous = self._error
            self._error = error
            self._next_check = time.monotonic() + self.recheck_s
            if previous is None:
                self._since = time.time()
        if previous is not None and previous.reason == error.reason:
            return  # logged once per kind, not once per call
        if previous is not None:
            metrics.VECTORIZER_DEGRADED.labels(vectorizer=self.vectorizer, kind=previous.reason).set(0)
        metrics.VECTORIZER_DEGRADED.labels(vectorizer=self.vectorizer, kind=error.reason).set(1)
        log.error("event=bedrock_degraded vectorizer=%s kind=%s error=%r remedy=%r recheck_s=%g",
                  self.vectorizer, error.reason, str(error), error.remedy, self.recheck_s)
        self._notify(self.detail())

    def _notify(self, detail: dict | None) -> None:
        for listener in list(self._listeners):
            try:
                listener(detail)
            except Exception:  # a listener must never break a customer's call
                log.exception("event=bedrock_health_listener_failed")


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


def _budget_end() -> float | None:
    """The time.monotonic() by which Bedrock must be done: the caller's deadline less the
    fallback's reserve, fixed when the call starts (None: no deadline)."""
    deadline = deadlines.current()
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    return deadline - min(FALLBACK_RESERVE_S, max(0.0, 0.1 * left))


class _BedrockVectorizer:
    """What both paths share: the client, the retry loop bounded by the caller's deadline,
    permanent-error health, metrics. Subclasses implement `_attempt(text)`."""

    name = ""
    api = ""

    def __init__(self, service: str, *, region: str, endpoint_url: str | None, timeout_s: float,
                 max_attempts: int, recheck_s: float = DEFAULT_RECHECK_S):
        if timeout_s <= 0:
            raise ValueError(f"Bedrock timeout must be positive, got {timeout_s}")
        self.region = region
        self.timeout_s = timeout_s
        self.max_attempts = max(1, max_attempts)
        self.health = BedrockHealth(self.name, recheck_s)
        self._client = _LazyClient(service, ClientSettings(region, endpoint_url, timeout_s))

    @property
    def target(self) -> str:
        return ""

    def vectorize(self, text: str) -> VectorizeResult:
        return VectorizeResult(self.call(text)[0], self.name, detect_language(text))

    def call(self, text: str) -> tuple[tuple[float, ...], dict[str, Any]]:
        """(features, details) of one vectorizing call, retried within the caller's deadline.
        details: attempts, and what the API reports (the flow's executionId)."""
        short = self.health.short_circuit()
        if short is not None:
            raise short
        end = _budget_end()
        with _BedrockCall(self.api):
            attempt = 0
            while True:
                attempt += 1
                read_timeout = self.timeout_s
                left = None if end is None else end - time.monotonic()
                if left is not None:
                    if left < MIN_ATTEMPT_S:
                        raise BedrockUnavailable(
                            f"Bedrock {self.api}: the caller's deadline left {max(left, 0) * 1000:.0f} ms "
                            f"before attempt {attempt}", "deadline")
                    read_timeout = min(read_timeout, left)
                token = _ATTEMPT_READ_TIMEOUT.set(read_timeout)
                try:
                    features, details = self._attempt(text)
                    details["attempts"] = attempt
                    self.health.record_ok()
                    return features, details
                except _CALL_ERRORS as exc:
                    error = classify(exc, self.api, region=self.region, target=self.target, attempts=attempt)
                    error.__cause__ = exc
                except InvalidModelOutput:
                    self.health.record_ok()  # Bedrock answered: the setup works, the answer did not
                    raise
                except BedrockUnavailable as exc:
                    error = exc
                finally:
                    _ATTEMPT_READ_TIMEOUT.reset(token)
                if error.permanent:
                    self.health.record_permanent(error)
                    raise error
                if not error.retryable or attempt >= self.max_attempts:
                    raise error
                backoff = random.uniform(0.5, 1.0) * min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
                left = None if end is None else end - time.monotonic()
                if left is not None and left < backoff + MIN_ATTEMPT_S:
                    error.args = (f"{error} (no time left on the caller's deadline to retry)",)
                    raise error
                log.info("event=bedrock_retry api=%s attempt=%d reason=%s backoff_ms=%.0f",
                         self.api, attempt, error.reason, backoff * 1000)
                time.sleep(backoff)

    def _attempt(self, text: str) -> tuple[tuple[float, ...], dict[str, Any]]:
        raise NotImplementedError


# --------------------------------------------------------------------------- Converse


class BedrockConverseVectorizer(_BedrockVectorizer):
    """`bedrock-runtime` Converse with a foundation model (Nova Pro by default, through the
    region's inference profile).

    output="tool" (default) offers one tool whose input schema is generated from the schema
    and forces the model to call it; output="json" asks for exactly one JSON object as text.
    Either way the answer is parsed strictly and validated."""

    name = BEDROCK_CONVERSE
    api = "converse"

    def __init__(self, *, region: str, model_id: str | None = None, endpoint_url: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 output: str = "tool", max_tokens: int = DEFAULT_MAX_TOKENS,
                 recheck_s: float = DEFAULT_RECHECK_S):
        if output not in ("tool", "json"):
            raise ValueError(f"output must be 'tool' or 'json', got {output!r}")
        super().__init__("bedrock-runtime", region=region, endpoint_url=endpoint_url, timeout_s=timeout_s,
                         max_attempts=max_attempts, recheck_s=recheck_s)
        self.model_id = model_id or default_model_id(region)
        self.output = output
        self.max_tokens = max_tokens
        self._system = prompt.render_instructions(output)

    @property
    def target(self) -> str:
        return f"model {self.model_id}"

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

    def _attempt(self, text: str) -> tuple[tuple[float, ...], dict[str, Any]]:
        log.debug("event=bedrock_converse_request chars=%d text=%r", len(text), text)
        response = self._client.get().converse(**self.request(text))
        request_id = response.get("ResponseMetadata", {}).get("RequestId", "")
        return self._parse(response), {"request_id": request_id}

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

# Keys `python -m gateway bedrock setup` writes besides the three the vectorizer needs; the
# vectorizer ignores them, `bedrock status` / `teardown` use them.
_FLOW_CONFIG_KEYS = {"region", "flowIdentifier", "flowAliasIdentifier", "inputNodeName", "inputNodeOutputName",
                     "flowVersion", "promptIdentifier", "promptVersion", "modelId", "flowName", "promptName",
                     "aliasName"}
_SECRET_HINTS = ("secret", "accesskey", "access_key", "sessiontoken", "session_token", "password")


@dataclass(frozen=True)
class FlowConfig:
    """The JSON config file of the bedrock-flow vectorizer (docs/bedrock.md). No credentials."""

    flow_identifier: str
    flow_alias_identifier: str
    region: str | None = None
    input_node_name: str = "FlowInputNode"
    input_node_output_name: str = "document"

    @staticmethod
    def read(path: str | Path) -> dict[str, Any]:
        """The file's JSON object, checked: no credentials, no unknown keys, the ids present."""
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
        return data

    @classmethod
    def load(cls, path: str | Path) -> FlowConfig:
        data = cls.read(path)
        return cls(
            flow_identifier=data["flowIdentifier"],
            flow_alias_identifier=data["flowAliasIdentifier"],
            region=data.get("region"),
            input_node_name=data.get("inputNodeName", "FlowInputNode"),
            input_node_output_name=data.get("inputNodeOutputName", "document"),
        )


def flow_region(config: FlowConfig, region: str | None) -> str:
    """The region a flow is called in. A flow lives in exactly one region, so the config file's
    region wins over --region / AWS_REGION (which often name the operator's usual region, not the
    flow's); a conflict is logged once at start. Without a region in the file, --region /
    AWS_REGION / the AWS profile decide."""
    if config.region:
        if region and region != config.region:
            log.warning("event=bedrock_region_conflict using=%s source=flow_config ignored=%s "
                        "hint='the flow config file names the flow's region; --region/AWS_REGION is "
                        "not used for the flow'", config.region, region)
        return config.region
    return resolve_region(region)


class BedrockFlowVectorizer(_BedrockVectorizer):
    """`bedrock-agent-runtime` InvokeFlow on a flow alias (input -> prompt -> output).

    The message goes in JSON-encoded as the input node's document; the response is an event
    stream read to its end: exactly one flowOutputEvent (the prompt's answer) and a
    flowCompletionEvent with completionReason SUCCESS."""

    name = BEDROCK_FLOW
    api = "invoke_flow"

    def __init__(self, config: FlowConfig, *, region: str | None = None, endpoint_url: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 recheck_s: float = DEFAULT_RECHECK_S):
        self.config = config
        super().__init__("bedrock-agent-runtime", region=flow_region(config, region), endpoint_url=endpoint_url,
                         timeout_s=timeout_s, max_attempts=max_attempts, recheck_s=recheck_s)

    @classmethod
    def from_config_file(cls, path: str | Path, **kwargs: Any) -> BedrockFlowVectorizer:
        return cls(FlowConfig.load(path), **kwargs)

    @property
    def target(self) -> str:
        return f"flow {self.config.flow_identifier} alias {self.config.flow_alias_identifier}"

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

    def _attempt(self, text: str) -> tuple[tuple[float, ...], dict[str, Any]]:
        log.debug("event=bedrock_flow_request chars=%d text=%r", len(text), text)
        response = self._client.get().invoke_flow(**self.request(text))
        details = {"execution_id": response.get("executionId", "")}
        document = self._read_stream(response["responseStream"])
        if isinstance(document, str):
            return parse_model_text(document), details
        return parse_vector_value(document), details  # an Object/Array output node hands over JSON

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
                        "input -> prompt -> output", "error", retryable=False)
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()
        log.debug("event=bedrock_flow_output outputs=%r completion=%s", outputs, completion)
        if completion != "SUCCESS":
            raise BedrockUnavailable(f"Bedrock flow did not complete successfully (completionReason={completion})",
                                     "error", retryable=False)
        if len(outputs) != 1:
            raise InvalidModelOutput(f"Bedrock flow must produce exactly one output, produced {len(outputs)}")
        return outputs[0]


def find_bedrock(vectorizer: Any) -> _BedrockVectorizer | None:
    """The Bedrock vectorizer inside a served chain (counting / fallback / cache wrappers), if any."""
    seen = 0
    while vectorizer is not None and seen < 10:
        if isinstance(vectorizer, _BedrockVectorizer):
            return vectorizer
        # `is None`, not `or`: a wrapper may be falsy (an empty cache has len() 0).
        inner = getattr(vectorizer, "primary", None)
        vectorizer = getattr(vectorizer, "inner", None) if inner is None else inner
        seen += 1
    return None
