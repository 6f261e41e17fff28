"""The Ray engine of the batch job (`python -m clients.batch --engine ray`) against the gRPC
engine's answers from a real inference server: CSV and Parquet, local and on an S3 server
(moto, real wire protocol), bad rows, manifest, kill + rerun, version mismatch, text input.

Ray starts once for this module (local, this machine's cores); the scoring actors load the
same model version the inference server serves. Jobs use one actor to keep start-up short.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from clients import batch
from clients.batch import manifest as manifests
from clients.batch import rows as rowlib
from clients.batch import storage
from clients.batch.ray_job import run_ray_job
from clients.batch.ray_source import csv_partition_offsets
from recommender import model_repository, schema
from tests.fakes.s3 import MotoS3
from tests.support import PYTHON, ROOT

pytest.importorskip("ray")

ROWS = 20_000
PARTITION_ROWS = 2_500
BAD_ROWS = {  # row -> (column, value): every kind of bad row the issue lists
    3: ("budget", "-5"),
    10: ("age", "abc"),
    11: ("interest", "11"),
    50: ("budget", "99999999999999999999999999"),
    2_400: ("age", ""),
    7_777: ("season", "2.5"),
    19_999: ("gender", "nan"),
}


def customers(rows: int = ROWS, seed: int = 21) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "customer_id": [f"c{i:06d}" for i in range(rows)],
        "age": rng.integers(0, 90, rows).astype(str),
        "gender": rng.integers(0, 3, rows).astype(str),
        "budget": (rng.integers(0, 200, rows) * 10_000).astype(str),
        "interest": rng.integers(0, 11, rows).astype(str),
        "purpose": rng.integers(0, 3, rows).astype(str),
        "season": rng.integers(0, 5, rows).astype(str),
    }).astype(object)
    for row, (column, value) in BAD_ROWS.items():
        frame.loc[row, column] = value
    return frame


def read_parts(folder) -> pd.DataFrame:
    names = sorted(n for n in os.listdir(folder) if n.startswith("part-") and n.endswith(".parquet"))
    return pd.concat([pq.read_table(os.path.join(folder, n)).to_pandas() for n in names], ignore_index=True)


def assert_same_answers(result: pd.DataFrame, reference: pd.DataFrame, top_k: int = 3) -> None:
    """Ray output == the gRPC job's CSV: same ids, same error rows, same products, scores
    within float tolerance."""
    result = result.sort_values("row").reset_index(drop=True)
    assert result["id"].tolist() == reference["customer_id"].tolist()
    assert result["id"].is_unique
    failed = result["error"].notna()
    assert set(result.loc[failed, "id"]) == set(reference.loc[reference["error"] != "", "customer_id"])
    ok, ref_ok = result[~failed], reference[reference["error"] == ""]
    for i in range(1, top_k + 1):
        assert ok[f"product_{i}"].tolist() == ref_ok[f"product_{i}"].tolist()
        np.testing.assert_allclose(ok[f"score_{i}"].to_numpy(np.float64),
                                   ref_ok[f"score_{i}"].astype(float).to_numpy(), atol=2e-6)
    assert result.loc[failed, "product_1"].isna().all() and result.loc[failed, "score_1"].isna().all()
    assert (result["model_version"] == 1).all()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """moto's S3 server; its endpoint and dummy credentials are in the environment while
    this module runs (set before Ray starts, so Ray's workers inherit them)."""
    with MotoS3(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        saved = {key: os.environ.get(key) for key in server.env()}
        os.environ.update(server.env())
        server.client().create_bucket(Bucket="jobs")
        try:
            yield server
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(scope="module")
def ray_local(s3_server):
    import ray

    from clients.batch.ray_job import start_ray

    started = start_ray(quiet=True)
    yield {**started, "s3": s3_server.url}
    ray.shutdown()


def s3_endpoint(ray_info) -> str:
    return ray_info["s3"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, s3_server):
    """The 20,000-row file as CSV and Parquet, locally and in the S3 bucket."""
    folder = tmp_path_factory.mktemp("ray-inputs")
    frame = customers()
    paths = {"csv": folder / "customers.csv", "parquet": folder / "customers.parquet"}
    frame.to_csv(paths["csv"], index=False)
    frame.astype(str).to_parquet(paths["parquet"], index=False, row_group_size=3_000)
    client = s3_server.client()
    for fmt, path in paths.items():
        client.upload_file(str(path), "jobs", f"in/customers.{fmt}")
    return {("local", "csv"): str(paths["csv"]), ("local", "parquet"): str(paths["parquet"]),
            ("s3", "csv"): "s3://jobs/in/customers.csv", ("s3", "parquet"): "s3://jobs/in/customers.parquet",
            "frame": frame}


@pytest.fixture(scope="module")
def reference(inputs, inference_target, tmp_path_factory):
    """The gRPC engine's answers for the same file from the inference server (version 1)."""
    output = tmp_path_factory.mktemp("grpc-ref") / "recs.csv"
    batch.run_job(inference_target, inputs[("local", "csv")], output, id_column="customer_id", top_k=3,
                  progress=False, timeout=30)
    return pd.read_csv(output, dtype=str, keep_default_na=False)


# --------------------------------------------------------------------------- no Ray needed


def test_csv_partition_offsets_respect_quotes_crlf_and_empty_lines(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b'id,text\r\n1,"two\nlines"\r\n\r\n2,plain\n\n3,"a ""quoted"" \n word"\n4,last')
    for chunk in (3, 7, 1 << 20):
        header, starts, rows = csv_partition_offsets(storage.location(path), 2, True, chunk_bytes=chunk)
        data = path.read_bytes()
        assert data[:header] == b"id,text\r\n" and rows == 4
        assert [data[a:b] for a, b in zip(starts, starts[1:], strict=False)] == [
            b'1,"two\nlines"\r\n\r\n2,plain\n\n', b'3,"a ""quoted"" \n word"\n4,last']


def test_slot_parsing_words_errors_like_the_server():
    import pyarrow as pa

    table = pa.table({"age": ["30", "abc", "", "30", "30"], "gender": pa.array([1, 1, 1, 1, None], pa.int64()),
                      "budget": ["1e30", "0", "0", "-5", "0"], "interest": ["1"] * 5, "purpose": ["1"] * 5,
                      "season": ["0"] * 5})
    vectors, errors = rowlib.slot_vectors(table)
    assert errors[0] == "features[2] budget must be between 0 and 1e9 KRW, got 1000000000000000019884624838656"
    assert errors[1] == "age must be a number, got 'abc'"
    assert errors[2] == "age is empty (write 0 for not stated)"
    assert errors[3] == "features[2] budget must be between 0 and 1e9 KRW, got -5"
    assert errors[4] == "gender is empty (write 0 for not stated)"
    assert vectors.dtype == np.float32 and not vectors[:5].any()


def test_engine_flags_are_refused_with_the_other_engine(tmp_path, capsys):
    code = batch.main(["--engine", "ray", "--input", "x.csv", "--output", str(tmp_path), "--resume"])
    assert code == 2 and "--resume only apply to the grpc engine" in capsys.readouterr().err
    code = batch.main(["--input", "x.csv", "--output", "y.csv", "--partition-rows", "5"])
    assert code == 2 and "--partition-rows only apply to the ray engine" in capsys.readouterr().err


# --------------------------------------------------------------------------- Ray jobs


@pytest.mark.slow
@pytest.mark.parametrize("where,fmt", [("local", "csv"), ("local", "parquet"), ("s3", "csv"), ("s3", "parquet")])
def test_ray_job_equals_grpc_job(where, fmt, ray_local, inputs, reference, trained_models_dir, inference_target,
                                 tmp_path, monkeypatch, capsys):
    if where == "s3":
        out_uri = f"s3://jobs/out/{fmt}"
    else:
        out_uri = str(tmp_path / "out")
    # Local files are scored by actors holding the model: with the server's backend (auto:
    # TFLite), and once with another to see --backend reach them. The S3 runs are about I/O and
    # score through the fleet (actors that skip TensorFlow's start-up keep the module short).
    backend = "function" if (where, fmt) == ("local", "parquet") else "auto"
    scorer = {"scorer": "grpc", "target": inference_target} if where == "s3" else {"backend": backend}
    summary = run_ray_job(inputs[(where, fmt)], out_uri, id_column="customer_id", models_dir=str(trained_models_dir),
                          partition_rows=PARTITION_ROWS, actors=1, progress=False, **scorer)
    assert summary.rows_total == summary.rows_this_run == ROWS
    assert summary.error_rows == len(BAD_ROWS) and summary.model_version == 1
    if where == "s3":  # read back through boto3, as any other S3 user would
        local = tmp_path / "downloaded"
        local.mkdir()
        client = pytest.importorskip("boto3").client(
            "s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"], region_name="us-east-1")
        for item in client.list_objects_v2(Bucket="jobs", Prefix=f"out/{fmt}/")["Contents"]:
            client.download_file("jobs", item["Key"], str(local / item["Key"].rsplit("/", 1)[-1]))
        folder = local
    else:
        folder = tmp_path / "out"
    assert sorted(os.listdir(folder)) == ["manifest.json"] + [f"part-{i:05d}.parquet" for i in range(8)]
    result = read_parts(folder)
    assert list(result.columns) == ["id", "row", "product_1", "product_2", "product_3", "score_1", "score_2",
                                    "score_3", "model_version", "vectorizer", "error"]
    assert_same_answers(result, reference)
    errors = dict(zip(result["id"], result["error"], strict=True))
    assert errors["c000010"] == "age must be a number, got 'abc'"
    assert errors["c000003"] == "features[2] budget must be between 0 and 1e9 KRW, got -5"
    assert errors["c000050"].startswith("features[2] budget must be between 0 and 1e9 KRW, got 1000000000000")

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["input"]["uri"] == inputs[(where, fmt)] and manifest["input"]["rows"] == ROWS
    assert manifest["input"]["fingerprint"] == storage.fingerprint(storage.location(inputs[(where, fmt)]))
    assert manifest["model"]["version"] == 1 and manifest["job"]["model_version"] == 1
    assert manifest["rows"] == {"total": ROWS, "scored": ROWS - len(BAD_ROWS), "errors": len(BAD_ROWS),
                                "this_run": ROWS}
    assert manifest["partitions"]["total"] == 8 and manifest["partitions"]["written_this_run"] == 8
    assert sum(f["rows"] for f in manifest["partitions"]["files"]) == ROWS
    assert manifest["timings"]["seconds"] > 0 and manifest["timings"]["finished_at"]
    assert manifest["model"]["backends"] == (["grpc"] if where == "s3" else
                                             ["function"] if backend == "function" else ["tflite"])

    # A rerun of a finished job writes nothing (no Ray work); on S3 through --s3-endpoint alone.
    args = ["--engine", "ray", "--input", inputs[(where, fmt)], "--output", out_uri, "--id-column", "customer_id",
            "--models-dir", str(trained_models_dir), "--quiet"]
    if where == "s3":
        monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
        args += ["--s3-endpoint", s3_endpoint(ray_local)]
    assert batch.main(args) == 0
    assert "batch: 0 rows in" in capsys.readouterr().err


@pytest.mark.slow
def test_grpc_scorer_equals_grpc_job(ray_local, inputs, reference, inference_target, tmp_path):
    summary = run_ray_job(inputs[("local", "parquet")], str(tmp_path / "out"), id_column="customer_id",
                          scorer="grpc", target=inference_target, partition_rows=5_000, actors=2, progress=False)
    assert summary.rows_total == ROWS and summary.model_version == 1 and summary.scorer == "grpc"
    assert_same_answers(read_parts(tmp_path / "out"), reference)


def _ray_job_command(source, output, *extra):
    # The driver must never import TensorFlow: checked at its exit.
    code = ("import sys; from clients.batch.cli import main; status = main(sys.argv[1:]); "
            "assert 'tensorflow' not in sys.modules, 'the driver imported TensorFlow'; sys.exit(status)")
    return [PYTHON, "-c", code, "--engine", "ray", "--input", str(source), "--output", str(output),
            "--id-column", "customer_id", "--actors", "1", "--quiet", *extra]


@pytest.mark.slow
def test_killed_job_reruns_to_complete_output_without_duplicates(inputs, reference, trained_models_dir,
                                                                 inference_target, tmp_path):
    output = tmp_path / "out"
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)  # its own local Ray, not a cluster
    # Killed while scoring through the fleet, finished by the local scorer: same version, same answers.
    job = subprocess.Popen(_ray_job_command(inputs[("local", "csv")], output, "--scorer", "grpc",
                                            "--target", inference_target, "--partition-rows", "1000",
                                            "--rate-limit", "2000"),
                           cwd=ROOT, env=env, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    written: list[str] = []
    while time.monotonic() < deadline and job.poll() is None:
        written = [n for n in os.listdir(output) if n.startswith("part-")] if output.exists() else []
        if len(written) >= 4:
            break
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)  # the driver and the local Ray it started
    job.wait(10)
    assert job.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    assert 4 <= len(written) < 20
    assert json.loads((output / "manifest.json").read_text())["status"] == "running"

    rerun = subprocess.run(_ray_job_command(inputs[("local", "csv")], output, "--models-dir", str(trained_models_dir)),
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "with errors, model version 1 (local)" in rerun.stderr
    result = read_parts(output)
    assert len(result) == ROWS and result["id"].is_unique
    assert_same_answers(result, reference)
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["timings"]["runs"] == 2
    assert manifest["partitions"]["done_before_this_run"] >= 4
    assert manifest["partitions"]["done_before_this_run"] + manifest["partitions"]["written_this_run"] == 20
    assert manifest["job"]["partition_rows"] == 1000  # the rerun kept the first run's partitions
    assert not [n for n in os.listdir(output) if n.endswith(".tmp")]


@pytest.mark.slow
def test_rerun_with_another_version_or_input_refuses(inputs, trained_models_dir, tmp_path, capsys):
    models = tmp_path / "models"
    (models / "recommender").mkdir(parents=True)
    import shutil

    shutil.copytree(model_repository.version_dir(trained_models_dir, 1), model_repository.version_dir(models, 1))
    output = tmp_path / "out"
    # A finished job's output without running Ray: write it as the job would, then rerun.
    source = storage.location(inputs[("local", "csv")])
    identity = {"input": source.uri, "fingerprint": storage.fingerprint(source), "format": "csv", "mode": "vectors",
                "id_column": "customer_id", "top_k": 3, "model_version": 1, "partition_rows": PARTITION_ROWS}
    output.mkdir()
    manifests.write(storage.location(output), {"format": 1, "status": "running", "job": identity})

    shutil.copytree(model_repository.version_dir(trained_models_dir, 1), model_repository.version_dir(models, 2))
    args = ["--engine", "ray", "--input", inputs[("local", "csv")], "--output", str(output),
            "--id-column", "customer_id", "--models-dir", str(models), "--quiet"]
    assert batch.main(args) == 2
    err = capsys.readouterr().err
    assert "holds the output of another job, refusing to mix them" in err
    assert "model_version: 1 in the manifest, 2 now" in err and "--model-version 1" in err

    assert batch.main(args[:3] + [inputs[("local", "parquet")]] + args[4:] + ["--model-version", "1"]) == 2
    err = capsys.readouterr().err
    assert "input: " in err and "format: 'csv' in the manifest, 'parquet' now" in err
    assert "use a new --output" in err


@pytest.mark.slow
def test_text_input_equals_the_gateway(ray_local, gateway_target, inference_target, tmp_path, capsys):
    texts = ["30대 여성 운동용 30만원", "a gift for my dad who loves reading", "", "게임기 50만원 이하",
             "x" * (schema.MAX_TEXT_CHARS + 1), "예산 " + "9" * 400 + "원 노트북", "   ", "line one\nline \"two\""]
    frame = pd.DataFrame({"id": [f"t{i}" for i in range(len(texts) * 25)], "text": texts * 25})
    source = tmp_path / "texts.csv"
    frame.to_csv(source, index=False)
    grpc_out = tmp_path / "grpc.csv"
    batch.run_job(gateway_target, source, grpc_out, chunk_rows=100, top_k=2, progress=False, timeout=30)
    reference = pd.read_csv(grpc_out, dtype=str, keep_default_na=False).rename(columns={"id": "customer_id"})

    code = batch.main(["--engine", "ray", "--input", str(source), "--output", str(tmp_path / "out"),
                       "--scorer", "grpc", "--target", inference_target, "--top-k", "2", "--partition-rows", "60",
                       "--actors", "1", "--quiet"])
    assert code == 0
    result = read_parts(tmp_path / "out")
    assert len(result) == len(frame) and "product_3" not in result.columns
    assert_same_answers(result, reference, top_k=2)
    ok = result["error"].isna()
    assert (result.loc[ok, "vectorizer"] == "local").all() and result.loc[~ok, "vectorizer"].isna().all()
    errors = result.loc[~ok].set_index("id")["error"]
    assert errors["t2"] == "text: text must not be empty"
    assert errors["t4"].startswith("text: text must be at most 2000 characters")
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert summary.startswith(f"batch: {len(frame):,} rows in ") and "model version 1 (grpc)" in summary
    assert f"{int((~ok).sum()):,} with errors" in summary


def test_grpc_scorer_flags_reach_the_client(tmp_path, capsys):
    source = tmp_path / "c.csv"
    customers(10).to_csv(source, index=False)
    code = batch.main(["--engine", "ray", "--input", str(source), "--output", str(tmp_path / "out"),
                       "--scorer", "grpc", "--target", "127.0.0.1:1", "--ca", str(tmp_path / "missing-ca.pem"),
                       "--token", "t0k3n", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "missing-ca.pem" in err and "t0k3n" not in err


def test_ray_starts_locally_unless_ray_address_names_a_cluster(monkeypatch):
    import ray

    from clients.batch.ray_job import start_ray

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 8.0})
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert start_ray() == {"address": "local", "cpus": 8.0}
    assert calls[-1]["num_cpus"] == os.cpu_count() and calls[-1]["include_dashboard"] is False
    assert "address" not in calls[-1]
    monkeypatch.setenv("RAY_ADDRESS", "ray://head.example:10001")
    assert start_ray()["address"] == "ray://head.example:10001"
    assert calls[-1]["address"] == "ray://head.example:10001" and "num_cpus" not in calls[-1]
