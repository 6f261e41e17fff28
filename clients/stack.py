"""`make serve` / `make run` / `make cluster`: the whole recommender on one machine.

    python -m clients.stack serve    # train if needed; inference + gateway + Envoy (plaintext, 127.0.0.1)
    python -m clients.stack run      # the same, then the interactive chat; leaving it stops all
    python -m clients.stack cluster  # Envoy with TLS + 2 gateway replicas + inference (2 workers),
                                     # TLS and caller tokens on every hop, until Ctrl-C

Configured by environment variables (the Makefile passes them): INFERENCE_PORT (8500),
GATEWAY_PORT (50051; cluster replica i listens on GATEWAY_PORT+i), METRICS_PORT (9100),
GATEWAY_METRICS_PORT (9101; replica i: +i), EDGE_PORT (8080, serve/run: the web page and the
API through Envoy), CLUSTER_PORT (8443, cluster: the public TLS port), EDGE_ADMIN_PORT (9901,
Envoy's admin on 127.0.0.1), MODELS_DIR (models), DATA (data/purchases.csv), WORKERS
(inference worker processes; default: CPU count up to 4, cluster: 2), GATEWAY_REPLICAS
(cluster: 2), VECTORIZER (local), SECRETS_DIR (.secrets: the cluster's dev CA, certificates
and tokens), WEB_DIR (web), LOG_DIR (logs: Envoy's access log; `run` and `cluster` also
write the servers' logs there, `serve` prints them).

Every server dies with this process (even when it is SIGKILLed) and a server that crashes is
started again with backoff (clients/supervision.py).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.supervision import Supervisor, say
from edge.config import EdgeConfig
from edge.runner import EdgeProcess
from recommender import model_repository, settings

HOST = "127.0.0.1"
CLUSTER_CALLER = "dev"  # the caller whose token `make cluster` writes to .secrets/dev.token


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "")
    return value if value.strip() else default


@dataclass
class StackConfig:
    inference_port: int
    gateway_port: int
    metrics_port: int
    gateway_metrics_port: int
    edge_port: int
    cluster_port: int
    edge_admin_port: int
    models_dir: Path
    data: Path
    workers: int
    replicas: int
    vectorizer: str
    secrets_dir: Path
    web_dir: Path
    log_dir: Path
    cluster: bool = False

    @classmethod
    def from_env(cls, cluster: bool = False) -> StackConfig:
        # Defaults shared with the servers' own flags (recommender/settings.py).
        default_workers = 2 if cluster else settings.default_workers()
        return cls(
            inference_port=int(_env("INFERENCE_PORT", str(settings.INFERENCE_PORT))),
            gateway_port=int(_env("GATEWAY_PORT", str(settings.GATEWAY_PORT))),
            metrics_port=int(_env("METRICS_PORT", str(settings.INFERENCE_METRICS_PORT))),
            gateway_metrics_port=int(_env("GATEWAY_METRICS_PORT", str(settings.GATEWAY_METRICS_PORT))),
            edge_port=int(_env("EDGE_PORT", "8080")),
            cluster_port=int(_env("CLUSTER_PORT", "8443")),
            edge_admin_port=int(_env("EDGE_ADMIN_PORT", "9901")),
            models_dir=Path(_env("MODELS_DIR", "models")),
            data=Path(_env("DATA", "data/purchases.csv")),
            workers=int(_env("WORKERS", str(default_workers))),
            replicas=int(_env("GATEWAY_REPLICAS", "2")) if cluster else 1,
            vectorizer=_env("VECTORIZER", "local"),
            secrets_dir=Path(_env("SECRETS_DIR", ".secrets")),
            web_dir=Path(_env("WEB_DIR", "web")),
            log_dir=Path(_env("LOG_DIR", "logs")),
            cluster=cluster,
        )

    @property
    def worker_ports(self) -> list[int]:
        """Each inference worker also listens on its own port, so the gateway's round-robin
        channel holds one connection per worker instead of one to a shared port."""
        return settings.worker_ports(self.inference_port, self.workers)

    @property
    def gateway_ports(self) -> list[int]:
        return [self.gateway_port + i for i in range(self.replicas)]

    @property
    def public_port(self) -> int:
        return self.cluster_port if self.cluster else self.edge_port

    @property
    def public_url(self) -> str:
        return f"{'https' if self.cluster else 'http'}://{HOST}:{self.public_port}"


def port_in_use(port: int) -> bool:
    """True when a server could not listen on `port`. Binds with SO_REUSEADDR, as the servers
    do, so connections of a stack that just stopped (TIME_WAIT) do not count as a listener."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def ensure_model(config: StackConfig) -> None:
    """Train the default model when the repository has no version yet (a fresh clone)."""
    version = model_repository.latest_version(config.models_dir)
    if version is not None:
        say(f"model version {version} found in {config.models_dir}")
        return
    say(f"no model in {config.models_dir}: training the default model (takes a minute)")
    subprocess.run(
        [sys.executable, "-m", "trainer", "train", "--data", str(config.data),
         "--models-dir", str(config.models_dir), "--generate-if-missing"],
        check=True,
    )


@dataclass
class Credentials:
    """The cluster's TLS material and the dev caller's token (from edge.certs)."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    dev_token: Path
    gateway_token: Path
    tokens_file: Path

    def channel_credentials(self, client_certificate: bool) -> grpc.ChannelCredentials:
        chain = key = None
        if client_certificate:
            chain, key = self.client_cert.read_bytes(), self.client_key.read_bytes()
        return grpc.ssl_channel_credentials(self.ca_cert.read_bytes(), key, chain)


def cluster_credentials(secrets_dir: Path) -> Credentials:
    from edge.certs import ensure_dev_secrets

    secrets = ensure_dev_secrets(secrets_dir)
    return Credentials(**{name: Path(getattr(secrets, name)) for name in Credentials.__dataclass_fields__})


def wait_healthy(target: str, process: subprocess.Popen, name: str, timeout: float,
                 credentials: grpc.ChannelCredentials | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    channel = (grpc.secure_channel(target, credentials, options=[("grpc.ssl_target_name_override", "localhost")])
               if credentials else grpc.insecure_channel(target))
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode} while starting")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.RpcError as exc:
                last = exc.code().name
            time.sleep(0.2)
    raise TimeoutError(f"{name} at {target} not healthy after {timeout:.0f}s (last: {last})")


class Stack:
    """Inference, the gateway replicas and Envoy as supervised child processes."""

    def __init__(self, config: StackConfig, quiet: bool):
        self.config = config
        # `run`: server logs go to files, the terminal belongs to the chat; `cluster`: four
        # servers would drown the terminal.
        self.supervisor = Supervisor(config.log_dir if quiet or config.cluster else None)
        self.credentials: Credentials | None = None
        self.edge: EdgeProcess | None = None

    # -- commands of each server (their CLIs; flags only, so every setting is visible in `ps`)

    def _tls_server_args(self, client_ca: bool) -> list[str]:
        if self.credentials is None:
            return []
        c = self.credentials
        args = ["--tls-cert", str(c.server_cert), "--tls-key", str(c.server_key),
                "--tokens-file", str(c.tokens_file)]
        return [*args, "--tls-client-ca", str(c.ca_cert)] if client_ca else args

    def inference_command(self) -> list[str]:
        c = self.config
        return [sys.executable, "-m", "inference", "--models-dir", str(c.models_dir),
                "--port", str(c.inference_port), "--workers", str(c.workers),
                "--metrics-port", str(c.metrics_port),
                *self._tls_server_args(client_ca=True),  # mTLS: only our gateways get in
                *(["--access-log"] if c.cluster else [])]  # request ids traced through every hop

    def inference_targets(self) -> str:
        if self.config.cluster:
            # By name, as across hosts: dns:/// targets are resolved again while the gateway runs
            # (hosts added behind the name join), and the name is what the inference
            # certificate is checked against.
            return ",".join(f"dns:///localhost:{p}" for p in self.config.worker_ports)
        return ",".join(f"{HOST}:{p}" for p in self.config.worker_ports)

    def gateway_command(self, index: int) -> list[str]:
        c = self.config
        command = [sys.executable, "-m", "gateway", "serve", "--host", HOST,
                   "--port", str(c.gateway_ports[index]), "--inference", self.inference_targets(),
                   "--vectorizer", c.vectorizer, "--metrics-port", str(c.gateway_metrics_port + index),
                   *self._tls_server_args(client_ca=False)]
        if self.credentials is not None:
            creds = self.credentials
            # mTLS towards inference, with the gateway's own token (never the end caller's)
            command += ["--inference-ca", str(creds.ca_cert), "--inference-cert", str(creds.client_cert),
                        "--inference-key", str(creds.client_key), "--inference-token-file", str(creds.gateway_token)]
        return command

    def edge_config(self) -> EdgeConfig:
        c = self.config
        tls = {}
        if self.credentials is not None:
            creds = self.credentials
            tls = dict(tls_cert=creds.server_cert, tls_key=creds.server_key, upstream_ca=creds.ca_cert)
        return EdgeConfig(
            gateways=[f"{HOST}:{p}" for p in c.gateway_ports], port=c.public_port, host=HOST,
            admin_port=c.edge_admin_port, access_log=c.log_dir / "edge-access.log",
            web_dir=c.web_dir if c.web_dir.is_dir() else None, **tls)

    # -- lifecycle

    def check_ports(self) -> None:
        c = self.config
        ports = [c.inference_port, *c.worker_ports, *c.gateway_ports, c.public_port, c.edge_admin_port]
        busy = [p for p in ports if port_in_use(p)]
        if busy:
            names = "CLUSTER_PORT" if c.cluster else "EDGE_PORT"
            raise RuntimeError(f"port(s) {', '.join(map(str, busy))} already in use on {HOST}: stop what "
                               f"uses them or set INFERENCE_PORT / GATEWAY_PORT / {names} / EDGE_ADMIN_PORT")

    def start(self) -> None:
        c = self.config
        self.check_ports()
        ensure_model(c)
        if c.cluster:
            self.credentials = cluster_credentials(c.secrets_dir)
            say(f"TLS and caller tokens on; CA {self.credentials.ca_cert}, "
                f"token of caller '{CLUSTER_CALLER}' in {self.credentials.dev_token}")
        client_creds = self.credentials.channel_credentials(True) if self.credentials else None
        server_creds = self.credentials.channel_credentials(False) if self.credentials else None

        # Everything starts at once (a gateway is NOT_SERVING until inference answers, Envoy
        # routes only to gateways that pass its health checks), then each is waited for.
        inference = self.supervisor.add_command("inference", self.inference_command())
        say(f"starting inference on {HOST}:{c.inference_port} ({c.workers} workers)")
        gateways = []
        for index, port in enumerate(c.gateway_ports):
            name = "gateway" if c.replicas == 1 else f"gateway-{index + 1}"
            gateways.append(self.supervisor.add_command(name, self.gateway_command(index)))
            say(f"starting {name} on {HOST}:{port}")
        self.edge = EdgeProcess(self.edge_config(), log_path=c.log_dir / "edge.log")
        self.supervisor.add("edge", self.edge.spawn)
        say(f"starting Envoy on {HOST}:{c.public_port} (access log {c.log_dir / 'edge-access.log'})")

        wait_healthy(f"{HOST}:{c.inference_port}", inference.process, "inference", 180, client_creds)
        for gateway, port in zip(gateways, c.gateway_ports, strict=True):
            wait_healthy(f"{HOST}:{port}", gateway.process, gateway.name, 60, server_creds)
        self.edge.wait_ready(timeout=60, healthy_gateways=c.replicas)
        say(f"ready: gateway {', '.join(f'{HOST}:{p}' for p in c.gateway_ports)}, "
            f"inference {HOST}:{c.inference_port}, metrics :{c.gateway_metrics_port} (gateway) "
            f":{c.metrics_port} (inference)")
        if c.web_dir.is_dir():
            say(f"web: {c.public_url}/")

    def watch(self) -> None:
        """Until interrupted: restart whatever crashed."""
        while True:
            for event in self.supervisor.check():
                say(event)
            time.sleep(0.25)

    def stop(self) -> None:
        self.supervisor.stop()
        if self.edge is not None:
            self.edge.cleanup()


def _raise_on_sigterm(signum, _frame):
    raise KeyboardInterrupt  # unwinds into the `finally` that stops the servers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clients.stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("serve", "run", "cluster"))
    args = parser.parse_args(argv)
    config = StackConfig.from_env(cluster=args.command == "cluster")
    stack = Stack(config, quiet=args.command == "run")
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    # Ctrl-C stops everything even when started from a script, whose background jobs inherit
    # an ignored SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        stack.start()
        if args.command == "run":
            from clients import chat

            return chat.main(["--target", f"{HOST}:{config.gateway_port}"]) or 0
        if args.command == "cluster":
            print(f"ready: {config.public_url}", flush=True)
        say("serving; Ctrl-C stops everything")
        stack.watch()
        return 0
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError, OSError, subprocess.CalledProcessError) as exc:
        say(f"error: {exc}")
        return 1
    finally:
        # a second SIGTERM or Ctrl-C must not cut the cleanup short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
        say("stopped")


if __name__ == "__main__":
    sys.exit(main())
