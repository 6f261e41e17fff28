"""Shared library of the recommender: the contract (schema), the model repository layout, errors
and settings.

The generated gRPC code, `recommender.v1`, is not here: it ships in the `recommender-client`
distribution (clients/python, installed by `make setup`), whose `recommender/` is a namespace
package. Extending __path__ lets `recommender.v1` resolve to that one installed copy, the same
code every other service gets (README, "Generated code").
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
