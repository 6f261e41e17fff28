"""The vectorizer chain: LRU cache, fallback, and the factory the gateway server calls.

Bedrock is the fake Bedrock on 127.0.0.1 (tests/fakes/fake_bedrock.py) reached through the real
boto3 client; `Scripted` below is a stand-in for *another* vectorizer (a collaborator of the
class under test), used where the behaviour under test does not depend on which one it is."""

from __future__ import annotations

import importlib.util
import json
import threading

import pytest
from prometheus_client import REGISTRY

from gateway.vectorizers.base import (
    BEDROCK_CONVERSE,
    BEDROCK_FLOW,
    CACHE,
    LOCAL,
    InvalidModelOutput,
    VectorizeResult,
    VectorizerUnavailable,
)
from gateway.vectorizers.bedrock import BedrockConverseVectorizer, BedrockFlowVectorizer
from gateway.vectorizers.chain import (
    CachingVectorizer,
    FallbackVectorizer,
    build_vectorizer,
    normalize_key,
)
from tests.fakes.fake_bedrock import FakeBedrock, answer, isolate_aws_env, text, throttle
from tests.gateway.test_bedrock import GIFT_FOR_MOM, GIFT_VECTOR, MESSAGE

HAVE_LOCAL = importlib.util.find_spec("gateway.vectorizers.local") is not None
needs_local = pytest.mark.skipif(not HAVE_LOCAL, reason="gateway.vectorizers.local not written yet")


class Scripted:
    """A vectorizer that answers a fixed vector (or raises) and counts its calls."""

    def __init__(self, name: str, features=(0.0,) * 6, error: Exception | None = None):
        self.name = name
        self.features = tuple(features)
        self.error = error
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def vectorize(self, text: str) -> VectorizeResult:
        with self._lock:
            self.calls.append(text)
        if self.error is not None:
            raise self.error
        return VectorizeResult(self.features, self.name, "en")


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    isolate_aws_env(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFAKECHAINTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-chain")


@pytest.fixture
def fake():
    with FakeBedrock() as server:
        yield server


def converse(fake, **kwargs) -> BedrockConverseVectorizer:
    return BedrockConverseVectorizer(region="us-east-1", endpoint_url=fake.url, timeout_s=2.0,
                                     max_attempts=1, **kwargs)


# --------------------------------------------------------------------------- cache


def test_cache_hit_makes_no_bedrock_request(aws_env, fake):
    fake.script(answer(GIFT_FOR_MOM))
    cached = CachingVectorizer(converse(fake), size=16)
    hits = metric("gateway_vectorizer_cache_lookups_total", result="hit")
    misses = metric("gateway_vectorizer_cache_lookups_total", result="miss")

    first = cached.vectorize(MESSAGE)
    second = cached.vectorize("  " + MESSAGE.replace(" ", "   ") + "\n")  # same text, other spacing

    assert first.vectorizer == BEDROCK_CONVERSE
    assert second.vectorizer == CACHE
    assert second.features == first.features == GIFT_VECTOR
    assert second.language == first.language
    assert len(fake.requests) == 1  # the second call never reached Bedrock
    assert metric("gateway_vectorizer_cache_lookups_total", result="hit") == hits + 1
    assert metric("gateway_vectorizer_cache_lookups_total", result="miss") == misses + 1


def test_cache_key_normalization():
    assert normalize_key("Gift for MOM ") == normalize_key("gift  for mom")
    assert normalize_key("ＧＩＦＴ") == normalize_key("gift")  # full-width forms (NFKC)
    assert normalize_key("엄마 선물") != normalize_key("아빠 선물")


def test_cache_evicts_the_least_recently_used():
    inner = Scripted(BEDROCK_FLOW)
    cached = CachingVectorizer(inner, size=2)
    cached.vectorize("a")
    cached.vectorize("b")
    cached.vectorize("a")  # a is now the most recent
    cached.vectorize("c")  # evicts b
    assert len(cached) == 2
    assert cached.vectorize("a").vectorizer == CACHE
    assert cached.vectorize("b").vectorizer == BEDROCK_FLOW
    assert inner.calls == ["a", "b", "c", "b"]


def test_cache_does_not_keep_failures(aws_env, fake):
    fake.script(throttle(), answer(GIFT_FOR_MOM))
    cached = CachingVectorizer(converse(fake), size=4)
    with pytest.raises(VectorizerUnavailable):
        cached.vectorize(MESSAGE)
    assert cached.vectorize(MESSAGE).vectorizer == BEDROCK_CONVERSE
    assert len(fake.requests) == 2


def test_cache_is_thread_safe():
    inner = Scripted(BEDROCK_FLOW, features=GIFT_VECTOR)
    cached = CachingVectorizer(inner, size=8)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(300):
                result = cached.vectorize(f"text {(worker * 7 + i) % 20}")
                assert result.features == GIFT_VECTOR
        except BaseException as exc:  # noqa: BLE001 (reported to the main thread)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(cached) == 8


def test_cache_size_must_be_positive():
    with pytest.raises(ValueError):
        CachingVectorizer(Scripted(BEDROCK_FLOW), size=0)


# --------------------------------------------------------------------------- fallback


@pytest.mark.parametrize("reply, reason", [
    (throttle(), "throttled"),
    (text("Sorry, I cannot do that."), "bad_output"),
])
def test_fallback_answers_when_bedrock_fails(aws_env, fake, reply, reason):
    fake.script(reply)
    backup = Scripted(LOCAL, features=(30, 1, 0, 0, 1, 0))
    chain = FallbackVectorizer(converse(fake, output="json"), backup)
    before = metric("gateway_vectorizer_fallbacks_total", reason=reason)

    result = chain.vectorize(MESSAGE)

    assert result.vectorizer == LOCAL  # the response says who really answered
    assert result.features == (30, 1, 0, 0, 1, 0)
    assert backup.calls == [MESSAGE]
    assert metric("gateway_vectorizer_fallbacks_total", reason=reason) == before + 1


def test_without_fallback_the_failure_propagates(aws_env, fake):
    fake.script(text("not a vector"))
    chain = FallbackVectorizer(converse(fake, output="json"), None)
    with pytest.raises(InvalidModelOutput):
        chain.vectorize(MESSAGE)


def test_fallback_is_not_used_when_bedrock_answers(aws_env, fake):
    fake.script(answer(GIFT_FOR_MOM))
    backup = Scripted(LOCAL)
    result = FallbackVectorizer(converse(fake), backup).vectorize(MESSAGE)
    assert result.vectorizer == BEDROCK_CONVERSE
    assert backup.calls == []


def test_fallback_answers_are_not_cached(aws_env, fake):
    # Outage: the fallback answers. Recovery: the next identical text goes to Bedrock again.
    fake.script(throttle(), answer(GIFT_FOR_MOM))
    chain = FallbackVectorizer(CachingVectorizer(converse(fake), 8), Scripted(LOCAL))
    assert chain.vectorize(MESSAGE).vectorizer == LOCAL
    assert chain.vectorize(MESSAGE).vectorizer == BEDROCK_CONVERSE
    assert chain.vectorize(MESSAGE).vectorizer == CACHE
    assert len(fake.requests) == 2


def test_no_credentials_falls_back_quickly(monkeypatch, tmp_path, fake):
    isolate_aws_env(monkeypatch, tmp_path)  # no keys anywhere, no instance metadata
    backup = Scripted(LOCAL)
    chain = FallbackVectorizer(converse(fake), backup)
    before = metric("gateway_vectorizer_fallbacks_total", reason="no_credentials")
    assert chain.vectorize(MESSAGE).vectorizer == LOCAL
    assert fake.requests == []
    assert metric("gateway_vectorizer_fallbacks_total", reason="no_credentials") == before + 1


# --------------------------------------------------------------------------- factory


def flow_config(tmp_path, **extra) -> str:
    path = tmp_path / "flow.json"
    path.write_text(json.dumps({"region": "us-west-2", "flowIdentifier": "FLOW1",
                                "flowAliasIdentifier": "ALIAS1", **extra}))
    return str(path)


def test_factory_builds_the_converse_chain(aws_env, fake):
    fake.script(answer(GIFT_FOR_MOM))
    chain = build_vectorizer(BEDROCK_CONVERSE, fallback=None, cache_size=32, bedrock_config_path=None,
                             model_id="amazon.nova-lite-v1:0", timeout_s=1.0, region="us-east-1",
                             endpoint_url=fake.url)
    assert chain.name == BEDROCK_CONVERSE
    assert chain.vectorize(MESSAGE).vectorizer == BEDROCK_CONVERSE
    assert chain.vectorize(MESSAGE).vectorizer == CACHE
    [request] = fake.requests
    assert request.path == "/model/amazon.nova-lite-v1:0/converse"


def test_factory_builds_the_flow_chain_from_its_config_file(aws_env, fake, tmp_path):
    fake.script(answer(GIFT_FOR_MOM))
    chain = build_vectorizer(BEDROCK_FLOW, fallback="none", cache_size=0,
                             bedrock_config_path=flow_config(tmp_path), model_id=None, timeout_s=1.0,
                             region=None, endpoint_url=fake.url)
    assert isinstance(chain.primary, BedrockFlowVectorizer)  # cache_size=0: no cache
    assert chain.vectorize(MESSAGE).features == GIFT_VECTOR
    assert fake.requests[0].path == "/flows/FLOW1/aliases/ALIAS1"
    # The region of the config file signs the request.
    assert "/us-west-2/bedrock/aws4_request" in fake.requests[0].headers["authorization"]


def test_factory_without_fallback_raises_unavailable(aws_env, fake):
    fake.default = throttle()
    chain = build_vectorizer(BEDROCK_CONVERSE, fallback=None, cache_size=8, timeout_s=1.0,
                             region="us-east-1", endpoint_url=fake.url, max_attempts=1)
    with pytest.raises(VectorizerUnavailable):
        chain.vectorize(MESSAGE)


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "openai"}, "unknown vectorizer"),
    ({"name": BEDROCK_FLOW}, "needs --bedrock-config"),
    ({"name": BEDROCK_CONVERSE, "fallback": "bedrock-flow"}, "unknown fallback"),
    ({"name": BEDROCK_CONVERSE, "cache_size": -1}, "cache size"),
])
def test_factory_rejects_bad_configuration(kwargs, message):
    kwargs = {"region": "us-east-1", **kwargs}
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=message):
        build_vectorizer(name, **kwargs)


def test_factory_rejects_credentials_in_the_flow_config(tmp_path):
    path = flow_config(tmp_path, awsSecretAccessKey="x")
    with pytest.raises(ValueError, match="must not contain credentials"):
        build_vectorizer(BEDROCK_FLOW, bedrock_config_path=path)


def test_factory_needs_a_region(monkeypatch, tmp_path):
    isolate_aws_env(monkeypatch, tmp_path)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(ValueError, match="no AWS region"):
        build_vectorizer(BEDROCK_CONVERSE)


@needs_local
def test_factory_local_is_the_local_vectorizer():
    vectorizer = build_vectorizer(LOCAL, fallback=LOCAL, cache_size=16)
    result = vectorizer.vectorize("엄마 선물")
    assert result.vectorizer == LOCAL


@needs_local
def test_factory_falls_back_to_the_real_local_vectorizer(monkeypatch, tmp_path, fake):
    isolate_aws_env(monkeypatch, tmp_path)  # no credentials: Bedrock cannot be called
    chain = build_vectorizer(BEDROCK_CONVERSE, fallback=LOCAL, cache_size=16, timeout_s=1.0,
                             region="us-east-1", endpoint_url=fake.url)
    result = chain.vectorize("gift for my mom")
    assert result.vectorizer == LOCAL
    assert len(result.features) == 6
    assert fake.requests == []
