"""`python -m gateway evaluate --vectorizer bedrock-flow|bedrock-converse` against the fake
Bedrock, whose model here knows the labels of some messages, misreads one slot of another and
fails on the rest: the per-slot and exact accuracy, the unanswered count and the latency come
out of real boto3 calls, as a shop would measure Bedrock against the local rules."""

from __future__ import annotations

import json

import pytest

from gateway.cli import main
from tests.fakes.fake_bedrock import FakeBedrock, answer_by_text, isolate_aws_env

LABELLED = [
    ("50대 중반 엄마 크리스마스 선물로 30만원 이하 안마기", [55, 1, 300000, 10, 2, 4]),
    ("I need earbuds for running, about 100,000 won", [0, 0, 100000, 3, 1, 0]),
    ("중학생 아들 게임기 사주려고요, 40만원 정도", [14, 2, 400000, 5, 2, 0]),
    ("hello", [0, 0, 0, 0, 0, 0]),
]


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    isolate_aws_env(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFAKEEVALUATE0001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-evaluate-0123456789")


@pytest.fixture
def labels(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps({"text": t, "features": f}, ensure_ascii=False) + "\n" for t, f in LABELLED))
    return path


@pytest.mark.parametrize("vectorizer", ["bedrock-converse", "bedrock-flow"])
def test_evaluate_measures_bedrock_on_labelled_messages(aws_env, labels, tmp_path, capsys, vectorizer):
    model = {LABELLED[0][0]: LABELLED[0][1], LABELLED[3][0]: LABELLED[3][1],
             LABELLED[1][0]: [0, 0, 100000, 1, 1, 0]}  # interest misread; message 2 fails (HTTP 500)
    config = tmp_path / "flow.json"
    config.write_text(json.dumps({"region": "ap-northeast-2", "flowIdentifier": "EVALFLOW01",
                                  "flowAliasIdentifier": "EVALALIAS1"}))
    with FakeBedrock(default=answer_by_text(model)) as fake:
        code = main(["evaluate", "--vectorizer", vectorizer, "--labels", str(labels), "--json",
                     "--endpoint-url", fake.url, "--region", "ap-northeast-2", "--bedrock-config", str(config)])
        report = json.loads(capsys.readouterr().out)
        api = "converse" if vectorizer == "bedrock-converse" else "invoke_flow"
        assert fake.requests and {r.api for r in fake.requests} == {api}
        if api == "converse":
            assert {r.path for r in fake.requests} == {"/model/apac.amazon.nova-pro-v1:0/converse"}
    assert code == 0
    assert report["vectorizer"] == vectorizer and report["messages"] == 4
    assert report["errors"] == 1
    assert report["exact"] == 0.5
    assert report["per_slot"]["interest"] == 0.5  # misread once, unanswered once
    assert report["per_slot"]["budget"] == 0.75
    assert 0 < report["latency_us"]["p50"] <= report["latency_us"]["p99"]
