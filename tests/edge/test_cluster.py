"""`make cluster` with real processes: Envoy (TLS) in front of 2 gateway replicas and an
inference server with 2 workers, TLS and caller tokens on every hop, all started by
`python -m clients.stack cluster` on free ports. One cluster serves every test in this module;
the last test kills it.

Covers issue 9's "done when": tokens through Envoy, TLS with the dev CA (and plaintext refused),
curl JSON = gRPC, a gateway replica SIGKILLed under a c16 load with 0 failed calls (ejected,
restarted, serving again), one request id in Envoy's, a gateway's and inference's logs; and
issue 15's supervision: killing the stack process leaves no server running."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import loadgen
from edge.runner import EnvoyAdmin
from recommender.v1 import recommend_pb2, recommend_pb2_grpc
from tests.support import (
    PYTHON,
    ROOT,
    ServerProcess,
    free_port,
    free_port_block,
    port_is_free,
    processes_mentioning,
)

pytestmark = pytest.mark.slow

TEXT = "I need a laptop for coding, 2 million won"


class Cluster:
    def __init__(self, tmp, models_dir):
        self.tmp = tmp
        self.secrets = tmp / "secrets"
        self.logs = tmp / "logs"
        self.inference_port = free_port_block(3)
        self.gateway_port = free_port_block(2)
        self.port = free_port()
        self.admin_port = free_port()
        self.models_dir = models_dir
        self.env = {
            "INFERENCE_PORT": str(self.inference_port), "GATEWAY_PORT": str(self.gateway_port),
            "CLUSTER_PORT": str(self.port), "EDGE_ADMIN_PORT": str(self.admin_port),
            "METRICS_PORT": str(free_port()), "GATEWAY_METRICS_PORT": str(free_port_block(2)),
            "MODELS_DIR": str(models_dir), "DATA": str(tmp / "unused.csv"), "WORKERS": "2",
            "SECRETS_DIR": str(self.secrets), "LOG_DIR": str(self.logs),
        }
        self.stack = ServerProcess([PYTHON, "-m", "clients.stack", "cluster"], tmp / "stack.log", env=self.env)

    @property
    def ports(self) -> list[int]:
        return [self.inference_port, self.inference_port + 1, self.inference_port + 2,
                self.gateway_port, self.gateway_port + 1, self.port, self.admin_port]

    def gateway_marker(self, index: int) -> str:
        return f"--port {self.gateway_port + index} "

    def token(self) -> str:
        return (self.secrets / "dev.token").read_text().strip()

    def ca(self) -> bytes:
        return (self.secrets / "ca.pem").read_bytes()

    def channel(self, credentials: bool = True) -> grpc.Channel:
        target = f"localhost:{self.port}"
        if not credentials:
            return grpc.insecure_channel(target)
        return grpc.secure_channel(target, grpc.ssl_channel_credentials(self.ca()))

    def admin(self) -> EnvoyAdmin:
        return EnvoyAdmin(self.admin_port)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, trained_models_dir):
    tmp = tmp_path_factory.mktemp("cluster")
    # Its own copy: the path marks this cluster's processes (other session-wide servers serve
    # trained_models_dir itself, and must not count as leftovers of this stack).
    models = shutil.copytree(trained_models_dir, tmp / "models")
    c = Cluster(tmp, models)
    c.stack.start()
    try:
        _wait_for(lambda: "ready: https://" in c.stack.log() or c.stack.process.poll() is not None, 240,
                  "the cluster printing ready:")
        assert c.stack.process.poll() is None, c.stack.log()
        yield c
    finally:
        c.stack.stop()


def test_cluster_prints_ready_and_writes_dev_secrets(cluster):
    assert f"ready: https://127.0.0.1:{cluster.port}" in cluster.stack.log()
    assert (cluster.secrets / "ca.pem").exists() and len(cluster.token()) >= 20
    # two gateway replicas behind Envoy, both healthy
    hosts = cluster.admin().gateway_hosts()
    assert sorted(hosts) == [f"127.0.0.1:{cluster.gateway_port}", f"127.0.0.1:{cluster.gateway_port + 1}"]


def test_tls_with_the_dev_ca_works_and_plaintext_is_refused(cluster):
    with cluster.channel() as channel:
        reply = recommend_pb2_grpc.RecommendServiceStub(channel).Recommend(
            recommend_pb2.RecommendRequest(text=TEXT), timeout=10,
            metadata=[("authorization", f"Bearer {cluster.token()}")])
    assert reply.items[0].product_id == "laptop"
    with cluster.channel(credentials=False) as channel, pytest.raises(grpc.RpcError) as failure:
        recommend_pb2_grpc.RecommendServiceStub(channel).Recommend(
            recommend_pb2.RecommendRequest(text=TEXT), timeout=5,
            metadata=[("authorization", f"Bearer {cluster.token()}")])
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    plain = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                            f"http://127.0.0.1:{cluster.port}/"], capture_output=True, text=True)
    assert plain.returncode != 0 or plain.stdout.strip() in ("000", "400"), plain


@pytest.mark.parametrize("token, code", [
    (None, grpc.StatusCode.UNAUTHENTICATED),
    ("not-a-token", grpc.StatusCode.UNAUTHENTICATED),
    ("good", grpc.StatusCode.OK),
])
def test_tokens_through_envoy(cluster, token, code):
    metadata = [] if token is None else [("authorization", f"Bearer {cluster.token() if token == 'good' else token}")]
    with cluster.channel() as channel:
        stub = recommend_pb2_grpc.RecommendServiceStub(channel)
        try:
            reply = stub.Recommend(recommend_pb2.RecommendRequest(text=TEXT), timeout=10, metadata=metadata)
            got = grpc.StatusCode.OK
            assert reply.items
        except grpc.RpcError as exc:
            got = exc.code()
            assert "token" in exc.details()
        assert got == code
        # health needs no token
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_curl_json_through_the_transcoder_matches_grpc(cluster):
    with cluster.channel() as channel:
        reply = recommend_pb2_grpc.RecommendServiceStub(channel).Recommend(
            recommend_pb2.RecommendRequest(text=TEXT), timeout=10,
            metadata=[("authorization", f"Bearer {cluster.token()}")])
    result = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "--max-time", "10", "--cacert", str(cluster.secrets / "ca.pem"),
         "-H", f"authorization: Bearer {cluster.token()}", "-d", json.dumps({"text": TEXT}),
         f"https://localhost:{cluster.port}/v1/recommend"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr + result.stdout
    answer = json.loads(result.stdout)
    assert [i["productId"] for i in answer["items"]] == [i.product_id for i in reply.items]
    assert answer["modelVersion"] == str(reply.model_version)  # proto3 JSON: int64 as a string
    assert "features" in answer and "vectorizer" in answer
    # no token: a JSON error naming the problem, HTTP 401
    refused = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", "--cacert", str(cluster.secrets / "ca.pem"),
         "-d", json.dumps({"text": TEXT}), f"https://localhost:{cluster.port}/v1/recommend"],
        capture_output=True, text=True)
    body, _, status = refused.stdout.rpartition("\n")
    assert status == "401" and json.loads(body)["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]


def test_a_stream_and_a_json_batch_through_envoy(cluster):
    token = [("authorization", f"Bearer {cluster.token()}")]
    batches = [recommend_pb2.RecommendStreamRequest(batch=recommend_pb2.RecommendBatchRequest(texts=[TEXT] * n, top_k=1))
               for n in (3, 5)]
    with cluster.channel() as channel:
        replies = list(recommend_pb2_grpc.RecommendServiceStub(channel).RecommendStream(
            iter(batches), timeout=30, metadata=token))
    assert [r.batch.rows for r in replies] == [3, 5]
    last = replies[1].batch
    assert {last.product_ids[i] for i in last.product_indices} == {"laptop"}
    result = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "--max-time", "10", "--cacert", str(cluster.secrets / "ca.pem"),
         "-H", f"authorization: Bearer {cluster.token()}", "-d", json.dumps({"texts": [TEXT, ""], "topK": 1}),
         f"https://localhost:{cluster.port}/v1/recommend:batch"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr + result.stdout
    answer = json.loads(result.stdout)
    assert answer["rows"] == 2 and answer["productIds"][answer["productIndices"][0]] == "laptop"
    assert [e["row"] for e in answer["errors"]] == [1]  # the empty text is that row's error


def test_grpc_web_as_a_browser_sends_it(cluster):
    """gRPC-Web over HTTP/1.1 (what a browser can send): one length-prefixed message in, the
    answer and a trailer frame with grpc-status out."""
    import ssl
    import struct
    import urllib.request

    message = recommend_pb2.RecommendRequest(text=TEXT).SerializeToString()
    request = urllib.request.Request(
        f"https://localhost:{cluster.port}/recommender.v1.RecommendService/Recommend", method="POST",
        data=b"\x00" + struct.pack(">I", len(message)) + message,
        headers={"content-type": "application/grpc-web+proto", "x-grpc-web": "1",
                 "authorization": f"Bearer {cluster.token()}"})
    context = ssl.create_default_context(cadata=cluster.ca().decode())
    with urllib.request.urlopen(request, timeout=10, context=context) as reply:
        body = reply.read()
    frames = []
    while body:
        flag, length = body[0], struct.unpack(">I", body[1:5])[0]
        frames.append((flag, body[5:5 + length]))
        body = body[5 + length:]
    assert frames[0][0] == 0 and recommend_pb2.RecommendResponse.FromString(frames[0][1]).items[0].product_id == "laptop"
    assert frames[-1][0] == 0x80 and b"grpc-status:0" in frames[-1][1]


def test_one_request_id_in_envoy_gateway_and_inference_logs(cluster):
    request_id = f"edge-test-{uuid.uuid4()}"
    with cluster.channel() as channel:
        _, call = recommend_pb2_grpc.RecommendServiceStub(channel).Recommend.with_call(
            recommend_pb2.RecommendRequest(text=TEXT), timeout=10,
            metadata=[("authorization", f"Bearer {cluster.token()}"), ("x-request-id", request_id)])
    assert dict(call.trailing_metadata()).get("x-request-id") == request_id

    def logged() -> bool:
        gateways = cluster.log("gateway-1") + cluster.log("gateway-2")
        return (request_id in cluster.log("edge-access") and request_id in gateways
                and request_id in cluster.log("inference"))

    _wait_for(logged, 10, f"request id {request_id} in all three logs")
    [line] = [json.loads(raw) for raw in cluster.log("edge-access").splitlines() if request_id in raw]
    assert line["grpc_status"] == "OK" and line["method"] == "POST"
    assert line["path"] == "/recommender.v1.RecommendService/Recommend"
    assert line["caller"] == "dev" and isinstance(line["duration_ms"], int)
    assert TEXT not in cluster.log("edge-access")  # never the customer's text


def test_a_replica_killed_under_load_loses_no_call_and_comes_back(cluster):
    admin = cluster.admin()
    victim = f"127.0.0.1:{cluster.gateway_port}"
    requests = [recommend_pb2.RecommendRequest(text=TEXT),
                recommend_pb2.RecommendRequest(features=[35, 1, 300_000, 2, 1, 0])]
    outcome = {}

    def load():
        outcome["result"] = loadgen.run_unary(
            f"localhost:{cluster.port}", "/recommender.v1.RecommendService/Recommend", requests,
            concurrency=16, duration_s=20, root_certificates=cluster.ca(),
            metadata=(("authorization", f"Bearer {cluster.token()}"),))

    removals = ("cluster.gateways.health_check.failure", "cluster.gateways.outlier_detection.ejections_enforced_total")
    removed_before = sum(admin.stats().get(name, 0) for name in removals)
    runner = threading.Thread(target=load)
    runner.start()
    time.sleep(4)
    [pid] = [int(line.split(":", 1)[0]) for line in processes_mentioning(cluster.gateway_marker(0))]
    os.kill(pid, signal.SIGKILL)
    flags_seen = set()
    while runner.is_alive():
        flags_seen.add(admin.gateway_hosts().get(victim, {}).get("health_flags", ""))
        time.sleep(0.2)
    runner.join()
    result = outcome["result"]
    assert result.errors == 0, result.first_error
    assert result.calls > 100
    # Envoy took the dead replica out of rotation (failed health checks or outlier ejection) ...
    removed = sum(admin.stats().get(name, 0) for name in removals) - removed_before
    assert removed > 0 or any(f and f != "healthy" for f in flags_seen), (flags_seen, admin.stats())
    # ... the supervisor restarted it, and Envoy sends it calls again
    assert "gateway-1 restarted" in cluster.stack.log()
    _wait_for(lambda: admin.gateway_hosts()[victim].get("health_flags") == "healthy", 30, "replica healthy again")
    before = int(admin.gateway_hosts()[victim]["rq_success"])
    with cluster.channel() as channel:
        stub = recommend_pb2_grpc.RecommendServiceStub(channel)
        for _ in range(10):
            stub.Recommend(requests[1], timeout=10, metadata=[("authorization", f"Bearer {cluster.token()}")])
    assert int(admin.gateway_hosts()[victim]["rq_success"]) > before


def test_zz_killing_the_stack_process_leaves_no_server(cluster):
    """Last in the module: SIGKILL gives the stack no chance to clean up; every server still
    goes (PR_SET_PDEATHSIG) and every port is free again."""
    cluster.stack.process.kill()
    cluster.stack.process.wait(10)
    markers = [str(cluster.models_dir), cluster.gateway_marker(0), cluster.gateway_marker(1),
               f"edge-{cluster.stack.process.pid}-"]
    # Servers get SIGTERM from PR_SET_PDEATHSIG and drain first: allow for a loaded machine.
    try:
        _wait_for(lambda: not any(processes_mentioning(m) for m in markers), 60,
                  "every server gone after SIGKILL of the stack")
    except AssertionError as exc:
        left = [p[:300] for m in markers for p in processes_mentioning(m)]
        raise AssertionError(f"{exc}; still running: {left}") from None
    _wait_for(lambda: all(port_is_free(p) for p in cluster.ports), 60, "every port free")
    # the rendered Envoy config it could not remove goes when the next edge starts
    from edge.runner import remove_orphaned_work_dirs

    leftovers = list(Path(tempfile.gettempdir()).glob(f"edge-{cluster.stack.process.pid}-*"))
    remove_orphaned_work_dirs()
    assert not any(path.exists() for path in leftovers)


def test_readme_names_the_cluster_conventions():
    readme = (ROOT / "README.md").read_text()
    for needle in ("make cluster", "CLUSTER_PORT", "EDGE_PORT", "RECOMMENDER_TOKEN", "RECOMMENDER_CA",
                   "python -m edge config"):
        assert needle in readme, needle
