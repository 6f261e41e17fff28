"""A fake Amazon Bedrock on 127.0.0.1 that speaks the real wire formats, so the gateway's
Bedrock vectorizers are tested through the real boto3 clients (via `endpoint_url`):

- Converse: `POST /model/{modelId}/converse`, rest-json request and response
  (output.message.content[] with `text` or `toolUse` blocks, stopReason, usage, metrics).
- InvokeFlow: `POST /flows/{flowId}/aliases/{aliasId}`, answered with an
  `application/vnd.amazon.eventstream` body of binary frames
  (prelude: total length, headers length, prelude CRC32; headers; payload; message CRC32)
  carrying flowOutputEvent and flowCompletionEvent, as the service does.
- Errors as the service sends them: status code, `x-amzn-ErrorType` header and a JSON body
  with `message` (429 ThrottlingException, 500 InternalServerException, ...).

Each test scripts the replies (`fake.script(answer(...), throttle(), ...)`; when the script
is used up, `fake.default` answers) and reads `fake.requests` to see what reached Bedrock.

    with FakeBedrock() as fake:
        fake.script(answer({"age": 30, ...}))
        ...endpoint_url=fake.url...
"""

from __future__ import annotations

import json
import struct
import threading
import uuid
from binascii import crc32
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

EVENTSTREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING_HEADER_TYPE = 7  # event stream header value type: UTF-8 string, 2-byte length


# --------------------------------------------------------------------------- event stream frames


def encode_headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode("utf-8")
        raw_value = value.encode("utf-8")
        out += struct.pack(">B", len(raw_name)) + raw_name
        out += struct.pack(">BH", _STRING_HEADER_TYPE, len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event stream message: prelude (total, headers length, CRC32 of those 8 bytes),
    headers, payload, then the CRC32 of everything before it."""
    raw_headers = encode_headers(headers)
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", crc32(prelude) & 0xFFFFFFFF)
    message = prelude + raw_headers + payload
    return message + struct.pack(">I", crc32(message) & 0xFFFFFFFF)


def event_frame(event_type: str, payload: dict[str, Any]) -> bytes:
    return encode_message(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
        json.dumps(payload).encode("utf-8"),
    )


def exception_frame(exception_type: str, message: str) -> bytes:
    return encode_message(
        {":exception-type": exception_type, ":content-type": "application/json",
         ":message-type": "exception"},
        json.dumps({"message": message}).encode("utf-8"),
    )


def flow_output_frame(document: Any) -> bytes:
    return event_frame("flowOutputEvent", {
        "content": {"document": document}, "nodeName": "FlowOutputNode", "nodeType": "FlowOutputNode",
    })


def flow_completion_frame(reason: str = "SUCCESS") -> bytes:
    return event_frame("flowCompletionEvent", {"completionReason": reason})


# --------------------------------------------------------------------------- requests and replies


@dataclass
class RecordedRequest:
    method: str
    path: str  # URL-decoded
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def api(self) -> str:
        return "converse" if self.path.startswith("/model/") else "invoke_flow"

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    """How the fake answers one request. `build(request)` returns (status, headers, body)."""

    build: Callable[[RecordedRequest], tuple[int, dict[str, str], bytes]]
    delay_s: float = 0.0
    label: str = ""


def _converse_body(content: list[dict[str, Any]], stop_reason: str) -> bytes:
    return json.dumps({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": 900, "outputTokens": 40, "totalTokens": 940},
        "metrics": {"latencyMs": 321},
    }).encode("utf-8")


def _json_response(status: int, body: Any, extra: dict[str, str] | None = None):
    headers = {"Content-Type": "application/json", **(extra or {})}
    return status, headers, json.dumps(body).encode("utf-8")


def _stream_response(frames: list[bytes]):
    return 200, {
        "Content-Type": EVENTSTREAM_CONTENT_TYPE,
        "x-amz-bedrock-flow-execution-id": str(uuid.uuid4()),
    }, b"".join(frames)


def answer(value: Any) -> Reply:
    """The model answers with `value` (a dict/list) in the form the request asked for:
    Converse with toolConfig -> a toolUse block with it as input; Converse without -> a text
    block with its JSON; InvokeFlow -> a flowOutputEvent whose document is its JSON text
    (what a prompt node's String output hands to the output node)."""

    def build(request: RecordedRequest):
        if request.api == "converse":
            tool_config = request.json().get("toolConfig")
            if tool_config:
                name = tool_config["tools"][0]["toolSpec"]["name"]
                block = {"toolUse": {"toolUseId": "tooluse_" + uuid.uuid4().hex[:12], "name": name,
                                     "input": value}}
                return _json_response(200, json.loads(_converse_body([block], "tool_use")))
            return _json_response(200, json.loads(_converse_body([{"text": json.dumps(value)}], "end_turn")))
        return _stream_response([flow_output_frame(json.dumps(value)), flow_completion_frame()])

    return Reply(build, label=f"answer {value!r}")


def text(model_text: str) -> Reply:
    """The model answers with raw text (prose, broken JSON, two objects ...)."""

    def build(request: RecordedRequest):
        if request.api == "converse":
            return _json_response(200, json.loads(_converse_body([{"text": model_text}], "end_turn")))
        return _stream_response([flow_output_frame(model_text), flow_completion_frame()])

    return Reply(build, label="text")


def converse(content: list[dict[str, Any]], stop_reason: str = "end_turn") -> Reply:
    """A Converse answer with exactly these content blocks."""
    return Reply(lambda request: (200, {"Content-Type": "application/json"},
                                  _converse_body(content, stop_reason)), label="converse")


def flow_frames(*frames: bytes) -> Reply:
    """An InvokeFlow answer made of exactly these event stream frames."""
    return Reply(lambda request: _stream_response(list(frames)), label="flow frames")


def error(status: int, error_type: str, message: str) -> Reply:
    """An AWS rest-json error: status, x-amzn-ErrorType header, {"message": ...} body."""
    header = {"x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    return Reply(lambda request: _json_response(status, {"message": message}, header), label=error_type)


def throttle() -> Reply:
    return error(429, "ThrottlingException", "Too many requests, please wait before trying again.")


def server_error(status: int = 500) -> Reply:
    return error(status, "InternalServerException", "The server encountered an internal error.")


def slow(seconds: float, then: Reply | None = None) -> Reply:
    """Wait `seconds` before answering (longer than the client's read timeout in tests)."""
    inner = then or answer([0, 0, 0, 0, 0, 0])
    return Reply(inner.build, delay_s=seconds, label=f"slow {seconds}s")


def isolate_aws_env(monkeypatch, tmp_path) -> None:
    """No AWS credentials or profile from the machine running the tests: credential
    variables removed, config/credentials files pointed at an empty file, instance metadata
    disabled. Tests then set dummy keys (or none, for the no-credentials case)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
                 "AWS_BEARER_TOKEN_BEDROCK"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "empty-aws-file"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


# --------------------------------------------------------------------------- the server


@dataclass
class FakeBedrock:
    """Threaded HTTP server on 127.0.0.1:<free port>. Use as a context manager."""

    default: Reply = field(default_factory=lambda: answer([0, 0, 0, 0, 0, 0]))
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-bedrock", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self._script.popleft() if self._script else self.default

    def requests_for(self, api: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.api == api]

    def start(self) -> FakeBedrock:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes slow replies
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeBedrock:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler_for(fake: FakeBedrock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the real endpoint; botocore pools connections

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = RecordedRequest(
                "POST", unquote(self.path.split("?", 1)[0]),
                {k.lower(): v for k, v in self.headers.items()}, body,
            )
            if not (request.path.startswith("/flows/") or
                    (request.path.startswith("/model/") and request.path.endswith("/converse"))):
                self._send(*_json_response(404, {"message": f"no route {request.path}"},
                                           {"x-amzn-ErrorType": "UnknownOperationException"}))
                return
            reply = fake.next_reply(request)
            if reply.delay_s and fake._stopping.wait(reply.delay_s):
                return
            self._send(*reply.build(request))

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            try:
                self.send_response(status)
                for name, value in {"x-amzn-RequestId": str(uuid.uuid4()), **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test): nothing to answer

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    return Handler
