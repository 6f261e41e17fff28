"""What `make serve` and `make cluster` start, from their environment variables: ports,
replicas, and the TLS/token flags of each hop. No process is started here."""

from __future__ import annotations

from pathlib import Path

from clients.stack import Credentials, Stack, StackConfig


def _credentials(tmp_path: Path) -> Credentials:
    names = ("ca_cert", "server_cert", "server_key", "client_cert", "client_key", "dev_token",
             "gateway_token", "tokens_file")
    return Credentials(**{name: tmp_path / name for name in names})


def _flag(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_cluster_from_the_environment(monkeypatch, tmp_path):
    for name, value in {"GATEWAY_PORT": "7000", "GATEWAY_REPLICAS": "3", "CLUSTER_PORT": "7443",
                        "EDGE_ADMIN_PORT": "7901", "INFERENCE_PORT": "7500", "WORKERS": "",
                        "WEB_DIR": str(tmp_path / "page"), "LOG_DIR": str(tmp_path / "logs"),
                        "GATEWAY_METRICS_PORT": "7101"}.items():
        monkeypatch.setenv(name, value)
    config = StackConfig.from_env(cluster=True)
    assert config.gateway_ports == [7000, 7001, 7002] and config.workers == 2  # cluster default
    assert config.public_url == "https://127.0.0.1:7443"
    stack = Stack(config, quiet=False)
    stack.credentials = _credentials(tmp_path)

    inference = stack.inference_command()
    assert _flag(inference, "--tls-client-ca") == str(tmp_path / "ca_cert")  # mTLS: only our gateways
    assert _flag(inference, "--tokens-file") == str(tmp_path / "tokens_file")
    gateway = stack.gateway_command(2)
    assert _flag(gateway, "--port") == "7002" and _flag(gateway, "--metrics-port") == "7103"
    assert _flag(gateway, "--inference") == "dns:///localhost:7501,dns:///localhost:7502"
    assert _flag(gateway, "--inference-cert") == str(tmp_path / "client_cert")
    assert _flag(gateway, "--inference-token-file") == str(tmp_path / "gateway_token")
    assert "--tls-client-ca" not in gateway  # callers reach gateways with tokens, not certificates

    edge = stack.edge_config()
    assert edge.port == 7443 and edge.admin_port == 7901 and edge.tls
    assert edge.gateways == [("127.0.0.1", 7000), ("127.0.0.1", 7001), ("127.0.0.1", 7002)]
    assert edge.upstream_ca == tmp_path / "ca_cert"  # TLS to the gateways too
    assert edge.web_dir is None  # WEB_DIR does not exist: no page routes
    assert edge.access_log == tmp_path / "logs" / "edge-access.log"


def test_serve_is_one_gateway_behind_a_plaintext_edge(monkeypatch, tmp_path):
    (tmp_path / "page").mkdir()
    for name, value in {"GATEWAY_PORT": "7000", "GATEWAY_REPLICAS": "3", "EDGE_PORT": "7080",
                        "WEB_DIR": str(tmp_path / "page"), "INFERENCE_PORT": "7500", "WORKERS": "1"}.items():
        monkeypatch.setenv(name, value)
    config = StackConfig.from_env()
    assert config.gateway_ports == [7000]  # replicas are for the cluster
    stack = Stack(config, quiet=False)
    assert "--tls-cert" not in stack.inference_command()
    gateway = stack.gateway_command(0)
    assert _flag(gateway, "--inference") == "127.0.0.1:7501" and "--tokens-file" not in gateway
    edge = stack.edge_config()
    assert edge.port == 7080 and not edge.tls and edge.upstream_ca is None
    assert edge.web_dir == tmp_path / "page"
    assert config.public_url == "http://127.0.0.1:7080"
