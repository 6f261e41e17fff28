"""Servers the tests start go with the test run, even when pytest itself is killed or crashes
(a crashed run once left gateways and inference servers running for hours)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from tests.support import PYTHON, ROOT

PARENT = """
import sys, time
from pathlib import Path
from tests.support import PYTHON, ServerProcess
server = ServerProcess([PYTHON, "-c", "import time; time.sleep(120)"], Path(sys.argv[1])).start()
print(server.process.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone for our purpose
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_a_server_dies_with_the_test_process_that_started_it(tmp_path):
    parent = subprocess.Popen([PYTHON, "-c", PARENT, str(tmp_path / "server.log")], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the server outlived the killed test process"
    finally:
        parent.kill()
