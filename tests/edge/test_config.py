"""The edge's Envoy config as rendered from its one template: what it routes, checks and
logs, and that the real Envoy accepts it (`envoy --mode validate`). No server runs here."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from edge.config import EdgeConfig, content_type, render, web_files
from edge.runner import envoy_binary, validate
from tests.support import PYTHON, ROOT


def _document(config: EdgeConfig) -> dict:
    return yaml.safe_load(render(config))


def _connection_manager(document: dict) -> dict:
    [listener] = document["static_resources"]["listeners"]
    [chain] = listener["filter_chains"]
    [manager] = chain["filters"]
    return manager["typed_config"]


@pytest.fixture
def web_dir(tmp_path) -> Path:
    web = tmp_path / "web"
    (web / "assets").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>shop</title>")
    (web / "assets" / "app.js").write_text("console.log('hi')")
    (web / "assets" / "big.css").write_text("a{}" * 30_000)  # 90 KB: above Envoy's 4 KiB default
    (web / "build_contract.py").write_text("print('not served')")
    (web / ".hidden.html").write_text("no")
    return web


def _config(tmp_path, web_dir=None, **overrides) -> EdgeConfig:
    return EdgeConfig(gateways=["127.0.0.1:50051", "gw-2.internal:50051"], port=8443,
                      access_log=tmp_path / "access.log", descriptor_set=tmp_path / "api.pb",
                      web_dir=web_dir, **overrides)


def test_plaintext_config_routes_all_replicas_and_the_page(tmp_path, web_dir):
    document = _document(_config(tmp_path, web_dir))
    [cluster] = document["static_resources"]["clusters"]
    endpoints = [e["endpoint"]["address"]["socket_address"] for e in
                 cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]]
    assert endpoints == [{"address": "127.0.0.1", "port_value": 50051},
                         {"address": "gw-2.internal", "port_value": 50051}]
    assert cluster["lb_policy"] == "ROUND_ROBIN"
    assert cluster["health_checks"][0]["grpc_health_check"] == {"service_name": ""}
    assert cluster["outlier_detection"]["max_ejection_percent"] == 50
    assert "transport_socket" not in cluster  # plaintext to the gateways unless asked
    manager = _connection_manager(document)
    assert manager["preserve_external_request_id"] and manager["generate_request_id"]
    log_format = manager["access_log"][0]["typed_config"]["log_format"]["json_format"]
    assert {"method", "path", "grpc_status", "http_status", "duration_ms", "caller", "request_id"} <= set(log_format)
    filters = [f["name"] for f in manager["http_filters"]]
    assert filters == ["envoy.filters.http.grpc_web", "envoy.filters.http.grpc_json_transcoder",
                       "envoy.filters.http.router"]
    transcoder = manager["http_filters"][1]["typed_config"]
    # every service of the API, found in the descriptor set built from protos/
    assert {"recommender.v1.RecommendService", "recommender.v1.ChatService",
            "recommender.v1.VectorizeService"} <= set(transcoder["services"])
    assert transcoder["print_options"]["always_print_primitive_fields"] is True
    assert transcoder["print_options"]["preserve_proto_field_names"] is False
    assert Path(transcoder["proto_descriptor"]).stat().st_size > 1000

    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    pages = {r["match"]["path"]: r for r in routes if "direct_response" in r}
    assert set(pages) == {"/", "/index.html", "/assets/app.js", "/assets/big.css"}  # no .py, no dot files
    assert pages["/"]["direct_response"]["body"]["filename"] == str((web_dir / "index.html").resolve())
    assert manager["route_config"]["max_direct_response_body_size_bytes"] > 90_000
    grpc_routes = [r for r in routes if "route" in r]
    # the catch-all is last, gRPC and gRPC-Web only
    assert grpc_routes[-1]["match"] == {"prefix": "/", "headers": [
        {"name": "content-type", "string_match": {"prefix": "application/grpc"}}]}
    retry = grpc_routes[-1]["route"]["retry_policy"]
    assert set(retry["retry_on"].split(",")) >= {"unavailable", "reset", "connect-failure"}
    # a call a flooded gateway cancelled before our code saw it goes to another replica (make soak)
    assert "cancelled" in retry["retry_on"].split(",")
    assert retry["per_try_timeout"] == "10s"
    assert grpc_routes[-1]["route"]["max_stream_duration"] == {"grpc_timeout_header_max": "0s"}


def test_tls_config_terminates_tls_and_can_speak_tls_to_gateways(tmp_path):
    cert, key, ca = tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "ca.pem"
    document = _document(_config(tmp_path, tls_cert=cert, tls_key=key, upstream_ca=ca,
                                 host="0.0.0.0", per_try_timeout_s=2.5))
    [listener] = document["static_resources"]["listeners"]
    tls = listener["filter_chains"][0]["transport_socket"]["typed_config"]
    assert tls["@type"].endswith("DownstreamTlsContext")
    assert tls["common_tls_context"]["tls_certificates"][0]["certificate_chain"]["filename"] == str(cert)
    assert tls["common_tls_context"]["alpn_protocols"] == ["h2", "http/1.1"]
    upstream = document["static_resources"]["clusters"][0]["transport_socket"]["typed_config"]
    assert upstream["common_tls_context"]["validation_context"]["trusted_ca"]["filename"] == str(ca)
    assert upstream["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"] == [
        {"san_type": "DNS", "matcher": {"exact": "localhost"}}]
    assert listener["address"]["socket_address"]["address"] == "0.0.0.0"


@pytest.mark.parametrize("overrides, message", [
    ({"host": "0.0.0.0"}, "refusing to serve plaintext on 0.0.0.0"),
    ({"tls_cert": Path("a.pem")}, "go together"),
    ({"upstream_cert": Path("c.pem"), "upstream_key": Path("c.key")}, "needs --upstream-ca"),
    ({"gateways": ["nohost"]}, "must be host:port"),
])
def test_bad_configs_are_refused_with_a_reason(tmp_path, overrides, message):
    arguments = {"gateways": ["127.0.0.1:50051"], **overrides}
    with pytest.raises(ValueError, match=message):
        EdgeConfig(**arguments)


def test_envoy_accepts_the_rendered_config(tmp_path, web_dir):
    validate(render(_config(tmp_path, web_dir)))


def test_envoy_binary_comes_from_the_wheel():
    binary = envoy_binary()
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    assert "/1.40." in version


def test_content_types():
    assert content_type(Path("a.html")) == "text/html; charset=utf-8"
    assert content_type(Path("a.js")) == "application/javascript; charset=utf-8"
    assert content_type(Path("a.svg")) == "image/svg+xml; charset=utf-8"
    assert content_type(Path("a.png")) == "image/png"


def test_the_project_page_is_served_when_present():
    files = dict(web_files(ROOT / "web"))
    if not (ROOT / "web" / "index.html").exists():
        pytest.skip("web/ has no page yet")
    assert files["/"] == files["/index.html"]
    assert not any(url.endswith(".py") for url in files)


def test_cli_prints_the_config_and_writes_the_descriptor_set(tmp_path, web_dir):
    descriptor = tmp_path / "out" / "api.pb"
    result = subprocess.run(
        [PYTHON, "-m", "edge", "config", "--gateways", "127.0.0.1:50051,127.0.0.1:50052", "--port", "9443",
         "--admin-port", "9902", "--descriptor-set", str(descriptor), "--access-log", str(tmp_path / "a.log"),
         "--web-dir", str(web_dir), "--per-try-timeout", "3", "--retries", "2",
         "--tls-cert", str(tmp_path / "s.pem"), "--tls-key", str(tmp_path / "s.key"),
         "--upstream-ca", str(tmp_path / "ca.pem"), "--upstream-cert", str(tmp_path / "c.pem"),
         "--upstream-key", str(tmp_path / "c.key"), "--upstream-sni", "gateway.internal"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(result.stdout)
    assert descriptor.stat().st_size > 1000
    assert document["admin"]["address"]["socket_address"]["port_value"] == 9902
    assert document["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] == 9443
    routes = _connection_manager(document)["route_config"]["virtual_hosts"][0]["routes"]
    assert routes[-1]["route"]["retry_policy"]["per_try_timeout"] == "3s"
    assert routes[-1]["route"]["retry_policy"]["num_retries"] == 2
    upstream = document["static_resources"]["clusters"][0]["transport_socket"]["typed_config"]
    assert upstream["sni"] == "gateway.internal"
    assert upstream["common_tls_context"]["tls_certificates"][0]["private_key"]["filename"] == str(tmp_path / "c.key")

    refused = subprocess.run([PYTHON, "-m", "edge", "config", "--gateways", "127.0.0.1:1", "--host", "0.0.0.0"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "refusing to serve plaintext" in refused.stderr


def test_cli_run_serves_until_sigterm_and_binary_prints_the_path(tmp_path, web_dir):
    """`python -m edge run`: renders into a temporary folder, runs Envoy (the page answers
    even with no gateway up), stops on SIGTERM and removes what it rendered."""
    import signal
    import tempfile
    import time
    import urllib.request

    from tests.support import ServerProcess, free_port

    port, admin = free_port(), free_port()
    edge = ServerProcess([PYTHON, "-m", "edge", "run", "--gateways", f"127.0.0.1:{free_port()}", "--port", str(port),
                          "--admin-port", str(admin), "--web-dir", str(web_dir), "--access-log",
                          str(tmp_path / "access.log"), "--log", str(tmp_path / "envoy.log")],
                         tmp_path / "run.log").start()
    try:
        deadline = time.monotonic() + 60
        while "[edge] serving" not in edge.log() and time.monotonic() < deadline and edge.process.poll() is None:
            time.sleep(0.2)
        assert f"[edge] serving http://127.0.0.1:{port}" in edge.log(), edge.log()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as reply:
            assert b"shop" in reply.read()
        rendered = list(Path(tempfile.gettempdir()).glob(f"edge-{edge.process.pid}-*"))
        assert rendered, "the rendered config lives in edge-<pid>-* while Envoy runs"
        edge.process.send_signal(signal.SIGTERM)
        assert edge.process.wait(30) == 0
        assert not any(p.exists() for p in rendered)
    finally:
        edge.stop()
    binary = subprocess.run([PYTHON, "-m", "edge", "binary"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert binary.stdout.strip() == str(envoy_binary())
