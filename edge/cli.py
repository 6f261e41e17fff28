"""Command line of the edge.

    python -m edge config --gateways 10.0.0.5:50051,10.0.0.6:50051 --host 0.0.0.0 --port 8443 \\
        --tls-cert server.pem --tls-key server.key --descriptor-set /etc/edge/recommender.pb > envoy.yaml
    python -m edge run --gateways 127.0.0.1:50051 --port 8080        # Envoy in the foreground

`config` prints the Envoy YAML rendered from edge/envoy.yaml.template and writes the protobuf
descriptor set the JSON transcoder needs to --descriptor-set; `run` renders into a temporary
folder and runs Envoy until SIGTERM/Ctrl-C. Every path in the output is absolute."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from edge.config import WEB_DIR, EdgeConfig, render
from edge.runner import EdgeProcess, envoy_command


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gateways", required=True,
                        help="gateway replicas, host:port[,host:port...] (round robin, health-checked)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address of the public port; anything but loopback needs --tls-cert")
    parser.add_argument("--port", type=int, default=8443, help="public port: gRPC, gRPC-Web, JSON, the page")
    parser.add_argument("--tls-cert", type=Path, help="server certificate chain (PEM) of the public port")
    parser.add_argument("--tls-key", type=Path, help="its private key (PEM)")
    parser.add_argument("--upstream-ca", type=Path,
                        help="speak TLS to the gateways, checking their certificates against this CA")
    parser.add_argument("--upstream-cert", type=Path, help="client certificate Envoy shows the gateways (mTLS)")
    parser.add_argument("--upstream-key", type=Path, help="its private key")
    parser.add_argument("--upstream-sni", default="localhost", help="server name asked of the gateways")
    parser.add_argument("--admin-port", type=int, default=9901, help="Envoy admin interface on 127.0.0.1")
    parser.add_argument("--access-log", type=Path, default=Path("logs/edge-access.log"),
                        help="JSON lines: method, path, statuses, duration, caller, request id")
    parser.add_argument("--web-dir", type=Path, default=WEB_DIR,
                        help="files served as the web page (index.html answers /)")
    parser.add_argument("--per-try-timeout", type=float, default=10.0,
                        help="seconds one attempt of a single call may take before it is retried elsewhere")
    parser.add_argument("--retries", type=int, default=3, help="attempts after the first, on other replicas")


def _config_from(args: argparse.Namespace, **overrides) -> EdgeConfig:
    return EdgeConfig(
        gateways=args.gateways.split(","), port=args.port, host=args.host, tls_cert=args.tls_cert,
        tls_key=args.tls_key, upstream_ca=args.upstream_ca, upstream_cert=args.upstream_cert,
        upstream_key=args.upstream_key, upstream_sni=args.upstream_sni, admin_port=args.admin_port,
        access_log=args.access_log, web_dir=args.web_dir, per_try_timeout_s=args.per_try_timeout,
        num_retries=args.retries, **overrides)


def _interrupt(signum, _frame):
    raise KeyboardInterrupt  # unwinds into the `finally` that stops Envoy and removes its files


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m edge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    config = commands.add_parser("config", help="print the Envoy config (YAML)",
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_config_flags(config)
    config.add_argument("--descriptor-set", type=Path, default=Path("build/edge/recommender.pb"),
                        help="where to write the descriptor set built from protos/")
    run = commands.add_parser("run", help="run Envoy with a freshly rendered config",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_config_flags(run)
    run.add_argument("--log", type=Path, help="Envoy's own log file (default: this terminal)")
    commands.add_parser("binary", help="print the path of the Envoy binary")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "binary":
        print(envoy_command(Path("envoy.yaml"))[0])
        return 0
    try:
        if args.command == "config":
            sys.stdout.write(render(_config_from(args, descriptor_set=args.descriptor_set)))
            return 0
        edge = EdgeProcess(_config_from(args), log_path=args.log)
    except ValueError as exc:
        parser.error(str(exc))
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        edge.start()
        edge.wait_ready(timeout=60, healthy_gateways=0)
        scheme = "https" if edge.config.tls else "http"
        print(f"[edge] serving {scheme}://{args.host}:{args.port} -> {args.gateways}", file=sys.stderr, flush=True)
        while edge.poll() is None:
            time.sleep(0.5)
        return edge.poll() or 1
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"[edge] error: {exc}", file=sys.stderr)
        return 1
    finally:
        edge.stop()
