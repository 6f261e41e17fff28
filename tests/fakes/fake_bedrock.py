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
- The control plane `python -m gateway bedrock setup/status/teardown` drives: bedrock-agent's
  Prompt management and Flows operations (CreatePrompt ... DeleteFlow, see ControlPlane) and
  bedrock's GetInferenceProfile, kept in memory per fake (`fake.control`). InvokeFlow on a
  flow the control plane knows checks that the flow is prepared and the alias exists (else
  ResourceNotFoundException, as the service answers); other flow ids answer as scripted.
  `fake.fail_control("CreateFlow", error(403, "AccessDeniedException", ...))` makes one
  control-plane call fail.

Each test scripts the replies (`fake.script(answer(...), throttle(), ...)`; when the script
is used up, `fake.default` answers) and reads `fake.requests` to see what reached Bedrock.

    with FakeBedrock() as fake:
        fake.script(answer({"age": 30, ...}))
        ...endpoint_url=fake.url...
"""

from __future__ import annotations

import json
import re
import struct
import threading
import time
import uuid
from binascii import crc32
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

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
    operation: str = ""  # the control-plane operation (CreatePrompt, ...); "" for runtime calls

    @property
    def api(self) -> str:
        if self.operation:
            return self.operation
        return "converse" if self.path.startswith("/model/") else "invoke_flow"

    @property
    def region(self) -> str:
        """The region the request was signed for (SigV4 credential scope)."""
        match = re.search(r"Credential=[^/]+/\d+/([^/]+)/", self.headers.get("authorization", ""))
        return match.group(1) if match else ""

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


def customer_text(request: RecordedRequest) -> str:
    """The customer's message inside a Converse or InvokeFlow request (JSON string literal,
    between <customer_message> tags for Converse)."""
    body = request.json()
    if request.api == "converse":
        turn = body["messages"][-1]["content"][0]["text"]
        literal = turn.split("\n", 1)[1].rsplit("\n", 1)[0]
    else:
        literal = body["inputs"][0]["content"]["document"]
    return json.loads(literal)


def answer_by_text(vectors: dict[str, Any], otherwise: Reply | None = None) -> Reply:
    """A model that knows the answers: `vectors[customer text]` when the text is there,
    else `otherwise` (default: an InternalServerException)."""
    fallback = otherwise or error(500, "InternalServerException", "The server encountered an internal error.")

    def build(request: RecordedRequest):
        message = customer_text(request)
        if message in vectors:
            return answer(vectors[message]).build(request)
        return fallback.build(request)

    return Reply(build, label="answer by text")


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


# --------------------------------------------------------------------------- control plane
# bedrock-agent (Prompt management, Flows) and bedrock GetInferenceProfile, rest-json as the
# service model in botocore/data/bedrock-agent/2023-06-05 describes them: routes, status codes
# (201 create, 202 prepare), ISO 8601 timestamps, ids of 10 upper-case characters, ARNs, the
# built-in TSTALIASID test alias of every flow, versions as snapshots of the draft, and the
# errors the service answers (ResourceNotFoundException 404, ConflictException 409,
# ValidationException 400).

ACCOUNT = "123456789012"
TEST_ALIAS_ID = "TSTALIASID"
# Destination regions of the system-defined Nova Pro profiles the fake knows.
FAKE_PROFILE_REGIONS = {
    "us": ("us-east-1", "us-east-2", "us-west-2"),
    "eu": ("eu-central-1", "eu-north-1", "eu-west-1", "eu-west-3"),
    "apac": ("ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1", "ap-southeast-2"),
}


class AwsError(Exception):
    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status = status
        self.error_type = error_type

    def response(self):
        return error(self.status, self.error_type, str(self)).build(None)  # type: ignore[arg-type]


# Name patterns and limits of the service model (botocore does not check them; the service does).
_RESOURCE_NAME = re.compile(r"([0-9a-zA-Z][_-]?){1,100}")  # PromptName, FlowName, alias Name, variant
_NODE_NAME = re.compile(r"[a-zA-Z]([_]?[0-9a-zA-Z]){1,50}")  # FlowNodeName, node input/output names
_CONNECTION_NAME = re.compile(r"[a-zA-Z]([_]?[0-9a-zA-Z]){1,100}")


def _valid(value: Any, pattern: re.Pattern[str], what: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise AwsError(400, "ValidationException", f"1 validation error detected: Value {value!r} at '{what}' "
                                                   f"failed to satisfy constraint: Member must satisfy regular "
                                                   f"expression pattern: {pattern.pattern}")


def _valid_description(body: dict[str, Any]) -> None:
    if len(body.get("description") or "") > 200:
        raise AwsError(400, "ValidationException", "description must have length less than or equal to 200")


def _not_found(what: str) -> AwsError:
    return AwsError(404, "ResourceNotFoundException", f"{what} not found")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _new_id() -> str:
    return uuid.uuid4().hex[:10].upper()


class ControlPlane:
    """In-memory prompts and flows of one fake account; every method answers one operation."""

    def __init__(self) -> None:
        self.prompts: dict[str, dict[str, Any]] = {}
        self.flows: dict[str, dict[str, Any]] = {}
        self.deleted_flows: set[str] = set()
        self.lock = threading.Lock()

    # ------------------------------------------------------------------ routing

    ROUTES: list[tuple[str, re.Pattern[str], str]] = [
        (m, re.compile(p), op) for m, p, op in [
            ("GET", r"^/prompts/$", "ListPrompts"),
            ("POST", r"^/prompts/$", "CreatePrompt"),
            ("GET", r"^/prompts/(?P<prompt>[^/]+)/$", "GetPrompt"),
            ("PUT", r"^/prompts/(?P<prompt>[^/]+)/$", "UpdatePrompt"),
            ("DELETE", r"^/prompts/(?P<prompt>[^/]+)/$", "DeletePrompt"),
            ("POST", r"^/prompts/(?P<prompt>[^/]+)/versions$", "CreatePromptVersion"),
            ("GET", r"^/flows/$", "ListFlows"),
            ("POST", r"^/flows/$", "CreateFlow"),
            ("GET", r"^/flows/(?P<flow>[^/]+)/$", "GetFlow"),
            ("PUT", r"^/flows/(?P<flow>[^/]+)/$", "UpdateFlow"),
            ("POST", r"^/flows/(?P<flow>[^/]+)/$", "PrepareFlow"),
            ("DELETE", r"^/flows/(?P<flow>[^/]+)/$", "DeleteFlow"),
            ("POST", r"^/flows/(?P<flow>[^/]+)/versions$", "CreateFlowVersion"),
            ("GET", r"^/flows/(?P<flow>[^/]+)/versions$", "ListFlowVersions"),
            ("GET", r"^/flows/(?P<flow>[^/]+)/versions/(?P<version>[^/]+)/$", "GetFlowVersion"),
            ("DELETE", r"^/flows/(?P<flow>[^/]+)/versions/(?P<version>[^/]+)/$", "DeleteFlowVersion"),
            ("POST", r"^/flows/(?P<flow>[^/]+)/aliases$", "CreateFlowAlias"),
            ("GET", r"^/flows/(?P<flow>[^/]+)/aliases$", "ListFlowAliases"),
            ("GET", r"^/flows/(?P<flow>[^/]+)/aliases/(?P<alias>[^/]+)$", "GetFlowAlias"),
            ("PUT", r"^/flows/(?P<flow>[^/]+)/aliases/(?P<alias>[^/]+)$", "UpdateFlowAlias"),
            ("DELETE", r"^/flows/(?P<flow>[^/]+)/aliases/(?P<alias>[^/]+)$", "DeleteFlowAlias"),
            ("GET", r"^/inference-profiles/(?P<profile>[^/]+)$", "GetInferenceProfile"),
        ]
    ]

    @classmethod
    def operation(cls, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        for route_method, pattern, op in cls.ROUTES:
            match = pattern.match(path)
            if route_method == method and match:
                return op, match.groupdict()
        return None

    def handle(self, op: str, params: dict[str, str], query: dict[str, str], body: Any, region: str):
        with self.lock:
            status, answer = getattr(self, "_" + op)(params=params, query=query, body=body or {}, region=region)
        return _json_response(status, answer)

    def invoke_problem(self, flow_id: str, alias_id: str, body: dict[str, Any]) -> AwsError | None:
        """Why InvokeFlow on a flow this control plane made would fail (None: it would run)."""
        with self.lock:
            if flow_id in self.deleted_flows:
                return _not_found(f"flow {flow_id}")
            flow = self.flows.get(flow_id)
            if flow is None:
                return None  # not made here: the test scripts the answer
            alias = flow["aliases"].get(alias_id)
            if alias is None:
                return _not_found(f"alias {alias_id} of flow {flow_id}")
            version = alias["routingConfiguration"][0]["flowVersion"]
            served = flow if version == "DRAFT" else flow["versions"][version]
            if served["status"] != "Prepared":
                return AwsError(400, "ValidationException", f"flow {flow_id} is not prepared")
            inputs = {(n["name"], o["name"]) for n in (served.get("definition") or {}).get("nodes", [])
                      if n["type"] == "Input" for o in n.get("outputs", [])}
            for given in body.get("inputs", []):
                if (given.get("nodeName"), given.get("nodeOutputName")) not in inputs:
                    return AwsError(400, "ValidationException", f"flow {flow_id} has no input node "
                                                               f"{given.get('nodeName')}.{given.get('nodeOutputName')}")
            return None

    # ------------------------------------------------------------------ helpers

    def _prompt(self, prompt_id: str) -> dict[str, Any]:
        prompt = self.prompts.get(prompt_id)
        if prompt is None:
            raise _not_found(f"prompt {prompt_id}")
        return prompt

    def _flow(self, flow_id: str) -> dict[str, Any]:
        flow = self.flows.get(flow_id)
        if flow is None:
            raise _not_found(f"flow {flow_id}")
        return flow

    @staticmethod
    def _page(items: list[Any], query: dict[str, str]) -> tuple[list[Any], str | None]:
        start = int(query.get("nextToken") or 0)
        size = int(query.get("maxResults") or 10)  # small pages, so clients must paginate
        end = start + size
        return items[start:end], (str(end) if end < len(items) else None)

    @staticmethod
    def _prompt_view(prompt: dict[str, Any], version: str = "DRAFT") -> dict[str, Any]:
        data = prompt if version == "DRAFT" else prompt["versions"].get(version)
        if data is None:
            raise _not_found(f"prompt {prompt['id']} version {version}")
        arn = prompt["arn"] + ("" if version == "DRAFT" else f":{version}")
        view = {k: data[k] for k in ("name", "description", "variants", "defaultVariant") if data.get(k) is not None}
        return {**view, "id": prompt["id"], "arn": arn, "version": version,
                "createdAt": data["createdAt"], "updatedAt": data["updatedAt"]}

    @staticmethod
    def _check_prompt_body(body: dict[str, Any]) -> None:
        _valid(body.get("name"), _RESOURCE_NAME, "name")
        _valid_description(body)
        for variant in body.get("variants") or []:
            _valid(variant.get("name"), _RESOURCE_NAME, "variants.member.name")
            if not variant.get("modelId"):
                raise AwsError(400, "ValidationException", f"variant {variant.get('name')} needs a modelId")
            text_config = variant.get("templateConfiguration", {}).get("text", {})
            for var in text_config.get("inputVariables", []):
                if "{{" + var["name"] + "}}" not in text_config.get("text", ""):
                    raise AwsError(400, "ValidationException",
                                   f"input variable {var['name']} does not appear in the template")

    # ------------------------------------------------------------------ prompts

    def _CreatePrompt(self, body, region, **_):
        self._check_prompt_body(body)
        if any(p["name"] == body["name"] for p in self.prompts.values()):
            raise AwsError(409, "ConflictException", f"a prompt named {body['name']} already exists")
        prompt_id, now = _new_id(), _now()
        self.prompts[prompt_id] = {
            **{k: body.get(k) for k in ("name", "description", "variants", "defaultVariant")},
            "id": prompt_id, "arn": f"arn:aws:bedrock:{region}:{ACCOUNT}:prompt/{prompt_id}",
            "createdAt": now, "updatedAt": now, "versions": {}, "next_version": 1,
        }
        return 201, self._prompt_view(self.prompts[prompt_id])

    def _GetPrompt(self, params, query, **_):
        return 200, self._prompt_view(self._prompt(params["prompt"]), query.get("promptVersion") or "DRAFT")

    def _UpdatePrompt(self, params, body, **_):
        prompt = self._prompt(params["prompt"])
        self._check_prompt_body(body)
        prompt.update({k: body.get(k) for k in ("name", "description", "variants", "defaultVariant")})
        prompt["updatedAt"] = _now()
        return 200, self._prompt_view(prompt)

    def _CreatePromptVersion(self, params, **_):
        prompt = self._prompt(params["prompt"])
        version = str(prompt["next_version"])
        prompt["next_version"] += 1
        now = _now()
        prompt["versions"][version] = {**{k: json.loads(json.dumps(prompt[k])) for k in
                                          ("name", "description", "variants", "defaultVariant")},
                                       "createdAt": now, "updatedAt": now}
        return 201, self._prompt_view(prompt, version)

    def _ListPrompts(self, query, **_):
        if query.get("promptIdentifier"):
            prompt = self._prompt(query["promptIdentifier"])
            views = [self._prompt_view(prompt)] + [self._prompt_view(prompt, v) for v in prompt["versions"]]
        else:
            views = [self._prompt_view(p) for p in self.prompts.values()]
        keys = ("name", "description", "id", "arn", "version", "createdAt", "updatedAt")
        page, token = self._page([{k: v[k] for k in keys if k in v} for v in views], query)
        return 200, {"promptSummaries": page, **({"nextToken": token} if token else {})}

    def _DeletePrompt(self, params, query, **_):
        prompt = self._prompt(params["prompt"])
        version = query.get("promptVersion")
        if version:
            if prompt["versions"].pop(version, None) is None:
                raise _not_found(f"prompt {prompt['id']} version {version}")
            return 200, {"id": prompt["id"], "version": version}
        del self.prompts[prompt["id"]]
        return 200, {"id": prompt["id"]}

    # ------------------------------------------------------------------ flows

    @staticmethod
    def _flow_view(flow: dict[str, Any], version: str = "DRAFT") -> dict[str, Any]:
        data = flow if version == "DRAFT" else flow["versions"].get(version)
        if data is None:
            raise _not_found(f"flow {flow['id']} version {version}")
        view = {k: data[k] for k in ("name", "description", "executionRoleArn", "definition") if data.get(k)}
        view.update({"id": flow["id"], "arn": flow["arn"], "status": data["status"], "version": version,
                     "createdAt": data["createdAt"]})
        if version == "DRAFT":
            view["updatedAt"] = flow["updatedAt"]
            if flow.get("validations"):
                view["validations"] = flow["validations"]
        return view

    @staticmethod
    def _check_flow_body(body: dict[str, Any]) -> None:
        _valid(body.get("name"), _RESOURCE_NAME, "name")
        _valid_description(body)
        definition = body.get("definition") or {}
        for node in definition.get("nodes", []):
            _valid(node.get("name"), _NODE_NAME, "definition.nodes.member.name")
            for port in node.get("inputs", []) + node.get("outputs", []):
                _valid(port.get("name"), _NODE_NAME, "definition.nodes.member.inputs/outputs.member.name")
        for connection in definition.get("connections", []):
            _valid(connection.get("name"), _CONNECTION_NAME, "definition.connections.member.name")

    def _CreateFlow(self, body, region, **_):
        self._check_flow_body(body)
        if any(f["name"] == body["name"] for f in self.flows.values()):
            raise AwsError(409, "ConflictException", f"a flow named {body['name']} already exists")
        flow_id, now = _new_id(), _now()
        self.flows[flow_id] = {
            **{k: body.get(k) for k in ("name", "description", "executionRoleArn", "definition")},
            "id": flow_id, "arn": f"arn:aws:bedrock:{region}:{ACCOUNT}:flow/{flow_id}", "status": "NotPrepared",
            "createdAt": now, "updatedAt": now, "versions": {}, "next_version": 1, "aliases": {
                TEST_ALIAS_ID: {"name": "TSTALIASID", "description": "Test alias", "id": TEST_ALIAS_ID,
                                "flowId": flow_id, "routingConfiguration": [{"flowVersion": "DRAFT"}],
                                "arn": f"arn:aws:bedrock:{region}:{ACCOUNT}:flow/{flow_id}/alias/{TEST_ALIAS_ID}",
                                "createdAt": now, "updatedAt": now}},
            "prepare_polls": 0,
        }
        return 201, self._flow_view(self.flows[flow_id])

    def _ListFlows(self, query, **_):
        keys = ("name", "description", "id", "arn", "status", "createdAt", "updatedAt", "version")
        views = [{k: v[k] for k in keys if v.get(k)} for v in (self._flow_view(f) for f in self.flows.values())]
        page, token = self._page(views, query)
        return 200, {"flowSummaries": page, **({"nextToken": token} if token else {})}

    def _GetFlow(self, params, **_):
        flow = self._flow(params["flow"])
        if flow["status"] == "Preparing":  # one look while preparing, like the service's seconds
            flow["status"] = flow.pop("prepared_status")
        return 200, self._flow_view(flow)

    def _UpdateFlow(self, params, body, **_):
        flow = self._flow(params["flow"])
        self._check_flow_body(body)
        flow.update({k: body.get(k) for k in ("name", "description", "executionRoleArn", "definition")})
        flow.update(status="NotPrepared", updatedAt=_now(), validations=None)
        return 200, self._flow_view(flow)

    def _PrepareFlow(self, params, **_):
        flow = self._flow(params["flow"])
        problems = self._validate_definition(flow.get("definition") or {})
        flow["validations"] = [{"message": p, "severity": "Error"} for p in problems] or None
        flow["prepared_status"] = "Failed" if problems else "Prepared"
        flow["status"] = "Preparing"
        return 202, {"id": flow["id"], "status": "Preparing"}

    def _validate_definition(self, definition: dict[str, Any]) -> list[str]:
        nodes = {n["name"]: n for n in definition.get("nodes", [])}
        problems = []
        kinds = [n["type"] for n in nodes.values()]
        if kinds.count("Input") != 1 or "Output" not in kinds:
            problems.append("a flow needs exactly one Input node and at least one Output node")
        for connection in definition.get("connections", []):
            data = connection.get("configuration", {}).get("data", {})
            source, target = nodes.get(connection["source"]), nodes.get(connection["target"])
            if source is None or target is None:
                problems.append(f"connection {connection['name']} joins unknown nodes")
                continue
            if data.get("sourceOutput") not in [o["name"] for o in source.get("outputs", [])]:
                problems.append(f"connection {connection['name']}: {source['name']} has no output "
                                f"{data.get('sourceOutput')}")
            if data.get("targetInput") not in [i["name"] for i in target.get("inputs", [])]:
                problems.append(f"connection {connection['name']}: {target['name']} has no input "
                                f"{data.get('targetInput')}")
        for node in nodes.values():
            if node["type"] != "Prompt":
                continue
            arn = node.get("configuration", {}).get("prompt", {}).get("sourceConfiguration", {}) \
                .get("resource", {}).get("promptArn", "")
            match = re.match(r"^arn:aws:bedrock:[^:]+:\d+:prompt/([A-Z0-9]+)(?::(\d+))?$", arn)
            prompt = self.prompts.get(match.group(1)) if match else None
            version = match.group(2) if match else None
            if prompt is None or (version and version not in prompt["versions"]):
                problems.append(f"node {node['name']}: prompt {arn} does not exist")
                continue
            variant = (prompt["versions"][version] if version else prompt)["variants"][0]
            wanted = {v["name"] for v in variant["templateConfiguration"]["text"].get("inputVariables", [])}
            given = {i["name"] for i in node.get("inputs", [])}
            if wanted != given:
                problems.append(f"node {node['name']}: inputs {sorted(given)} do not match the prompt's "
                                f"variables {sorted(wanted)}")
        return problems

    def _DeleteFlow(self, params, query, **_):
        flow = self._flow(params["flow"])
        in_use = [a for a in flow["aliases"] if a != TEST_ALIAS_ID]
        if in_use and query.get("skipResourceInUseCheck") != "true":
            raise AwsError(409, "ConflictException", f"flow {flow['id']} has aliases {in_use}")
        del self.flows[flow["id"]]
        self.deleted_flows.add(flow["id"])
        return 200, {"id": flow["id"]}

    def _CreateFlowVersion(self, params, **_):
        flow = self._flow(params["flow"])
        if flow["status"] != "Prepared":
            raise AwsError(400, "ValidationException", f"flow {flow['id']} must be prepared before a version is "
                                                       f"created (status {flow['status']})")
        version = str(flow["next_version"])
        flow["next_version"] += 1
        flow["versions"][version] = {**{k: json.loads(json.dumps(flow[k])) for k in
                                        ("name", "description", "executionRoleArn", "definition")},
                                     "status": "Prepared", "createdAt": _now()}
        return 201, self._flow_view(flow, version)

    def _ListFlowVersions(self, params, query, **_):
        flow = self._flow(params["flow"])
        views = [self._flow_view(flow)] + [self._flow_view(flow, v) for v in flow["versions"]]
        keys = ("id", "arn", "status", "createdAt", "version")
        page, token = self._page([{k: v[k] for k in keys} for v in views], query)
        return 200, {"flowVersionSummaries": page, **({"nextToken": token} if token else {})}

    def _GetFlowVersion(self, params, **_):
        return 200, self._flow_view(self._flow(params["flow"]), params["version"])

    def _DeleteFlowVersion(self, params, query, **_):
        flow = self._flow(params["flow"])
        version = params["version"]
        if version not in flow["versions"]:
            raise _not_found(f"flow {flow['id']} version {version}")
        users = [a["id"] for a in flow["aliases"].values()
                 if any(r.get("flowVersion") == version for r in a["routingConfiguration"])]
        if users and query.get("skipResourceInUseCheck") != "true":
            raise AwsError(409, "ConflictException", f"flow version {version} is used by aliases {users}")
        del flow["versions"][version]
        return 200, {"id": flow["id"], "version": version}

    def _check_routing(self, flow: dict[str, Any], routing: list[dict[str, Any]]) -> None:
        for route in routing:
            if route.get("flowVersion") not in flow["versions"]:
                raise AwsError(400, "ValidationException",
                               f"flow {flow['id']} has no version {route.get('flowVersion')}")

    def _CreateFlowAlias(self, params, body, **_):
        flow = self._flow(params["flow"])
        _valid(body.get("name"), _RESOURCE_NAME, "name")
        _valid_description(body)
        if any(a["name"] == body["name"] for a in flow["aliases"].values()):
            raise AwsError(409, "ConflictException", f"flow {flow['id']} already has an alias {body['name']}")
        self._check_routing(flow, body["routingConfiguration"])
        alias_id, now = _new_id(), _now()
        flow["aliases"][alias_id] = {
            "name": body["name"], "description": body.get("description"), "id": alias_id, "flowId": flow["id"],
            "routingConfiguration": body["routingConfiguration"], "arn": f"{flow['arn']}/alias/{alias_id}",
            "createdAt": now, "updatedAt": now}
        return 201, {k: v for k, v in flow["aliases"][alias_id].items() if v is not None}

    def _alias(self, params) -> tuple[dict[str, Any], dict[str, Any]]:
        flow = self._flow(params["flow"])
        alias = flow["aliases"].get(params["alias"])
        if alias is None:
            raise _not_found(f"alias {params['alias']} of flow {flow['id']}")
        return flow, alias

    def _GetFlowAlias(self, params, **_):
        return 200, {k: v for k, v in self._alias(params)[1].items() if v is not None}

    def _UpdateFlowAlias(self, params, body, **_):
        flow, alias = self._alias(params)
        self._check_routing(flow, body["routingConfiguration"])
        alias.update(name=body["name"], description=body.get("description"),
                     routingConfiguration=body["routingConfiguration"], updatedAt=_now())
        return 200, {k: v for k, v in alias.items() if v is not None}

    def _ListFlowAliases(self, params, query, **_):
        flow = self._flow(params["flow"])
        views = [{k: v for k, v in a.items() if v is not None} for a in flow["aliases"].values()]
        page, token = self._page(views, query)
        return 200, {"flowAliasSummaries": page, **({"nextToken": token} if token else {})}

    def _DeleteFlowAlias(self, params, **_):
        flow, alias = self._alias(params)
        del flow["aliases"][alias["id"]]
        return 200, {"flowId": flow["id"], "id": alias["id"]}

    # ------------------------------------------------------------------ inference profiles

    def _GetInferenceProfile(self, params, region, **_):
        profile_id = params["profile"]
        prefix, _, base = profile_id.partition(".")
        if prefix not in FAKE_PROFILE_REGIONS or region not in FAKE_PROFILE_REGIONS[prefix]:
            raise _not_found(f"inference profile {profile_id} in {region}")
        return 200, {
            "inferenceProfileName": f"{prefix.upper()} {base}", "inferenceProfileId": profile_id,
            "inferenceProfileArn": f"arn:aws:bedrock:{region}:{ACCOUNT}:inference-profile/{profile_id}",
            "models": [{"modelArn": f"arn:aws:bedrock:{r}::foundation-model/{base}"}
                       for r in FAKE_PROFILE_REGIONS[prefix]],
            "status": "ACTIVE", "type": "SYSTEM_DEFINED",
        }


# --------------------------------------------------------------------------- the server


@dataclass
class FakeBedrock:
    """Threaded HTTP server on 127.0.0.1:<free port>. Use as a context manager."""

    default: Reply = field(default_factory=lambda: answer([0, 0, 0, 0, 0, 0]))
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._script: deque[Reply] = deque()
        self.control = ControlPlane()
        self._control_failures: dict[str, deque[Reply]] = {}
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

    def fail_control(self, operation: str, *replies: Reply) -> None:
        """The next calls of a control-plane operation get these replies instead."""
        with self._lock:
            self._control_failures.setdefault(operation, deque()).extend(replies)

    def control_failure(self, request: RecordedRequest) -> Reply | None:
        with self._lock:
            self.requests.append(request)
            queue = self._control_failures.get(request.operation)
            return queue.popleft() if queue else None

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

        def _request(self, method: str) -> tuple[RecordedRequest, dict[str, str]]:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path, _, query = self.path.partition("?")
            request = RecordedRequest(method, unquote(path), {k.lower(): v for k, v in self.headers.items()}, body)
            return request, dict(parse_qsl(query))

        def _runtime(self, request: RecordedRequest) -> None:
            invoke = re.match(r"^/flows/([^/]+)/aliases/([^/]+)$", request.path)
            if invoke:
                problem = fake.control.invoke_problem(invoke.group(1), invoke.group(2), request.json())
                if problem is not None:
                    with fake._lock:
                        fake.requests.append(request)
                    self._send(*problem.response())
                    return
            reply = fake.next_reply(request)
            if reply.delay_s and fake._stopping.wait(reply.delay_s):
                return
            self._send(*reply.build(request))

        def _control(self, request: RecordedRequest, query: dict[str, str]) -> None:
            route = ControlPlane.operation(request.method, request.path)
            if route is None:
                self._send(*_json_response(404, {"message": f"no route {request.method} {request.path}"},
                                           {"x-amzn-ErrorType": "UnknownOperationException"}))
                return
            request.operation, params = route
            failure = fake.control_failure(request)
            if failure is not None:
                self._send(*failure.build(request))
                return
            try:
                self._send(*fake.control.handle(request.operation, params, query, request.json(), request.region))
            except AwsError as exc:
                self._send(*exc.response())
            except Exception as exc:  # a bug in the fake: answer like the service would, visibly
                self._send(*AwsError(500, "InternalServerException", f"fake: {exc!r}").response())

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            request, query = self._request("POST")
            if (re.match(r"^/flows/[^/]+/aliases/[^/]+$", request.path) or
                    (request.path.startswith("/model/") and request.path.endswith("/converse"))):
                self._runtime(request)
            else:
                self._control(request, query)

        def do_GET(self) -> None:  # noqa: N802
            self._control(*self._request("GET"))

        def do_PUT(self) -> None:  # noqa: N802
            self._control(*self._request("PUT"))

        def do_DELETE(self) -> None:  # noqa: N802
            self._control(*self._request("DELETE"))

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
