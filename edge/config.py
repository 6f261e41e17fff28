"""The edge's Envoy config: ONE template (edge/envoy.yaml.template) filled in from an
EdgeConfig, plus the two files it points at that are built from the repository at config
time: the protobuf descriptor set the JSON transcoder reads (from protos/, with their
google.api.http annotations) and the web page's files (routes generated from web/).

    config = EdgeConfig(gateways=["127.0.0.1:50051", "127.0.0.1:50052"], port=8443,
                        tls_cert=Path("server.pem"), tls_key=Path("server.key"))
    text = render(config)        # YAML, every path absolute

Rendering rules (so the template stays plain YAML): each ${name} becomes a JSON value (JSON
is YAML, and strings come out quoted), a key whose value renders to null is dropped, a list
item that renders to a list is spliced into its parent list.
"""

from __future__ import annotations

import json
import mimetypes
import string
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "envoy.yaml.template"
PROTOS_DIR = ROOT / "protos"
WEB_DIR = ROOT / "web"
API_PACKAGE = "recommender.v1"

# The largest legitimate request is ~8 MB (1,000 texts of 2,000 four-byte characters); Envoy
# buffers a JSON body to transcode it and any request it may retry, so the buffer holds one.
BUFFER_LIMIT_BYTES = 10 * 1024 * 1024
# gRPC status codes (and connection events) after which a call is sent to another replica.
# `cancelled`: a gateway flooded with new streams cancels a few unrelated calls inside grpc
# before they reach our code (make soak, stream flood: 3-4 CANCELLED in 1-9 ms per flood in 3
# of 5 runs); every RPC is idempotent, and a caller that cancels is never retried.
RETRY_ON = "unavailable,cancelled,reset,connect-failure,refused-stream"
TEXT_TYPES = ("text/", "application/javascript", "application/json", "image/svg+xml",
              "application/manifest+json")
# What a page is made of; anything else under web/ (build scripts, notes) is never served.
WEB_SUFFIXES = (".html", ".js", ".mjs", ".css", ".svg", ".png", ".jpg", ".webp", ".ico", ".json",
                ".webmanifest", ".woff2", ".txt")


@dataclass
class EdgeConfig:
    """Everything that differs between one edge and another. Paths may be relative: they are
    made absolute when rendered (Envoy runs with any working directory)."""

    gateways: Sequence[str]  # host:port of each gateway replica
    port: int = 8443
    host: str = "127.0.0.1"  # 0.0.0.0 on a host that takes outside traffic (needs TLS)
    tls_cert: Path | None = None  # server certificate chain (PEM) of the public port
    tls_key: Path | None = None
    upstream_ca: Path | None = None  # when set, Envoy -> gateways is TLS checked against this CA
    upstream_cert: Path | None = None  # ... and presents this client certificate (mTLS)
    upstream_key: Path | None = None
    upstream_sni: str = "localhost"
    admin_port: int = 9901  # Envoy's admin interface, always on 127.0.0.1
    access_log: Path = Path("logs/edge-access.log")
    health_event_log: Path | None = None
    descriptor_set: Path = Path("build/edge/recommender.pb")
    protos_dir: Path = PROTOS_DIR
    web_dir: Path | None = WEB_DIR  # None: no page
    per_try_timeout_s: float = 10.0
    batch_per_try_timeout_s: float = 60.0
    call_timeout_s: float = 120.0  # a call without grpc-timeout; with one, the caller's wins
    num_retries: int = 3
    health_interval_s: float = 1.0
    health_timeout_s: float = 1.0
    connect_timeout_s: float = 1.0
    stream_idle_timeout_s: float = 300.0
    max_connections: int = 10_000
    extra_services: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        self.gateways = [parse_address(g) for g in self.gateways]
        if not self.gateways:
            raise ValueError("the edge needs at least one gateway host:port")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if (self.upstream_cert is None) != (self.upstream_key is None):
            raise ValueError("--upstream-cert and --upstream-key go together")
        if self.upstream_cert is not None and self.upstream_ca is None:
            raise ValueError("--upstream-cert needs --upstream-ca (the CA the gateways' certificates chain to)")
        if self.tls_cert is None and not is_loopback(self.host):
            raise ValueError(f"refusing to serve plaintext on {self.host}: give --tls-cert/--tls-key "
                             "(plaintext is for 127.0.0.1 only)")

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


def parse_address(address: str | tuple[str, int]) -> tuple[str, int]:
    if isinstance(address, tuple):
        return address
    host, sep, port = str(address).strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"gateway address {address!r} must be host:port, e.g. 127.0.0.1:50051")
    return host, int(port)


def parse_addresses(spec: str) -> list[tuple[str, int]]:
    return [parse_address(part) for part in spec.split(",") if part.strip()]


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"


# ----------------------------------------------------------------------------- descriptor set

def _googleapis_include() -> Path:
    """The folder holding google/api/annotations.proto (the googleapis-common-protos wheel)."""
    import google.api.annotations_pb2 as annotations

    return Path(annotations.__file__).resolve().parents[2]


def build_descriptor_set(out: Path, protos_dir: Path = PROTOS_DIR) -> list[str]:
    """Compile every .proto under `protos_dir` with its imports into one FileDescriptorSet at
    `out` (what grpc_json_transcoder reads). Returns the API's service names found in it."""
    import grpc_tools
    from google.protobuf import descriptor_pb2

    protos = sorted(str(p.relative_to(protos_dir)) for p in protos_dir.rglob("*.proto"))
    if not protos:
        raise ValueError(f"no .proto files under {protos_dir}")
    out.parent.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "grpc_tools.protoc", f"-I{protos_dir}", f"-I{_googleapis_include()}",
            f"-I{Path(grpc_tools.__file__).parent / '_proto'}",
            "--include_imports", f"--descriptor_set_out={out}", *protos]
    # A child process, not grpc_tools.protoc.main() in ours: protoc's bundled C++ protobuf
    # beside the already-loaded upb runtime (and grpc's threads) crashed a long-lived process
    # (a segfault in the full test run), and a failure here must be an error, not a crash.
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"protoc could not build the descriptor set from {protos_dir}: "
                           f"{result.stderr.strip()[-2000:]}")
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return sorted(f"{f.package}.{s.name}" for f in descriptor_set.file for s in f.service
                  if f.package == API_PACKAGE)


# ----------------------------------------------------------------------------- web page

def content_type(path: Path) -> str:
    guessed = {".js": "application/javascript", ".mjs": "application/javascript",
               ".webmanifest": "application/manifest+json", ".woff2": "font/woff2"}.get(path.suffix)
    kind = guessed or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"{kind}; charset=utf-8" if kind.startswith(TEXT_TYPES) else kind


def web_files(web_dir: Path | None) -> list[tuple[str, Path]]:
    """(URL path, file) for every servable file under web_dir; index.html also answers `/`."""
    if web_dir is None or not web_dir.is_dir():
        return []
    found = []
    for path in sorted(web_dir.rglob("*")):
        relative = path.relative_to(web_dir)
        if (not path.is_file() or path.suffix not in WEB_SUFFIXES
                or any(part.startswith(".") for part in relative.parts)):
            continue
        url = "/" + relative.as_posix()
        found.append((url, path.resolve()))
        if relative.as_posix() == "index.html":
            found.append(("/", path.resolve()))
    return found


def web_routes(files: list[tuple[str, Path]]) -> list[dict]:
    routes = []
    for url, path in files:
        routes.append({
            "match": {"path": url, "headers": [
                {"name": ":method", "string_match": {"safe_regex": {"regex": "GET|HEAD"}}}]},
            "direct_response": {"status": 200, "body": {"filename": str(path)}},
            "response_headers_to_add": [
                {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
                for key, value in (("content-type", content_type(path)),
                                   ("cache-control", "no-cache"),
                                   ("x-content-type-options", "nosniff"))],
        })
    return routes


# ----------------------------------------------------------------------------- rendering

def _tls_context(kind: str, certificate: Path | None, key: Path | None, ca: Path | None,
                 sni: str | None, alpn: list[str]) -> dict:
    common: dict = {"alpn_protocols": alpn}
    if certificate is not None:
        common["tls_certificates"] = [{"certificate_chain": {"filename": str(certificate.resolve())},
                                       "private_key": {"filename": str(key.resolve())}}]
    if ca is not None:
        validation: dict = {"trusted_ca": {"filename": str(ca.resolve())}}
        if sni:  # the gateway's certificate must name the host we asked for, not just chain to the CA
            validation["match_typed_subject_alt_names"] = [{"san_type": "DNS", "matcher": {"exact": sni}}]
        common["validation_context"] = validation
    context: dict = {"@type": f"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.{kind}",
                     "common_tls_context": common}
    if sni:
        context["sni"] = sni
    return {"name": "envoy.transport_sockets.tls", "typed_config": context}


def template_values(config: EdgeConfig, services: Sequence[str]) -> dict:
    files = web_files(config.web_dir)
    largest = max((path.stat().st_size for _, path in files), default=0)
    downstream_tls = upstream_tls = None
    if config.tls:
        downstream_tls = _tls_context("DownstreamTlsContext", config.tls_cert, config.tls_key, None,
                                      None, ["h2", "http/1.1"])
    if config.upstream_ca is not None:
        upstream_tls = _tls_context("UpstreamTlsContext", config.upstream_cert, config.upstream_key,
                                    config.upstream_ca, config.upstream_sni, ["h2"])
    return {
        "admin_host": "127.0.0.1",
        "admin_port": config.admin_port,
        "listen_host": config.host,
        "listen_port": config.port,
        "buffer_limit_bytes": BUFFER_LIMIT_BYTES,
        "max_connections": config.max_connections,
        "downstream_tls": downstream_tls,
        "upstream_tls": upstream_tls,
        "stream_idle_timeout": _duration(config.stream_idle_timeout_s),
        "access_log_path": str(config.access_log.resolve()),
        "health_event_log_path": str(config.health_event_log.resolve()) if config.health_event_log else None,
        "descriptor_set_path": str(config.descriptor_set.resolve()),
        "transcoded_services": [*services, *config.extra_services],
        # Envoy refuses bodies above this size (default 4 KiB); the page's files must fit.
        "max_direct_response_body_bytes": max(4096, largest + 1024),
        "web_routes": web_routes(files),
        "call_timeout": _duration(config.call_timeout_s),
        "per_try_timeout": _duration(config.per_try_timeout_s),
        "batch_per_try_timeout": _duration(config.batch_per_try_timeout_s),
        "retry_on": RETRY_ON,
        "num_retries": config.num_retries,
        "connect_timeout": _duration(config.connect_timeout_s),
        "health_interval": _duration(config.health_interval_s),
        "health_timeout": _duration(config.health_timeout_s),
        "gateway_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}
            for host, port in config.gateways],
    }


def _tidy(node):
    """Drop null-valued keys, splice list items that are lists (see the module docstring)."""
    if isinstance(node, dict):
        return {k: _tidy(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        out = []
        for item in node:
            if isinstance(item, list):
                out.extend(_tidy(i) for i in item)
            else:
                out.append(_tidy(item))
        return out
    return node


def render_values(values: dict, template: Path = TEMPLATE) -> dict:
    text = string.Template(template.read_text()).substitute(
        {name: json.dumps(value, ensure_ascii=False) for name, value in values.items()})
    return _tidy(yaml.safe_load(text))


def render(config: EdgeConfig, build_descriptor: bool = True) -> str:
    """The Envoy YAML for `config`; builds the descriptor set first unless told not to (then
    the file must exist and name the services)."""
    if build_descriptor:
        services = build_descriptor_set(config.descriptor_set, config.protos_dir)
    else:
        services = services_in(config.descriptor_set)
    document = render_values(template_values(config, services))
    header = ("# Generated by `python -m edge config` from edge/envoy.yaml.template; "
              "do not edit, render again.\n")
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)


def services_in(descriptor_set: Path) -> list[str]:
    from google.protobuf import descriptor_pb2

    parsed = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    return sorted(f"{f.package}.{s.name}" for f in parsed.file for s in f.service if f.package == API_PACKAGE)
