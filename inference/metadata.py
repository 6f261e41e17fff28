"""What the inference server serves, as a recommender.v1.GetMetadataResponse (MetadataService).

In the spirit of TensorFlow Serving's GetModelStatus + GetModelMetadata: every published version
with its state (AVAILABLE when loaded in this worker, FAILED when its load failed, NOT_LOADED when
it is older than the versions kept loaded), each loaded version's catalog, the schema version,
the model signature with the meaning of each input position, and the request limits. Plain
functions over the manager's snapshot and the repository listing: no model call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from recommender import schema
from recommender.v1 import common_pb2, metadata_pb2


def catalog_products(catalog: schema.Catalog) -> list[metadata_pb2.CatalogProduct]:
    return [
        metadata_pb2.CatalogProduct(
            class_index=p.index, product_id=p.product_id, name=p.name_en, name_ko=p.name_ko,
            typical_price_krw=p.price_krw, primary_interest=p.primary_interest)
        for p in catalog
    ]


def input_slots() -> list[metadata_pb2.InputSlot]:
    slots = []
    for slot in schema.SLOTS:
        slots.append(metadata_pb2.InputSlot(
            index=slot.index, slot=common_pb2.Slot.Value(f"SLOT_{slot.name.upper()}"), name=slot.name,
            name_ko=slot.ko, unit=slot.unit, min=slot.low, max=slot.high,
            codes=[metadata_pb2.SlotCode(value=c.value, key=c.key, name=c.en, name_ko=c.ko)
                   for c in slot.codes]))
    return slots


def model_signature(catalog_size: int) -> metadata_pb2.ModelSignature:
    # The names every version must serve, as inference.loader checks them at load time. That
    # module imports TensorFlow, which the worker has already imported to load its models.
    from inference.loader import INPUT_NAME, OUTPUT_NAME, SIGNATURE

    return metadata_pb2.ModelSignature(
        name=SIGNATURE,
        input=metadata_pb2.TensorSpec(name=INPUT_NAME, dtype="float32", shape=[-1, schema.FEATURE_COUNT]),
        output=metadata_pb2.TensorSpec(name=OUTPUT_NAME, dtype="float32", shape=[-1, catalog_size]),
        slots=input_slots(),
    )


def request_limits(max_batch_rows: int = schema.MAX_BATCH_ROWS) -> metadata_pb2.RequestLimits:
    return metadata_pb2.RequestLimits(
        max_text_chars=schema.MAX_TEXT_CHARS, max_top_k=schema.MAX_TOP_K, default_top_k=schema.DEFAULT_TOP_K,
        max_batch_rows=max_batch_rows, max_batch_texts=schema.MAX_BATCH_TEXTS)


def describe(loaded: Mapping[int, object], published: Iterable[int] = (), failed: Iterable[int] = (),
             max_batch_rows: int = schema.MAX_BATCH_ROWS) -> metadata_pb2.GetMetadataResponse:
    """The metadata answer. `loaded` maps version -> loaded model (with `.catalog` and
    `.backend`), `published` lists the versions in the repository, `failed` those whose load
    failed. Versions are listed newest first; the newest loaded one is the default."""
    failed = set(failed)
    default = max(loaded) if loaded else 0
    response = metadata_pb2.GetMetadataResponse(
        schema_version=schema.SCHEMA_VERSION, server="inference", default_version=default,
        limits=request_limits(max_batch_rows))
    for version in sorted(set(published) | set(loaded) | failed, reverse=True):
        status = response.versions.add(version=version, is_default=version == default)
        model = loaded.get(version)
        if model is not None:
            status.state = metadata_pb2.MODEL_VERSION_STATE_AVAILABLE
            status.backend = str(getattr(model, "backend", ""))
            status.catalog.extend(catalog_products(model.catalog))
        elif version in failed:
            status.state = metadata_pb2.MODEL_VERSION_STATE_FAILED
            status.error = "the version could not be loaded (see the event=model_load_failed log line)"
        else:
            status.state = metadata_pb2.MODEL_VERSION_STATE_NOT_LOADED
    catalog = loaded[default].catalog if loaded else schema.DEFAULT_CATALOG
    response.catalog.extend(catalog_products(catalog))
    response.signature.CopyFrom(model_signature(len(catalog)))
    return response
