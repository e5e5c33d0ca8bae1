"""`loyalty-ledger bench`: the ledger against its baselines, in one run on one machine.

Measurements (each for `--seconds`, after a short warm-up that is not counted):

(a) a do-nothing gRPC server: the same proto and SERVER_OPTIONS, in its own process, whose
    Authorize returns a constant reply. The ceiling of Python gRPC on this machine.
(b) unary Authorize against the real server (`python -m entrypoints.cli serve`) on a scratch
    PostgreSQL database, at 1, 16 and 64 calls in flight. Concurrency 1 uses one client
    process, 16 and 64 two client processes with half the calls each. The same client code
    drives (a), so the ratios compare like with like.
(c) `Batch`: a GATEWAY credential streams messages of 1,000 Authorize operations (two client
    processes x two streams); durable authorizations/s.
(d) raw batched inserts straight into PostgreSQL with one connection, 1,000 rows per
    transaction: binary COPY into a table shaped like the events table (the disk's limit),
    and the ledger's own transaction shape (table lock, NOTIFY, unnest INSERT of events and
    request keys) to show what the database alone allows the writer.
(e) a textbook eventsourcing 9.5 application: one aggregate per card, `repository.get` +
    command + `save` per authorization, 16 threads.
(f) Purchase against Authorize on the same server, one after the other at PURCHASE_CONCURRENCY
    calls in flight: a three-line basket paid with stored value, evaluated against the 13-rule
    spring campaign of benchmarks/rules.py (published through ProgramService) with a points
    program, so every purchase runs the rule kernel and writes a points lot.

Throughput counts calls that completed OK inside the measured window; latencies are per call
(per message for Batch, per transaction for raw inserts). CPU columns are the cores used
during the window by the server process, all PostgreSQL processes, the client processes (for
(d) and (e): the benchmark process itself), and everything else on the machine ("other": the
noise of a shared box).

The scratch databases (`--database`, default DEFAULT_DATABASE, and the same name + `_es`
for (e)) are dropped and created again at the start; they are left behind for inspection.
Set LEDGER_BENCH_PROFILE=DIR to record each server-side window with py-spy into DIR (py-spy
takes CPU itself, so the figures of a profiled run are lower).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import multiprocessing
import os
import platform
import queue
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError
from psycopg import conninfo

from benchmarks.stats import percentile

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/ledger_bench"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

CONCURRENCIES = (1, 16, 64)
CLIENT_PROCESSES = 2
CARDS = 2_000
LOAD_MINOR = 90_000_000  # per card; the default card class allows 100,000,000
AMOUNT_MINOR = 100
BATCH_OPS = 1_000
BATCH_PROCESSES = 2
BATCH_STREAMS = 2  # per process
TERMINALS = 8
RAW_ROWS_PER_TX = 1_000
RAW_STATE_BYTES = 70
TEXTBOOK_THREADS = 16
SETUP_INFLIGHT = 64

TARGET_UNARY_VS_NOTHING = 0.5
TARGET_P99_VS_NOTHING = 2.0
TARGET_BATCH = 30_000.0
TARGET_UNARY_VS_TEXTBOOK = 4.0
PURCHASE_CONCURRENCY = 16
TARGET_PURCHASE_P99_VS_AUTHORIZE = 1.5

APPROVED, PARTIALLY_APPROVED = 1, 2


@dataclass
class Measurement:
    key: str  # a, b, c, d, e
    name: str
    concurrency: int
    ops: int  # successful operations completed inside the window
    seconds: float
    ops_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    unit: str
    errors: dict[str, int] = field(default_factory=dict)
    results: dict[str, int] = field(default_factory=dict)  # Result value -> count
    cpu_cores: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Check:
    name: str
    value: float | None
    target: str
    passed: bool | None


# ------------------------------------------------------------------------------ small helpers


def _summary(latencies_ms: list[float]) -> tuple[float | None, float | None]:
    return percentile(latencies_ms, 0.50), percentile(latencies_ms, 0.99)


def _card_numbers(count: int) -> list[str]:
    from domain.common import luhn_complete

    return [luhn_complete(f"8{seed:014d}") for seed in range(1, count + 1)]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _warmup(seconds: float) -> float:
    return min(1.0, max(0.3, seconds / 4))


class _Ids:
    """Fresh request ids, unique across processes and runs."""

    def __init__(self, tag: str) -> None:
        self.prefix = f"{tag}-{os.getpid()}-{secrets.token_hex(3)}-"
        self.next = 0

    def __call__(self) -> str:
        self.next += 1
        return f"{self.prefix}{self.next}"


# ------------------------------------------------------------------------------ CPU sampling

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _pid_cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime + stime


def worker_pids(pid: int) -> list[int]:
    """The `serve --workers N` processes started by the server process `pid`, in pid order
    (not its read-model follower, whose CPU is the machine's like any other process's)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            if ppid != pid:
                continue
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if b"serve" in argv:
            found.append(int(entry.name))
    return sorted(found)


def _postgres_cpu_s() -> float:
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        name = data[data.find(b"(") + 1:data.rfind(b")")]
        if name == b"postgres":
            fields = data.rsplit(b")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return total


def _machine_busy_s() -> float:
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / _CLK_TCK


class CpuWindow:
    """CPU seconds used between start() and stop(), as cores (seconds / wall seconds)."""

    def __init__(self, server_pid: int | None = None) -> None:
        self.server_pid = server_pid
        self._start: tuple[float, float, float, float] | None = None
        self.cores: dict[str, float] = {}

    def _sample(self) -> tuple[float, float, float, float]:
        server = (sum(_pid_cpu_s(pid) for pid in [self.server_pid,
                                                  *worker_pids(self.server_pid)])
                  if self.server_pid else 0.0)
        return time.monotonic(), server, _postgres_cpu_s(), _machine_busy_s()

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> dict[str, float]:
        assert self._start is not None
        end = self._sample()
        wall = max(end[0] - self._start[0], 1e-6)
        if self.server_pid:
            self.cores["server"] = (end[1] - self._start[1]) / wall
        self.cores["postgres"] = (end[2] - self._start[2]) / wall
        self.cores["machine"] = (end[3] - self._start[3]) / wall
        return self.cores


class Profiler:
    """Optional py-spy recording of the server during a window (LEDGER_BENCH_PROFILE=DIR)."""

    def __init__(self) -> None:
        directory = os.environ.get("LEDGER_BENCH_PROFILE", "")
        exe = Path(sys.executable).with_name("py-spy")
        self.py_spy = str(exe) if exe.exists() else shutil.which("py-spy")
        self.directory = Path(directory) if directory and self.py_spy else None
        if self.directory:
            self.directory.mkdir(parents=True, exist_ok=True)

    def record(self, pid: int | None, label: str, seconds: float) -> subprocess.Popen[bytes] | None:
        if not self.directory or not pid or not self.py_spy:
            return None
        out = self.directory / f"{label}.txt"
        return subprocess.Popen(
            [self.py_spy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
             "--rate", "200", "--format", "raw", "--nonblocking", "--threads",
             "--subprocesses",  # the workers of `--workers N`, and the read-model follower
             "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ------------------------------------------------------------------------------ client processes


def _client_main(spec: dict[str, Any], go: Any, results: Any) -> None:
    """Entry point of a spawned client process: connect, put {"ready"}, wait for `go`,
    drive the load, put one result dict (or {"error"})."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    try:
        out = asyncio.run(_client(spec, go, results))
    except BaseException:  # report, never hang the parent
        out = {"error": traceback.format_exc()}
    results.put(out)


async def _client(spec: dict[str, Any], go: Any, results: Any) -> dict[str, Any]:
    import grpc

    from grpc_api.generated import pos_pb2 as pb
    from grpc_api.generated import pos_pb2_grpc as pb_grpc

    options = [("grpc.max_send_message_length", 8 * 1024 * 1024),
               ("grpc.max_receive_message_length", 8 * 1024 * 1024)]
    channel = grpc.aio.insecure_channel(spec["target"], options=options)
    try:
        await asyncio.wait_for(channel.channel_ready(), 30)
        stub = pb_grpc.PosServiceStub(channel)
        loop = asyncio.get_running_loop()
        results.put({"ready": True})
        if not await loop.run_in_executor(None, go.wait, 120):
            raise RuntimeError("no start signal from the parent")
        t0 = time.time() + spec["warmup"]
        t1 = t0 + spec["seconds"]
        state: dict[str, Any] = {"ok": 0, "latencies": [], "errors": collections.Counter(),
                                 "results": collections.Counter(), "cpu_s": 0.0}
        rnd = random.Random(spec["seed"])
        new_id = _Ids(spec["tag"])
        metadata = (("authorization", f"Bearer {spec['token']}"),)
        cards = spec["cards"]

        basket = [pb.PurchaseLine(sku="sku-0200", category="wine", quantity=1,
                                  unit_price_minor=25_00),
                  pb.PurchaseLine(sku="sku-0300", category="books", quantity=2,
                                  unit_price_minor=6_00),
                  pb.PurchaseLine(sku="sku-0400", category="tobacco", quantity=1,
                                  unit_price_minor=10_00)]
        basket_total = sum(line.quantity * line.unit_price_minor for line in basket)

        async def cpu_meter() -> None:
            await asyncio.sleep(max(0.0, t0 - time.time()))
            start = time.process_time()
            await asyncio.sleep(max(0.0, t1 - time.time()))
            state["cpu_s"] = time.process_time() - start

        async def unary() -> None:
            while True:
                if time.time() >= t1:
                    return
                purchase = spec["mode"] == "purchase"
                if purchase:
                    request = pb.PurchaseRequest(
                        request_id=new_id(), card_number=rnd.choice(cards), currency="USD",
                        lines=basket, stored_value_minor=basket_total,
                        local_time="2026-04-03T18:30:00")
                else:
                    request = pb.AuthorizeRequest(
                        request_id=new_id(), card_number=rnd.choice(cards),
                        amount_minor=spec["amount"], currency="USD")
                began = time.perf_counter()
                reply = None
                code = ""
                try:
                    reply = await (stub.Purchase(request, metadata=metadata, timeout=60)
                                   if purchase else
                                   stub.Authorize(request, metadata=metadata, timeout=60))
                except grpc.aio.AioRpcError as error:
                    code = error.code().name
                elapsed = time.perf_counter() - began
                done = time.time()
                if t0 <= done < t1:
                    if reply is None:
                        state["errors"][code] += 1
                    else:
                        state["ok"] += 1
                        state["latencies"].append(elapsed * 1000)
                        state["results"][str(reply.result)] += 1

        def batch_message() -> Any:
            terminals = spec["terminals"]
            return pb.BatchRequest(operations=[
                pb.PosOperation(terminal_id=rnd.choice(terminals), authorize=pb.AuthorizeRequest(
                    request_id=new_id(), card_number=rnd.choice(cards),
                    amount_minor=spec["amount"], currency="USD"))
                for _ in range(spec["ops_per_message"])])

        async def stream() -> None:
            call = stub.Batch(metadata=metadata, timeout=spec["warmup"] + spec["seconds"] + 120)
            try:
                while time.time() < t1:
                    message = batch_message()
                    began = time.perf_counter()
                    await call.write(message)
                    reply = await call.read()
                    elapsed = time.perf_counter() - began
                    if reply is grpc.aio.EOF:
                        state["errors"]["EOF"] += 1
                        return
                    done = time.time()
                    if not t0 <= done < t1:
                        continue
                    state["latencies"].append(elapsed * 1000)
                    for item in reply.replies:
                        if item.error:
                            state["errors"][item.error.split(":", 1)[0]] += 1
                            continue
                        result = item.reply.result
                        state["results"][str(result)] += 1
                        if result in (APPROVED, PARTIALLY_APPROVED):
                            state["ok"] += 1
                await call.done_writing()
            except grpc.aio.AioRpcError as error:
                state["errors"][error.code().name] += 1
            finally:
                call.cancel()

        if spec["mode"] in ("unary", "purchase"):
            workers = [unary() for _ in range(spec["inflight"])]
        else:
            workers = [stream() for _ in range(spec["streams"])]
        await asyncio.gather(cpu_meter(), *workers)
        return {"ok": state["ok"], "latencies": state["latencies"],
                "errors": dict(state["errors"]), "results": dict(state["results"]),
                "cpu_s": state["cpu_s"], "seconds": spec["seconds"]}
    finally:
        await channel.close()


class Children:
    """Every process this run started; all of them are stopped on the way out."""

    def __init__(self) -> None:
        self.processes: list[Any] = []  # multiprocessing.Process
        self.popens: list[subprocess.Popen[Any]] = []

    def stop_all(self) -> None:
        for popen in self.popens:
            if popen.poll() is None:
                with contextlib.suppress(OSError):
                    popen.send_signal(signal.SIGTERM)
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + 20
        for popen in self.popens:
            try:
                popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(5)
        for process in self.processes:
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(5)
        self.popens.clear()
        self.processes.clear()


def _drive(children: Children, profiler: Profiler, *, key: str, name: str, label: str,
           target: str, server_pid: int | None, mode: str, processes: int,
           per_process: int, concurrency: int, seconds: float, tokens: list[str],
           cards: list[str], terminals: list[str] | None = None) -> Measurement:
    """Run `processes` client processes against `target` and merge what they measured."""
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    results = ctx.Queue()
    warmup = _warmup(seconds)
    started: list[Any] = []
    for index in range(processes):
        spec = {"mode": mode, "target": target, "token": tokens[index % len(tokens)],
                "cards": cards, "terminals": terminals or [], "amount": AMOUNT_MINOR,
                "inflight": per_process, "streams": per_process, "ops_per_message": BATCH_OPS,
                "warmup": warmup, "seconds": seconds, "seed": random.randrange(2**32),
                "tag": f"{label}{index}"}
        process = ctx.Process(target=_client_main, args=(spec, go, results), daemon=True,
                              name=f"bench-client-{label}-{index}")
        children.processes.append(process)
        started.append(process)
        process.start()
    cpu = CpuWindow(server_pid)
    _await_ready(name, started, results)
    go.set()
    time.sleep(warmup)
    spy = profiler.record(server_pid, label, seconds)
    cpu.start()
    time.sleep(seconds)
    cores = cpu.stop()
    outs = []
    for _ in started:
        try:
            out = results.get(timeout=seconds + 180)
        except queue.Empty:
            raise RuntimeError(f"{name}: a client process did not report") from None
        if "error" in out:
            raise RuntimeError(f"{name}: a client process failed:\n{out['error']}")
        outs.append(out)
    for process in started:
        process.join(30)
        children.processes.remove(process)
    if spy is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            spy.wait(30)
    latencies = [v for out in outs for v in out["latencies"]]
    p50, p99 = _summary(latencies)
    ok = sum(out["ok"] for out in outs)
    errors: collections.Counter[str] = collections.Counter()
    results_count: collections.Counter[str] = collections.Counter()
    for out in outs:
        errors.update(out["errors"])
        results_count.update(out["results"])
    cores["clients"] = sum(out["cpu_s"] for out in outs) / seconds
    extra: dict[str, Any] = {"client_processes": processes, "per_process": per_process}
    if mode == "batch":
        extra["messages"] = len(latencies)
        extra["ops_per_message"] = BATCH_OPS
    return Measurement(key, name, concurrency, ok, seconds, ok / seconds, p50, p99,
                       "authorizations" if key != "a" else "calls", dict(errors),
                       dict(results_count), cores, extra)


def _await_ready(name: str, processes: list[Any], results: Any) -> None:
    """Wait until every client has connected; fail fast if one of them dies or errs."""
    ready = 0
    deadline = time.monotonic() + 120
    while ready < len(processes):
        try:
            out = results.get(timeout=0.2)
        except queue.Empty:
            dead = [p for p in processes if p.exitcode is not None]
            if dead:
                raise RuntimeError(f"{name}: client process {dead[0].name} exited with "
                                   f"{dead[0].exitcode} before it was ready") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: the client processes did not connect") from None
            continue
        if "error" in out:
            raise RuntimeError(f"{name}: a client process failed:\n{out['error']}")
        ready += 1


# ------------------------------------------------------------------------------ (a) do-nothing


def _nothing_server_main(ports: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_nothing_server(ports))


async def _nothing_server(ports: Any) -> None:
    import grpc

    from grpc_api.generated import pos_pb2 as pb
    from grpc_api.generated import pos_pb2_grpc as pb_grpc
    from grpc_api.server import SERVER_OPTIONS

    reply = pb.AuthorizeReply(result=pb.APPROVED, authorization_id="800000000000011.17",
                              approved_amount_minor=AMOUNT_MINOR, available_minor=89_998_300)

    class NothingPos(pb_grpc.PosServiceServicer):
        async def Authorize(self, request: Any, context: Any) -> Any:
            return reply

    server = grpc.aio.server(options=SERVER_OPTIONS)
    pb_grpc.add_PosServiceServicer_to_server(NothingPos(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    ports.put(port)
    await server.wait_for_termination()


def run_nothing(children: Children, profiler: Profiler, seconds: float) -> list[Measurement]:
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    process = ctx.Process(target=_nothing_server_main, args=(ports,), daemon=True,
                          name="bench-nothing-server")
    children.processes.append(process)
    process.start()
    try:
        port = ports.get(timeout=60)
    except queue.Empty:
        raise RuntimeError("the do-nothing server did not start") from None
    target = f"127.0.0.1:{port}"
    cards = _card_numbers(CARDS)
    token = "llk_cbench_" + secrets.token_urlsafe(32)  # same size on the wire as a real one
    out = []
    try:
        for concurrency in CONCURRENCIES:
            processes = 1 if concurrency == 1 else CLIENT_PROCESSES
            m = _drive(children, profiler, key="a", name="(a) do-nothing gRPC Authorize",
                       label=f"a{concurrency}", target=target, server_pid=process.pid,
                       mode="unary", processes=processes, per_process=concurrency // processes,
                       concurrency=concurrency, seconds=seconds, tokens=[token], cards=cards)
            out.append(m)
            _progress(m)
    finally:
        process.terminate()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(5)
        children.processes.remove(process)
    return out


# ------------------------------------------------------------------------------ databases


def _database_name(url: str) -> str:
    name = str(conninfo.conninfo_to_dict(url).get("dbname") or "")
    if not name or name in ("postgres", "template0", "template1"):
        raise ValueError(f"refusing to recreate database {name!r}: pass a scratch database")
    return name


def _with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(name)))


def _recreate_database(url: str) -> None:
    name = _database_name(url)
    admin = conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _postgres_settings(url: str) -> dict[str, str]:
    names = ("server_version", "fsync", "synchronous_commit", "shared_buffers", "max_wal_size",
             "wal_sync_method", "commit_delay")
    admin = conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        return {n: str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in names}  # type: ignore[index]


# ------------------------------------------------------------------------------ (b), (c) server


class RealServer:
    """`python -m entrypoints.cli serve` on a fresh database; stopped by Children."""

    def __init__(self, children: Children, url: str) -> None:
        self.children = children
        self.url = url
        self.port = _free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in stop)
        self.process: subprocess.Popen[str] | None = None
        self.admin_token = ""
        # How to start the CLI; experiments may swap in a wrapper (e.g. one that times GC).
        self.command = [sys.executable, "-m", "entrypoints.cli"]
        self.serve_options: list[str] = []  # e.g. --no-projector
        self.init_options: list[str] = []  # e.g. --split --place 8-15=URL

    def init(self) -> None:
        _recreate_database(self.url)
        for option in self.init_options:  # the other servers' databases, fresh too
            if option.startswith("--place="):  # --place=FIRST-LAST=URL
                _recreate_database(option.split("=", 2)[2])
        done = subprocess.run([*self.command, "init", "--database", self.url,
                               *self.init_options],
                              cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=120, check=False)
        lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"init failed ({done.returncode}): {done.stderr.strip()}")
        self.admin_token = lines[-1]

    def start(self) -> None:
        self.process = subprocess.Popen(
            [*self.command, "serve", "--database", self.url, "--listen", self.target,
             *self.serve_options],
            cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
            stderr=self.stderr, text=True)
        self.children.popens.append(self.process)
        ready: queue.Queue[str] = queue.Queue()
        stdout = self.process.stdout
        assert stdout is not None

        def relay() -> None:
            for line in stdout:
                if line.startswith("ready:"):
                    ready.put(line)
                elif line.startswith("stopped:"):  # the server's own counters
                    print(f"  server {line.strip()}", file=sys.stderr, flush=True)

        threading.Thread(target=relay, daemon=True, name="bench-server-stdout").start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                ready.get(timeout=0.2)
                return
            except queue.Empty:
                if self.process.poll() is not None:
                    break
        raise RuntimeError(f"the server did not become ready:\n{self.stderr_tail()}")

    def stderr_tail(self, lines: int = 30) -> str:
        self.stderr.seek(0)
        return "".join(self.stderr.readlines()[-lines:])

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process is not None and self.process in self.children.popens:
            self.children.popens.remove(self.process)
        self.stderr.close()


@dataclass
class Alliance:
    terminal_tokens: list[str]
    gateway_token: str
    terminals: list[str]
    cards: list[str]


async def _setup_alliance(target: str, admin_token: str) -> Alliance:
    """P1 (USD) with store S1, TERMINALS terminals, two TERMINAL credentials, one GATEWAY, and
    CARDS active cards with LOAD_MINOR each, all over gRPC."""
    import grpc

    from grpc_api.generated import pos_pb2 as pb
    from grpc_api.generated import pos_pb2_grpc as pb_grpc

    new_id = _Ids("setup")
    md = (("authorization", f"Bearer {admin_token}"),)
    async with grpc.aio.insecure_channel(target) as channel:
        await asyncio.wait_for(channel.channel_ready(), 30)
        admin = pb_grpc.AdminServiceStub(channel)
        card_service = pb_grpc.CardServiceStub(channel)

        def approved(reply: Any, what: str) -> Any:
            if reply.result != pb.APPROVED:
                raise RuntimeError(f"setup: {what} answered {pb.Result.Name(reply.result)}")
            return reply

        approved(await admin.RegisterPartner(pb.RegisterPartnerRequest(
            request_id=new_id(), partner_id="P1", name="Bench retail", currency="USD"),
            metadata=md), "RegisterPartner")
        approved(await admin.RegisterStore(pb.RegisterStoreRequest(
            request_id=new_id(), partner_id="P1", store_id="S1", name="Bench store",
            timezone="UTC"), metadata=md), "RegisterStore")
        terminals = [f"T{i}" for i in range(1, TERMINALS + 1)]
        for terminal in terminals:
            approved(await admin.RegisterTerminal(pb.RegisterTerminalRequest(
                request_id=new_id(), store_id="S1", terminal_id=terminal), metadata=md),
                "RegisterTerminal")

        async def credential(role: int, terminal_id: str = "") -> str:
            reply = approved(await admin.CreateCredential(pb.CreateCredentialRequest(
                request_id=new_id(), principal=pb.Principal(
                    role=role, partner_id="P1", store_id="S1", terminal_id=terminal_id),
                label=f"bench {terminal_id or 'gateway'}"), metadata=md), "CreateCredential")
            return str(reply.token)

        terminal_tokens = [await credential(pb.TERMINAL, t) for t in terminals[:CLIENT_PROCESSES]]
        gateway_token = await credential(pb.GATEWAY)

        cards = _card_numbers(CARDS)
        limit = asyncio.Semaphore(SETUP_INFLIGHT)

        async def card(number: str) -> None:
            async with limit:
                approved(await card_service.IssueCard(pb.IssueCardRequest(
                    request_id=new_id(), card_number=number, card_class="STANDARD",
                    currency="USD", customer_ref="bench", issuing_store_id="S1"),
                    metadata=md, timeout=60), "IssueCard")
                approved(await card_service.ActivateCard(pb.CardActionRequest(
                    request_id=new_id(), card_number=number), metadata=md, timeout=60),
                    "ActivateCard")
                approved(await card_service.LoadValue(pb.LoadValueRequest(
                    request_id=new_id(), card_number=number, amount_minor=LOAD_MINOR,
                    currency="USD", payment_ref="bench"), metadata=md, timeout=60),
                    "LoadValue")

        await asyncio.gather(*(card(number) for number in cards))
        await _setup_rules(channel, md, new_id)
    return Alliance(terminal_tokens, gateway_token, terminals, cards)


async def _setup_rules(channel: Any, md: Any, new_id: Callable[[], str]) -> None:
    """P1's points program and the spring campaign (benchmarks/rules.py) over ProgramService."""
    from benchmarks.rules import spring_campaign
    from grpc_api.generated import pos_pb2 as pb
    from grpc_api.generated import pos_pb2_grpc as pb_grpc
    from grpc_api.translate import rule_set_message

    programs = pb_grpc.ProgramServiceStub(channel)
    for what, call in (
            ("DefineProgram", programs.DefineProgram(pb.DefineProgramRequest(
                request_id=new_id(), owner="P1", currency="USD", point_value_micros=1_000_000,
                expiry_kind=pb.MONTHS_AFTER, expiry_n=24, timezone="UTC"), metadata=md)),
            ("PublishRuleSet", programs.PublishRuleSet(pb.PublishRuleSetRequest(
                request_id=new_id(), rule_set=rule_set_message(spring_campaign("partner:P1"))),
                metadata=md))):
        reply = await call
        if reply.result != pb.APPROVED:
            raise RuntimeError(f"setup: {what} answered {pb.Result.Name(reply.result)}")


def _serve_options(ns: argparse.Namespace) -> tuple[str, ...]:
    """`bench --workers N [--no-routing]`: the real server as N processes (issue 14)."""
    options: list[str] = []
    if getattr(ns, "workers", 1) > 1:
        options += ["--workers", str(ns.workers)]
    if getattr(ns, "projector_nice", None) is not None:
        options += ["--projector-nice", str(ns.projector_nice)]
    if getattr(ns, "fronts", 0):
        options += ["--fronts", str(ns.fronts)]
    if not getattr(ns, "routing", True):
        options.append("--no-routing")
    return tuple(options)


def _init_options(ns: argparse.Namespace) -> tuple[str, ...]:
    """`init --split [--place ...]` when the bench asks for the split log."""
    if not getattr(ns, "split", False):
        return ()
    return ("--split", *(f"--place={place}" for place in getattr(ns, "place", []) or []))


def run_server(children: Children, profiler: Profiler, url: str, seconds: float,
               unary: bool, batch: bool, command: list[str] | None = None,
               purchase: bool = False, projector: bool = True,
               serve_options: tuple[str, ...] = (),
               init_options: tuple[str, ...] = ()) -> list[Measurement]:
    server = RealServer(children, url)
    server.init_options += init_options
    if command:
        server.command = command
    if not projector:
        server.serve_options.append("--no-projector")
    server.serve_options += serve_options
    out: list[Measurement] = []
    try:
        server.init()
        server.start()
        began = time.monotonic()
        alliance = asyncio.run(_setup_alliance(server.target, server.admin_token))
        print(f"  setup: {CARDS} cards issued, activated and loaded over gRPC in "
              f"{time.monotonic() - began:.1f} s", flush=True)
        if unary:
            for concurrency in CONCURRENCIES:
                processes = 1 if concurrency == 1 else CLIENT_PROCESSES
                m = _drive(children, profiler, key="b", name="(b) unary Authorize, PostgreSQL",
                           label=f"b{concurrency}", target=server.target,
                           server_pid=server.pid, mode="unary", processes=processes,
                           per_process=concurrency // processes, concurrency=concurrency,
                           seconds=seconds, tokens=alliance.terminal_tokens,
                           cards=alliance.cards)
                out.append(m)
                _progress(m)
        if purchase:
            c = PURCHASE_CONCURRENCY
            for key, mode, name in (("f", "unary", "(f) Authorize, same run as Purchase"),
                                    ("f", "purchase", "(f) Purchase, 3 lines, 13 rules")):
                m = _drive(children, profiler, key=key, name=name, label=f"f{mode}",
                           target=server.target, server_pid=server.pid, mode=mode,
                           processes=CLIENT_PROCESSES, per_process=c // CLIENT_PROCESSES,
                           concurrency=c, seconds=seconds, tokens=alliance.terminal_tokens,
                           cards=alliance.cards)
                m.extra["mode"] = mode
                out.append(m)
                _progress(m)
        if batch:
            m = _drive(children, profiler, key="c",
                       name=f"(c) Batch x{BATCH_OPS}, PostgreSQL", label="c",
                       target=server.target, server_pid=server.pid, mode="batch",
                       processes=BATCH_PROCESSES, per_process=BATCH_STREAMS,
                       concurrency=BATCH_PROCESSES * BATCH_STREAMS * BATCH_OPS,
                       seconds=seconds, tokens=[alliance.gateway_token], cards=alliance.cards,
                       terminals=alliance.terminals)
            m.extra["streams"] = BATCH_PROCESSES * BATCH_STREAMS
            out.append(m)
            _progress(m)
        if server.process is not None and server.process.poll() is not None:
            raise RuntimeError(f"the server exited during the run:\n{server.stderr_tail()}")
        errors = server.stderr_tail(10).strip()
        if errors:
            print(f"  server stderr (last lines):\n{errors}", flush=True)
    finally:
        server.stop()
    return out


# ------------------------------------------------------------------------------ (d) raw inserts


def _raw_table(conn: psycopg.Connection[Any]) -> None:
    conn.execute("DROP TABLE IF EXISTS bench_raw_events, bench_raw_keys")
    conn.execute("CREATE TABLE bench_raw_events (originator_id uuid NOT NULL, "
                 "originator_version bigint NOT NULL, topic text, state bytea, "
                 "notification_id bigserial, PRIMARY KEY (originator_id, originator_version))")
    conn.execute("CREATE UNIQUE INDEX bench_raw_events_notification_id_idx "
                 "ON bench_raw_events (notification_id)")
    conn.execute("CREATE TABLE bench_raw_keys (key_space text NOT NULL, request_id text NOT "
                 "NULL, payload_hash bytea NOT NULL, outcome bytea NOT NULL, recorded_at "
                 "timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (key_space, request_id))")


def _timed_loop(seconds: float, body: Callable[[], int]
                ) -> tuple[int, list[float], dict[str, float]]:
    """Run `body` (returns rows written) for a warm-up and then `seconds`: the rows and
    per-call latencies inside the window, and the cores used (this process = "clients")."""
    t0 = time.monotonic() + _warmup(seconds)
    t1 = t0 + seconds
    rows = 0
    latencies: list[float] = []
    cpu = CpuWindow()
    cpu_start = 0.0
    measuring = False
    while True:
        began = time.monotonic()
        if not measuring and began >= t0:
            measuring = True
            cpu.start()
            cpu_start = time.process_time()
        if began >= t1:
            cores = cpu.stop() if measuring else {}
            cores["clients"] = (time.process_time() - cpu_start) / seconds
            return rows, latencies, cores
        written = body()
        done = time.monotonic()
        if t0 <= done < t1:
            rows += written
            latencies.append((done - began) * 1000)


def run_raw(url: str, seconds: float) -> list[Measurement]:
    out = []
    streams = [uuid.uuid4() for _ in range(CARDS)]
    versions = [0] * CARDS
    state = os.urandom(RAW_STATE_BYTES)
    real_state, real_outcome = _real_row_sizes()
    rnd = random.Random(7)
    new_id = _Ids("raw")

    def next_rows(count: int) -> list[tuple[uuid.UUID, int, str, bytes]]:
        rows = []
        for _ in range(count):
            index = rnd.randrange(CARDS)
            versions[index] += 1
            rows.append((streams[index], versions[index], "sv.authorized.v1", state))
        return rows

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = on")
        _raw_table(conn)
        copy_sql = ("COPY bench_raw_events (originator_id, originator_version, topic, state) "
                    "FROM STDIN (FORMAT BINARY)")

        def copy_batch() -> int:
            rows = next_rows(RAW_ROWS_PER_TX)
            with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
                copy.set_types(["uuid", "int8", "text", "bytea"])
                for row in rows:
                    copy.write_row(row)
            return len(rows)

        rows, latencies, cores = _timed_loop(seconds, copy_batch)
        p50, p99 = _summary(latencies)
        out.append(Measurement("d", f"(d) raw COPY, {RAW_ROWS_PER_TX} rows/txn", 1, rows,
                               seconds, rows / seconds, p50, p99, "rows", cpu_cores=cores,
                               extra={"state_bytes": RAW_STATE_BYTES,
                                      "transactions": len(latencies)}))
        _progress(out[-1])

        _raw_table(conn)
        events_sql = ("INSERT INTO bench_raw_events (originator_id, originator_version, topic, "
                      "state) SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], "
                      "%b::bytea[]) RETURNING notification_id")
        keys_sql = ("INSERT INTO bench_raw_keys (key_space, request_id, payload_hash, outcome) "
                    "SELECT * FROM unnest(%b::text[], %b::text[], %b::bytea[], %b::bytea[])")
        digest = os.urandom(16)

        def ledger_batch() -> int:
            rows = [(s, v, t, real_state) for s, v, t, _ in next_rows(RAW_ROWS_PER_TX)]
            keys = [("t:T1", new_id(), digest, real_outcome) for _ in rows]
            with conn.pipeline() as pipeline, conn.transaction(), conn.cursor() as cur:
                cur.execute("LOCK TABLE bench_raw_events IN EXCLUSIVE MODE")
                cur.execute("NOTIFY bench_raw_events")
                cur.execute(events_sql, [list(c) for c in zip(*rows, strict=True)],
                            prepare=True)
                pipeline.sync()
                cur.fetchall()
                cur.execute(keys_sql, [list(c) for c in zip(*keys, strict=True)], prepare=True)
            return len(rows)

        rows, latencies, cores = _timed_loop(seconds, ledger_batch)
        p50, p99 = _summary(latencies)
        out.append(Measurement("d", f"(d) raw ledger-shaped txn, {RAW_ROWS_PER_TX} auths", 1,
                               rows, seconds, rows / seconds, p50, p99, "events+keys",
                               cpu_cores=cores,
                               extra={"state_bytes": len(real_state),
                                      "outcome_bytes": len(real_outcome),
                                      "transactions": len(latencies)}))
        _progress(out[-1])
        conn.execute("DROP TABLE IF EXISTS bench_raw_events, bench_raw_keys")
    return out


def _real_row_sizes() -> tuple[bytes, bytes]:
    """An encoded ValueAuthorized event and stored Outcome, as the ledger writes them."""
    from domain import postings
    from domain.cards import events as ev
    from domain.common import Meta
    from ledger.codec import CardView, Outcome, encode

    card = _card_numbers(1)[0]
    meta = Meta("b2-12345-abcdef-123456", "c0123456789abcdef", 4, "P1", "S1", "T1",
                time.time_ns() // 1000)
    event_ = ev.ValueAuthorized(meta, f"{card}.17", AMOUNT_MINOR, AMOUNT_MINOR,
                                meta.recorded_at_us + 7 * 86_400_000_000, "P1", "",
                                postings.move(postings.available(card), postings.held(card),
                                              AMOUNT_MINOR))
    outcome = Outcome(1, "Authorize", card, f"{card}.17", AMOUNT_MINOR,
                      CardView(card, "STANDARD", 2, "USD", LOAD_MINOR, 1_700,
                               LOAD_MINOR - 1_700, "P1", "S1", "", 0, 17))
    return encode(event_), encode(outcome)


# ------------------------------------------------------------------------------ (e) textbook

TEXTBOOK_NAMESPACE = uuid.UUID("3b0f2f4e-8a49-4f0e-9d38-5a1f4b0c2d11")


class TextbookCard(Aggregate):
    """One aggregate per card, declarative events, as the eventsourcing docs write them."""

    @staticmethod
    def create_id(card_number: str) -> uuid.UUID:
        return uuid.uuid5(TEXTBOOK_NAMESPACE, card_number)

    @event("Issued")
    def __init__(self, card_number: str) -> None:
        self.card_number = card_number
        self.balance_minor = 0
        self.held_minor = 0
        self.holds: dict[str, int] = {}

    @event("Loaded")
    def load(self, amount_minor: int) -> None:
        self.balance_minor += amount_minor

    def authorize(self, authorization_id: str, amount_minor: int) -> bool:
        if self.balance_minor - self.held_minor < amount_minor:
            return False
        self._authorized(authorization_id, amount_minor)
        return True

    @event("Authorized")
    def _authorized(self, authorization_id: str, amount_minor: int) -> None:
        self.held_minor += amount_minor
        self.holds[authorization_id] = amount_minor


class TextbookLedger(Application):  # type: ignore[type-arg]
    name = "TextbookLedger"

    def issue(self, numbers: list[str]) -> None:
        cards = []
        for number in numbers:
            card = TextbookCard(number)
            card.load(LOAD_MINOR)
            cards.append(card)
        self.save(*cards)

    def authorize(self, card_id: uuid.UUID, authorization_id: str, amount_minor: int) -> bool:
        card: TextbookCard = self.repository.get(card_id)
        approved = card.authorize(authorization_id, amount_minor)
        self.save(card)
        return approved


def textbook_env(es_url: str) -> dict[str, str]:
    """The eventsourcing library's settings for the textbook application on `es_url`."""
    info = conninfo.conninfo_to_dict(es_url)
    return {"PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": str(info["dbname"]),
            "POSTGRES_HOST": str(info.get("host") or "127.0.0.1"),
            "POSTGRES_PORT": str(info.get("port") or 5432),
            "POSTGRES_USER": str(info.get("user") or "postgres"),
            "POSTGRES_PASSWORD": str(info.get("password") or ""),
            "POSTGRES_POOL_SIZE": str(TEXTBOOK_THREADS), "POSTGRES_MAX_OVERFLOW": "4"}


def run_textbook(url: str, seconds: float) -> list[Measurement]:
    es_url = _with_database(url, _database_name(url) + "_es")
    _recreate_database(es_url)
    app = TextbookLedger(env=textbook_env(es_url))
    try:
        numbers = _card_numbers(CARDS)
        for start in range(0, CARDS, 200):
            app.issue(numbers[start:start + 200])
        ids = [TextbookCard.create_id(n) for n in numbers]
        warmup = _warmup(seconds)
        t0 = time.monotonic() + warmup
        t1 = t0 + seconds
        lock = threading.Lock()
        totals = {"ok": 0, "conflicts": 0, "declined": 0}
        latencies: list[float] = []
        errors: collections.Counter[str] = collections.Counter()

        def worker(seed: int) -> None:
            rnd = random.Random(seed)
            new_id = _Ids(f"e{seed}")
            mine: list[float] = []
            ok = conflicts = declined = 0
            while True:
                began = time.monotonic()
                if began >= t1:
                    break
                card_id = rnd.choice(ids)
                request_id = new_id()
                approved = None
                tries = 0
                try:
                    while approved is None:
                        try:
                            approved = app.authorize(card_id, request_id, AMOUNT_MINOR)
                        except IntegrityError:  # another thread saved this card first
                            tries += 1
                            if tries > 20:
                                raise
                except Exception as error:
                    with lock:
                        errors[type(error).__name__] += 1
                    continue
                done = time.monotonic()
                if t0 <= done < t1:
                    conflicts += tries
                    if approved:
                        ok += 1
                        mine.append((done - began) * 1000)
                    else:
                        declined += 1
            with lock:
                totals["ok"] += ok
                totals["conflicts"] += conflicts
                totals["declined"] += declined
                latencies.extend(mine)

        threads = [threading.Thread(target=worker, args=(seed,), name=f"textbook-{seed}")
                   for seed in range(TEXTBOOK_THREADS)]
        cpu = CpuWindow()
        for thread in threads:
            thread.start()
        time.sleep(warmup)
        cpu_start = time.process_time()
        cpu.start()
        time.sleep(seconds)
        cores = cpu.stop()
        cores["clients"] = (time.process_time() - cpu_start) / seconds  # app + its callers
        for thread in threads:
            thread.join()
    finally:
        app.close()
    p50, p99 = _summary(latencies)
    m = Measurement("e", "(e) textbook eventsourcing app", TEXTBOOK_THREADS, totals["ok"],
                    seconds, totals["ok"] / seconds, p50, p99, "authorizations",
                    dict(errors), {"1": totals["ok"], "declined": totals["declined"]}, cores,
                    {"conflict_retries": totals["conflicts"], "threads": TEXTBOOK_THREADS})
    _progress(m)
    return [m]


# ------------------------------------------------------------------------------ report


def _progress(m: Measurement) -> None:
    p99 = f"{m.p99_ms:.2f}" if m.p99_ms is not None else "-"
    errors = f", errors {m.errors}" if m.errors else ""
    print(f"  {m.name} @{m.concurrency}: {m.ops_per_s:,.0f} {m.unit}/s, p99 {p99} ms{errors}",
          flush=True)


def _find(ms: list[Measurement], key: str, concurrency: int | None = None) -> Measurement | None:
    for m in ms:
        if m.key == key and (concurrency is None or m.concurrency == concurrency):
            return m
    return None


def checks(ms: list[Measurement]) -> list[Check]:
    out: list[Check] = []

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    for concurrency in (16, 64):
        unary, nothing = _find(ms, "b", concurrency), _find(ms, "a", concurrency)
        value = ratio(unary.ops_per_s if unary else None, nothing.ops_per_s if nothing else None)
        out.append(Check(f"unary@{concurrency} throughput / do-nothing@{concurrency}", value,
                         f">= {TARGET_UNARY_VS_NOTHING}x",
                         None if value is None else value >= TARGET_UNARY_VS_NOTHING))
        value = ratio(unary.p99_ms if unary else None, nothing.p99_ms if nothing else None)
        out.append(Check(f"unary@{concurrency} p99 / do-nothing@{concurrency} p99", value,
                         f"<= {TARGET_P99_VS_NOTHING}x",
                         None if value is None else value <= TARGET_P99_VS_NOTHING))
    batch = _find(ms, "c")
    value = batch.ops_per_s if batch else None
    out.append(Check("Batch durable authorizations/s", value, f">= {TARGET_BATCH:,.0f}/s",
                     None if value is None else value >= TARGET_BATCH))
    textbook = _find(ms, "e")
    for concurrency in (16, 64):
        unary = _find(ms, "b", concurrency)
        value = ratio(unary.ops_per_s if unary else None,
                      textbook.ops_per_s if textbook else None)
        out.append(Check(f"unary@{concurrency} / textbook@{TEXTBOOK_THREADS} threads", value,
                         f">= {TARGET_UNARY_VS_TEXTBOOK}x",
                         None if value is None else value >= TARGET_UNARY_VS_TEXTBOOK))
    authorize = next((m for m in ms if m.key == "f" and m.extra.get("mode") == "unary"), None)
    bought = next((m for m in ms if m.key == "f" and m.extra.get("mode") == "purchase"), None)
    value = ratio(bought.p99_ms if bought else None, authorize.p99_ms if authorize else None)
    out.append(Check(f"Purchase p99 / Authorize p99 @{PURCHASE_CONCURRENCY}", value,
                     f"<= {TARGET_PURCHASE_P99_VS_AUTHORIZE}x",
                     None if value is None else value <= TARGET_PURCHASE_P99_VS_AUTHORIZE))
    return out


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render(ms: list[Measurement], cs: list[Check]) -> str:
    header = (f"{'measurement':<44} {'conc':>5} {'ops/s':>10} {'p50 ms':>9} {'p99 ms':>9}  "
              f"{'cores: server/pg/clients/other'}")
    lines = [header, "-" * len(header)]
    for m in ms:
        c = dict(m.cpu_cores)
        if "machine" in c:  # whatever else ran on the machine meanwhile: the noise
            c["other"] = max(0.0, c["machine"] - sum(c.get(k, 0.0) for k in
                                                     ("server", "postgres", "clients")))
        cores = "/".join(_fmt(c.get(k), 2) if k in c else "-"
                         for k in ("server", "postgres", "clients", "other"))
        lines.append(f"{m.name:<44} {m.concurrency:>5} {m.ops_per_s:>10,.0f} "
                     f"{_fmt(m.p50_ms):>9} {_fmt(m.p99_ms):>9}  {cores}")
        notes = []
        if m.errors:
            notes.append("errors " + ", ".join(f"{k}={v}" for k, v in sorted(m.errors.items())))
        declines = {k: v for k, v in m.results.items() if k not in ("1", "2")}
        if declines and m.key != "a":
            notes.append("non-approvals " + ", ".join(f"{k}={v}" for k, v in declines.items()))
        if m.extra.get("conflict_retries"):
            notes.append(f"conflict retries {m.extra['conflict_retries']}")
        if notes:
            lines.append(f"{'':<44}   ^ {'; '.join(notes)}")
    lines.append("")
    lines.append(f"{'check':<52} {'value':>10}  {'target':<12} result")
    for check in cs:
        result = "n/a" if check.passed is None else ("pass" if check.passed else "MISS")
        value = "-" if check.value is None else (
            f"{check.value:,.0f}" if check.value > 100 else f"{check.value:.2f}x")
        lines.append(f"{check.name:<52} {value:>10}  {check.target:<12} {result}")
    return "\n".join(lines)


def _machine() -> dict[str, Any]:
    import grpc

    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "grpcio": grpc.__version__, "psycopg": psycopg.__version__,
            "platform": platform.platform(), "loadavg_at_start": os.getloadavg()}


# ------------------------------------------------------------------------------ entry point


@contextlib.contextmanager
def _cleanup(children: Children) -> Iterator[None]:
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        children.stop_all()
        signal.signal(signal.SIGTERM, previous)


def run_bench(ns: argparse.Namespace) -> int:
    url = getattr(ns, "database", None) or DEFAULT_DATABASE
    seconds = float(getattr(ns, "seconds", 8.0) or 8.0)
    only = {part.strip() for part in (getattr(ns, "only", "") or "").split(",") if part.strip()}
    unknown = only - set("abcdef")
    if unknown:
        print(f"loyalty-ledger bench: unknown --only parts {sorted(unknown)}; use a,b,c,d,e,f",
              file=sys.stderr)
        return 2
    selected = only or set("abcdef")
    try:
        _database_name(url)
        settings = _postgres_settings(url)
    except (ValueError, psycopg.Error) as error:
        print(f"loyalty-ledger bench: {str(error).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    machine = _machine()
    print(f"bench: {seconds:g} s per measurement on {machine['cpus']} CPUs, PostgreSQL "
          f"{settings['server_version']} (fsync={settings['fsync']}, synchronous_commit="
          f"{settings['synchronous_commit']}), load average {machine['loadavg_at_start']}",
          flush=True)
    children = Children()
    profiler = Profiler()
    measurements: list[Measurement] = []
    failure = ""
    started = time.monotonic()
    with _cleanup(children):
        try:
            if "a" in selected:
                measurements += run_nothing(children, profiler, seconds)
            if selected & {"b", "c", "f"}:
                measurements += run_server(children, profiler, url, seconds,
                                           "b" in selected, "c" in selected,
                                           purchase="f" in selected,
                                           projector=getattr(ns, "projector", True),
                                           serve_options=_serve_options(ns),
                                           init_options=_init_options(ns))
            if "e" in selected:
                measurements += run_textbook(url, seconds)
            if "d" in selected:
                measurements += run_raw(url, seconds)
        except KeyboardInterrupt:
            failure = "interrupted"
        except Exception as error:
            failure = f"{type(error).__name__}: {error}"
            traceback.print_exc()
    order = {key: index for index, key in enumerate("abcdef")}
    measurements.sort(key=lambda m: (order[m.key], m.concurrency))
    cs = checks(measurements)
    print()
    print(render(measurements, cs))
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    if getattr(ns, "json", ""):
        report = {"seconds": seconds, "database": _redact(url), "machine": machine,
                  "postgres": settings, "measurements": [asdict(m) for m in measurements],
                  "checks": [asdict(c) for c in cs], "failure": failure}
        Path(ns.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {ns.json}")
    if failure:
        print(f"loyalty-ledger bench: {failure}", file=sys.stderr)
        return 130 if failure == "interrupted" else 1
    return 0


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url
