"""Settings of the serving processes: one object per process (gateway, inference), every
default declared once, here.

Flags, environment variables and defaults meet in one place: each field says its default,
its environment variable and its command-line flag. The CLIs build their argparse options
from these fields (`add_arguments`) and turn the parsed flags back into the object
(`from_args`); `from_env` gives the same object without a command line (the stack launcher,
tests). Precedence: flag > environment > default.

Also here, because several programs need the same number:
  - the message size limits (the largest legitimate request is ~8 MB: 1,000 texts of 2,000
    four-byte characters; a 10,000-row vector batch is 240 KB);
  - the port formula of inference workers (worker i listens on port+1+i besides the shared
    port);
  - the default number of inference workers.

Importable without grpc, TensorFlow or the gateway.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from recommender.schema import MAX_BATCH_ROWS

# ----------------------------------------------------------------------------- shared numbers

MIB = 1024 * 1024
# Receive limit of both servers. 1,000 texts x 2,000 characters x 4 bytes (emoji) is 8.0 MB, the
# largest request the contract allows; 8 MiB leaves ~0.4 MB for framing. Checked by gRPC from
# the message's length prefix, before it is decoded.
MAX_REQUEST_BYTES = 8 * MIB
# Send limit of both servers and the receive limit of clients: a 10,000-row answer with
# top_k=10 is ~0.7 MB; leave room.
MAX_RESPONSE_BYTES = 8 * MIB
# Clients and channels (the gateway's channel to inference, the Python client, the bench load
# generator) accept answers up to this size.
MAX_MESSAGE_BYTES = MAX_RESPONSE_BYTES

GATEWAY_PORT = 50051
INFERENCE_PORT = 8500
INFERENCE_METRICS_PORT = 9100
GATEWAY_METRICS_PORT = 9101
DEFAULT_CACHE_SIZE = 4096
MAX_DEFAULT_WORKERS = 4


def default_workers() -> int:
    """One inference worker per core (each has its own TensorFlow runtime and event loop),
    at most 4: beyond that a worker's ~600 MB buys nothing for a 10-product model."""
    return max(1, min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1))


def worker_port(port: int, index: int) -> int:
    """The port only inference worker `index` listens on (besides the shared `port`)."""
    return port + 1 + index


def worker_ports(port: int, workers: int) -> list[int]:
    return [worker_port(port, i) for i in range(workers)]


def worker_addresses(port: int, workers: int, host: str = "127.0.0.1") -> str:
    """'host:p1,host:p2,...': the gateway's --inference for a local inference server."""
    return ",".join(f"{host}:{p}" for p in worker_ports(port, workers))


# ----------------------------------------------------------------------------- field declarations


def setting(default: Any = dataclasses.MISSING, *, env: str | None = None, flag: str | None = None,
            help: str = "", choices: tuple[str, ...] | None = None, factory=None,
            hidden: bool = False) -> Any:
    """A settings field: its default, environment variable and command-line flag.

    `flag=None` with `env=None`: an internal field (no flag). `hidden`: a flag left out of
    --help."""
    metadata = {"env": env, "flag": flag, "help": help, "choices": choices, "hidden": hidden}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _kind(cls, f: dataclasses.Field) -> type:
    hints = {"int": int, "float": float, "str": str, "bool": bool, "str | None": str,
             "int | None": int, "float | None": float}
    kind = hints.get(f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "str"))
    if kind is None:
        raise TypeError(f"{cls.__name__}.{f.name}: unsupported settings type {f.type!r}")
    return kind


def _parse(kind: type, raw: str, name: str):
    if kind is bool:
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name} must be true or false, got {raw!r}")
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a {kind.__name__}, got {raw!r}") from None


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _env_value(cls, f: dataclasses.Field, environ: Mapping[str, str]):
    """The field's value from the environment, or its default."""
    name = f.metadata.get("env")
    raw = environ.get(name, "") if name else ""
    if raw.strip():
        return _parse(_kind(cls, f), raw, name)
    return _default(f)


class Settings:
    """Base of the per-process settings dataclasses."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides):
        """Defaults, then environment variables, then `overrides` (field names)."""
        environ = os.environ if environ is None else environ
        values = {f.name: _env_value(cls, f, environ) for f in dataclasses.fields(cls) if f.init}
        values.update(overrides)
        return cls(**values)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, environ: Mapping[str, str] | None = None,
                      choices: Mapping[str, tuple[str, ...]] | None = None) -> None:
        """One argparse option per field that has a flag, its default taken from the
        environment (shown in --help). `choices` adds or replaces a field's allowed values."""
        environ = os.environ if environ is None else environ
        for f in dataclasses.fields(cls):
            flag = f.metadata.get("flag")
            if not flag:
                continue
            kind = _kind(cls, f)
            env = f.metadata.get("env")
            help_text = f.metadata.get("help", "")
            if env:
                help_text = f"{help_text} (env {env})" if help_text else f"(env {env})"
            if f.metadata.get("hidden"):
                help_text = argparse.SUPPRESS
            allowed = (choices or {}).get(f.name) or f.metadata.get("choices")
            default = _env_value(cls, f, environ)
            if kind is bool:
                parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                                    default=default, help=help_text)
                continue
            parser.add_argument(flag, dest=f.name, type=kind, default=default, help=help_text,
                                **({"choices": allowed} if allowed else {}))

    @classmethod
    def from_args(cls, args: argparse.Namespace, **overrides):
        """The settings from parsed flags (fields without a flag keep environment/default)."""
        base = cls.from_env()
        values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
                  if f.metadata.get("flag") and hasattr(args, f.name)}
        values.update(overrides)
        return dataclasses.replace(base, **values)

    def to_json_dict(self) -> dict:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------- limits and security
# Both servers take the same limit and TLS/token fields (their own flags and environment names).


def _max_receive_bytes(prefix: str):
    return setting(MAX_REQUEST_BYTES, env=f"{prefix}_MAX_RECEIVE_BYTES", flag="--max-receive-bytes",
                   help="largest request message accepted, in bytes; checked from the message's "
                        "length prefix, before it is read and decoded")


def _max_concurrent_rpcs(prefix: str, default: int):
    return setting(default, env=f"{prefix}_MAX_CONCURRENT_RPCS", flag="--max-concurrent-rpcs",
                   help="RPCs (streams included) handled at once; more get RESOURCE_EXHAUSTED")


def _max_streams(prefix: str, default: int):
    return setting(default, env=f"{prefix}_MAX_STREAMS", flag="--max-streams",
                   help="RecommendStream calls open at once; more get RESOURCE_EXHAUSTED")


def _stream_idle_timeout(prefix: str):
    return setting(60.0, env=f"{prefix}_STREAM_IDLE_TIMEOUT_S", flag="--stream-idle-timeout-s",
                   help="a stream that sends no message for this many seconds is ended")


def _stream_max_duration(prefix: str):
    return setting(3600.0, env=f"{prefix}_STREAM_MAX_DURATION_S", flag="--stream-max-duration-s",
                   help="no stream stays open longer than this many seconds")


# TLS and caller tokens: behaviour in recommender/security.py; every field off by default.


def _tls_cert(prefix: str):
    return setting(None, env=f"{prefix}_TLS_CERT", flag="--tls-cert",
                   help="PEM certificate chain of this server (with --tls-key: serve TLS)")


def _tls_key(prefix: str):
    return setting(None, env=f"{prefix}_TLS_KEY", flag="--tls-key", help="PEM private key of --tls-cert")


def _tls_client_ca(prefix: str):
    return setting(None, env=f"{prefix}_TLS_CLIENT_CA", flag="--tls-client-ca",
                   help="PEM CA bundle: require client certificates signed by it (mTLS); a caller "
                        "without a token is then known by its certificate's common name")


def _insecure(prefix: str):
    return setting(False, env=f"{prefix}_INSECURE", flag="--insecure",
                   help="allow plaintext on a --host other machines can reach (without it such a "
                        "server refuses to start without --tls-cert/--tls-key)")


def _tokens_file(prefix: str):
    # One file for every server of a deployment, hence one environment name.
    return setting(None, env="RECOMMENDER_TOKENS_FILE", flag="--tokens-file",
                   help="file of 'caller-name: sha256-of-token' lines; callers then send "
                        "'authorization: Bearer <token>' (re-read when it changes; unset: no tokens)")


def _public_reflection(prefix: str):
    return setting(False, env=f"{prefix}_PUBLIC_REFLECTION", flag="--public-reflection",
                   help="answer server reflection without a caller token")


def _access_log(prefix: str, default: bool, why: str = ""):
    return setting(default, env=f"{prefix}_ACCESS_LOG", flag="--access-log",
                   help="one INFO line per call: method, code, ms, caller, request id (never the text)" + why)


# ----------------------------------------------------------------------------- the gateway


@dataclass(frozen=True)
class GatewaySettings(Settings):
    """Everything `python -m gateway serve` is configured with."""

    port: int = setting(GATEWAY_PORT, env="GATEWAY_PORT", flag="--port", help="gRPC port")
    host: str = setting("127.0.0.1", env="GATEWAY_HOST", flag="--host",
                        help="address to listen on; 0.0.0.0 for all interfaces")
    inference: str = setting(f"127.0.0.1:{INFERENCE_PORT}", env="GATEWAY_INFERENCE", flag="--inference",
                             help="inference server address(es) host:port or dns:///name:port "
                                  "(every address of the name, resolved again every --dns-refresh-s), "
                                  "comma-separated, balanced round-robin")
    vectorizer: str = setting("local", env="VECTORIZER", flag="--vectorizer",
                              help="how text becomes a vector")
    fallback: str = setting("local", env="GATEWAY_FALLBACK", flag="--fallback", choices=("local", "none"),
                            help="when Bedrock fails: answer with the local vectorizer, or UNAVAILABLE")
    bedrock_config: str | None = setting(
        None, env="BEDROCK_CONFIG", flag="--bedrock-config",
        help="JSON file with region, flowIdentifier, flowAliasIdentifier (no credentials: those "
             "come from the AWS default chain)")
    model_id: str | None = setting(None, env="BEDROCK_MODEL_ID", flag="--model-id",
                                   help="Bedrock Converse model id; default: Nova Pro through the "
                                        "region's inference profile (us./eu./apac.amazon.nova-pro-v1:0)")
    bedrock_timeout_s: float = setting(10.0, env="BEDROCK_TIMEOUT", flag="--bedrock-timeout",
                                       help="seconds per Bedrock attempt (less when the caller's "
                                            "deadline is nearer)")
    bedrock_check: bool = setting(False, env="BEDROCK_CHECK", flag="--bedrock-check",
                                  help="make one Bedrock call at start; refuse to start on a permanent "
                                       "error (access denied, validation, not found, credentials)")
    region: str | None = setting(None, env="AWS_REGION", flag="--region", help="AWS region")
    endpoint_url: str | None = setting(None, env="BEDROCK_ENDPOINT_URL", flag="--endpoint-url",
                                       help="override the Bedrock endpoint, e.g. a local fake")
    cache_size: int = setting(DEFAULT_CACHE_SIZE, env="GATEWAY_CACHE_SIZE", flag="--cache-size",
                              help="texts kept in the vectorizer LRU cache; 0 disables")
    metrics_port: int = setting(GATEWAY_METRICS_PORT, env="GATEWAY_METRICS_PORT", flag="--metrics-port",
                                help="Prometheus /metrics port; 0 disables")
    threads: int = setting(32, env="GATEWAY_THREADS", flag="--threads",
                           help="threads for blocking work: Bedrock calls, text batches")
    coalesce_in_flight: int = setting(
        1, env="GATEWAY_COALESCE_IN_FLIGHT", flag="--coalesce-in-flight",
        help="single Recommends forwarded at once; calls arriving while that many are in flight "
             "leave together as one RecommendBatch")
    grace_s: float = setting(5.0, env="GATEWAY_GRACE_S", flag="--grace",
                             help="seconds running RPCs get to finish on SIGTERM")
    log_level: str = setting("INFO", env="LOG_LEVEL", flag="--log-level",
                             help="DEBUG logs customer text; INFO and above never do")
    # The inference backend (gateway/backend.py).
    backend_timeout_s: float = setting(
        30.0, env="GATEWAY_BACKEND_TIMEOUT_S", flag="--backend-timeout-s",
        help="deadline of a call to inference when the caller set none")
    backend_try_timeout_s: float = setting(
        1.0, env="GATEWAY_BACKEND_TRY_TIMEOUT_S", flag="--backend-try-timeout-s",
        help="deadline of one try on one inference worker (a worker that does not answer in "
             "time is skipped and the call retried on another, within the caller's deadline)")
    health_interval_s: float = setting(1.0, env="GATEWAY_HEALTH_INTERVAL_S", flag="--health-interval-s",
                                       help="seconds between health checks of each inference worker")
    dns_refresh_s: float = setting(10.0, env="GATEWAY_DNS_REFRESH_S", flag="--dns-refresh-s",
                                   help="seconds between resolutions of dns:///name:port inference "
                                        "targets (new hosts behind the name join the rotation)")
    # Limits of the gateway's own server.
    max_receive_bytes: int = _max_receive_bytes("GATEWAY")
    max_concurrent_rpcs: int = _max_concurrent_rpcs("GATEWAY", 2048)
    max_streams: int = _max_streams("GATEWAY", 256)
    stream_idle_timeout_s: float = _stream_idle_timeout("GATEWAY")
    stream_max_duration_s: float = _stream_max_duration("GATEWAY")
    # TLS and tokens (recommender/security.py).
    tls_cert: str | None = _tls_cert("GATEWAY")
    tls_key: str | None = _tls_key("GATEWAY")
    tls_client_ca: str | None = _tls_client_ca("GATEWAY")
    insecure: bool = _insecure("GATEWAY")
    tokens_file: str | None = _tokens_file("GATEWAY")
    public_reflection: bool = _public_reflection("GATEWAY")
    access_log: bool = _access_log("GATEWAY", True)
    # The gateway's TLS and identity towards inference (client side of the channels).
    inference_ca: str | None = setting(
        None, env="GATEWAY_INFERENCE_CA", flag="--inference-ca",
        help="PEM CA bundle to verify the inference servers' certificates: TLS to inference")
    inference_cert: str | None = setting(
        None, env="GATEWAY_INFERENCE_CERT", flag="--inference-cert",
        help="PEM client certificate the gateway presents to inference (mTLS; with --inference-key)")
    inference_key: str | None = setting(
        None, env="GATEWAY_INFERENCE_KEY", flag="--inference-key", help="PEM private key of --inference-cert")
    inference_token_file: str | None = setting(
        None, env="GATEWAY_INFERENCE_TOKEN_FILE", flag="--inference-token-file",
        help="file holding the token the gateway presents to inference (re-read when it changes)")


# ----------------------------------------------------------------------------- the inference server

BACKENDS = ("auto", "tflite", "xla", "function")


@dataclass(frozen=True)
class InferenceSettings(Settings):
    """Everything `python -m inference` is configured with; the supervisor hands the same
    object to its workers."""

    models_dir: str = setting("models", env="MODELS_DIR", flag="--models-dir",
                              help="model repository: <dir>/recommender/<version>/")
    host: str = setting("127.0.0.1", env="INFERENCE_HOST", flag="--host", help="address to listen on")
    port: int = setting(INFERENCE_PORT, env="INFERENCE_PORT", flag="--port",
                        help="shared port of all workers; worker i also listens on port+1+i")
    workers: int = setting(env="WORKERS", flag="--workers", factory=default_workers,
                           help=f"worker processes (default: one per CPU core, at most {MAX_DEFAULT_WORKERS})")
    metrics_port: int = setting(INFERENCE_METRICS_PORT, env="METRICS_PORT", flag="--metrics-port",
                                help="Prometheus /metrics of all workers (0 disables)")
    poll_interval_s: float = setting(1.0, env="INFERENCE_POLL_INTERVAL_S", flag="--poll-interval-s",
                                     help="seconds between looks for new model versions")
    max_batch_size: int = setting(256, env="INFERENCE_MAX_BATCH_SIZE", flag="--max-batch-size",
                                  help="dynamic batching: most single requests per model call")
    batch_adaptive: bool = setting(
        True, env="INFERENCE_BATCH_ADAPTIVE", flag="--batch-adaptive",
        help="open the batch window only once Recommend calls overlap (two in flight at once; a "
             "lone caller never waits); --no-batch-adaptive always waits up to --batch-timeout-ms "
             "for company")
    batch_timeout_ms: float = setting(
        1.0, env="INFERENCE_BATCH_TIMEOUT_MS", flag="--batch-timeout-ms",
        help="dynamic batching: longest wait for more single requests to share a model call, used "
             "only while calls overlap (a lone caller never waits); 0 scores each request at once "
             "(see inference/batching.py)")
    backend: str = setting("auto", env="INFERENCE_BACKEND", flag="--backend", choices=BACKENDS,
                           help="auto = TFLite interpreter when it converts and matches, else "
                                "compiled function")
    drain_timeout_s: float = setting(10.0, env="INFERENCE_DRAIN_TIMEOUT_S", flag="--drain-timeout-s",
                                     help="seconds in-flight calls get to finish on SIGTERM")
    log_level: str = setting("INFO", env="LOG_LEVEL", flag="--log-level", help="log level")
    max_batch_rows: int = setting(MAX_BATCH_ROWS)  # the contract's cap (no flag)
    # Limits of each worker's server.
    max_receive_bytes: int = _max_receive_bytes("INFERENCE")
    max_concurrent_rpcs: int = _max_concurrent_rpcs("INFERENCE", 1024)
    max_streams: int = _max_streams("INFERENCE", 128)
    stream_idle_timeout_s: float = _stream_idle_timeout("INFERENCE")
    stream_max_duration_s: float = _stream_max_duration("INFERENCE")
    # TLS and tokens (recommender/security.py).
    tls_cert: str | None = _tls_cert("INFERENCE")
    tls_key: str | None = _tls_key("INFERENCE")
    tls_client_ca: str | None = _tls_client_ca("INFERENCE")
    insecure: bool = _insecure("INFERENCE")
    tokens_file: str | None = _tokens_file("INFERENCE")
    public_reflection: bool = _public_reflection("INFERENCE")
    # Off by default: the gateway and Envoy already log every call with the same request id, and a
    # line per call is work on each worker's event loop. (It no longer defeats dynamic batching:
    # the batcher counts calls in flight, 17-25 model calls for 256 rows with it on, 16-21 off.)
    # Request ids still appear on every other line about a call; `make cluster` turns it on.
    access_log: bool = _access_log("INFERENCE", False, "; off by default on inference: the gateway "
                                   "and Envoy log every call with the same request id")

    def worker_port(self, index: int) -> int:
        """The port only worker `index` listens on (besides the shared port)."""
        return worker_port(self.port, index)

    def worker_ports(self) -> list[int]:
        return worker_ports(self.port, self.workers)
