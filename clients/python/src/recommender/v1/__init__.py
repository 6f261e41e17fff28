"""Generated protobuf messages, gRPC stubs and .pyi type stubs of package recommender.v1.

The *_pb2*.py[i] files next to this one are generated from the repository's
protos/recommender/v1 when recommender-client is built (clients/python/build_backend) and are
not committed: see the README, "Generated code".
"""
