"""MetadataService's answer (inference.metadata, gateway.metadata) from plain objects, no server."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.metadata import gateway_view
from inference import metadata
from recommender import schema
from recommender.v1 import common_pb2, metadata_pb2

SMALL_CATALOG = schema.Catalog(tuple(schema.DEFAULT_CATALOG.products[:4]))


@dataclass
class FakeModel:
    catalog: schema.Catalog
    backend: str = "tflite"


def test_versions_newest_first_with_their_state():
    answer = metadata.describe({3: FakeModel(SMALL_CATALOG), 2: FakeModel(schema.DEFAULT_CATALOG, "tf")},
                               published=[1, 2, 3, 4], failed=[4], max_batch_rows=500)
    states = [(v.version, metadata_pb2.ModelVersionState.Name(v.state), v.is_default) for v in answer.versions]
    assert states == [(4, "MODEL_VERSION_STATE_FAILED", False), (3, "MODEL_VERSION_STATE_AVAILABLE", True),
                      (2, "MODEL_VERSION_STATE_AVAILABLE", False), (1, "MODEL_VERSION_STATE_NOT_LOADED", False)]
    assert answer.default_version == 3 and answer.server == "inference"
    assert answer.versions[0].error and not answer.versions[1].error
    assert [v.backend for v in answer.versions] == ["", "tflite", "tf", ""]
    assert [p.product_id for p in answer.versions[1].catalog] == list(SMALL_CATALOG.product_ids)
    assert not answer.versions[3].catalog
    # the top-level catalog and the output shape are the default version's
    assert [p.product_id for p in answer.catalog] == list(SMALL_CATALOG.product_ids)
    assert list(answer.signature.output.shape) == [-1, 4]
    assert answer.limits.max_batch_rows == 500


def test_catalog_carries_names_prices_and_interest():
    answer = metadata.describe({1: FakeModel(schema.DEFAULT_CATALOG)})
    first = answer.catalog[0]
    product = schema.DEFAULT_CATALOG[0]
    assert (first.class_index, first.product_id, first.name, first.name_ko, first.typical_price_krw,
            first.primary_interest) == (0, product.product_id, product.name_en, product.name_ko,
                                        product.price_krw, product.primary_interest)


def test_signature_and_schema_follow_the_contract():
    from inference.loader import INPUT_NAME, OUTPUT_NAME, SIGNATURE

    answer = metadata.describe({})
    assert answer.schema_version == schema.SCHEMA_VERSION
    assert answer.default_version == 0 and not answer.versions
    assert len(answer.catalog) == len(schema.DEFAULT_CATALOG)
    signature = answer.signature
    assert (signature.name, signature.input.name, signature.output.name) == (SIGNATURE, INPUT_NAME, OUTPUT_NAME)
    assert list(signature.input.shape) == [-1, schema.FEATURE_COUNT] and signature.input.dtype == "float32"
    assert [s.name for s in signature.slots] == list(schema.SLOT_NAMES)
    budget = signature.slots[schema.BUDGET]
    assert (budget.slot, budget.unit, budget.min, budget.max) == (common_pb2.SLOT_BUDGET, "KRW", 0,
                                                                  schema.MAX_BUDGET_KRW)
    interest = signature.slots[schema.INTEREST]
    assert [(c.value, c.key) for c in interest.codes] == [(c.value, c.key) for c in schema.INTERESTS]
    assert (answer.limits.max_text_chars, answer.limits.max_top_k, answer.limits.max_batch_texts) == (
        schema.MAX_TEXT_CHARS, schema.MAX_TOP_K, schema.MAX_BATCH_TEXTS)


def test_gateway_reports_the_backend_answer_as_its_own_with_its_vectorizer():
    backend = metadata.describe({1: FakeModel(schema.DEFAULT_CATALOG)})
    answer = gateway_view(backend, "bedrock-converse")
    assert answer.server == "gateway" and backend.server == "inference"
    assert answer.vectorizer == common_pb2.VECTORIZER_BEDROCK_CONVERSE
    assert answer.versions == backend.versions and answer.catalog == backend.catalog
