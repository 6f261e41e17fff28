"""Shared library of the recommender: the contract (schema), the model repository layout,
and the generated gRPC code (recommender.v1, produced by `make proto`, not committed)."""
