"""Plain-Python results of the calls (no numpy needed), built from the recommender.v1 responses,
and the request builders both clients share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from recommender.v1 import chat_pb2, common_pb2, metadata_pb2, recommend_pb2

# The vector's slots in contract order: the fields of CustomerSlots are numbered that way.
SLOT_NAMES: tuple[str, ...] = tuple(
    f.name for f in sorted(common_pb2.CustomerSlots.DESCRIPTOR.fields, key=lambda f: f.number))
FEATURE_COUNT = len(SLOT_NAMES)


def enum_name(enum, value: int, prefix: str) -> str:
    """recommender.v1 enum value -> short lower-case name ('' for *_UNSPECIFIED or unknown)."""
    try:
        name = enum.Name(value)
    except ValueError:  # a value added to the contract after this client was built
        return ""
    if name.endswith("_UNSPECIFIED"):
        return ""
    return name[len(prefix):].lower() if name.startswith(prefix) else name.lower()


def vectorizer_name(value: int) -> str:
    """recommender.v1.Vectorizer -> 'local', 'bedrock_converse', ... ('' when unspecified)."""
    return enum_name(common_pb2.Vectorizer, value, "VECTORIZER_")


def slot_name(value: int) -> str:
    return enum_name(common_pb2.Slot, value, "SLOT_")


def slots_dict(slots: common_pb2.CustomerSlots) -> dict[str, float]:
    return {name: float(getattr(slots, name)) for name in SLOT_NAMES}


@dataclass(frozen=True)
class Item:
    rank: int
    product_id: str
    name: str
    name_ko: str
    score: float

    @classmethod
    def from_pb(cls, item: common_pb2.RecommendedItem) -> Item:
        return cls(item.rank, item.product_id, item.name, item.name_ko, float(item.score))

    def display_name(self, language: str = "en") -> str:
        return (self.name_ko if language == "ko" else self.name) or self.name or self.product_id


@dataclass(frozen=True)
class Recommendation:
    items: tuple[Item, ...]
    model_version: int
    features: tuple[float, ...]  # the vector that was scored
    vectorizer: str  # '' when features were sent
    slots: dict[str, float] = field(default_factory=dict)
    request_id: str = ""

    @classmethod
    def from_pb(cls, reply: recommend_pb2.RecommendResponse, request_id: str = "") -> Recommendation:
        return cls(tuple(Item.from_pb(i) for i in reply.items), reply.model_version, tuple(reply.features),
                   vectorizer_name(reply.vectorizer), slots_dict(reply.slots), request_id)


@dataclass(frozen=True)
class Vectorized:
    features: tuple[float, ...]
    slots: dict[str, float]  # slot name -> value, contract order
    unstated: tuple[str, ...]
    vectorizer: str
    language: str
    request_id: str = ""

    @classmethod
    def from_pb(cls, reply, request_id: str = "") -> Vectorized:
        return cls(tuple(reply.features), slots_dict(reply.slots), tuple(slot_name(s) for s in reply.unstated_slots),
                   vectorizer_name(reply.vectorizer), reply.language, request_id)


class Rows(tuple):
    """A matrix as a tuple of row tuples. `tolist()` gives a list of lists, as a numpy array's
    does, so code written for arrays keeps working; `numpy.asarray(rows)` makes an array."""

    def tolist(self) -> list:
        return [list(row) for row in self]


def _rows(flat: Sequence, rows: int, width: int) -> Rows:
    values = list(flat)
    if len(values) != rows * width:
        return Rows(() for _ in range(rows))
    return Rows(tuple(values[i * width:(i + 1) * width]) for i in range(rows))


@dataclass(frozen=True)
class BatchResult:
    """One scored batch. `indices[row]` are catalog class indices, best first (-1 for a row
    that could not be scored), `scores[row]` their probabilities; `errors` maps a failed row to
    the server's message and `error_fields` to the field that was wrong ("features[2]")."""

    model_version: int
    top_k: int
    rows: int
    catalog: tuple[str, ...]  # product ids in class order
    indices: Rows  # (rows, top_k) ints
    scores: Rows  # (rows, top_k) floats
    features: Rows  # (rows, 6) floats: the vectors that were scored
    errors: dict[int, str] = field(default_factory=dict)
    vectorizer: str = ""
    error_fields: dict[int, str] = field(default_factory=dict)
    names: tuple[str, ...] = ()
    names_ko: tuple[str, ...] = ()
    request_id: str = ""

    @classmethod
    def from_pb(cls, reply: recommend_pb2.RecommendBatchResponse, request_id: str = "") -> BatchResult:
        rows, k = reply.rows, reply.top_k
        return cls(
            model_version=reply.model_version, top_k=k, rows=rows, catalog=tuple(reply.product_ids),
            indices=_rows(reply.product_indices, rows, k), scores=_rows(reply.scores, rows, k),
            features=_rows(reply.features, rows, FEATURE_COUNT),
            errors={e.row: e.message for e in reply.errors},
            vectorizer=vectorizer_name(reply.vectorizer),
            error_fields={e.row: e.field for e in reply.errors if e.field},
            names=tuple(reply.product_names), names_ko=tuple(reply.product_names_ko), request_id=request_id,
        )

    def product_ids(self, row: int) -> list:
        """Best-first product ids of one row ([] for a row that failed)."""
        return [self.catalog[i] for i in self.indices[row] if i >= 0]

    def items(self, row: int) -> tuple[Item, ...]:
        """One row's ranking as Items (like a single recommend call's)."""
        out = []
        for rank, (index, score) in enumerate(zip(self.indices[row], self.scores[row]), start=1):
            if index < 0:
                continue
            name = self.names[index] if index < len(self.names) else ""
            name_ko = self.names_ko[index] if index < len(self.names_ko) else ""
            out.append(Item(rank, self.catalog[index], name, name_ko, float(score)))
        return tuple(out)


@dataclass(frozen=True)
class ChatTurn:
    reply: str
    state: chat_pb2.ConversationState  # send it back with the next turn
    items: tuple[Item, ...]
    understood: dict[str, float]
    follow_up: str  # slot name the bot asked about, '' when none
    model_version: int
    vectorizer: str
    request_id: str = ""

    @property
    def language(self) -> str:
        return self.state.language

    @classmethod
    def from_pb(cls, reply: chat_pb2.ChatResponse, request_id: str = "") -> ChatTurn:
        return cls(reply.reply, reply.state, tuple(Item.from_pb(i) for i in reply.items),
                   slots_dict(reply.understood), slot_name(reply.follow_up), reply.model_version,
                   vectorizer_name(reply.vectorizer), request_id)


@dataclass(frozen=True)
class Product:
    class_index: int
    product_id: str
    name: str
    name_ko: str
    typical_price_krw: int
    primary_interest: str  # interest key, e.g. 'fitness'

    @classmethod
    def from_pb(cls, p: metadata_pb2.CatalogProduct) -> Product:
        return cls(p.class_index, p.product_id, p.name, p.name_ko, p.typical_price_krw,
                   enum_name(common_pb2.Interest, p.primary_interest, "INTEREST_"))


@dataclass(frozen=True)
class ModelVersion:
    version: int
    state: str  # 'available', 'not_loaded' or 'failed'
    is_default: bool
    backend: str
    catalog: tuple[Product, ...]
    error: str


@dataclass(frozen=True)
class Metadata:
    """What the server serves (MetadataService.GetMetadata). `raw` is the full response (the
    signature with each slot's range and codes, the request limits)."""

    server: str  # 'inference' or 'gateway'
    schema_version: str
    default_version: int
    versions: tuple[ModelVersion, ...]
    catalog: tuple[Product, ...]
    vectorizer: str
    raw: metadata_pb2.GetMetadataResponse
    request_id: str = ""

    @classmethod
    def from_pb(cls, reply: metadata_pb2.GetMetadataResponse, request_id: str = "") -> Metadata:
        versions = tuple(
            ModelVersion(v.version, enum_name(metadata_pb2.ModelVersionState, v.state, "MODEL_VERSION_STATE_"),
                         v.is_default, v.backend, tuple(Product.from_pb(p) for p in v.catalog), v.error)
            for v in reply.versions)
        return cls(reply.server, reply.schema_version, reply.default_version, versions,
                   tuple(Product.from_pb(p) for p in reply.catalog), vectorizer_name(reply.vectorizer),
                   reply, request_id)


# --------------------------------------------------------------------------- requests


def _plain(values) -> list:
    """A list from a sequence, a numpy array (without importing numpy) or a generator."""
    return values.tolist() if hasattr(values, "tolist") else list(values)


def recommend_request(features: Sequence[float] | None, text: str | None, top_k: int,
                      model_version: int) -> recommend_pb2.RecommendRequest:
    if (features is None) == (text is None):
        raise ValueError("pass exactly one of features= and text=")
    request = recommend_pb2.RecommendRequest(top_k=top_k, model_version=model_version)
    if features is not None:
        request.features.extend(float(v) for v in _plain(features))
    else:
        request.text = text
    return request


def flat_features(features) -> list:
    """N rows of 6 values (or an already flat list of N*6) as one flat list of floats."""
    rows = _plain(features)
    if rows and hasattr(rows[0], "__len__"):  # rows of values (numbers have no len)
        flat = []
        for i, row in enumerate(rows):
            row = _plain(row)
            if len(row) != FEATURE_COUNT:
                raise ValueError(f"features row {i} has {len(row)} values, expected {FEATURE_COUNT}")
            flat.extend(float(v) for v in row)
        return flat
    if len(rows) % FEATURE_COUNT:
        raise ValueError(f"flat features must hold N*{FEATURE_COUNT} values, got {len(rows)}")
    return [float(v) for v in rows]


def batch_request(features=None, texts: Sequence[str] | None = None, top_k: int = 3,
                  model_version: int = 0) -> recommend_pb2.RecommendBatchRequest:
    """A RecommendBatchRequest from N×6 features (rows or flat) or a list of texts (exactly one)."""
    if (features is None) == (texts is None):
        raise ValueError("pass exactly one of features= and texts=")
    request = recommend_pb2.RecommendBatchRequest(top_k=top_k, model_version=model_version)
    if features is not None:
        request.features.extend(flat_features(features))
    else:
        request.texts.extend(texts)
    return request


def stream_request(batch, top_k: int, model_version: int) -> recommend_pb2.RecommendStreamRequest:
    """One stream message from a ready RecommendBatchRequest, a list of texts or N×6 features."""
    if isinstance(batch, recommend_pb2.RecommendBatchRequest):
        request = batch
    elif len(batch) and isinstance(batch[0], str):
        request = batch_request(texts=list(batch), top_k=top_k, model_version=model_version)
    else:
        request = batch_request(batch, top_k=top_k, model_version=model_version)
    return recommend_pb2.RecommendStreamRequest(batch=request)


def chat_request(text: str, state: chat_pb2.ConversationState | None, top_k: int) -> chat_pb2.ChatRequest:
    return chat_pb2.ChatRequest(text=text, state=state or chat_pb2.ConversationState(), top_k=top_k)
