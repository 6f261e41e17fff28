"""Where a batch job reads and writes: local paths or s3:// URIs, through pyarrow filesystems.

    location("s3://bucket/in/customers.parquet")  -> Location(fs=S3FileSystem, path="bucket/in/...")
    location("data/customers.csv")                -> Location(fs=LocalFileSystem, path="/abs/data/...")

S3 uses the standard AWS credential chain (environment, profile, instance role); nothing here
reads or logs keys. The endpoint can be overridden for S3-compatible stores (MinIO, a local
test server) with `--s3-endpoint` or the standard `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`
variables; the region comes from `AWS_REGION` / `AWS_DEFAULT_REGION` (default us-east-1).

A Location is a small picklable value: Ray workers rebuild the filesystem from it on their
own node instead of receiving a live connection.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

S3_SCHEME = "s3://"
# The fingerprint hashes this much of the start and of the end of the input, besides its size
# and modification time: enough to tell a different or rewritten file without reading it all.
FINGERPRINT_SAMPLE_BYTES = 1 << 20


def s3_endpoint_from_env() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_region_from_env() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


@dataclass(frozen=True)
class Location:
    """A file or folder: `uri` as the user wrote it, `path` as the filesystem names it."""

    uri: str
    path: str
    s3: bool = False
    endpoint: str | None = None  # S3 only: http(s)://host:port of an S3-compatible store
    region: str | None = None

    def filesystem(self) -> pafs.FileSystem:
        if not self.s3:
            return pafs.LocalFileSystem()
        kwargs: dict = {"region": self.region or s3_region_from_env()}
        if self.endpoint:
            parsed = urlparse(self.endpoint if "://" in self.endpoint else f"https://{self.endpoint}")
            kwargs["endpoint_override"] = parsed.netloc
            kwargs["scheme"] = parsed.scheme or "https"
            # Test servers and MinIO answer on a host:port, not bucket.host virtual addresses.
        return pafs.S3FileSystem(**kwargs)

    def child(self, name: str) -> Location:
        return Location(uri=self.uri.rstrip("/") + "/" + name, path=self.path.rstrip("/") + "/" + name,
                        s3=self.s3, endpoint=self.endpoint, region=self.region)

    @property
    def suffix(self) -> str:
        name = self.path.rstrip("/").rsplit("/", 1)[-1]
        return "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""


def location(uri: str | os.PathLike, *, s3_endpoint: str | None = None) -> Location:
    text = os.fspath(uri)
    if text.startswith(S3_SCHEME):
        path = text[len(S3_SCHEME):].strip("/")
        if not path:
            raise ValueError(f"{text} names no bucket")
        return Location(uri=text, path=path, s3=True, endpoint=s3_endpoint or s3_endpoint_from_env(),
                        region=s3_region_from_env())
    if "://" in text:
        raise ValueError(f"{text}: only local paths and s3:// URIs are supported")
    return Location(uri=text, path=os.path.abspath(text))


def file_info(where: Location) -> pafs.FileInfo:
    return where.filesystem().get_file_info(where.path)


def fingerprint(where: Location) -> dict:
    """Size, modification time and a hash of the first and last MiB: a rerun compares it
    with the manifest to refuse a different or changed input."""
    fs = where.filesystem()
    info = fs.get_file_info(where.path)
    if info.type != pafs.FileType.File:
        raise FileNotFoundError(f"input {where.uri} does not exist")
    digest = hashlib.sha256()
    with fs.open_input_file(where.path) as f:
        digest.update(f.read(FINGERPRINT_SAMPLE_BYTES))
        if info.size > FINGERPRINT_SAMPLE_BYTES:
            f.seek(max(FINGERPRINT_SAMPLE_BYTES, info.size - FINGERPRINT_SAMPLE_BYTES))
            digest.update(f.read())
    mtime = info.mtime_ns if info.mtime_ns is not None else None
    return {"size": int(info.size), "mtime_ns": mtime, "sha256_head_tail": digest.hexdigest()}


def ensure_dir(where: Location) -> None:
    if not where.s3:
        os.makedirs(where.path, exist_ok=True)
    # S3 has no folders: a key prefix exists as soon as an object is written under it.


def list_names(where: Location) -> list[str]:
    """Names of the files directly in a folder ([] when it does not exist)."""
    fs = where.filesystem()
    selector = pafs.FileSelector(where.path, allow_not_found=True, recursive=False)
    return sorted(info.base_name for info in fs.get_file_info(selector) if info.type == pafs.FileType.File)


def read_bytes(where: Location) -> bytes | None:
    fs = where.filesystem()
    if fs.get_file_info(where.path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(where.path) as f:
        return f.read()


def write_bytes_atomically(where: Location, data: bytes) -> None:
    """Locally: a temp file in the same folder renamed over the target (readers see the old or
    the new file, never half). On S3 one PUT is already all-or-nothing."""
    fs = where.filesystem()
    if where.s3:
        with fs.open_output_stream(where.path) as out:
            out.write(data)
        return
    staging = f"{where.path}.{uuid.uuid4().hex}.tmp"
    with open(staging, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(staging, where.path)


def write_parquet_atomically(where: Location, table: pa.Table, metadata: dict[bytes, bytes]) -> None:
    """Write one output partition so that a kill at any moment leaves no partial file under
    the final name (see write_bytes_atomically)."""
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    fs = where.filesystem()
    if where.s3:
        pq.write_table(table, where.path, filesystem=fs)
        return
    staging = f"{os.path.dirname(where.path)}/.{os.path.basename(where.path)}.{uuid.uuid4().hex}.tmp"
    pq.write_table(table, staging)
    os.replace(staging, where.path)


def remove_stale_temp_files(where: Location) -> int:
    """Temp files a killed run left behind (local output only; S3 writes have none)."""
    if where.s3:
        return 0
    removed = 0
    for name in list_names(where):
        if name.endswith(".tmp"):
            try:
                os.unlink(os.path.join(where.path, name))
                removed += 1
            except FileNotFoundError:
                pass
    return removed
