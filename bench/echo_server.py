"""A bare gRPC RecommendService with no model: the floor of what Python gRPC can serve on
this machine. Same server stack (grpc.aio), same worker/port layout and the same message
sizes as the inference server, so `inference / echo` isolates our own cost.

Recommend answers a canned RecommendResponse with 3 items; RecommendBatch and
RecommendStream answer a canned response shaped like a real 1,000-row top-3 answer.

    python -m bench.echo_server --port 9500 [--workers 2]   # worker i also on port+1+i
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import signal
import sys

from recommender import settings

ROWS = 1000
TOP_K = 3


def canned_responses():
    from recommender.schema import DEFAULT_CATALOG
    from recommender.v1 import common_pb2, recommend_pb2

    features = [35.0, 1.0, 300_000.0, 2.0, 1.0, 0.0]
    single = recommend_pb2.RecommendResponse(
        model_version=1, features=features,
        slots=common_pb2.CustomerSlots(age=35, gender=1, budget=300_000, interest=2, purpose=1))
    for rank, product in enumerate(DEFAULT_CATALOG.products[:TOP_K], start=1):
        single.items.add(product_id=product.product_id, name=product.name_en, name_ko=product.name_ko,
                         score=0.4 / rank, rank=rank)
    batch = recommend_pb2.RecommendBatchResponse(
        model_version=1, top_k=TOP_K, rows=ROWS, product_ids=DEFAULT_CATALOG.product_ids,
        product_names=[p.name_en for p in DEFAULT_CATALOG], product_names_ko=[p.name_ko for p in DEFAULT_CATALOG],
        product_indices=[i % 10 for i in range(ROWS * TOP_K)],
        scores=[0.3 - (i % 3) * 0.1 for i in range(ROWS * TOP_K)],
        features=features * ROWS)
    return single, batch


async def serve(port: int, own_port: int | None, host: str = "127.0.0.1") -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_health.v1._async import HealthServicer

    from recommender.v1 import recommend_pb2, recommend_pb2_grpc

    single, batch = canned_responses()
    stream_answer = recommend_pb2.RecommendStreamResponse(batch=batch)

    class Echo(recommend_pb2_grpc.RecommendServiceServicer):
        async def Recommend(self, request, context):
            return single

        async def RecommendBatch(self, request, context):
            return batch

        async def RecommendStream(self, request_iterator, context):
            async for _ in request_iterator:
                yield stream_answer

    server = grpc.aio.server(options=[("grpc.so_reuseport", 1),
                                      ("grpc.max_receive_message_length", settings.MAX_REQUEST_BYTES)])
    recommend_pb2_grpc.add_RecommendServiceServicer_to_server(Echo(), server)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    for service in ("", "recommender.v1.RecommendService"):
        await health.set(service, health_pb2.HealthCheckResponse.SERVING)
    for p in (port, own_port):
        if p:
            server.add_insecure_port(f"{host}:{p}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


def _run(port: int, own_port: int | None) -> None:
    asyncio.run(serve(port, own_port))


def command(port: int, workers: int = 1) -> list[str]:
    """argv that starts the echo server (for tests.support.ServerProcess)."""
    return [sys.executable, "-m", "bench.echo_server", "--port", str(port), "--workers", str(workers)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.echo_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9500)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    if args.workers == 1:
        _run(args.port, args.port + 1)
        return 0
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_run, args=(args.port, args.port + 1 + i)) for i in range(args.workers)]
    for child in children:
        child.start()

    def forward(*_):
        for child in children:
            if child.pid:
                try:
                    child.terminate()
                except OSError:
                    pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        child.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
