"""Server processes and CLI runs: `loyalty-ledger` as a child process of the test, with the
repository on its path and a test coupon key."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc

from benchmarks.busy_card import Cluster, cluster
from benchmarks.loadgen import worker_pids  # noqa: F401 (for the tests)
from tests.support.rpc import ready

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90.0


def cli(*args: str) -> list[str]:
    """The argv of `loyalty-ledger ARGS` run by this interpreter."""
    return [sys.executable, "-m", "entrypoints.cli", *args]


def env() -> dict[str, str]:
    """The environment of a child process: this repository first on its path, no database
    from the caller's environment, a test coupon key (coupons enabled, no warning)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("LEDGER_DATABASE_URL", None)
    env["LEDGER_COUPON_KEY"] = "k" * 32
    return env


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """`loyalty-ledger ARGS` to its end; output captured, exit status not checked."""
    return subprocess.run(cli(*args), cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=120, check=False)


class ServerProcess:
    """`loyalty-ledger serve` on a free port; its output is drained by a thread."""

    def __init__(self, url: str, *options: str) -> None:
        self.proc = subprocess.Popen(
            cli("serve", "--database", url, "--listen", "127.0.0.1:0", *options), cwd=ROOT,
            env=env(),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        self.port = self._wait_ready()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        ready(self.channel, START_TIMEOUT_S)

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def _wait_ready(self) -> int:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            found = re.match(r"ready: listening on [^ ]+:(\d+) ", line)
            if found:
                return int(found.group(1))
        self.kill()
        raise AssertionError("the server did not become ready:\n" + "".join(self.output))

    def stub(self, kind: Any) -> Any:
        return kind(self.channel)

    def kill(self, close_channel: bool = True) -> None:
        """SIGKILL: no drain, no clean shutdown."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        if close_channel and hasattr(self, "channel"):
            self.channel.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.channel.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def workers(url: str) -> contextlib.AbstractContextManager[Cluster]:
    """`init` on an emptied PostgreSQL database at `url`, then `serve --workers 2` until
    SIGTERM on exit: the busy-card benchmark's cluster (benchmarks/busy_card.py)."""
    return cluster(url, 2)

