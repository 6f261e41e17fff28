"""Security shared by gateway and inference (recommender/security.py) and the dev secrets
(edge/certs.py): tokens file parsing and reload, the constant-time lookup, the interceptor's
behaviour on fake calls, TLS settings, certificate generation, and TLS/mTLS on a real
grpc.aio server in this process."""

from __future__ import annotations

import asyncio
import hmac
import os
import stat
import subprocess
import time
import urllib.request

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from edge import certs
from recommender import request_ids, security
from recommender.security import (
    MISSING_TOKEN,
    UNKNOWN_TOKEN,
    CallInterceptor,
    ChannelTls,
    SecurityConfigError,
    ServerTls,
    TokenStore,
    hash_token,
    parse_tokens,
    token_line,
)
from recommender.settings import GatewaySettings, InferenceSettings
from recommender.v1 import chat_pb2, chat_pb2_grpc, recommend_pb2, recommend_pb2_grpc
from tests.support import PYTHON, ROOT, ServerProcess, free_port, free_port_block

# ------------------------------------------------------------------------------- tokens file


def test_tokens_file_lines_comments_and_rotation():
    text = "\n".join([
        "# callers",
        "",
        token_line("dev", "t-dev"),
        f"  batch-job :{hash_token('t-batch').upper()}  ",
        token_line("dev", "t-dev-next"),  # rotation: two tokens for one caller
    ])
    assert parse_tokens(text) == [("dev", hash_token("t-dev")), ("batch-job", hash_token("t-batch")),
                                  ("dev", hash_token("t-dev-next"))]


def test_a_bad_line_is_named_and_a_pasted_token_not_echoed():
    with pytest.raises(SecurityConfigError) as info:
        parse_tokens(f"{token_line('dev', 'a')}\ndev: s3cret-raw-token\n", "tokens.txt")
    message = str(info.value)
    assert "tokens.txt line 2" in message and "sha256" in message
    assert "s3cret-raw-token" not in message
    with pytest.raises(SecurityConfigError, match="line 1"):
        parse_tokens("bad name: " + hash_token("x"))
    with pytest.raises(SecurityConfigError, match="listed for 'a' and 'b'"):
        parse_tokens(f"a: {hash_token('same')}\nb: {hash_token('same')}")


def test_bearer_token_parsing():
    assert security.bearer_token("Bearer abc") == "abc"
    assert security.bearer_token("bearer   abc  ") == "abc"
    for bad in (None, "", "Bearer", "Bearer ", "Basic abc", "abc"):
        assert security.bearer_token(bad) is None


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _write_tokens(path, **tokens):
    path.write_text("".join(token_line(caller, token) + "\n" for caller, token in tokens.items()))


def test_token_store_finds_callers_and_rereads_the_file_when_it_changes(tmp_path):
    path = tmp_path / "tokens.txt"
    _write_tokens(path, dev="tok-dev", gateway="tok-gw")
    clock = FakeClock()
    store = TokenStore(path, check_interval_s=1.0, clock=clock)
    assert store.caller_for("tok-dev") == "dev"
    assert store.caller_for("tok-gw") == "gateway"
    assert store.caller_for("tok-other") is None
    assert store.callers() == ["dev", "gateway"]

    _write_tokens(path, dev="tok-dev-2")  # rotated: the old token stops working
    assert store.caller_for("tok-dev") == "dev"  # not stat'ed again within the interval
    clock.now += 1.5
    assert store.caller_for("tok-dev") is None
    assert store.caller_for("tok-dev-2") == "dev"

    path.write_text("garbage line\n")  # a bad edit keeps the previous tokens
    clock.now += 1.5
    assert store.caller_for("tok-dev-2") == "dev"
    path.unlink()  # so does a deleted file
    clock.now += 1.5
    assert store.caller_for("tok-dev-2") == "dev"


def test_token_lookup_compares_with_every_entry(tmp_path, monkeypatch):
    """No early exit: the number of constant-time compares is the same whether the token
    matches the first line, the last one or none."""
    path = tmp_path / "tokens.txt"
    _write_tokens(path, **{f"caller{i}": f"token-{i}" for i in range(8)})
    store = TokenStore(path)
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(security.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    for token, caller in (("token-0", "caller0"), ("token-7", "caller7"), ("nope", None)):
        calls.clear()
        assert store.caller_for(token) == caller
        assert len(calls) == 8


def test_a_missing_tokens_file_is_a_clear_start_error(tmp_path):
    with pytest.raises(SecurityConfigError, match=r"--tokens-file .*missing.txt: No such file"):
        TokenStore(tmp_path / "missing.txt")


def test_secret_file_holds_one_token_and_follows_rotation(tmp_path):
    path = tmp_path / "gateway.token"
    path.write_text("first\n")
    clock = FakeClock()
    secret = security.SecretFile(path, clock=clock)
    assert secret.value() == "first"
    path.write_text("second-longer\n")
    clock.now += 2
    assert secret.value() == "second-longer"
    path.write_text("two words\n")
    clock.now += 2
    assert secret.value() == "second-longer"  # a bad edit keeps the last good token
    path.write_text("")
    with pytest.raises(SecurityConfigError, match="must hold one token"):
        security.SecretFile(path)


# ------------------------------------------------------------------------------- TLS settings


def test_tls_flags_must_come_in_pairs():
    assert ServerTls.from_flags(None, None, None) is None
    assert ServerTls.from_flags("c.pem", "k.pem", None) == ServerTls("c.pem", "k.pem", None)
    with pytest.raises(SecurityConfigError, match="--tls-key is missing"):
        ServerTls.from_flags("c.pem", None, None)
    with pytest.raises(SecurityConfigError, match="--tls-client-ca needs --tls-cert"):
        ServerTls.from_flags(None, None, "ca.pem")
    assert ChannelTls.from_flags(None, None, None) is None
    with pytest.raises(SecurityConfigError, match="--inference-key is missing"):
        ChannelTls.from_flags("ca.pem", "c.pem", None)


def test_unreadable_or_non_pem_files_name_the_flag(tmp_path):
    (tmp_path / "not.pem").write_text("hello")
    with pytest.raises(SecurityConfigError, match="--tls-cert .*No such file"):
        ServerTls(str(tmp_path / "none.pem"), str(tmp_path / "not.pem")).credentials()
    with pytest.raises(SecurityConfigError, match="--inference-ca .*not a PEM"):
        ChannelTls(ca=str(tmp_path / "not.pem")).credentials()


def test_plaintext_is_refused_on_addresses_other_machines_reach():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        security.check_listen_address(host, tls=False, insecure=False)
    for host in ("0.0.0.0", "::", "10.1.2.3", "gateway.internal"):
        with pytest.raises(SecurityConfigError, match=f"refusing to listen on {host} without TLS.*--insecure"):
            security.check_listen_address(host, tls=False, insecure=False, program="gateway")
        security.check_listen_address(host, tls=True, insecure=False)
        security.check_listen_address(host, tls=False, insecure=True)


# ------------------------------------------------------------------------------- dev secrets


def test_dev_secrets_are_created_once_private_and_verifiable(tmp_path):
    made = certs.ensure_dev_secrets(tmp_path / ".secrets")
    assert set(made.created) == {"ca.pem", "ca.key", "server.pem", "server.key", "client.pem",
                                 "client.key", "dev.token", "gateway.token", "tokens.txt"}
    assert made.ca_cert == tmp_path / ".secrets" / "ca.pem"
    assert made.dev_token == tmp_path / ".secrets" / "dev.token"
    assert stat.S_IMODE(os.stat(made.dir).st_mode) == 0o700
    for secret in (made.ca_key, made.server_key, made.client_key, made.dev_token, made.gateway_token,
                   made.tokens_file):
        assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600, secret
    ca = x509.load_pem_x509_certificate(made.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(made.server_cert.read_bytes())
    client = x509.load_pem_x509_certificate(made.client_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    client.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    store = TokenStore(made.tokens_file)
    assert store.caller_for(made.dev_token.read_text().strip()) == "dev"
    assert store.caller_for(made.gateway_token.read_text().strip()) == "gateway"

    before = {p.name: p.read_bytes() for p in made.dir.iterdir()}
    again = certs.ensure_dev_secrets(made.dir)
    assert again.created == ()
    assert {p.name: p.read_bytes() for p in made.dir.iterdir()} == before

    made.client_cert.unlink()  # only what is missing is made again
    made.dev_token.unlink()
    third = certs.ensure_dev_secrets(made.dir)
    assert set(third.created) == {"client.pem", "client.key", "dev.token", "tokens.txt"}
    assert made.ca_cert.read_bytes() == before["ca.pem"]
    assert made.server_cert.read_bytes() == before["server.pem"]
    assert TokenStore(made.tokens_file).caller_for(made.dev_token.read_text().strip()) == "dev"


def test_extra_hosts_reissue_the_server_certificate_and_a_lost_ca_key_stops(tmp_path):
    made = certs.ensure_dev_secrets(tmp_path / "s")
    more = certs.ensure_dev_secrets(tmp_path / "s", hosts=["gw.internal", "10.0.0.5"])
    assert set(more.created) == {"server.pem", "server.key"}
    san = x509.load_pem_x509_certificate(made.server_cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert "gw.internal" in san.get_values_for_type(x509.DNSName)
    made.ca_key.unlink()
    with pytest.raises(RuntimeError, match="ca.key is missing"):
        certs.ensure_dev_secrets(made.dir)


def test_certs_cli(tmp_path, capsys):
    assert certs.main(["--dir", str(tmp_path / "cli")]) == 0
    out = capsys.readouterr().out
    assert "created ca.pem" in out and "RECOMMENDER_CA=" in out
    token = (tmp_path / "cli" / "dev.token").read_text().strip()
    assert token not in out  # the CLI never prints a token


# ------------------------------------------------------------------------------- interceptor
# The interceptor on fake calls: what a handler sees, what the caller gets back.


class FakeDetails:
    def __init__(self, method: str):
        self.method = method
        self.invocation_metadata = ()


class FakeContext:
    def __init__(self, metadata=()):
        self.metadata = tuple(metadata)
        self.trailing = ()
        self._code = None
        self.details = None

    def invocation_metadata(self):
        return self.metadata

    def set_trailing_metadata(self, metadata):
        self.trailing = tuple(metadata)

    async def abort(self, code, details=""):
        self._code, self.details = code, details
        raise grpc.aio.AbortError("aborted")

    def code(self):
        return self._code

    def peer(self):
        return "ipv4:127.0.0.1:5555"


def _handler():
    seen = []

    async def behavior(request, context):
        seen.append((request_ids.current(), request_ids.CALLER.get()))
        return f"answer to {request}"

    return grpc.unary_unary_rpc_method_handler(behavior), seen


def _call(interceptor, method, metadata=(), handler=None):
    handler = handler or _handler()[0]

    async def go():
        async def continuation(details):
            return handler
        wrapped = await interceptor.intercept_service(continuation, FakeDetails(method))
        context = FakeContext(metadata)
        try:
            result = await wrapped.unary_unary("req", context)
        except grpc.aio.AbortError:
            result = None
        return result, context
    return asyncio.run(go())


RECOMMEND = "/recommender.v1.RecommendService/Recommend"


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "tokens.txt"
    _write_tokens(path, dev="tok-dev")
    return TokenStore(path)


def test_missing_and_unknown_tokens_are_unauthenticated(store):
    interceptor = CallInterceptor(store)
    handler, seen = _handler()
    for metadata, message in (((), MISSING_TOKEN), ((("authorization", "Basic x"),), MISSING_TOKEN),
                              ((("authorization", "Bearer wrong"),), UNKNOWN_TOKEN)):
        result, context = _call(interceptor, RECOMMEND, metadata, handler)
        assert result is None
        assert context.code() == grpc.StatusCode.UNAUTHENTICATED
        assert context.details == message
        assert dict(context.trailing)["x-request-id"]  # even a refused call can be traced
    assert seen == []  # the handler never ran
    assert MISSING_TOKEN == "missing bearer token: send 'authorization: Bearer <token>'"


def test_a_good_token_names_the_caller_for_the_handler_and_the_response(store):
    handler, seen = _handler()
    result, context = _call(CallInterceptor(store), RECOMMEND,
                            (("authorization", "Bearer tok-dev"), ("x-request-id", "rid-7")), handler)
    assert result == "answer to req"
    assert seen == [("rid-7", "dev")]
    assert context.trailing == (("x-request-id", "rid-7"), ("x-caller", "dev"))


def test_a_call_without_an_id_gets_a_new_one(store):
    handler, seen = _handler()
    _, context = _call(CallInterceptor(store), RECOMMEND, (("authorization", "Bearer tok-dev"),), handler)
    rid = dict(context.trailing)["x-request-id"]
    assert len(rid) == 32 and seen == [(rid, "dev")]


def test_health_needs_no_token_and_is_passed_through_untouched(store):
    interceptor = CallInterceptor(store)
    handler, _ = _handler()

    async def go():
        async def continuation(details):
            return handler
        return await interceptor.intercept_service(continuation, FakeDetails("/grpc.health.v1.Health/Check"))
    assert asyncio.run(go()) is handler


def test_reflection_needs_a_token_unless_public(store):
    method = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    _, context = _call(CallInterceptor(store), method)
    assert context.code() == grpc.StatusCode.UNAUTHENTICATED
    result, context = _call(CallInterceptor(store, public_reflection=True), method)
    assert result == "answer to req" and dict(context.trailing)["x-caller"] == "anonymous"
    # --public-reflection opens reflection only
    _, context = _call(CallInterceptor(store, public_reflection=True), RECOMMEND)
    assert context.code() == grpc.StatusCode.UNAUTHENTICATED


def test_without_a_tokens_file_auth_is_off():
    handler, seen = _handler()
    result, context = _call(CallInterceptor(None), RECOMMEND, (("authorization", "Bearer anything"),), handler)
    assert result == "answer to req"
    assert seen[0][1] == "anonymous"


def test_wrapped_handlers_are_built_once_per_method(store):
    interceptor = CallInterceptor(store)
    handler, _ = _handler()

    async def go():
        async def continuation(details):
            return handler
        first = await interceptor.intercept_service(continuation, FakeDetails(RECOMMEND))
        second = await interceptor.intercept_service(continuation, FakeDetails(RECOMMEND))
        return first, second
    first, second = asyncio.run(go())
    assert first is second and first is not handler


def test_access_log_and_caller_metrics(store, caplog):
    from prometheus_client import REGISTRY

    interceptor = CallInterceptor(store, metrics_prefix="unittest_security")
    caplog.set_level("INFO", logger="recommender.access")
    caplog.handler.addFilter(request_ids.CallContextFilter())
    _call(interceptor, RECOMMEND, (("authorization", "Bearer tok-dev"), ("x-request-id", "rid-9")))
    _call(interceptor, RECOMMEND, (("authorization", "Bearer bad"),))
    line = [r for r in caplog.records if r.name == "recommender.access"][0]
    assert line.getMessage().startswith("event=rpc method=RecommendService/Recommend code=OK ms=")
    assert line.call_context == " caller=dev request_id=rid-9"
    sample = REGISTRY.get_sample_value
    assert sample("unittest_security_rpcs_by_caller_total",
                  {"caller": "dev", "method": "RecommendService/Recommend", "code": "OK"}) == 1
    assert sample("unittest_security_rpcs_by_caller_total",
                  {"caller": "unauthenticated", "method": "RecommendService/Recommend",
                   "code": "UNAUTHENTICATED"}) == 1


def test_a_handler_error_is_recorded_with_its_code(store, caplog):
    async def failing(request, context):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad")

    caplog.set_level("INFO", logger="recommender.access")
    _, context = _call(CallInterceptor(store), RECOMMEND, (("authorization", "Bearer tok-dev"),),
                       grpc.unary_unary_rpc_method_handler(failing))
    assert context.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "code=INVALID_ARGUMENT" in caplog.records[-1].getMessage()


# ------------------------------------------------------------------------------- TLS on a real server


@pytest.fixture(scope="module")
def dev_secrets(tmp_path_factory):
    return certs.ensure_dev_secrets(tmp_path_factory.mktemp("secrets") / ".secrets")


async def _serve_health(tls: ServerTls) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = security.add_port(server, "127.0.0.1:0", tls)
    await server.start()
    return server, port


async def _check(target: str, credentials: grpc.ChannelCredentials | None) -> str:
    channel = (grpc.aio.secure_channel(target, credentials) if credentials is not None
               else grpc.aio.insecure_channel(target))
    async with channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def test_tls_with_the_dev_ca_works_and_plaintext_fails(dev_secrets):
    async def go():
        server, port = await _serve_health(ServerTls(str(dev_secrets.server_cert), str(dev_secrets.server_key)))
        try:
            target = f"127.0.0.1:{port}"
            tls = await _check(target, ChannelTls(ca=str(dev_secrets.ca_cert)).credentials())
            localhost = await _check(f"localhost:{port}", ChannelTls(ca=str(dev_secrets.ca_cert)).credentials())
            plain = await _check(target, None)
            system_roots = await _check(target, grpc.ssl_channel_credentials())  # does not trust the dev CA
            return tls, localhost, plain, system_roots
        finally:
            await server.stop(None)
    tls, localhost, plain, system_roots = asyncio.run(go())
    assert tls == "SERVING" and localhost == "SERVING"
    assert plain == "UNAVAILABLE"
    assert system_roots == "UNAVAILABLE"


def test_mtls_requires_a_client_certificate_from_the_ca(dev_secrets):
    async def go():
        server, port = await _serve_health(ServerTls(
            str(dev_secrets.server_cert), str(dev_secrets.server_key), str(dev_secrets.ca_cert)))
        try:
            target = f"127.0.0.1:{port}"
            with_cert = await _check(target, ChannelTls(
                str(dev_secrets.ca_cert), str(dev_secrets.client_cert), str(dev_secrets.client_key)).credentials())
            without = await _check(target, ChannelTls(ca=str(dev_secrets.ca_cert)).credentials())
            return with_cert, without
        finally:
            await server.stop(None)
    with_cert, without = asyncio.run(go())
    assert with_cert == "SERVING"
    assert without == "UNAVAILABLE"


# ------------------------------------------------------------------------------- real servers
# inference (1 worker: TLS, mTLS, tokens) + gateway (TLS, tokens, mTLS to inference), real
# processes on free 127.0.0.1 ports, one set for the tests below.

FEATURES = [35, 1, 300_000, 2, 1, 0]


def _tls_channel(port: int, secrets: certs.DevSecrets, client_cert: bool = False) -> grpc.Channel:
    cert = key = None
    if client_cert:
        cert, key = secrets.client_cert.read_bytes(), secrets.client_key.read_bytes()
    credentials = grpc.ssl_channel_credentials(secrets.ca_cert.read_bytes(), key, cert)
    return grpc.secure_channel(f"127.0.0.1:{port}", credentials)


def _wait_serving(channel: grpc.Channel, process: ServerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    stub = health_pb2_grpc.HealthStub(channel)
    last = "no answer"
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise RuntimeError(f"server exited {process.process.returncode}:\n{process.log()[-3000:]}")
        try:
            if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError as exc:
            last = exc.code().name
        time.sleep(0.2)
    raise TimeoutError(f"not SERVING after {timeout}s (last {last}):\n{process.log()[-3000:]}")


def _wait_for_line(process: ServerProcess, needle: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in process.log().splitlines() if needle in line]
        if lines:
            return lines[0]
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not in the log of {process.args[2]}:\n{process.log()[-2000:]}")


@pytest.fixture(scope="module")
def secure_stack(tmp_path_factory, trained_models_dir):
    tmp = tmp_path_factory.mktemp("secure_stack")
    secrets = certs.ensure_dev_secrets(tmp / ".secrets")
    tls = ["--tls-cert", str(secrets.server_cert), "--tls-key", str(secrets.server_key),
           "--tokens-file", str(secrets.tokens_file)]
    inference_port = free_port_block(2)
    inference_metrics, gateway_port, gateway_metrics = free_port(), free_port(), free_port()
    inference = ServerProcess(
        [PYTHON, "-m", "inference", "--models-dir", str(trained_models_dir), "--port", str(inference_port),
         "--workers", "1", "--metrics-port", str(inference_metrics), *tls, "--tls-client-ca", str(secrets.ca_cert),
         "--access-log"],
        tmp / "inference.log").start()
    gateway = ServerProcess(
        [PYTHON, "-m", "gateway", "serve", "--port", str(gateway_port), "--inference",
         f"127.0.0.1:{inference_port + 1}", "--metrics-port", str(gateway_metrics), *tls,
         "--inference-ca", str(secrets.ca_cert), "--inference-cert", str(secrets.client_cert),
         "--inference-key", str(secrets.client_key), "--health-interval-s", "0.3"],
        tmp / "gateway.log").start()
    channel = _tls_channel(gateway_port, secrets)
    try:
        with _tls_channel(inference_port + 1, secrets, client_cert=True) as direct:
            _wait_serving(direct, inference, 180)
        _wait_serving(channel, gateway, 60)
        yield {"secrets": secrets, "channel": channel, "gateway": gateway, "inference": inference,
               "gateway_port": gateway_port, "inference_port": inference_port + 1,
               "gateway_metrics": gateway_metrics, "inference_metrics": inference_metrics,
               "token": secrets.dev_token.read_text().strip(), "tmp": tmp}
    finally:
        channel.close()
        gateway.stop()
        inference.stop()


def _auth(token: str, request_id: str | None = None) -> tuple[tuple[str, str], ...]:
    metadata = (("authorization", f"Bearer {token}"),)
    return metadata + ((("x-request-id", request_id),) if request_id else ())


def _recommend(channel, metadata=()):
    stub = recommend_pb2_grpc.RecommendServiceStub(channel)
    return stub.Recommend.with_call(recommend_pb2.RecommendRequest(features=FEATURES), metadata=metadata,
                                    timeout=10)


@pytest.mark.slow
def test_tokens_decide_who_is_answered_and_health_needs_none(secure_stack):
    channel, token = secure_stack["channel"], secure_stack["token"]
    for metadata, message in (((), MISSING_TOKEN), (_auth("not-a-token"), UNKNOWN_TOKEN)):
        with pytest.raises(grpc.RpcError) as info:
            _recommend(channel, metadata)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert info.value.details() == message
    reply, call = _recommend(channel, _auth(token))
    assert len(reply.items) == 3
    assert dict(call.trailing_metadata())["x-caller"] == "dev"
    status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING


def _list_services(channel, metadata=()) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                        metadata=metadata, timeout=10)
    return [s.name for reply in replies for s in reply.list_services_response.service]


@pytest.mark.slow
def test_server_reflection_needs_a_token_unless_public(secure_stack):
    channel, secrets = secure_stack["channel"], secure_stack["secrets"]
    with pytest.raises(grpc.RpcError) as info:
        _list_services(channel)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "recommender.v1.RecommendService" in _list_services(channel, _auth(secure_stack["token"]))

    # A second gateway: plaintext on loopback, public reflection, and a token inference does not
    # know (a token, when sent, decides over the client certificate).
    port = free_port()
    bad_token = secure_stack["tmp"] / "stale-gateway.token"
    bad_token.write_text("a-token-inference-does-not-know\n")
    public = ServerProcess(
        [PYTHON, "-m", "gateway", "serve", "--port", str(port), "--inference", f"127.0.0.1:{secure_stack['inference_port']}",
         "--metrics-port", "0", "--tokens-file", str(secrets.tokens_file), "--public-reflection",
         "--inference-ca", str(secrets.ca_cert), "--inference-cert", str(secrets.client_cert),
         "--inference-key", str(secrets.client_key), "--inference-token-file", str(bad_token)],
        secure_stack["tmp"] / "public.log").start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as plain:  # loopback: plaintext allowed
            _wait_serving(plain, public, 60)
            assert "recommender.v1.RecommendService" in _list_services(plain)
            with pytest.raises(grpc.RpcError) as info:  # only reflection is public
                _recommend(plain)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            # the caller's token is fine, the gateway's is not: not the caller's problem
            with pytest.raises(grpc.RpcError) as info:
                _recommend(plain, _auth(secure_stack["token"]))
            assert info.value.code() == grpc.StatusCode.INTERNAL
            assert "refused the gateway's credentials" in info.value.details()
            assert "--inference-token-file" in info.value.details()
    finally:
        public.stop()


@pytest.mark.slow
def test_plaintext_against_the_tls_port_fails(secure_stack):
    with grpc.insecure_channel(f"127.0.0.1:{secure_stack['gateway_port']}") as plain:
        with pytest.raises(grpc.RpcError) as info:
            _recommend(plain, _auth(secure_stack["token"]))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.slow
def test_inference_requires_a_client_certificate_and_knows_its_holder(secure_stack):
    secrets, port = secure_stack["secrets"], secure_stack["inference_port"]
    with _tls_channel(port, secrets) as no_certificate:
        with pytest.raises(grpc.RpcError) as info:
            _recommend(no_certificate, _auth(secure_stack["token"]))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # the handshake fails
    with _tls_channel(port, secrets, client_cert=True) as with_certificate:
        _, call = _recommend(with_certificate)  # no token: the certificate names the caller
        assert dict(call.trailing_metadata())["x-caller"] == "gateway"
        _, call = _recommend(with_certificate, _auth(secure_stack["token"]))  # a token decides
        assert dict(call.trailing_metadata())["x-caller"] == "dev"


@pytest.mark.slow
def test_a_new_token_works_without_a_restart(secure_stack):
    secrets, channel = secure_stack["secrets"], secure_stack["channel"]
    original = secrets.tokens_file.read_text()
    try:
        with secrets.tokens_file.open("a") as f:
            f.write(token_line("batch-job", "fresh-token-for-the-batch-job") + "\n")
        deadline = time.monotonic() + 10
        while True:
            try:
                _, call = _recommend(channel, _auth("fresh-token-for-the-batch-job"))
                break
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
                assert time.monotonic() < deadline, "the new token was not picked up within 10 s"
                time.sleep(0.3)
        assert dict(call.trailing_metadata())["x-caller"] == "batch-job"
    finally:
        secrets.tokens_file.write_text(original)


@pytest.mark.slow
def test_request_ids_come_back_and_reach_both_logs(secure_stack):
    channel, token = secure_stack["channel"], secure_stack["token"]
    recommend = recommend_pb2_grpc.RecommendServiceStub(channel)
    calls = {}
    _, calls["unary"] = recommend.Recommend.with_call(
        recommend_pb2.RecommendRequest(text="30대 여성 운동용 30만원"), metadata=_auth(token, "rid-unary-1"), timeout=10)
    _, calls["batch"] = recommend.RecommendBatch.with_call(
        recommend_pb2.RecommendBatchRequest(texts=["게임기 50만원", "laptop for coding"]),
        metadata=_auth(token, "rid-batch-1"), timeout=10)
    stream = recommend.RecommendStream(
        iter([recommend_pb2.RecommendStreamRequest(batch=recommend_pb2.RecommendBatchRequest(features=FEATURES))]),
        metadata=_auth(token, "rid-stream-1"), timeout=10)
    assert len(list(stream)) == 1
    calls["stream"] = stream
    _, calls["chat"] = chat_pb2_grpc.ChatServiceStub(channel).Chat.with_call(
        chat_pb2.ChatRequest(text="중학생 아들 게임기 40만원 정도"), metadata=_auth(token, "rid-chat-1"), timeout=10)
    for kind, call in calls.items():
        request_id = f"rid-{kind}-1"
        assert dict(call.trailing_metadata())["x-request-id"] == request_id
        gateway_line = _wait_for_line(secure_stack["gateway"], f"request_id={request_id}")
        assert "caller=dev" in gateway_line and "code=OK" in gateway_line
        inference_line = _wait_for_line(secure_stack["inference"], f"request_id={request_id}")
        assert "caller=gateway" in inference_line
    # an error with details (INVALID_ARGUMENT + BadRequest) keeps the id and caller too
    with pytest.raises(grpc.RpcError) as info:
        recommend.Recommend(recommend_pb2.RecommendRequest(features=[1, 2, 3]), metadata=_auth(token, "rid-bad-1"),
                            timeout=10)
    trailing = dict(info.value.trailing_metadata())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert trailing["x-request-id"] == "rid-bad-1" and trailing["x-caller"] == "dev"
    assert "grpc-status-details-bin" in trailing
    assert "code=INVALID_ARGUMENT" in _wait_for_line(secure_stack["gateway"], "request_id=rid-bad-1")
    # a call without an id gets one, and it is the one in the logs
    _, call = _recommend(channel, _auth(token))
    created = dict(call.trailing_metadata())["x-request-id"]
    assert len(created) == 32
    _wait_for_line(secure_stack["inference"], f"request_id={created}")


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return reply.read().decode()


@pytest.mark.slow
def test_callers_are_counted_in_metrics(secure_stack):
    _recommend(secure_stack["channel"], _auth(secure_stack["token"]))
    with pytest.raises(grpc.RpcError):
        _recommend(secure_stack["channel"], _auth("wrong"))
    gateway = _metrics(secure_stack["gateway_metrics"])
    assert 'gateway_rpcs_by_caller_total{caller="dev",code="OK",method="RecommendService/Recommend"}' in gateway
    assert ('gateway_rpcs_by_caller_total{caller="unauthenticated",code="UNAUTHENTICATED",'
            'method="RecommendService/Recommend"}') in gateway
    inference = _metrics(secure_stack["inference_metrics"])
    assert 'inference_rpcs_by_caller_total{caller="gateway",code="OK",method="RecommendService/Recommend"}' in inference


@pytest.mark.slow
def test_chat_client_takes_the_token_and_ca_from_the_environment(secure_stack):
    secrets, port = secure_stack["secrets"], secure_stack["gateway_port"]
    base = {k: v for k, v in os.environ.items() if k not in ("RECOMMENDER_TOKEN", "RECOMMENDER_CA")}
    command = [PYTHON, "-m", "clients.chat", "--target", f"127.0.0.1:{port}", "--timeout", "10"]
    good = subprocess.run(command, input="hi, a gift for my mom who loves cooking\n", capture_output=True,
                          text=True, cwd=ROOT, timeout=60,
                          env={**base, "RECOMMENDER_TOKEN": secure_stack["token"],
                               "RECOMMENDER_CA": str(secrets.ca_cert)})
    assert good.returncode == 0, good.stderr
    assert "bot>" in good.stdout
    with_file = subprocess.run([*command, "--ca", str(secrets.ca_cert), "--token-file", str(secrets.dev_token)],
                               input="hello\n", capture_output=True, text=True, cwd=ROOT, timeout=60, env=base)
    assert with_file.returncode == 0, with_file.stderr
    no_token = subprocess.run(command, input="hello\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
                              env={**base, "RECOMMENDER_CA": str(secrets.ca_cert)})
    assert no_token.returncode == 1
    assert "UNAUTHENTICATED" in no_token.stderr and "RECOMMENDER_TOKEN" in no_token.stderr


def test_servers_refuse_plaintext_on_a_public_address_unless_insecure(tmp_path):
    for program in (["gateway", "serve", "--metrics-port", "0"], ["inference", "--metrics-port", "0"]):
        result = subprocess.run([PYTHON, "-m", *program, "--host", "0.0.0.0", "--port", str(free_port())],
                                capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert result.returncode == 2, result.stderr
        assert "refusing to listen on 0.0.0.0 without TLS" in result.stderr and "--insecure" in result.stderr
    security.check_settings(GatewaySettings(host="0.0.0.0", insecure=True), "gateway")
    security.check_settings(InferenceSettings(host="0.0.0.0", insecure=True), "inference")
    with pytest.raises(SecurityConfigError, match="--tls-key is missing"):
        security.check_settings(GatewaySettings(tls_cert="x.pem"), "gateway")


def test_security_flags_and_environment_reach_the_settings(tmp_path, monkeypatch):
    from gateway.cli import build_parser as gateway_parser
    from inference.cli import build_parser as inference_parser

    monkeypatch.setenv("RECOMMENDER_TOKENS_FILE", "/from/env/tokens.txt")
    monkeypatch.setenv("GATEWAY_TLS_CERT", "/from/env/server.pem")
    monkeypatch.setenv("INFERENCE_TLS_CLIENT_CA", "/from/env/ca.pem")
    args = gateway_parser().parse_args(
        ["serve", "--tls-key", "k.pem", "--tls-client-ca", "ca.pem", "--insecure", "--public-reflection",
         "--no-access-log", "--inference-ca", "ica.pem", "--inference-cert", "ic.pem", "--inference-key", "ik.pem",
         "--inference-token-file", "gw.token"])
    g = GatewaySettings.from_args(args)
    assert (g.tokens_file, g.tls_cert, g.tls_key, g.tls_client_ca) == (
        "/from/env/tokens.txt", "/from/env/server.pem", "k.pem", "ca.pem")
    assert g.insecure and g.public_reflection and not g.access_log
    assert (g.inference_ca, g.inference_cert, g.inference_key, g.inference_token_file) == (
        "ica.pem", "ic.pem", "ik.pem", "gw.token")
    i = InferenceSettings.from_args(inference_parser().parse_args(["--tokens-file", "t.txt", "--tls-cert", "c"]))
    assert (i.tokens_file, i.tls_client_ca, i.tls_cert, i.access_log) == ("t.txt", "/from/env/ca.pem", "c", False)
    i = InferenceSettings.from_args(inference_parser().parse_args(
        ["--tls-key", "k", "--insecure", "--public-reflection", "--access-log"]))
    assert (i.tls_key, i.insecure, i.public_reflection, i.access_log) == ("k", True, True, True)
    assert i.tokens_file == "/from/env/tokens.txt"


def test_no_access_log_silences_the_per_call_line_only(store, caplog):
    caplog.set_level("INFO")
    try:
        security.configure_access_log(False)
        _call(CallInterceptor(store), RECOMMEND, (("authorization", "Bearer tok-dev"),))
        assert not [r for r in caplog.records if r.name == "recommender.access"]
        _call(CallInterceptor(store), RECOMMEND, (("authorization", "Bearer wrong"),))
        assert [r for r in caplog.records if "event=unauthenticated" in r.getMessage()]  # refusals still logged
    finally:
        security.configure_access_log(True)
    _call(CallInterceptor(store), RECOMMEND, (("authorization", "Bearer tok-dev"),))
    assert [r for r in caplog.records if r.name == "recommender.access"]


def test_programs_starting_together_share_one_ca(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    target = tmp_path / "together"
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda _: certs.ensure_dev_secrets(target), range(4)))
    assert sum(bool(m.created) for m in made) == 1  # one made everything, the others found it
    ca = x509.load_pem_x509_certificate(made[0].ca_cert.read_bytes())
    x509.load_pem_x509_certificate(made[0].server_cert.read_bytes()).verify_directly_issued_by(ca)
    x509.load_pem_x509_certificate(made[0].client_cert.read_bytes()).verify_directly_issued_by(ca)
