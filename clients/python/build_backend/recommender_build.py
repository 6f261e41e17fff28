"""PEP 517 build backend of recommender-client: setuptools' backend, after generating the
recommender.v1 messages, gRPC stubs and .pyi type stubs from the .proto files.

The .proto files are the only source: in a repository checkout they are read from the
repository's protos/ (two levels up); `build_sdist` copies them into the sdist's protos/ so a
wheel can be built from the sdist alone. grpcio-tools is a build requirement (pinned in
pyproject.toml), so nobody needs it installed and the output is the same on every machine.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import build_meta as _setuptools

# Everything setuptools offers (get_requires_for_build_*, prepare_metadata_*), then ours.
from setuptools.build_meta import *  # noqa: F403

PROJECT = Path(__file__).resolve().parent.parent  # clients/python (or the unpacked sdist)
REPOSITORY_PROTOS = PROJECT.parent.parent / "protos"
SDIST_PROTOS = PROJECT / "protos"
SOURCES = PROJECT / "src"
PACKAGE = "recommender/v1"
# What the .proto files import besides the well-known types: vendored googleapis protos.
IMPORTED = ("google/api/annotations.proto", "google/api/http.proto")


def protos_root() -> Path:
    if (REPOSITORY_PROTOS / PACKAGE).is_dir():
        return REPOSITORY_PROTOS
    if (SDIST_PROTOS / PACKAGE).is_dir():
        return SDIST_PROTOS
    raise FileNotFoundError(f"no {PACKAGE}/*.proto in {REPOSITORY_PROTOS} or {SDIST_PROTOS}")


def generate() -> list[Path]:
    """(Re)generate src/recommender/v1/*_pb2*.py[i]; returns the files written."""
    import grpc_tools
    from grpc_tools import protoc

    root = protos_root()
    protos = sorted((root / PACKAGE).glob("*.proto"))
    if not protos:
        raise FileNotFoundError(f"no .proto files in {root / PACKAGE}")
    target = SOURCES / PACKAGE
    for stale in target.glob("*_pb2*.py*"):
        stale.unlink()
    well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
    args = ["grpc_tools.protoc", f"-I{root}", f"-I{well_known}", f"--python_out={SOURCES}",
            f"--grpc_python_out={SOURCES}", f"--pyi_out={SOURCES}", *map(str, protos)]
    status = protoc.main(args)
    if status != 0:
        raise RuntimeError(f"protoc failed with status {status}: {' '.join(args)}")
    return sorted(target.glob("*_pb2*.py*"))


def _copy_protos_into_sdist() -> None:
    if not (REPOSITORY_PROTOS / PACKAGE).is_dir():
        return  # building from an sdist: its protos/ is already there
    if SDIST_PROTOS.exists():
        shutil.rmtree(SDIST_PROTOS)
    for name in [*(p.relative_to(REPOSITORY_PROTOS) for p in (REPOSITORY_PROTOS / PACKAGE).glob("*.proto")),
                 *map(Path, IMPORTED)]:
        (SDIST_PROTOS / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPOSITORY_PROTOS / name, SDIST_PROTOS / name)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    generate()
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    generate()
    return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory, config_settings=None):
    _copy_protos_into_sdist()
    return _setuptools.build_sdist(sdist_directory, config_settings)
