"""The product contract in code: the 6-float customer vector, its codes, the default
catalog, and the validation every component applies.

This module is the project's single source of truth for the contract described in
docs/contract.md. Trainer, inference server, gateway, vectorizers and clients import
it; nothing else declares slot names, ranges, codes or products. It must stay
importable without TensorFlow (only numpy, for the batch validator).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from recommender.errors import InvalidArgument

SCHEMA_VERSION = "1"

FEATURE_COUNT = 6
MAX_BUDGET_KRW = 1_000_000_000
MAX_AGE = 100
MAX_TEXT_CHARS = 2000
DEFAULT_TOP_K = 3
MAX_TOP_K = 10
# Caps of one RecommendBatchRequest (recommend.proto): vectors, and texts (each vectorized).
MAX_BATCH_ROWS = 10_000
MAX_BATCH_TEXTS = 1_000


@dataclass(frozen=True)
class Code:
    """One value of a coded slot, with its labels in both shop languages."""

    value: int
    key: str  # stable machine name, e.g. "fitness"
    en: str
    ko: str


@dataclass(frozen=True)
class Slot:
    """One position of the customer vector."""

    index: int
    name: str
    en: str
    ko: str
    low: int
    high: int
    unit: str
    codes: tuple[Code, ...] = ()  # empty for numeric slots (age, budget)

    @property
    def coded(self) -> bool:
        return bool(self.codes)

    def has_code(self, value: int) -> bool:
        return any(c.value == value for c in self.codes)

    def code(self, value: int) -> Code:
        for code in self.codes:
            if code.value == value:
                return code
        raise KeyError(f"{self.name} has no code {value}")


GENDERS = (
    Code(1, "female", "female", "여성"),
    Code(2, "male", "male", "남성"),
)
INTERESTS = (
    Code(1, "music", "music", "음악"),
    Code(2, "fitness", "fitness", "운동"),
    Code(3, "work_study", "work & study", "업무·공부"),
    Code(4, "video_drawing", "video & drawing", "영상·그림"),
    Code(5, "gaming", "gaming", "게임"),
    Code(6, "photo_travel", "photography & travel", "사진·여행"),
    Code(7, "reading", "reading", "독서"),
    Code(8, "cooking_home", "cooking & home", "요리·살림"),
    Code(9, "beauty", "beauty", "뷰티"),
    Code(10, "health_relax", "health & relaxation", "건강·휴식"),
)
PURPOSES = (
    Code(1, "self", "for own use", "본인용"),
    Code(2, "gift", "a gift", "선물"),
)
SEASONS = (
    Code(1, "spring", "spring", "봄"),
    Code(2, "summer", "summer", "여름"),
    Code(3, "autumn", "autumn", "가을"),
    Code(4, "winter", "winter", "겨울"),
)

SLOTS: tuple[Slot, ...] = (
    Slot(0, "age", "age", "나이", 0, MAX_AGE, "years"),
    Slot(1, "gender", "gender", "성별", 0, 2, "code", GENDERS),
    Slot(2, "budget", "budget", "예산", 0, MAX_BUDGET_KRW, "KRW"),
    Slot(3, "interest", "interest", "관심사", 0, 10, "code", INTERESTS),
    Slot(4, "purpose", "purpose", "용도", 0, 2, "code", PURPOSES),
    Slot(5, "season", "season", "계절", 0, 4, "code", SEASONS),
)
SLOT_NAMES: tuple[str, ...] = tuple(s.name for s in SLOTS)
SLOT_BY_NAME: Mapping[str, Slot] = {s.name: s for s in SLOTS}
AGE, GENDER, BUDGET, INTEREST, PURPOSE, SEASON = range(FEATURE_COUNT)
assert len(SLOTS) == FEATURE_COUNT


# --------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class Product:
    """One class of the model's output. `index` is the class index (softmax position)."""

    index: int
    product_id: str
    name_en: str
    name_ko: str
    primary_interest: int  # an INTERESTS code
    price_krw: int  # typical price

    def name(self, language: str = "en") -> str:
        return self.name_ko if language == "ko" else self.name_en


@dataclass(frozen=True)
class Catalog:
    """The labels of a model version, in class order. Travels with each exported version."""

    products: tuple[Product, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        ids = [p.product_id for p in self.products]
        if not ids:
            raise ValueError("catalog is empty")
        if len(set(ids)) != len(ids):
            raise ValueError(f"catalog has duplicate product ids: {ids}")
        for position, product in enumerate(self.products):
            if product.index != position:
                raise ValueError(
                    f"catalog product {product.product_id!r} has index {product.index}, "
                    f"expected its position {position}"
                )

    def __len__(self) -> int:
        return len(self.products)

    def __getitem__(self, index: int) -> Product:
        return self.products[index]

    def __iter__(self):
        return iter(self.products)

    @property
    def product_ids(self) -> tuple[str, ...]:
        return tuple(p.product_id for p in self.products)

    def index_of(self, product_id: str) -> int:
        for product in self.products:
            if product.product_id == product_id:
                return product.index
        raise KeyError(f"unknown product id {product_id!r}; known: {', '.join(self.product_ids)}")

    def primary_for(self, interest: int) -> Product | None:
        for product in self.products:
            if product.primary_interest == interest:
                return product
        return None

    def to_json(self) -> list[dict]:
        return [asdict(p) for p in self.products]

    @classmethod
    def from_json(cls, rows: Iterable[Mapping]) -> Catalog:
        products = []
        for position, row in enumerate(rows):
            try:
                products.append(
                    Product(
                        index=int(row.get("index", position)),
                        product_id=str(row["product_id"]),
                        name_en=str(row.get("name_en", row["product_id"])),
                        name_ko=str(row.get("name_ko", row.get("name_en", row["product_id"]))),
                        primary_interest=int(row.get("primary_interest", 0)),
                        price_krw=int(row.get("price_krw", 0)),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"catalog entry {position} is malformed: {exc}") from exc
        return cls(tuple(products))


DEFAULT_CATALOG = Catalog(
    (
        Product(0, "earbuds", "Wireless earbuds", "무선 이어폰", 1, 200_000),
        Product(1, "smartwatch", "Smartwatch", "스마트워치", 2, 350_000),
        Product(2, "laptop", "Laptop", "노트북", 3, 1_500_000),
        Product(3, "tablet", "Tablet", "태블릿", 4, 800_000),
        Product(4, "console", "Game console", "게임 콘솔", 5, 500_000),
        Product(5, "camera", "Mirrorless camera", "미러리스 카메라", 6, 1_200_000),
        Product(6, "ereader", "E-reader", "전자책 리더기", 7, 250_000),
        Product(7, "airfryer", "Air fryer", "에어프라이어", 8, 150_000),
        Product(8, "hairdryer", "Hair dryer", "헤어드라이어", 9, 400_000),
        Product(9, "massager", "Massager", "안마기", 10, 300_000),
    )
)


# --------------------------------------------------------------------------- validation


class InvalidFeatures(InvalidArgument):
    """A vector that breaks the contract (INVALID_ARGUMENT). `slot` is the offending slot
    name, or None when the problem is the vector as a whole (e.g. its length); `field` the
    request field, e.g. "features[2]"."""

    def __init__(self, message: str, slot: str | None = None, row: int | None = None,
                 field: str = "features"):
        super().__init__(message, field=field)
        self.slot = slot
        self.row = row


def _fmt(value: float) -> str:
    if math.isfinite(value) and value == int(value):
        return str(int(value))
    return repr(float(value))


def _slot_error(slot: Slot, value: float, prefix: str = "features") -> str | None:
    """The contract violation of one value, or None when it is valid."""
    where = f"{prefix}[{slot.index}] {slot.name}"
    if not math.isfinite(value):
        return f"{where} must be a finite number, got {value}"
    if slot.coded:
        allowed = ", ".join(f"{c.value} {c.key}" for c in slot.codes)
        if value != int(value) or not (value == 0 or slot.has_code(int(value))):
            return f"{where} must be 0 (not stated) or one of {allowed}; got {_fmt(value)}"
        return None
    if value < slot.low or value > slot.high:
        high = "1e9" if slot.high == MAX_BUDGET_KRW else str(slot.high)
        return f"{where} must be between {slot.low} and {high} {slot.unit}, got {_fmt(value)}"
    if slot.name == "age" and value != int(value):
        return f"{where} must be a whole number of years, got {_fmt(value)}"
    return None


def validate_features(values: Sequence[float], prefix: str = "features") -> tuple[float, ...]:
    """Return the vector as a tuple of floats, or raise InvalidFeatures naming the slot.

    Accepts any sequence of numbers (list, tuple, protobuf repeated field, numpy array)."""
    try:
        floats = tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise InvalidFeatures(f"{prefix} must be numbers: {exc}", field=prefix) from exc
    if len(floats) != FEATURE_COUNT:
        raise InvalidFeatures(
            f"{prefix} must have exactly {FEATURE_COUNT} values "
            f"({', '.join(SLOT_NAMES)}), got {len(floats)}", field=prefix
        )
    for slot, value in zip(SLOTS, floats, strict=False):
        problem = _slot_error(slot, value, prefix)
        if problem:
            raise InvalidFeatures(problem, slot=slot.name, field=f"{prefix}[{slot.index}]")
    return floats


# Vectorized bounds for the batch path: one numpy pass instead of a Python loop per row.
_LOW = np.array([s.low for s in SLOTS], dtype=np.float64)
_HIGH = np.array([s.high for s in SLOTS], dtype=np.float64)
_CODED = np.array([s.coded for s in SLOTS])
_WHOLE = np.array([s.coded or s.name == "age" for s in SLOTS])


def invalid_rows(matrix: np.ndarray) -> np.ndarray:
    """Boolean mask of rows of an (N, 6) array that break the contract (fast path)."""
    m = np.asarray(matrix, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(m)
        bad |= (m < _LOW) | (m > _HIGH)
        bad |= _WHOLE & (m != np.floor(m))
    return bad.any(axis=1)


def validate_matrix(matrix: np.ndarray, prefix: str = "features") -> list[InvalidFeatures]:
    """Validate an (N, 6) array; return one InvalidFeatures per bad row (empty if all valid).

    Coded slots' ranges are contiguous (0..high), so bounds + wholeness is the full check;
    the per-row message comes from validate_features so wording is identical."""
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[1] != FEATURE_COUNT:
        raise InvalidFeatures(
            f"{prefix} must be rows of {FEATURE_COUNT} values, got shape {tuple(m.shape)}", field=prefix
        )
    errors = []
    for row in np.flatnonzero(invalid_rows(m)):
        try:
            validate_features(m[row], prefix=f"{prefix}[row {row}]")
        except InvalidFeatures as exc:
            exc.row = int(row)
            errors.append(exc)
    return errors


def resolve_top_k(top_k: int, catalog_size: int = MAX_TOP_K) -> int:
    """0 means the default (3); otherwise 1..min(10, catalog size). Raises InvalidArgument
    (field top_k)."""
    limit = min(MAX_TOP_K, catalog_size)
    if top_k == 0:
        return min(DEFAULT_TOP_K, limit)
    if top_k < 1 or top_k > limit:
        raise InvalidArgument(f"top_k must be between 1 and {limit} (0 means {DEFAULT_TOP_K}), got {top_k}",
                              field="top_k")
    return int(top_k)


class InvalidText(InvalidArgument):
    """Customer text that cannot be vectorized (empty, too long, not UTF-8): INVALID_ARGUMENT
    on field `text` unless the caller names another (e.g. "texts[3]")."""

    def __init__(self, message: str, field: str = "text"):
        super().__init__(message, field=field)


def validate_text(text: str | bytes) -> str:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidText(f"text must be valid UTF-8: {exc}") from exc
    if not text or not text.strip():
        raise InvalidText("text must not be empty")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidText(f"text must be at most {MAX_TEXT_CHARS} characters, got {len(text)}")
    # Lone surrogates survive str but cannot be encoded: they are not valid UTF-8 text.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidText(f"text must be valid UTF-8: {exc.reason}") from exc
    return text


def unstated_slots(features: Sequence[float]) -> tuple[str, ...]:
    return tuple(s.name for s, v in zip(SLOTS, features, strict=False) if v == 0)


def code_label(slot_name: str, value: float, language: str = "en") -> str:
    """Human label of a coded slot value ('' for 0 / unknown)."""
    slot = SLOT_BY_NAME[slot_name]
    try:
        code = slot.code(int(value))
    except KeyError:
        return ""
    return code.ko if language == "ko" else code.en
