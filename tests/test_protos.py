"""The generated code matches the .proto files, round-trips, and the contract's names hold."""

import re
import subprocess
import sys
from pathlib import Path

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, json_format

from recommender.v1 import (
    chat_pb2,
    common_pb2,
    metadata_pb2,
    recommend_pb2,
    recommend_pb2_grpc,
    vectorize_pb2,
)

ROOT = Path(__file__).resolve().parent.parent
PROTOS = sorted((ROOT / "protos" / "recommender" / "v1").glob("*.proto"))


def test_protoc_compiles_without_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", str(ROOT / "protos"),
         f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}", f"--pyi_out={tmp_path}",
         *map(str, PROTOS)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_generated_code_is_up_to_date(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", str(ROOT / "protos"),
         f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}", f"--pyi_out={tmp_path}",
         *map(str, PROTOS)], check=True,
    )
    for fresh in (tmp_path / "recommender" / "v1").iterdir():
        used = ROOT / "recommender" / "v1" / fresh.name
        assert used.read_bytes() == fresh.read_bytes(), f"{used} is stale: run `make proto`"


def test_every_rpc_message_field_and_enum_value_is_commented():
    for proto in PROTOS:
        lines = proto.read_text().splitlines()
        for i, line in enumerate(lines):
            stripped = line.strip()
            declares = re.match(r"(rpc|message|service|enum)\s", stripped) or re.match(
                r"(repeated\s+)?[\w.]+\s+\w+\s*=\s*\d+;", stripped) or re.match(r"[A-Z_0-9]+\s*=\s*\d+;", stripped)
            if declares:
                previous = lines[i - 1].strip()
                assert previous.startswith("//"), f"{proto.name}:{i + 1} has no comment: {stripped}"


def test_services_follow_the_naming_rules():
    modules = (recommend_pb2, vectorize_pb2, chat_pb2, metadata_pb2)
    names = {s.name for f in modules for s in f.DESCRIPTOR.services_by_name.values()}
    assert names == {"RecommendService", "VectorizeService", "ChatService", "MetadataService"}
    for module in modules:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                assert method.input_type.name == f"{method.name}Request"
                assert method.output_type.name == f"{method.name}Response"
    for enum in (*common_pb2.DESCRIPTOR.enum_types_by_name.values(),
                 *metadata_pb2.DESCRIPTOR.enum_types_by_name.values()):
        assert enum.values[0].number == 0 and enum.values[0].name.endswith("_UNSPECIFIED")


def test_contract_field_names_are_kept():
    request = recommend_pb2.RecommendRequest(features=[35, 1, 300000, 2, 1, 3], text="", top_k=3)
    response = recommend_pb2.RecommendResponse(
        items=[common_pb2.RecommendedItem(product_id="smartwatch", name="Smartwatch", score=0.7)],
        model_version=2, features=request.features,
    )
    as_json = json_format.MessageToDict(response, preserving_proto_field_name=True)
    assert set(as_json) == {"items", "model_version", "features"}
    assert set(as_json["items"][0]) == {"product_id", "name", "score"}
    assert vectorize_pb2.VectorizeRequest.DESCRIPTOR.fields_by_name["text"].number == 1
    assert "features" in vectorize_pb2.VectorizeResponse.DESCRIPTOR.fields_by_name


def test_messages_round_trip_through_bytes():
    original = chat_pb2.ChatResponse(
        reply="30대 여성, 운동용, 예산 30만원",
        state=chat_pb2.ConversationState(features=[35, 1, 300000, 2, 1, 0], asked=[common_pb2.SLOT_SEASON], turn=2, language="ko"),
        items=[common_pb2.RecommendedItem(product_id="smartwatch", name="Smartwatch", name_ko="스마트워치", score=0.5, rank=1)],
        understood=common_pb2.CustomerSlots(age=35, gender=common_pb2.GENDER_FEMALE, budget=300000,
                                            interest=common_pb2.INTEREST_FITNESS),
        follow_up=common_pb2.SLOT_SEASON,
    )
    assert chat_pb2.ChatResponse.FromString(original.SerializeToString()) == original
    batch = recommend_pb2.RecommendBatchRequest(features=[0.0] * 6000, top_k=3)
    assert len(recommend_pb2.RecommendBatchRequest.FromString(batch.SerializeToString()).features) == 6000


def test_enum_codes_equal_the_vector_codes():
    from recommender import schema

    assert [v.number for v in common_pb2.Interest.DESCRIPTOR.values[1:]] == [c.value for c in schema.INTERESTS]
    assert [v.number for v in common_pb2.Season.DESCRIPTOR.values[1:]] == [c.value for c in schema.SEASONS]
    assert [v.number for v in common_pb2.Gender.DESCRIPTOR.values[1:]] == [c.value for c in schema.GENDERS]
    assert [v.number for v in common_pb2.Purpose.DESCRIPTOR.values[1:]] == [c.value for c in schema.PURPOSES]
    slot_names = [v.name.removeprefix("SLOT_").lower() for v in common_pb2.Slot.DESCRIPTOR.values[1:]]
    assert tuple(slot_names) == schema.SLOT_NAMES


def test_stubs_exist_for_every_rpc():
    assert hasattr(recommend_pb2_grpc, "RecommendServiceStub")
    for name in ("Recommend", "RecommendBatch", "RecommendStream"):
        assert hasattr(recommend_pb2_grpc.RecommendServiceServicer, name)


HTTP_ROUTES = {
    "recommender.v1.VectorizeService.Vectorize": ("post", "/v1/vectorize", "*"),
    "recommender.v1.RecommendService.Recommend": ("post", "/v1/recommend", "*"),
    "recommender.v1.RecommendService.RecommendBatch": ("post", "/v1/recommend:batch", "*"),
    "recommender.v1.ChatService.Chat": ("post", "/v1/chat", "*"),
    "recommender.v1.MetadataService.GetMetadata": ("get", "/v1/metadata", ""),
}


def test_http_annotations_for_the_json_transcoder():
    found = {}
    for module in (recommend_pb2, vectorize_pb2, chat_pb2, metadata_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                options = method.GetOptions()
                if options.HasExtension(annotations_pb2.http):
                    rule = options.Extensions[annotations_pb2.http]
                    verb = rule.WhichOneof("pattern")
                    found[method.full_name] = (verb, getattr(rule, verb), rule.body)
    assert found == HTTP_ROUTES


def test_descriptor_set_for_envoy_builds_from_one_include_path(tmp_path):
    """The transcoder's descriptor set: our files plus the vendored google/api ones, -I protos only."""
    out = tmp_path / "recommender.pb"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", str(ROOT / "protos"), "--include_imports",
                    f"--descriptor_set_out={out}", *map(str, PROTOS)], check=True)
    names = {f.name for f in descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file}
    assert {"google/api/annotations.proto", "google/api/http.proto", "recommender/v1/metadata.proto"} <= names


def test_vendored_google_api_protos_match_the_runtime_package(tmp_path):
    """protos/google/api is a copy of googleapis-common-protos' files: the generated code imports the
    package's google.api.annotations_pb2, so the two must describe the same option."""
    out = tmp_path / "google.pb"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", str(ROOT / "protos"), "--include_imports",
                    f"--descriptor_set_out={out}", "google/api/annotations.proto"], check=True, cwd=ROOT / "protos")
    vendored = {f.name: f for f in descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file}
    for proto in vendored.values():  # protoc fills json_name, the runtime's copy omits it
        for message in proto.message_type:
            for field in message.field:
                field.ClearField("json_name")
        for field in proto.extension:
            field.ClearField("json_name")
    for module in (annotations_pb2, http_pb2):
        runtime = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(runtime)
        assert vendored[runtime.name] == runtime, f"protos/{runtime.name} differs from googleapis-common-protos"


def test_row_error_names_the_field():
    error = recommend_pb2.RowError(row=2, message="features[2] budget must be ...", field="features[2]")
    assert recommend_pb2.RowError.FromString(error.SerializeToString()).field == "features[2]"
