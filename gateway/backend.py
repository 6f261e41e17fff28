"""The gateway's side of gateway -> inference: one gRPC channel per inference address (worker
port or host), a Python round-robin over the ones that answer, per-try deadlines, retries on
another address, and ejection of an address that stops answering.

Why not one channel with gRPC's round_robin policy: a worker that is frozen (SIGSTOP, a stuck
GIL, a paused VM) keeps its TCP connection up, so round_robin keeps sending it every other
call and they hang until the caller's deadline (issue 15: 0 successful calls for 35 s). Here

  - every try has its own deadline: min(time left on the caller's deadline, the try budget:
    --backend-try-timeout-s, plus 0.1 ms per row of a batch);
  - a try that times out or finds the address UNAVAILABLE ejects that address and the call is
    retried on the next one, within the caller's deadline;
  - a health watcher checks every address each --health-interval-s and lets an ejected one
    back once it answers SERVING; the gateway's own health is NOT_SERVING only when no
    address answers.

Addresses are `host:port` (resolved once at start) or `dns:///name:port`: every IPv4 address
the name resolves to becomes an address in rotation, and the name is resolved again every
--dns-refresh-s, so inference hosts added behind the name are picked up and removed ones leave
rotation (their channels close once their calls are done). TLS checks the name either way.

Callers pass the time left on their own call as `timeout`; without one the call is bounded
by --backend-timeout-s. Failures raise recommender.errors: the inference server's own answer
(INVALID_ARGUMENT, NOT_FOUND...) passes through with its details; no address reachable is
UNAVAILABLE naming the addresses; the caller's deadline passing is DEADLINE_EXCEEDED.

Every call carries the current request id (`x-request-id`, recommender.request_ids) and, with
--inference-token-file, the gateway's own token; channels use TLS with --inference-ca (and a
client certificate with --inference-cert/--inference-key): see recommender/security.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import AsyncIterable, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from recommender import errors, request_ids, security
from recommender.settings import MAX_MESSAGE_BYTES, GatewaySettings
from recommender.v1 import metadata_pb2, metadata_pb2_grpc, recommend_pb2, recommend_pb2_grpc

log = logging.getLogger(__name__)

# A try on a batch gets this much more time per row (10,000 rows: +1 s).
TRY_SECONDS_PER_ROW = 1e-4
# A call stops retrying after this many tries (or when the caller's deadline is near).
MAX_TRIES = 3
RETRY_BACKOFF_S = 0.02
# The status grpc-python's client reports when its write to a stream the server already ended
# fails (grpc/aio/_call.py: set_internal_error); the server's real status is lost.
LOST_STREAM_STATUS = "Internal error from Core"


DNS_SCHEME = "dns:///"


def parse_addresses(spec: str | Sequence[str]) -> list[str]:
    """'h1:p1,dns:///name:p2' (or a list of such strings) -> ['h1:p1', 'dns:///name:p2'], each checked."""
    parts = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in s.split(",")]
    addresses = [p.strip() for p in parts if p.strip()]
    if not addresses:
        raise ValueError("--inference needs at least one host:port address")
    for address in addresses:
        host, sep, port = address.removeprefix(DNS_SCHEME).rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"inference address {address!r} must be host:port or dns:///name:port, "
                             "e.g. 127.0.0.1:8500")
    return addresses


def split_target(address: str) -> tuple[str, int, bool]:
    """'dns:///name:8501' -> ('name', 8501, True); 'h:8501' -> ('h', 8501, False)."""
    dynamic = address.startswith(DNS_SCHEME)
    host, _, port = address.removeprefix(DNS_SCHEME).rpartition(":")
    return host.strip("[]"), int(port), dynamic


def _ipv4(infos) -> list[str]:
    return sorted({info[4][0] for info in infos if info[0] == socket.AF_INET})


def resolve_all(host: str, port: int) -> list[str]:
    """Every IPv4 address of `host` as 'ip:port' (a literal IPv4 address is itself)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return [f"{ip}:{port}" for ip in _ipv4(socket.getaddrinfo(host, port, socket.AF_INET))]
    if ip.version != 4:
        raise ValueError(f"inference address {host}:{port}: only IPv4 addresses are supported")
    return [f"{ip}:{port}"]


def resolve(address: str) -> str:
    """host:port with the host resolved once to an IPv4 address."""
    host, port, _ = split_target(address)
    return resolve_all(host, port)[0]


def channel_options() -> list[tuple[str, object]]:
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        # Keepalive finds a dead connection (a dropped NAT entry, a host gone) between health
        # checks; the inference server permits pings this often.
        ("grpc.keepalive_time_ms", 10_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # Reconnect quickly after a worker restart instead of the default ~1-120 s backoff.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.min_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2_000),
        ("grpc.enable_retries", 0),  # retries are ours: on another address, per-try deadlines
        ("grpc.use_local_subchannel_pool", 1),
    ]


def open_channel(target: str, settings: GatewaySettings, server_name: str | None = None) -> grpc.aio.Channel:
    """THE place the gateway's channels to inference are made. With TLS the server's
    certificate must name `server_name` (the host as given in --inference, before it was
    resolved to an address), else the target's host."""
    tls = security.inference_channel_tls(settings)
    if tls is None:
        return grpc.aio.insecure_channel(target, options=channel_options())
    options = channel_options()
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.aio.secure_channel(target, tls.credentials(), options=options)


class CallIdentity:
    """The metadata the gateway sends with each call to inference: the current request id
    and, with --inference-token-file, its own token (never the end caller's)."""

    def __init__(self, settings: GatewaySettings):
        self.token = (security.SecretFile(settings.inference_token_file)
                      if settings.inference_token_file else None)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        metadata = request_ids.outgoing_metadata()
        if self.token is not None:
            metadata += (("authorization", f"Bearer {self.token.value()}"),)
        return metadata


class Address:
    """One inference address: its channel, stubs and whether it is in rotation. `target` is the
    resolved ip:port; `server_name` the host as given (what its TLS certificate must name)."""

    def __init__(self, address: str, settings: GatewaySettings, target: str | None = None,
                 server_name: str | None = None):
        self.address = address
        self.target = target or resolve(address)
        self.server_name = server_name or split_target(address)[0]
        self.channel = open_channel(self.target, settings, server_name=self.server_name)
        self.stub = recommend_pb2_grpc.RecommendServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.metadata = metadata_pb2_grpc.MetadataServiceStub(self.channel)
        self.healthy = True  # optimistic until the first check: calls find out fast anyway
        self.ejected_at = 0.0

    def eject(self, reason: str) -> None:
        if self.healthy:
            log.warning("event=inference_address_ejected address=%s reason=%s", self.address, reason)
        self.healthy = False
        self.ejected_at = time.monotonic()

    def admit(self) -> None:
        if not self.healthy:
            log.info("event=inference_address_back address=%s", self.address)
        self.healthy = True


class InferenceBackend:
    """Forwards vectors to the inference servers. Create inside the gateway's event loop."""

    def __init__(self, settings: GatewaySettings):
        self.settings = settings
        self.addresses = parse_addresses(settings.inference)
        self._pool: list[Address] = []
        self._names = [split_target(a) for a in self.addresses if a.startswith(DNS_SCHEME)]
        for address in self.addresses:
            host, port, dynamic = split_target(address)
            try:
                targets = resolve_all(host, port)
            except OSError as exc:  # a name not resolvable yet: picked up by a later refresh
                if not dynamic:
                    raise
                log.warning("event=inference_name_unresolved name=%s:%d error=%r", host, port, str(exc))
                targets = []
            self._pool += [Address(self._label(address, t, dynamic), settings, t, host)
                           for t in (targets if dynamic else targets[:1])]
        self._resolved_at = time.monotonic()
        self.identity = CallIdentity(settings)
        self._next = 0
        self._watch: asyncio.Task | None = None

    @staticmethod
    def _label(address: str, target: str, dynamic: bool) -> str:
        return f"{address}@{target}" if dynamic else address

    async def refresh(self, force: bool = False) -> None:
        """Resolve every dns:/// name again (at most every --dns-refresh-s): new addresses join
        the rotation, addresses the name no longer has leave it."""
        if not self._names or (not force and time.monotonic() - self._resolved_at < self.settings.dns_refresh_s):
            return
        self._resolved_at = time.monotonic()
        loop = asyncio.get_running_loop()
        for host, port, _ in self._names:
            address = f"{DNS_SCHEME}{host}:{port}"
            try:
                infos = await loop.getaddrinfo(host, port, family=socket.AF_INET)
            except OSError as exc:  # keep what we have: a DNS hiccup must not empty the pool
                log.warning("event=inference_name_unresolved name=%s:%d error=%r", host, port, str(exc))
                continue
            wanted = {f"{ip}:{port}" for ip in _ipv4(infos)}
            current = {a.target: a for a in self._pool if a.address.startswith(address + "@")}
            for target in sorted(wanted - current.keys()):
                self._pool.append(Address(self._label(address, target, True), self.settings, target, host))
                log.info("event=inference_address_added name=%s:%d address=%s", host, port, target)
            for target in current.keys() - wanted:
                gone = current[target]
                self._pool.remove(gone)
                log.info("event=inference_address_removed name=%s:%d address=%s", host, port, target)
                # Calls already on it finish (or time out) before its channel closes.
                loop.call_later(self.settings.backend_timeout_s,
                                lambda ch=gone.channel: loop.create_task(ch.close()))

    # ------------------------------------------------------------------ calls

    async def recommend(self, request: recommend_pb2.RecommendRequest,
                        timeout: float | None) -> recommend_pb2.RecommendResponse:
        return await self._call("Recommend", request, timeout, rows=1)

    async def recommend_batch(self, request: recommend_pb2.RecommendBatchRequest,
                              timeout: float | None) -> recommend_pb2.RecommendBatchResponse:
        rows = len(request.features) // 6
        return await self._call("RecommendBatch", request, timeout, rows=rows)

    async def metadata(self, timeout: float | None) -> metadata_pb2.GetMetadataResponse:
        """The backend's MetadataService answer (its versions, catalog, signature)."""
        return await self._call("metadata.GetMetadata", metadata_pb2.GetMetadataRequest(), timeout, rows=0)

    def open_stream(self, requests: AsyncIterable[recommend_pb2.RecommendStreamRequest],
                    timeout: float | None):
        """One backend RecommendStream fed by `requests`, on an address in rotation (a stream
        cannot move once started). `await call.read()` gives one response per request."""
        address = self._pick(set())
        return address.stub.RecommendStream(requests, timeout=self._total(timeout),
                                            metadata=self.identity.metadata())

    def _total(self, timeout: float | None) -> float:
        return self.settings.backend_timeout_s if timeout is None else max(timeout, 0.001)

    def _pick(self, tried: set[int]) -> Address:
        """Next address in rotation not tried yet by this call (`tried` holds id()s); when none
        is in rotation, the one ejected longest ago (health may lag, and failing without a try
        helps nobody)."""
        count = len(self._pool)
        if not count:
            raise errors.Unavailable(f"no inference address: {','.join(self.addresses)} resolved to "
                                     "no IPv4 address (yet)")
        for step in range(count):
            index = (self._next + step) % count
            address = self._pool[index]
            if address.healthy and id(address) not in tried:
                self._next = index + 1
                return address
        untried = [i for i in range(count) if id(self._pool[i]) not in tried] or list(range(count))
        index = min(untried, key=lambda i: self._pool[i].ejected_at)
        self._next = index + 1
        return self._pool[index]

    async def _call(self, method: str, request, timeout: float | None, rows: int):
        deadline = time.monotonic() + self._total(timeout)
        try_budget = self.settings.backend_try_timeout_s + rows * TRY_SECONDS_PER_ROW
        tried: set[int] = set()
        last: grpc.RpcError | None = None
        metadata = self.identity.metadata()
        for attempt in range(MAX_TRIES):
            left = deadline - time.monotonic()
            if left <= 0.001:
                break
            address = self._pick(tried)
            tried.add(id(address))
            try_timeout = min(left, try_budget)
            try:
                stub, _, name = method.rpartition(".")
                return await getattr(getattr(address, stub or "stub"), name)(
                    request, timeout=try_timeout, metadata=metadata)
            except grpc.RpcError as exc:
                last = exc
                code = exc.code()
                if code == grpc.StatusCode.DEADLINE_EXCEEDED and try_timeout < left:
                    address.eject(f"no answer within {try_timeout:.2f} s")
                elif code == grpc.StatusCode.UNAVAILABLE:
                    address.eject("unavailable")
                    if attempt:
                        await asyncio.sleep(min(RETRY_BACKOFF_S * attempt, max(0.0, deadline - time.monotonic())))
                elif code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                    raise self.refused(exc) from None
                else:
                    raise errors.BackendError.from_rpc_error(exc) from None
        return self._give_up(last, deadline)

    def refused(self, exc: grpc.RpcError) -> errors.ServiceError:
        """Inference refused the GATEWAY's credentials: the caller's token was fine (it got
        this far), so passing UNAUTHENTICATED on would mislead; INTERNAL names the fix."""
        log.error("event=inference_refused_gateway code=%s message=%r", exc.code().name, exc.details())
        return errors.ServiceError(
            f"the inference server refused the gateway's credentials ({exc.code().name}: {exc.details()}); "
            "the operator must give the gateway --inference-token-file or a client certificate "
            "(--inference-cert/--inference-key) that inference accepts")

    def _give_up(self, last: grpc.RpcError | None, deadline: float):
        if last is not None and last.code() == grpc.StatusCode.UNAVAILABLE:
            raise errors.Unavailable(
                f"inference server unavailable at {','.join(self.addresses)}: {last.details()}")
        if time.monotonic() >= deadline - 0.001:
            raise errors.DeadlineExceeded("deadline exceeded before inference answered")
        raise errors.Unavailable(
            f"inference server unavailable at {','.join(self.addresses)}: no address answered in time")

    def stream_error(self, exc: grpc.RpcError) -> errors.ServiceError:
        """A backend stream's failure as the error to end the caller's stream with."""
        if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return self.refused(exc)
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            return errors.Unavailable(
                f"inference server unavailable at {','.join(self.addresses)}: {exc.details()}")
        if exc.code() == grpc.StatusCode.INTERNAL and exc.details() == LOST_STREAM_STATUS:
            # Not inference's answer: grpc-python's client says this, whatever the server sent,
            # when the server ended the stream while we were writing to it (inference's stream
            # limit refusing it, under a stream flood: make soak). Retryable, not a bug.
            return errors.Unavailable(
                "the inference server ended the stream before taking its messages (e.g. its stream "
                "limit was reached); retry the stream")
        return errors.BackendError.from_rpc_error(exc)

    # ------------------------------------------------------------------ health

    async def check(self, timeout: float = 1.0) -> bool:
        """Check every address at once (after resolving dns:/// names again when due); True when
        some address answers SERVING."""
        await self.refresh()
        results = await asyncio.gather(*(self._check_one(a, timeout) for a in list(self._pool)))
        return any(results)

    async def _check_one(self, address: Address, timeout: float) -> bool:
        try:
            reply = await address.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.RpcError as exc:
            address.eject(f"health check {exc.code().name}")
            return False
        if reply.status == health_pb2.HealthCheckResponse.SERVING:
            address.admit()
            return True
        address.eject("health NOT_SERVING")
        return False

    @property
    def serving(self) -> bool:
        return any(a.healthy for a in self._pool)

    async def close(self) -> None:
        for address in self._pool:
            with contextlib.suppress(Exception):
                await address.channel.close()
