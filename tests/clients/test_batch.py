"""The batch job against a real inference server: row counts, per-row errors, Parquet,
and a kill -9 in the middle followed by --resume."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from clients import batch
from recommender import schema
from tests.support import PYTHON, ROOT, free_port


def customers(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.integers(0, 90, rows),
        "gender": rng.integers(0, 3, rows),
        "budget": rng.integers(0, 200, rows) * 10_000,
        "interest": rng.integers(0, 11, rows),
        "purpose": rng.integers(0, 3, rows),
        "season": rng.integers(0, 5, rows),
    })
    frame.insert(0, "customer_id", [f"c{i:06d}" for i in range(rows)])
    return frame


def read_output(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_csv_with_bad_rows_reports_them_and_keeps_going(inference_target, tmp_path):
    frame = customers(2_500)
    frame = frame.astype({"age": object, "budget": object})
    frame.loc[3, "budget"] = -5  # out of range: the server says why
    frame.loc[10, "age"] = "abc"  # not a number: the job says why
    frame.loc[2_400, "age"] = ""  # empty cell
    frame.loc[11, "interest"] = 11  # no such code
    source = tmp_path / "customers.csv"
    frame.to_csv(source, index=False)
    output = tmp_path / "recs.csv"

    code = batch.main(["--target", inference_target, "--input", str(source), "--output", str(output),
                       "--id-column", "customer_id", "--top-k", "2", "--chunk-rows", "300", "--quiet"])
    assert code == 0
    result = read_output(output)
    assert list(result.columns) == ["customer_id", "product_1", "product_2", "score_1", "score_2", "error"]
    assert len(result) == 2_500
    assert result["customer_id"].tolist() == frame["customer_id"].tolist()  # input order
    failed = result[result["error"] != ""]
    assert failed["customer_id"].tolist() == ["c000003", "c000010", "c000011", "c002400"]
    errors = dict(zip(failed["customer_id"], failed["error"], strict=True))
    assert "budget" in errors["c000003"] and "-5" in errors["c000003"]
    assert errors["c000010"] == "age must be a number, got 'abc'"
    assert "age is empty" in errors["c002400"]
    assert "interest" in errors["c000011"]
    assert (failed["product_1"] == "").all()
    ok = result[result["error"] == ""]
    assert ok["product_1"].isin(schema.DEFAULT_CATALOG.product_ids).all()
    scores = ok[["score_1", "score_2"]].astype(float)
    assert ((scores["score_1"] >= scores["score_2"]) & (scores["score_1"] <= 1)).all()
    assert not batch.progress_path(output).exists()  # finished: nothing to resume


def test_parquet_without_id_uses_row_position(inference_target, tmp_path):
    frame = customers(1_234, seed=3).drop(columns=["customer_id"])
    source = tmp_path / "customers.parquet"
    frame.to_parquet(source, index=False)
    output = tmp_path / "recs.csv"
    summary = batch.run_job(inference_target, source, output, top_k=3, chunk_rows=500, progress=False)
    assert summary.rows_total == 1_234 and summary.error_rows == 0
    result = read_output(output)
    assert result["row"].tolist() == [str(i) for i in range(1_234)]
    # Same answers as one RecommendBatch call for the first rows.
    from clients.client import RecommenderClient

    with RecommenderClient(inference_target) as client:
        direct = client.recommend_batch(frame.head(5).to_numpy(), top_k=3)
    for row in range(5):
        assert result.loc[row, ["product_1", "product_2", "product_3"]].tolist() == direct.product_ids(row)


def test_input_without_slot_or_text_columns_is_rejected(inference_target, tmp_path, capsys):
    source = tmp_path / "bad.csv"
    source.write_text("id,age,gender\n1,30,1\n")
    code = batch.main(["--target", inference_target, "--input", str(source),
                       "--output", str(tmp_path / "o.csv"), "--quiet"])
    assert code == 2
    assert "missing budget, interest, purpose, season" in capsys.readouterr().err


def test_unreachable_server_fails_with_status_1(tmp_path, capsys):
    source = tmp_path / "c.csv"
    customers(10).to_csv(source, index=False)
    code = batch.main(["--target", f"127.0.0.1:{free_port()}", "--input", str(source),
                       "--output", str(tmp_path / "o.csv"), "--quiet", "--timeout", "1"])
    assert code == 1
    assert "UNAVAILABLE" in capsys.readouterr().err


def test_prepare_resume_cuts_partial_line_without_progress_file(tmp_path):
    output = tmp_path / "recs.csv"
    header = batch.header_for("id", 1)
    output.write_text(",".join(header) + "\n" + "a,laptop,0.5,\nb,tablet,0.4,\nc,cam")
    assert batch.prepare_resume(output, header) == 2
    assert output.read_text().endswith("b,tablet,0.4,\n")


def test_prepare_resume_trusts_progress_file_over_unrecorded_chunk(tmp_path):
    output = tmp_path / "recs.csv"
    header = batch.header_for("id", 1)
    recorded = ",".join(header) + "\n" + "a,laptop,0.5,\n"
    output.write_text(recorded + "b,tablet,0.4,\n")  # written, but the kill came before the record
    batch.progress_path(output).write_text(json.dumps({"rows_done": 1, "bytes": len(recorded.encode())}))
    assert batch.prepare_resume(output, header) == 1
    assert output.read_text() == recorded


def test_resume_refuses_output_of_another_shape(tmp_path):
    output = tmp_path / "recs.csv"
    output.write_text("id,product_1,score_1,error\n")
    with pytest.raises(batch.InputError, match="top-k"):
        batch.prepare_resume(output, batch.header_for("id", 3))


def _job(target, source, output, *extra):
    return [PYTHON, "-m", "clients.batch", "--target", target, "--input", str(source), "--output", str(output),
            "--id-column", "customer_id", "--chunk-rows", "250", "--max-in-flight", "3", "--quiet", *extra]


@pytest.mark.slow
def test_kill_and_resume_loses_and_duplicates_nothing(inference_target, tmp_path):
    rows = 20_000
    frame = customers(rows, seed=5)
    frame.loc[[7, 12_345], "budget"] = -1  # error rows must survive the resume too
    source = tmp_path / "customers.csv"
    frame.to_csv(source, index=False)
    reference, output = tmp_path / "reference.csv", tmp_path / "resumed.csv"
    subprocess.run(_job(inference_target, source, reference), cwd=ROOT, check=True, timeout=120)

    # Throttled so the kill lands mid-job (the job itself would finish in well under a second).
    job = subprocess.Popen(_job(inference_target, source, output, "--rate-limit", "8000"), cwd=ROOT)
    record = batch.progress_path(output)
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline and job.poll() is None:
        if record.exists():
            try:
                done = json.loads(record.read_text())["rows_done"]
            except (ValueError, KeyError):
                done = 0
            if done >= 4_000:
                break
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)
    job.wait(10)
    assert job.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    assert 0 < done < rows
    with output.open(newline="") as f:
        partial = sum(1 for _ in csv.reader(f)) - 1
    assert partial < rows

    subprocess.run(_job(inference_target, source, output, "--resume"), cwd=ROOT, check=True, timeout=120)
    result = read_output(output)
    assert len(result) == rows
    assert result["customer_id"].is_unique
    assert result["customer_id"].tolist() == frame["customer_id"].tolist()
    assert output.read_bytes() == reference.read_bytes()
    assert set(result.loc[result["error"] != "", "customer_id"]) == {"c000007", "c012345"}

    # Resuming a finished job is a no-op.
    subprocess.run(_job(inference_target, source, output, "--resume"), cwd=ROOT, check=True, timeout=120)
    assert output.read_bytes() == reference.read_bytes()


def test_text_column_through_the_gateway(gateway_target, tmp_path):
    texts = ["30대 여성 운동용 30만원", "a gift for my dad who loves reading", "", "게임기 50만원 이하",
             "x" * 2_001] * 3
    source = tmp_path / "texts.csv"
    pd.DataFrame({"id": range(len(texts)), "text": texts}).to_csv(source, index=False)
    output = tmp_path / "recs.csv"
    code = batch.main(["--target", gateway_target, "--input", str(source), "--output", str(output),
                       "--chunk-rows", "4", "--quiet"])
    assert code == 0
    result = read_output(output)
    assert result["id"].tolist() == [str(i) for i in range(len(texts))]
    failed = result[result["error"] != ""]
    assert failed["id"].tolist() == [str(i) for i in range(len(texts)) if i % 5 in (2, 4)]
    assert all(e.startswith("text: text must") for e in failed["error"])
    ok = result[result["error"] == ""]
    assert ok.loc[ok["id"].astype(int) % 5 == 3, "product_1"].eq("console").all()
    assert ok.loc[ok["id"].astype(int) % 5 == 1, "product_1"].eq("ereader").all()


def test_rendered_rows_parse_back_with_awkward_ids_and_messages():
    from clients.client import BatchResult

    reply = BatchResult(model_version=1, top_k=2, rows=2, catalog=("earbuds", "laptop"),
                        indices=np.array([[1, 0], [-1, -1]], dtype=np.int32),
                        scores=np.array([[0.75, 0.25], [0, 0]], dtype=np.float32),
                        features=np.zeros((2, 6), np.float32), errors={1: 'budget "x",\nbad'})
    chunk = batch.Chunk(ids=['a,"b"', "plain"], request=None, local_errors={})
    text, bad = batch.render_chunk(chunk, reply, 2)
    rows = list(csv.reader(text.splitlines()))
    assert bad == 1
    assert rows[0] == ['a,"b"', "laptop", "earbuds", "0.750000", "0.250000", ""]
    assert rows[1] == ["plain", "", "", "", "", 'budget "x", bad']
    assert text.count("\n") == 2  # one line per row, which resume relies on
