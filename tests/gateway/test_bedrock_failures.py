"""Failure honesty of the Bedrock vectorizers, through the real boto3 clients against the fake
Bedrock: a permanent error (access denied, validation, not found, rejected credentials) is
not retried, is counted by its kind, logged once with its remedy and degrades the vectorizer
(health detail, gauge) until a call succeeds again; `--bedrock-check`'s canary refuses to
start on one. A throttle is retried within the caller's deadline, and a caller's deadline
shorter than the Bedrock timeout bounds the call."""

from __future__ import annotations

import logging
import time

import pytest
from prometheus_client import REGISTRY

from gateway.bedrock.smoke import start_check
from gateway.vectorizers import deadlines
from gateway.vectorizers.bedrock import (
    BedrockConverseVectorizer,
    BedrockFlowVectorizer,
    BedrockUnavailable,
    FlowConfig,
)
from gateway.vectorizers.chain import FallbackVectorizer
from tests.fakes.fake_bedrock import FakeBedrock, answer, error, isolate_aws_env, slow, throttle

ZEROS = {"age": 0, "gender": 0, "budget": 0, "interest": 0, "purpose": 0, "season": 0}

PERMANENT = {
    "access_denied": (403, "AccessDeniedException", "You don't have access to the model with the specified model ID."),
    "validation": (400, "ValidationException", "Invocation of model ID amazon.nova-pro-v1:0 with on-demand "
                                               "throughput isn't supported."),
    "not_found": (404, "ResourceNotFoundException", "Flow not found."),
    "bad_credentials": (403, "UnrecognizedClientException", "The security token included in the request is invalid."),
}
REMEDY_HINTS = {"access_denied": "every region the inference profile routes to",
                "validation": "inference profile", "not_found": "bedrock setup --region",
                "bad_credentials": "credentials"}


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    isolate_aws_env(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFAKEFAILURETEST1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-failure-0123456789")


@pytest.fixture
def fake():
    with FakeBedrock() as server:
        yield server


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def converse(fake, **kwargs) -> BedrockConverseVectorizer:
    return BedrockConverseVectorizer(region="us-east-1", endpoint_url=fake.url,
                                     **{"timeout_s": 2.0, "max_attempts": 3, **kwargs})


def flow(fake, **kwargs) -> BedrockFlowVectorizer:
    return BedrockFlowVectorizer(FlowConfig("FLOWPERM01", "ALIASPERM1", region="ap-northeast-2"),
                                 endpoint_url=fake.url, **{"timeout_s": 2.0, "max_attempts": 3, **kwargs})


@pytest.mark.parametrize("kind", sorted(PERMANENT))
@pytest.mark.parametrize("make", [converse, flow], ids=["converse", "flow"])
def test_permanent_error_is_not_retried_and_degrades_until_a_success(aws_env, fake, caplog, kind, make):
    status, code, message = PERMANENT[kind]
    fake.default = error(status, code, message)
    vectorizer = make(fake, recheck_s=60)
    api = vectorizer.api
    seen: list = []
    vectorizer.health.add_listener(seen.append)
    before = metric("gateway_bedrock_calls_total", api=api, outcome=kind)
    caplog.set_level(logging.INFO, logger="gateway.vectorizers")

    with pytest.raises(BedrockUnavailable) as caught:
        vectorizer.vectorize("hello")
    assert caught.value.permanent and caught.value.reason == kind
    assert code in str(caught.value) and message[:30] in str(caught.value)  # AWS's own words
    assert REMEDY_HINTS[kind] in caught.value.remedy
    assert len(fake.requests) == 1  # 3 attempts allowed, 1 made
    assert metric("gateway_bedrock_calls_total", api=api, outcome=kind) == before + 1

    detail = vectorizer.health.detail()
    assert detail["kind"] == kind and detail["remedy"] == caught.value.remedy
    assert seen == [detail]
    assert metric("gateway_vectorizer_degraded", vectorizer=vectorizer.name, kind=kind) == 1

    # While degraded the next call fails at once, without calling Bedrock; the fallback answers.
    local = _Fixed((1.0, 0, 0, 0, 0, 0))
    assert FallbackVectorizer(vectorizer, local).vectorize("hello").vectorizer == "fixed"
    assert len(fake.requests) == 1
    degraded_logs = [r for r in caplog.records if "event=bedrock_degraded" in r.getMessage()]
    assert len(degraded_logs) == 1 and "remedy=" in degraded_logs[0].getMessage()
    assert not [r for r in caplog.records if "event=vectorizer_fallback" in r.getMessage()
                and r.levelno >= logging.WARNING]  # logged once above, not once per customer call

    # Fixed on the AWS side: the re-check call succeeds and the vectorizer is healthy again.
    fake.default = answer(ZEROS)
    vectorizer.health.recheck_s = 0
    vectorizer.health._next_check = 0
    assert vectorizer.vectorize("hello").features == (0.0,) * 6
    assert vectorizer.health.detail() is None and seen[-1] is None
    assert metric("gateway_vectorizer_degraded", vectorizer=vectorizer.name, kind=kind) == 0


class _Fixed:
    name = "fixed"

    def __init__(self, features):
        self.features = features

    def vectorize(self, text):
        from gateway.vectorizers.base import VectorizeResult

        return VectorizeResult(self.features, self.name, "en")


@pytest.mark.parametrize("kind", sorted(PERMANENT))
def test_bedrock_check_refuses_a_permanent_error(aws_env, fake, kind):
    status, code, message = PERMANENT[kind]
    fake.script(error(status, code, message))
    with pytest.raises(ValueError, match=f"--bedrock-check: .*{code}") as refused:
        start_check(FallbackVectorizer(converse(fake), _Fixed((0,) * 6)), timeout_s=5)
    assert REMEDY_HINTS[kind] in str(refused.value)
    assert len(fake.requests) == 1


def test_bedrock_check_passes_a_transient_error_and_a_working_setup(aws_env, fake):
    fake.script(throttle(), throttle(), throttle())  # transient: logged, start goes on
    result = start_check(converse(fake), timeout_s=5)
    assert result.error is not None and result.error.reason == "throttled"
    fake.script(answer(ZEROS))
    assert start_check(converse(fake), timeout_s=5).features == (0.0,) * 6


def test_no_credentials_is_permanent(monkeypatch, tmp_path, fake):
    isolate_aws_env(monkeypatch, tmp_path)
    vectorizer = converse(fake)
    with pytest.raises(BedrockUnavailable) as caught:
        vectorizer.vectorize("hello")
    assert caught.value.permanent and caught.value.reason == "no_credentials"
    assert vectorizer.health.detail()["kind"] == "no_credentials" and fake.requests == []


@pytest.mark.parametrize("make", [converse, flow], ids=["converse", "flow"])
def test_throttle_is_retried_within_the_callers_deadline(aws_env, fake, make):
    fake.script(throttle(), error(503, "ServiceUnavailableException", "busy"), answer(ZEROS))
    started = time.monotonic()
    with deadlines.within(5.0):
        result = make(fake).vectorize("hello")
    assert result.features == (0.0,) * 6
    assert len(fake.requests) == 3
    assert time.monotonic() - started < 5.0


def test_no_retry_is_started_that_the_deadline_cannot_wait_for(aws_env, fake):
    fake.default = throttle()
    with deadlines.within(0.12), pytest.raises(BedrockUnavailable) as caught:
        converse(fake, max_attempts=10).vectorize("hello")
    assert caught.value.reason in ("throttled", "deadline")
    assert len(fake.requests) <= 2  # 10 allowed; the deadline leaves room for one, maybe two


@pytest.mark.parametrize("make", [converse, flow], ids=["converse", "flow"])
def test_callers_deadline_shorter_than_the_bedrock_timeout_bounds_the_call(aws_env, fake, make):
    fake.default = slow(20, answer(ZEROS))
    vectorizer = make(fake, timeout_s=10.0)
    started = time.monotonic()
    with deadlines.within(0.8), pytest.raises(BedrockUnavailable) as caught:
        vectorizer.vectorize("hello")
    elapsed = time.monotonic() - started
    assert caught.value.reason in ("timeout", "deadline")
    assert elapsed < 2.5, elapsed  # the caller's 0.8 s, not Bedrock's 10 s (margin for a loaded machine)
    assert len(fake.requests) == 1  # no time left for a retry
    assert vectorizer.health.detail() is None  # a timeout is transient: not degraded


def test_a_deadline_already_past_makes_no_call(aws_env, fake):
    with deadlines.within(0.0), pytest.raises(BedrockUnavailable) as caught:
        converse(fake).vectorize("hello")
    assert caught.value.reason == "deadline" and fake.requests == []


def test_the_flow_files_region_wins_over_aws_region(aws_env, fake, monkeypatch, caplog):
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    fake.default = answer(ZEROS)
    caplog.set_level(logging.WARNING, logger="gateway.vectorizers.bedrock")
    vectorizer = BedrockFlowVectorizer(FlowConfig("F1", "A1", region="ap-northeast-2"), region="us-east-1",
                                       endpoint_url=fake.url, max_attempts=1)
    vectorizer.vectorize("hello")
    assert vectorizer.region == "ap-northeast-2"
    assert [r.region for r in fake.requests] == ["ap-northeast-2"]  # signed for the flow's region
    [warning] = [r.getMessage() for r in caplog.records if "bedrock_region_conflict" in r.getMessage()]
    assert "using=ap-northeast-2" in warning and "ignored=us-east-1" in warning
    # Without a region in the file, the flag / environment decides.
    assert BedrockFlowVectorizer(FlowConfig("F1", "A1"), region="eu-west-1").region == "eu-west-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")  # the AWS chain's own default
    assert BedrockFlowVectorizer(FlowConfig("F1", "A1")).region == "us-west-2"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(ValueError, match=r"pass --region, set \"region\" in the flow config file"):
        BedrockFlowVectorizer(FlowConfig("F1", "A1"))
