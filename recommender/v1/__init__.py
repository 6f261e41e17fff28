"""Generated protobuf and gRPC code for package recommender.v1.

The *_pb2*.py files next to this one are generated from protos/recommender/v1 by
`make proto` (run by `make setup`) and are not committed: see README, "Generated code".
"""
