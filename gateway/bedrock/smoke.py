"""One real call through a Bedrock vectorizer: `python -m gateway bedrock smoke "text"` (vector,
latency, the flow's execution id) and the start-up canary of `serve --bedrock-check`."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from gateway.vectorizers import deadlines
from gateway.vectorizers.base import InvalidModelOutput, Vectorizer, VectorizerUnavailable
from gateway.vectorizers.bedrock import BedrockUnavailable, find_bedrock

log = logging.getLogger(__name__)

CANARY_TEXT = "hello"  # states nothing: a working setup answers six zeros
VECTORIZER_HEALTH_SERVICE = "vectorizer"  # gRPC health service name: NOT_SERVING while degraded


@dataclass
class SmokeResult:
    features: tuple[float, ...] | None
    latency_ms: float
    details: dict[str, Any]
    error: VectorizerUnavailable | None = None

    def lines(self, name: str) -> list[str]:
        if self.error is None:
            out = [f"vectorizer   {name}",
                   f"vector       {[f'{v:g}' for v in self.features or ()]}",
                   f"latency_ms   {self.latency_ms:.0f}",
                   f"attempts     {self.details.get('attempts', 1)}"]
            if self.details.get("execution_id"):
                out.append(f"execution_id {self.details['execution_id']}")
            if self.details.get("request_id"):
                out.append(f"request_id   {self.details['request_id']}")
            return out
        out = [f"vectorizer   {name}", f"FAILED       {self.error}", f"latency_ms   {self.latency_ms:.0f}"]
        reason = getattr(self.error, "reason", "bad_output" if isinstance(self.error, InvalidModelOutput) else "")
        out.append(f"kind         {reason}{' (permanent)' if getattr(self.error, 'permanent', False) else ''}")
        if getattr(self.error, "remedy", ""):
            out.append(f"remedy       {self.error.remedy}")
        return out


def smoke(vectorizer: Vectorizer, text: str, timeout_s: float | None = None) -> SmokeResult:
    bedrock = find_bedrock(vectorizer)
    if bedrock is None:
        raise ValueError("smoke needs a Bedrock vectorizer (bedrock-flow or bedrock-converse)")
    started = time.perf_counter()
    try:
        with deadlines.within(timeout_s):
            features, details = bedrock.call(text)
    except VectorizerUnavailable as exc:
        return SmokeResult(None, (time.perf_counter() - started) * 1000, {}, exc)
    return SmokeResult(features, (time.perf_counter() - started) * 1000, details)


def start_check(vectorizer: Vectorizer, timeout_s: float) -> SmokeResult | None:
    """The canary of --bedrock-check: one call; ValueError (refuse to start) on a permanent
    error, a warning on a transient one or a bad answer. None when the vectorizer is local."""
    if find_bedrock(vectorizer) is None:
        return None
    result = smoke(vectorizer, CANARY_TEXT, timeout_s)
    error = result.error
    if error is None:
        log.info("event=bedrock_check outcome=ok latency_ms=%.0f", result.latency_ms)
    elif isinstance(error, BedrockUnavailable) and error.permanent:
        raise ValueError(f"--bedrock-check: {error}; {error.remedy}")
    else:
        log.warning("event=bedrock_check outcome=%s error=%r hint='starting anyway: transient, or the "
                    "flow answered but not with a vector (python -m gateway bedrock status)'",
                    getattr(error, "reason", "bad_output"), str(error))
    return result


async def publish_health(vectorizer: Vectorizer, health_servicer: Any) -> None:
    """Mirror the Bedrock vectorizer's degraded state into the gRPC health service
    VECTORIZER_HEALTH_SERVICE (SERVING / NOT_SERVING); the overall "" status stays the
    inference backend's, since the fallback keeps answering."""
    from grpc_health.v1 import health_pb2

    loop = asyncio.get_running_loop()
    bedrock = find_bedrock(vectorizer)

    async def set_status(detail: dict | None) -> None:
        status = (health_pb2.HealthCheckResponse.SERVING if detail is None
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        await health_servicer.set(VECTORIZER_HEALTH_SERVICE, status)

    await set_status(bedrock.health.detail() if bedrock else None)
    if bedrock is not None:
        bedrock.health.add_listener(lambda detail: asyncio.run_coroutine_threadsafe(set_status(detail), loop))
