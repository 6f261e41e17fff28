"""dns:///name:port inference targets (issue 9): every IPv4 address of the name is in rotation,
and the name is resolved again every --dns-refresh-s, so hosts added behind the name are picked
up and removed ones leave. The system resolver is the only thing replaced here (a test cannot
add DNS records); the backend, its channels and the health checks are real."""

from __future__ import annotations

import asyncio
import socket

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from gateway.backend import InferenceBackend, parse_addresses, split_target
from recommender import errors
from recommender.settings import GatewaySettings


def test_parse_accepts_dns_targets_and_names_the_form_on_errors():
    assert parse_addresses("dns:///inference.internal:8500,10.0.0.5:8501") == [
        "dns:///inference.internal:8500", "10.0.0.5:8501"]
    assert split_target("dns:///inference.internal:8500") == ("inference.internal", 8500, True)
    assert split_target("127.0.0.1:8501") == ("127.0.0.1", 8501, False)
    for bad in ("dns:///inference.internal", "dns:///:8500", "dns:///name:0"):
        with pytest.raises(ValueError, match="dns:///name:port"):
            parse_addresses(bad)


def _infos(*ips: str, port: int):
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ips]


async def _healthy_server() -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


def test_a_name_resolves_to_every_address_and_refresh_follows_the_name():
    async def scenario():
        server, port = await _healthy_server()
        loop = asyncio.get_running_loop()
        answers = {"fleet.test": _infos("127.0.0.1", port=port)}

        async def resolver(host, port_, family=0, **_):
            assert family == socket.AF_INET
            if host not in answers:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return answers[host]

        loop.getaddrinfo = resolver  # the system resolver, per event loop
        settings = GatewaySettings(inference=f"dns:///localhost:{port}", dns_refresh_s=0.0)
        backend = InferenceBackend(settings)
        try:
            # At start: the name's addresses (localhost via the real resolver).
            assert [a.target for a in backend._pool] == [f"127.0.0.1:{port}"]
            assert backend._pool[0].server_name == "localhost"
            backend._names = [("fleet.test", port, True)]
            backend.addresses = [f"dns:///fleet.test:{port}"]
            backend._pool = []
            assert backend.serving is False  # nothing resolved yet for this name
            # The health check resolves the name again when due (here: always): one host, healthy.
            assert await backend.check() is True
            assert [a.target for a in backend._pool] == [f"127.0.0.1:{port}"]
            # A second host joins behind the name (127.0.0.2 is loopback too; nothing listens).
            answers["fleet.test"] = _infos("127.0.0.1", "127.0.0.2", port=port)
            await backend.refresh(force=True)
            assert sorted(a.target for a in backend._pool) == [f"127.0.0.1:{port}", f"127.0.0.2:{port}"]
            assert await backend.check(timeout=0.5) is True  # one answers: still serving
            assert [a.healthy for a in sorted(backend._pool, key=lambda a: a.target)] == [True, False]
            # A DNS failure keeps what we have.
            del answers["fleet.test"]
            await backend.refresh(force=True)
            assert len(backend._pool) == 2
            # The first host leaves the name: it leaves the rotation.
            answers["fleet.test"] = _infos("127.0.0.2", port=port)
            await backend.refresh(force=True)
            assert [a.target for a in backend._pool] == [f"127.0.0.2:{port}"]
            # Refresh honours --dns-refresh-s.
            backend.settings = GatewaySettings(inference=f"dns:///localhost:{port}", dns_refresh_s=3600)
            answers["fleet.test"] = _infos("127.0.0.1", port=port)
            await backend.refresh()
            assert [a.target for a in backend._pool] == [f"127.0.0.2:{port}"]
            # An empty pool is UNAVAILABLE naming the target, not an IndexError.
            backend._pool = []
            with pytest.raises(errors.Unavailable, match="fleet.test"):
                backend._pick(set())
        finally:
            await backend.close()
            await server.stop(None)

    asyncio.run(scenario())


def test_a_static_name_that_does_not_resolve_fails_at_start():
    with pytest.raises(OSError):
        InferenceBackend(GatewaySettings(inference="no-such-host.invalid:8500"))


def test_an_unresolvable_dns_name_starts_empty_and_unavailable():
    async def scenario():
        backend = InferenceBackend(GatewaySettings(inference="dns:///no-such-host.invalid:8500"))
        try:
            assert backend._pool == []
            assert backend.serving is False
            with pytest.raises(errors.Unavailable, match="no-such-host.invalid"):
                await backend.recommend(None, timeout=1.0)
        finally:
            await backend.close()

    asyncio.run(scenario())
