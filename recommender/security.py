"""Security shared by the gateway and the inference server: TLS credentials, the
"no plaintext on a public address" rule, caller tokens, and the ONE server interceptor that
authenticates each call and stamps it with its caller and request id.

Tokens file (`--tokens-file`, re-read when it changes):

    # caller-name: sha256 of the token, hex
    dev: 5f2b…64 hex digits
    gateway: 9a1c…

Only hashes are stored, so the file is not a secret by itself; the raw token travels as
`authorization: Bearer <token>` metadata. A caller may have several lines (token rotation).
Lookup hashes the presented token and compares it with EVERY line using
hmac.compare_digest, so the time taken says nothing about which line was close.

Rules of the interceptor (CallInterceptor):
  - grpc.health.v1 needs no token (load balancers probe it) and is not logged;
  - server reflection needs a token unless `public_reflection`;
  - every other method needs a known token when a tokens file is configured; without one
    auth is off and callers are `anonymous` (the single-machine `make serve` path);
  - a missing token is UNAUTHENTICATED "missing bearer token: send 'authorization: Bearer
    <token>'", a wrong one UNAUTHENTICATED "unknown token";
  - every call gets a request id (recommender.request_ids); caller and id go into the
    context variables the log filter reads, into the trailing metadata (`x-caller`,
    `x-request-id`), into one access-log line per call (`event=rpc method=… code=… ms=…
    caller=… request_id=…`) and into the `<prefix>_rpcs_by_caller_total{caller,method,code}`
    counter.

Identity between gateway and inference: the gateway calls inference as ITSELF, never with
the end caller's token. On a server that requires client certificates (`--tls-client-ca`,
mTLS) a call without a token is accepted as the common name of its verified certificate
(edge.certs makes one named `gateway`): the TLS handshake already proved it holds a key the
deployment's CA certified. Without mTLS the gateway presents its own token
(`--inference-token-file`, a caller such as `gateway` in inference's tokens file). A token,
when sent, always decides. The request id links the two hops in the logs.

The access log is the `recommender.access` logger (INFO); `--no-access-log` raises it to
WARNING (`configure_access_log`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import ipaddress
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc

from recommender import request_ids

log = logging.getLogger("recommender.security")
access_log = logging.getLogger("recommender.access")

MISSING_TOKEN = "missing bearer token: send 'authorization: Bearer <token>'"
UNKNOWN_TOKEN = "unknown token"
ANONYMOUS = "anonymous"  # caller name when auth is off
UNAUTHENTICATED_CALLER = "unauthenticated"  # metrics label of rejected calls

HEALTH_PREFIX = "/grpc.health.v1.Health/"
REFLECTION_PREFIXES = ("/grpc.reflection.v1alpha.ServerReflection/", "/grpc.reflection.v1.ServerReflection/")

# A caller name ends up in metrics labels and log lines: keep it a plain word.
_CALLER_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_TOKEN_LINE = re.compile(rf"({_CALLER_NAME})\s*:\s*([0-9a-fA-F]{{64}})")


class SecurityConfigError(ValueError):
    """A TLS/token setting that cannot work; the message names the flag and the fix."""


# ------------------------------------------------------------------------------- tokens


def hash_token(token: str) -> str:
    """The form a token is stored in: sha256 of its UTF-8 bytes, lowercase hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_line(caller: str, token: str) -> str:
    """One tokens-file line for `caller` holding `token`."""
    if not re.fullmatch(_CALLER_NAME, caller):
        raise ValueError(f"caller name {caller!r} must be letters, digits, '.', '_' or '-' (at most 64)")
    return f"{caller}: {hash_token(token)}"


def parse_tokens(text: str, source: str = "tokens file") -> list[tuple[str, str]]:
    """[(caller, sha256 hex)] from a tokens file's text. Blank lines and `#` comments are
    skipped; anything else that is not `name: 64-hex-digits` is an error naming the line."""
    entries: list[tuple[str, str]] = []
    owners: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _TOKEN_LINE.fullmatch(line)
        if match is None:
            raise SecurityConfigError(
                f"{source} line {number}: expected 'caller-name: <sha256 of the token, 64 hex digits>', "
                f"got {_redact(line)!r}")
        caller, digest = match.group(1), match.group(2).lower()
        if owners.get(digest, caller) != caller:
            raise SecurityConfigError(
                f"{source} line {number}: the same token hash is listed for {owners[digest]!r} and {caller!r}")
        owners[digest] = caller
        entries.append((caller, digest))
    return entries


def _redact(line: str) -> str:
    """A bad line for an error message: a raw token pasted by mistake must not be echoed."""
    name, sep, rest = line.partition(":")
    return f"{name}{sep} <{len(rest.strip())} characters>" if sep else f"<{len(line)} characters>"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `authorization: Bearer <token>` value (scheme case-insensitive)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class TokenStore:
    """The accepted tokens, from a `caller-name: sha256` file that is re-read when it changes.

    The file is stat'ed at most every `check_interval_s` (a few µs per call); when its size,
    modification time or inode changed it is parsed again. A file that became unreadable or
    malformed keeps the previous tokens (logged as an error): a bad edit must neither lock
    every caller out nor open the door."""

    def __init__(self, path: str | os.PathLike, check_interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.path = Path(path)
        self.check_interval_s = check_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        try:
            stat = self.path.stat()
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SecurityConfigError(f"--tokens-file {self.path}: {exc.strerror or exc}") from None
        self._entries = tuple((c, d.encode("ascii")) for c, d in parse_tokens(text, f"--tokens-file {self.path}"))
        self._signature = self._signature_of(stat)
        self._next_check = clock() + check_interval_s
        log.info("event=tokens_loaded path=%s callers=%d", self.path, len(self.callers()))

    @staticmethod
    def _signature_of(stat: os.stat_result) -> tuple[int, int, int]:
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def callers(self) -> list[str]:
        return sorted({caller for caller, _ in self._entries})

    def reload_if_changed(self, force: bool = False) -> bool:
        """Re-read the file when it changed; True when new tokens were installed."""
        now = self._clock()
        if not force and now < self._next_check:
            return False
        with self._lock:
            self._next_check = now + self.check_interval_s
            try:
                stat = self.path.stat()
                if not force and self._signature_of(stat) == self._signature:
                    return False
                text = self.path.read_text(encoding="utf-8")
                entries = parse_tokens(text, f"--tokens-file {self.path}")
            except (OSError, SecurityConfigError) as exc:
                log.error("event=tokens_reload_failed path=%s reason=%r; keeping the previous %d callers",
                          self.path, str(exc), len(self.callers()))
                return False
            self._entries = tuple((c, d.encode("ascii")) for c, d in entries)
            self._signature = self._signature_of(stat)
        log.info("event=tokens_reloaded path=%s callers=%d", self.path, len(self.callers()))
        return True

    def caller_for(self, token: str) -> str | None:
        """The caller owning `token`, or None. Compares against every entry, constant-time."""
        self.reload_if_changed()
        digest = hash_token(token).encode("ascii")
        found = None
        for caller, expected in self._entries:  # no early exit: the time does not depend on the match
            if hmac.compare_digest(digest, expected):
                found = caller
        return found


class SecretFile:
    """A file holding one secret (a token the gateway presents to inference), re-read when
    it changes, so a rotated token is used without a restart."""

    def __init__(self, path: str | os.PathLike, what: str = "--inference-token-file",
                 check_interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.path = Path(path)
        self.what = what
        self.check_interval_s = check_interval_s
        self._clock = clock
        self._value, self._signature = self._read()
        self._next_check = clock() + check_interval_s

    def _read(self) -> tuple[str, tuple[int, int, int]]:
        try:
            stat = self.path.stat()
            value = self.path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecurityConfigError(f"{self.what} {self.path}: {exc.strerror or exc}") from None
        if not value or any(c.isspace() for c in value):
            raise SecurityConfigError(f"{self.what} {self.path}: must hold one token (no spaces), "
                                      f"got {'nothing' if not value else 'several words'}")
        return value, (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def value(self) -> str:
        now = self._clock()
        if now >= self._next_check:
            self._next_check = now + self.check_interval_s
            try:
                stat = self.path.stat()
                if (stat.st_mtime_ns, stat.st_size, stat.st_ino) != self._signature:
                    self._value, self._signature = self._read()
                    log.info("event=secret_reloaded what=%s", self.what)
            except (OSError, SecurityConfigError) as exc:
                log.error("event=secret_reload_failed what=%s reason=%r; keeping the previous value",
                          self.what, str(exc))
        return self._value


# ------------------------------------------------------------------------------- TLS


def _read_pem(path: str | os.PathLike | None, flag: str) -> bytes:
    if not path:
        raise SecurityConfigError(f"{flag} is required here")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SecurityConfigError(f"{flag} {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data:
        raise SecurityConfigError(f"{flag} {path}: not a PEM file (no '-----BEGIN' line)")
    return data


@dataclass(frozen=True)
class ServerTls:
    """TLS of a server: its certificate and key, and optionally the CA whose client
    certificates it requires (mTLS)."""

    cert: str
    key: str
    client_ca: str | None = None

    @classmethod
    def from_flags(cls, cert: str | None, key: str | None, client_ca: str | None) -> ServerTls | None:
        """None when no TLS flag is set; an error for a half-configured pair."""
        if not cert and not key:
            if client_ca:
                raise SecurityConfigError("--tls-client-ca needs --tls-cert and --tls-key (client "
                                          "certificates are checked during the TLS handshake)")
            return None
        if not cert or not key:
            missing = "--tls-key" if cert else "--tls-cert"
            raise SecurityConfigError(f"TLS needs both --tls-cert and --tls-key; {missing} is missing")
        return cls(cert, key, client_ca or None)

    def credentials(self) -> grpc.ServerCredentials:
        cert = _read_pem(self.cert, "--tls-cert")
        key = _read_pem(self.key, "--tls-key")
        client_ca = _read_pem(self.client_ca, "--tls-client-ca") if self.client_ca else None
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None)


@dataclass(frozen=True)
class ChannelTls:
    """TLS of a client channel: the CA to verify the server with, and optionally a client
    certificate and key (for a server that requires them)."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    flag_prefix: str = "--inference"

    @classmethod
    def from_flags(cls, ca: str | None, cert: str | None, key: str | None,
                   flag_prefix: str = "--inference") -> ChannelTls | None:
        if not ca and not cert and not key:
            return None
        if bool(cert) != bool(key):
            missing = f"{flag_prefix}-key" if cert else f"{flag_prefix}-cert"
            raise SecurityConfigError(f"a client certificate needs both {flag_prefix}-cert and "
                                      f"{flag_prefix}-key; {missing} is missing")
        return cls(ca or None, cert or None, key or None, flag_prefix)

    def credentials(self) -> grpc.ChannelCredentials:
        ca = _read_pem(self.ca, f"{self.flag_prefix}-ca") if self.ca else None  # None: system roots
        cert = _read_pem(self.cert, f"{self.flag_prefix}-cert") if self.cert else None
        key = _read_pem(self.key, f"{self.flag_prefix}-key") if self.key else None
        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost` only reach this machine."""
    host = host.strip().strip("[]")
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_listen_address(host: str, tls: bool, insecure: bool, program: str = "server") -> None:
    """Refuse plaintext on an address other machines can reach, unless `insecure`."""
    if tls or insecure or is_loopback(host):
        return
    raise SecurityConfigError(
        f"{program}: refusing to listen on {host} without TLS: anyone who reaches that address could "
        f"call it in plaintext. Pass --tls-cert and --tls-key (make certs creates dev ones), or "
        f"--insecure to serve plaintext anyway")


def add_port(server, address: str, tls: ServerTls | None, credentials: grpc.ServerCredentials | None = None) -> int:
    """Listen on `address` with TLS when configured; returns the bound port (0 = failed)."""
    if tls is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, credentials or tls.credentials())


# ------------------------------------------------------------------------------- interceptor


def _short(method: str) -> str:
    """'/recommender.v1.RecommendService/Recommend' -> 'RecommendService/Recommend'."""
    service, _, name = method.rpartition("/")
    return f"{service.rsplit('.', 1)[-1]}/{name}" if service else method


def _read_metadata(metadata: Iterable[tuple[str, str]] | None) -> tuple[str | None, str | None]:
    """(authorization, x-request-id) from the call's metadata."""
    authorization = request_id = None
    for key, value in metadata or ():
        if key == "authorization":
            authorization = value
        elif key == request_ids.HEADER:
            request_id = value
    return authorization, request_id


def certificate_caller(context) -> str | None:
    """The common name of the call's verified client certificate, as a caller name."""
    try:
        names = context.auth_context().get("x509_common_name") or ()
    except Exception:  # noqa: BLE001 - no TLS, or a context without auth data
        return None
    if not names:
        return None
    name = names[0].decode("utf-8", "replace") if isinstance(names[0], bytes) else str(names[0])
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64]
    return name or None


def configure_access_log(enabled: bool) -> None:
    """--access-log / --no-access-log: the `recommender.access` logger at INFO or WARNING."""
    access_log.setLevel(logging.NOTSET if enabled else logging.WARNING)


# ------------------------------------------------------------------------------- from settings


def server_tls(settings) -> ServerTls | None:
    return ServerTls.from_flags(settings.tls_cert, settings.tls_key, settings.tls_client_ca)


def inference_channel_tls(settings) -> ChannelTls | None:
    """The gateway's TLS towards inference (--inference-ca/--inference-cert/--inference-key)."""
    return ChannelTls.from_flags(settings.inference_ca, settings.inference_cert, settings.inference_key)


def check_settings(settings, program: str) -> None:
    """Everything that can be wrong with a server's TLS/token settings, found before it
    starts (files readable and PEM, pairs complete, the tokens file valid, no plaintext on a
    public address). Raises SecurityConfigError naming the flag."""
    tls = server_tls(settings)
    if tls is not None:
        tls.credentials()
    check_listen_address(settings.host, tls is not None, settings.insecure, program)
    if settings.tokens_file:
        TokenStore(settings.tokens_file)
    if hasattr(settings, "inference_ca"):
        channel = inference_channel_tls(settings)
        if channel is not None:
            channel.credentials()
        if settings.inference_token_file:
            SecretFile(settings.inference_token_file)


def call_interceptor(settings, metrics_prefix: str | None) -> CallInterceptor:
    """The server's CallInterceptor from its settings; sets the access log on or off."""
    configure_access_log(settings.access_log)
    tokens = TokenStore(settings.tokens_file) if settings.tokens_file else None
    return CallInterceptor(tokens, public_reflection=settings.public_reflection,
                           client_certificates=bool(settings.tls_cert and settings.tls_client_ca),
                           metrics_prefix=metrics_prefix)


class _Rejected(Exception):
    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.message = message
        self.reason = reason


_CALLER_COUNTERS: dict[str, object] = {}


def _caller_counter(prefix: str):
    """`<prefix>_rpcs_by_caller_total`, registered once per process (tests build several
    servers in one process)."""
    counter = _CALLER_COUNTERS.get(prefix)
    if counter is None:
        from prometheus_client import Counter

        counter = _CALLER_COUNTERS[prefix] = Counter(
            f"{prefix}_rpcs_by_caller_total",
            "RPCs by authenticated caller (anonymous when auth is off, unauthenticated for "
            "rejected calls), method and gRPC status code.",
            ["caller", "method", "code"])
    return counter


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates each call and gives it a caller and a request id (see module docs).

    `tokens=None` turns authentication off. `metrics_prefix` names the caller counter
    (`<prefix>_rpcs_by_caller_total`; None: no counter); prometheus_client is imported
    here, so the inference worker builds this after its multiprocess folder is set."""

    def __init__(self, tokens: TokenStore | None = None, *, public_reflection: bool = False,
                 client_certificates: bool = False, metrics_prefix: str | None = None):
        self.tokens = tokens
        self.public_reflection = public_reflection
        # True when the server requires (and TLS verified) a client certificate on every call.
        self.client_certificates = client_certificates
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}
        self._counter = _caller_counter(metrics_prefix) if metrics_prefix else None
        self._children: dict[tuple[str, str, str], object] = {}

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(HEALTH_PREFIX):
            return handler
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    # -- per call

    def _begin(self, method: str, context) -> str:
        """Authenticate; set the call's context variables and trailing metadata. Returns the
        caller name or raises _Rejected."""
        authorization, request_id = _read_metadata(context.invocation_metadata())
        request_id = request_ids.accept(request_id)
        request_ids.REQUEST_ID.set(request_id)
        caller = self._authenticate(method, authorization, context)
        request_ids.CALLER.set(caller)
        context.set_trailing_metadata(((request_ids.HEADER, request_id), (request_ids.CALLER_HEADER, caller)))
        return caller

    def _authenticate(self, method: str, authorization: str | None, context) -> str:
        if self.tokens is None:
            return ANONYMOUS
        token = bearer_token(authorization)
        if token is None:
            if self.client_certificates:
                caller = certificate_caller(context)
                if caller is not None:
                    return caller
            if self.public_reflection and method.startswith(REFLECTION_PREFIXES):
                return ANONYMOUS
            raise _Rejected(MISSING_TOKEN, "missing_token")
        caller = self.tokens.caller_for(token)
        if caller is None:
            raise _Rejected(UNKNOWN_TOKEN, "unknown_token")
        return caller

    async def _reject(self, method: str, context, rejected: _Rejected, started: float) -> None:
        context.set_trailing_metadata(((request_ids.HEADER, request_ids.current() or ""),))
        log.info("event=unauthenticated method=%s reason=%s peer=%s",
                 _short(method), rejected.reason, context.peer())
        self._done(method, "UNAUTHENTICATED", UNAUTHENTICATED_CALLER, started, log_line=False)
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, rejected.message)

    def _done(self, method: str, code: str, caller: str, started: float, log_line: bool = True) -> None:
        if self._counter is not None:
            key = (caller, method, code)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self._counter.labels(caller, _short(method), code)
            child.inc()
        if log_line and access_log.isEnabledFor(logging.INFO):
            access_log.info("event=rpc method=%s code=%s ms=%.2f", _short(method), code,
                            (time.perf_counter() - started) * 1000.0)

    @staticmethod
    def _code_of(context, exc: BaseException | None) -> str:
        if exc is None or isinstance(exc, grpc.aio.AbortError):
            code = context.code()
            if code is None:
                return "OK" if exc is None else "UNKNOWN"
            return code.name if isinstance(code, grpc.StatusCode) else str(code)
        if isinstance(exc, asyncio.CancelledError):
            return "CANCELLED"
        return "UNKNOWN"

    # -- wrapping handlers

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if handler.request_streaming and handler.response_streaming:
            behavior, make = handler.stream_stream, grpc.stream_stream_rpc_method_handler
        elif handler.request_streaming:
            behavior, make = handler.stream_unary, grpc.stream_unary_rpc_method_handler
        elif handler.response_streaming:
            behavior, make = handler.unary_stream, grpc.unary_stream_rpc_method_handler
        else:
            behavior, make = handler.unary_unary, grpc.unary_unary_rpc_method_handler
        if inspect.isasyncgenfunction(behavior):
            wrapped = self._wrap_stream(method, behavior)
        elif inspect.iscoroutinefunction(behavior):
            wrapped = self._wrap_unary(method, behavior)
        else:
            # grpc.aio would run a plain function on a thread, where the call's context and
            # an async abort are not available; every handler we serve is async.
            raise TypeError(f"CallInterceptor: handler of {method} must be async (got {behavior!r})")
        return make(wrapped, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)

    def _wrap_unary(self, method: str, behavior):
        async def run(request, context):
            started = time.perf_counter()
            try:
                caller = self._begin(method, context)
            except _Rejected as rejected:
                await self._reject(method, context, rejected, started)
            try:
                response = await behavior(request, context)
            except BaseException as exc:
                self._done(method, self._code_of(context, exc), caller, started)
                raise
            self._done(method, self._code_of(context, None), caller, started)
            return response
        return run

    def _wrap_stream(self, method: str, behavior):
        async def run(request, context):
            started = time.perf_counter()
            try:
                caller = self._begin(method, context)
            except _Rejected as rejected:
                await self._reject(method, context, rejected, started)
            try:
                async for response in behavior(request, context):
                    yield response
            except BaseException as exc:
                self._done(method, self._code_of(context, exc), caller, started)
                raise
            self._done(method, self._code_of(context, None), caller, started)
        return run
