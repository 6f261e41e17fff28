"""A local S3-compatible server for tests: moto's server mode (`moto_server`, from PyPI's
moto[server]) on a free 127.0.0.1 port, speaking the real S3 REST protocol, so code under
test uses the same pyarrow/boto3 clients as against a real bucket, only with an endpoint
override.

    with MotoS3() as s3:
        s3.client().create_bucket(Bucket="jobs")
        os.environ.update(s3.env())   # endpoint, region and throwaway test credentials

The credentials are moto's fixed dummy values (moto accepts any); they are set only in the
test process's environment, never written anywhere.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support import free_port

REGION = "us-east-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def _moto_server_command() -> list[str]:
    beside = Path(sys.executable).with_name("moto_server")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("moto_server")
    if found:
        return [found]
    return [sys.executable, "-m", "moto.server"]


class MotoS3:
    def __init__(self, log_path: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        """What a process needs to use this server through the standard AWS settings."""
        return {**DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL_S3": self.url, "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def start(self, timeout: float = 30.0) -> MotoS3:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            _moto_server_command() + ["-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/moto-api/", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"moto_server did not answer on {self.url} within {timeout}s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def __enter__(self) -> MotoS3:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
