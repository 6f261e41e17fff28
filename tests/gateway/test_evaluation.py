"""gateway/evaluation.py and `python -m gateway evaluate`: per-slot and exact accuracy and latency of
any vectorizer on a labelled JSONL file."""

from __future__ import annotations

import json

import pytest

from gateway import cli, evaluation
from gateway.vectorizers.base import LOCAL, VectorizeResult, VectorizerUnavailable

ROWS = [
    {"text": "엄마 환갑 선물", "features": [60, 1, 0, 0, 2, 0]},
    {"text": "hello", "features": [0, 0, 0, 0, 0, 0]},
    {"text": "30만원 이하 이어폰", "features": [0, 0, 300000, 1, 0, 0]},
    {"text": "a laptop for me", "features": [0, 0, 0, 3, 2, 0]},  # purpose deliberately mislabelled
]


@pytest.fixture
def labels(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS) + "\n\n", encoding="utf-8")
    return path


class Scripted:
    name = LOCAL

    def __init__(self, answers):
        self.answers = answers

    def vectorize(self, text):
        answer = self.answers[text]
        if answer is None:
            raise VectorizerUnavailable("down")
        return VectorizeResult(tuple(float(v) for v in answer), LOCAL, "en")


def test_scores_per_slot_exact_and_unanswered(labels):
    answers = {r["text"]: r["features"] for r in ROWS}
    answers["hello"] = None  # unavailable: wrong in every slot
    answers["30만원 이하 이어폰"] = [0, 0, 300000, 2, 0, 0]  # interest wrong
    report = evaluation.evaluate(Scripted(answers), evaluation.load_labelled(labels))
    assert report.messages == 4 and report.errors == 1
    assert report.exact == 0.5
    assert report.per_slot["interest"] == 0.5 and report.per_slot["age"] == 0.75
    assert [m.slots for m in report.misses] == [tuple(evaluation.schema.SLOT_NAMES), ("interest",)]
    assert set(report.latency_us) == {"p50", "p95", "p99", "mean"}
    assert report.latency_us["p50"] <= report.latency_us["p95"] <= report.latency_us["p99"]


def test_local_vectorizer_through_the_server_builder(labels):
    vectorizer = evaluation.build_for_evaluation(LOCAL, bedrock_config_path=None)
    report = evaluation.evaluate(vectorizer, evaluation.load_labelled([labels]))
    assert report.per_slot["purpose"] == 0.75 and report.exact == 0.75
    text = evaluation.format_report(report, LOCAL, show_misses=True)
    assert "MISS purpose: 'a laptop for me'" in text and "p99" in text


def test_percentiles_use_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert evaluation._percentile(values, 50) == 50 and evaluation._percentile(values, 99) == 99
    assert evaluation._percentile([7.0], 95) == 7.0 and evaluation._percentile([], 50) == 0.0


def test_malformed_lines_name_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok", "features": [0,0,0,0,0,0]}\n{"text": "x", "features": [0,0,0,0,9,0]}\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        evaluation.load_labelled(path)


def test_cli_prints_the_report_and_json(labels, capsys):
    assert cli.main(["evaluate", "--vectorizer", "local", "--labels", str(labels), "--misses"]) == 0
    out = capsys.readouterr().out
    assert "local on 4 labelled messages" in out and "exact" in out and "MISS purpose" in out
    assert cli.main(["evaluate", "--labels", str(labels), "--labels", str(labels), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["vectorizer"] == "local" and figures["messages"] == 8 and figures["exact"] == 0.75


def test_cli_reports_bad_input_as_exit_2(tmp_path, capsys):
    assert cli.main(["evaluate", "--labels", str(tmp_path / "missing.jsonl")]) == 2
    assert "gateway evaluate:" in capsys.readouterr().err
    assert cli.main(["evaluate", "--vectorizer", "bedrock-flow", "--labels", str(tmp_path)]) == 2


def test_cli_passes_the_bedrock_options_to_the_builder(labels, monkeypatch, capsys):
    built = {}

    def fake_build(name, **options):
        built.update(options, name=name)
        return Scripted({r["text"]: r["features"] for r in ROWS})

    monkeypatch.setattr(evaluation, "build_for_evaluation", fake_build)
    assert cli.main(["evaluate", "--vectorizer", "bedrock-converse", "--labels", str(labels), "--bedrock-config",
                     "flow.json", "--model-id", "m-1", "--region", "eu-west-1", "--endpoint-url", "http://127.0.0.1:9"]) == 0
    assert built == {"name": "bedrock-converse", "bedrock_config_path": "flow.json", "model_id": "m-1",
                     "region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9"}
    assert "exact      100.0%" in capsys.readouterr().out
