"""The recommender-client wheel as another team gets it: built by `make client-wheel` (the PEP 517
backend generating the code), installed alone into fresh virtualenvs on
Python 3.9 and 3.13 with the OLDEST grpcio / protobuf / googleapis-common-protos it declares, and
used from those interpreters against a real gateway: recommend, batch, stream, chat, metadata,
and a bad input whose field violation names features[2], with both the sync and the asyncio client.

pip downloads from PyPI (through the shared pip cache) the first time. To stay fast the wheel is
built while the virtualenvs are made, the virtualenvs have no pip of their own (the project's pip
installs into them with --python) and nothing is byte-compiled.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

from clients.client import RecommenderClient
from tests.support import ROOT

pytestmark = pytest.mark.slow

CLIENT_DIR = ROOT / "clients" / "python"
PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
CUSTOMER = [35, 1, 300_000, 2, 1, 0]


def interpreter(version: str) -> str:
    found = sorted(glob.glob(str(PYENV / f"{version}.*" / "bin" / "python")))
    if not found:
        pytest.skip(f"no Python {version} under {PYENV} (pyenv install {version})")
    return found[-1]


def oldest_pins(python_version: str) -> list[str]:
    """`name==lowest` for every dependency that applies to `python_version`, from pyproject.toml."""
    project = tomllib.loads((CLIENT_DIR / "pyproject.toml").read_text())["project"]
    pins = []
    for line in project["dependencies"]:
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate({"python_version": python_version}):
            continue
        lowest = [s.version for s in requirement.specifier if s.operator == ">="]
        assert len(lowest) == 1, f"{line}: declare the lowest supported version with >="
        pins.append(f"{requirement.name}=={lowest[0]}")
    return pins


def quiet_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "RECOMMENDER_TOKEN", "RECOMMENDER_CA", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_COMPILE"] = "1"  # also for the build's isolated environment
    return env


def run(args: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=quiet_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def build_wheel(out: Path) -> Path:
    """`make client-wheel`, the promised way to get the wheel (the wheel only: each build step
    installs grpcio-tools into a fresh isolated environment, and that is most of the time)."""
    run(["make", "-s", "client-wheel", f"CLIENT_DIST={out}", "CLIENT_BUILD_ARGS=--wheel"], cwd=ROOT, timeout=300)
    wheels = list(out.glob("recommender_client-*-py3-none-any.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def pip_for(venv: Path) -> list[str]:
    """The project's pip, installing into `venv` (pip >= 22.3 runs itself with that interpreter)."""
    return [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]


def venv_with_oldest_dependencies(version: str, where: Path) -> tuple[Path, list[str]]:
    python = interpreter(version)
    venv = where / f"venv-{version}"
    run([python, "-m", "venv", "--without-pip", str(venv)], cwd=where)
    pins = oldest_pins(version)
    run([*pip_for(venv), "install", "--quiet", "--only-binary=:all:", *pins], cwd=where)
    return venv, pins


SCRIPT = r'''
import asyncio, json, sys
import grpc, google.protobuf
from recommender_client import AsyncRecommenderClient, InvalidArgument, RecommenderClient

target = sys.argv[1]
out = {"python": sys.version.split()[0], "grpcio": grpc.__version__, "protobuf": google.protobuf.__version__}
customer = [35, 1, 300000, 2, 1, 0]
bad_budget = [35, 1, -5, 2, 1, 0]

with RecommenderClient(target, timeout=30) as client:
    rec = client.recommend(features=customer, top_k=3, request_id="wheel-test-1")
    out["recommend"] = [(i.rank, i.product_id) for i in rec.items]
    out["request_id"] = rec.request_id
    batch = client.recommend_batch([customer, bad_budget], top_k=2)
    out["batch_row0"] = batch.product_ids(0)
    out["batch_errors"] = {str(row): field for row, field in batch.error_fields.items()}
    out["batch_messages"] = {str(row): message for row, message in batch.errors.items()}
    out["stream_rows"] = [r.rows for r in client.recommend_stream([[customer], [customer, customer]], top_k=1)]
    turn = client.chat("30대 여성 운동용 30만원 정도 선물 추천해줘")
    out["chat"] = {"reply": turn.reply, "items": [i.product_id for i in turn.items], "language": turn.language}
    meta = client.metadata()
    out["metadata"] = {"server": meta.server, "schema_version": meta.schema_version,
                       "default_version": meta.default_version, "catalog": [p.product_id for p in meta.catalog],
                       "prices": [p.typical_price_krw for p in meta.catalog],
                       "states": [(v.version, v.state) for v in meta.versions]}
    try:
        client.recommend(features=bad_budget)
        out["violation"] = None
    except InvalidArgument as exc:
        out["violation"] = {"code": exc.code.name, "fields": [v.field for v in exc.field_violations],
                            "details": exc.details}

async def async_calls():
    async with AsyncRecommenderClient(target, timeout=30) as client:
        rec = await client.recommend(features=customer, top_k=3)
        meta = await client.metadata()
        try:
            await client.recommend(features=bad_budget)
            violation = None
        except InvalidArgument as exc:
            violation = [v.field for v in exc.field_violations]
        return {"recommend": [(i.rank, i.product_id) for i in rec.items], "server": meta.server,
                "violation": violation}

out["aio"] = asyncio.run(async_calls())
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """{python version: (venv, pins)} with the wheel installed, built while the venvs are made."""
    where = tmp_path_factory.mktemp("client-wheel")

    def venv_with_the_wheel(version: str, wheel) -> tuple[Path, list[str]]:
        venv, pins = venv_with_oldest_dependencies(version, where)
        run([*pip_for(venv), "install", "--quiet", "--no-deps", str(wheel.result())], cwd=where)
        run([*pip_for(venv), "check"], cwd=where)  # the oldest pins satisfy what the wheel declares
        return venv, pins

    with ThreadPoolExecutor(3) as pool:
        wheel = pool.submit(build_wheel, where / "dist")
        # each virtualenv takes the wheel as soon as both are ready, the two side by side
        venvs = {v: pool.submit(venv_with_the_wheel, v, wheel) for v in ("3.9", "3.13")}
        wheel_path = wheel.result()
        ready = {v: f.result() for v, f in venvs.items()}
    with zipfile.ZipFile(wheel_path) as archive:
        metadata = archive.read(f"{wheel_path.name.split('-')[0]}-{wheel_path.name.split('-')[1]}.dist-info/METADATA")
    return {"wheel": wheel_path, "metadata": metadata.decode(), "venvs": ready, "where": where}


def test_wheel_is_slim_and_declares_its_lowest_versions(installed):
    assert installed["wheel"].name == "recommender_client-1.0.0-py3-none-any.whl"
    requires = [Requirement(line.split(":", 1)[1].strip()) for line in installed["metadata"].splitlines()
                if line.startswith("Requires-Dist:")]
    assert {r.name for r in requires} == {"grpcio", "protobuf", "googleapis-common-protos"}
    assert "Requires-Python: >=3.9" in installed["metadata"]
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    assert "recommender/v1/recommend_pb2.pyi" in names and "recommender/v1/metadata_pb2_grpc.py" in names
    assert "recommender/__init__.py" not in names  # a namespace package the project extends
    assert not Marker("python_version >= '3.13'").evaluate({"python_version": "3.9"})


@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_oldest_dependencies_call_a_real_gateway(installed, gateway_target, version):
    venv, pins = installed["venvs"][version]
    result = run([str(venv / "bin" / "python"), "-c", SCRIPT, gateway_target], cwd=installed["where"], timeout=120)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["python"].startswith(version + ".")
    assert f"grpcio=={out['grpcio']}" in pins and f"protobuf=={out['protobuf']}" in pins

    with RecommenderClient(gateway_target, timeout=30) as reference:  # the project's own client
        expected = [[i.rank, i.product_id] for i in reference.recommend(CUSTOMER, top_k=3).items]
        catalog = [p.product_id for p in reference.metadata().catalog]
    assert out["recommend"] == expected and out["aio"]["recommend"] == expected
    assert out["request_id"] == "wheel-test-1"
    assert out["batch_row0"] == [pid for _, pid in expected[:2]]
    assert out["batch_errors"] == {"1": "features[2]"} and "budget" in out["batch_messages"]["1"]
    assert out["stream_rows"] == [1, 2]
    assert out["chat"]["reply"] and out["chat"]["language"] == "ko"
    meta = out["metadata"]
    assert meta["server"] == "gateway" and out["aio"]["server"] == "gateway"
    assert meta["schema_version"] == "1" and meta["default_version"] == 1
    assert meta["catalog"] == catalog and all(p > 0 for p in meta["prices"])
    assert meta["states"] == [[1, "available"]]
    assert out["violation"]["code"] == "INVALID_ARGUMENT" and "budget" in out["violation"]["details"]
    assert out["violation"]["fields"][0] == "features[2]"
    assert out["aio"]["violation"][0] == "features[2]"
