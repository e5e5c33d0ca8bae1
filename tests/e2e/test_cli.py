"""The `loyalty-ledger` command as an operator uses it: help with examples, init printing the
token last, one-line errors with exit status 2 that never show a password, and serve draining
in-flight requests on SIGTERM (exit 0, every acknowledged reply durable)."""

from __future__ import annotations

import signal
from pathlib import Path

import grpc
import pytest

from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import pos_pb2_grpc as pb_grpc
from tests.support.processes import ServerProcess, run
from tests.support.rpc import metadata as md

pytestmark = pytest.mark.slow  # every test runs `loyalty-ledger` as a process

COMMANDS = ["init", "serve", "expire", "import-cards", "demo", "bench", "partitions"]


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_says_what_and_gives_an_example(command: str) -> None:
    done = run(*([command] if command else []), "--help")
    assert done.returncode == 0
    assert "example:" in done.stdout and "loyalty-ledger" in done.stdout


def test_init_prints_the_admin_token_last_and_serve_refuses_a_database_without_it(
        tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path}/empty.db"
    refused = run("serve", "--database", empty, "--listen", "127.0.0.1:0")
    assert refused.returncode == 2
    assert "loyalty-ledger init" in refused.stderr and "Traceback" not in refused.stderr
    done = run("init", "--database", empty)
    assert done.returncode == 0
    assert done.stdout.strip().splitlines()[-1].startswith("llk_")


@pytest.mark.parametrize("url", [
    "postgresql://clerk:s3cret-pw@127.0.0.1:1/ledger",  # nothing listens on port 1
    "postgresql://clerk:s3cret-pw@/ledger",  # no host
    "mysql://clerk:s3cret-pw@127.0.0.1/ledger",  # not a store we know
    "sqlite:///no/such/directory/ledger.db",
])
@pytest.mark.parametrize("command", ["init", "serve", "expire"])
def test_a_bad_database_url_is_one_line_and_exit_status_2(command: str, url: str) -> None:
    done = run(command, "--database", url)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "s3cret-pw" not in done.stderr
    assert url.split("@")[-1].split("/")[0] in lines[0] or "sqlite" in lines[0]


@pytest.mark.postgres
def test_serve_refuses_a_route_directory_others_can_reach(pg_server_url: str,
                                                          tmp_path: Path) -> None:
    """A partition owner trusts the credential a forwarded request names, so its socket's
    directory must be private: one line naming the directory and its mode, exit 2."""
    from tests.support.databases import empty_postgres

    url = empty_postgres(pg_server_url)
    assert run("init", "--database", url).returncode == 0
    shared = tmp_path / "routes"
    shared.mkdir()
    shared.chmod(0o775)
    done = run("serve", "--database", url, "--listen", "127.0.0.1:0", "--no-projector",
               "--route-dir", str(shared))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert f"route socket directory {shared} must belong to this user" in lines[-1]
    assert "it is 775" in lines[-1] and "Traceback" not in done.stderr
    for worker in ("2/2", "abc", "1/0", "1/2/3"):
        done = run("serve", "--database", url, "--listen", "127.0.0.1:0", "--no-projector",
                   "--worker", worker)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines()[-1] == (
            f"loyalty-ledger: --worker must be K/N with 0 <= K < N, or front; not {worker!r}")


def test_fronts_need_partition_owners(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    assert run("init", "--database", url).returncode == 0
    done = run("serve", "--database", url, "--listen", "127.0.0.1:0", "--fronts", "1")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "loyalty-ledger: --fronts needs card partition owners to route to: PostgreSQL, "
        "without --no-routing")
    done = run("serve", "--database", url, "--fronts", "-1")
    assert (done.returncode, done.stderr.strip()) == (
        2, "loyalty-ledger: --fronts must be 0 or more")


@pytest.mark.parametrize(("command", "option"), [("serve", "--projector-nice"),
                                                 ("project", "--nice")])
def test_a_negative_nice_is_refused(command: str, option: str, tmp_path: Path) -> None:
    done = run(command, "--database", f"sqlite:///{tmp_path}/x.db", option, "-1")
    assert (done.returncode, done.stderr.strip()) == (
        2, f"loyalty-ledger: {option} must be 0 or more")


def test_no_database_at_all_is_exit_status_2() -> None:
    done = run("serve")
    assert done.returncode == 2 and "LEDGER_DATABASE_URL" in done.stderr


def test_sigterm_drains_in_flight_requests_and_exits_zero(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    token = run("init", "--database", url).stdout.strip().splitlines()[-1]
    server = ServerProcess(url)
    admin = server.stub(pb_grpc.AdminServiceStub)
    cards = server.stub(pb_grpc.CardServiceStub)
    pos = server.stub(pb_grpc.PosServiceStub)
    admin.RegisterPartner(pb.RegisterPartnerRequest(request_id="p", partner_id="P1", name="P",
                                                    currency="USD"), metadata=md(token))
    admin.RegisterStore(pb.RegisterStoreRequest(request_id="s", partner_id="P1", store_id="S1",
                                                name="S", timezone="UTC"), metadata=md(token))
    number = cards.IssueCard(pb.IssueCardRequest(request_id="i", card_class="STANDARD",
                                                 currency="USD", issuing_store_id="S1"),
                             metadata=md(token)).card.card_number
    cards.ActivateCard(pb.CardActionRequest(request_id="a", card_number=number),
                       metadata=md(token))
    cards.LoadValue(pb.LoadValueRequest(request_id="l", card_number=number,
                                        amount_minor=100_000, currency="USD", payment_ref="x"),
                    metadata=md(token))
    calls = [pos.Authorize.future(pb.AuthorizeRequest(
        request_id=f"drain-{i}", card_number=number, amount_minor=10, currency="USD"),
        metadata=md(token), timeout=60) for i in range(200)]
    server.proc.send_signal(signal.SIGTERM)
    unanswered: list[int] = []
    for index, call in enumerate(calls):
        try:
            reply = call.result()
        except grpc.RpcError as error:
            # sent too late for the drain (refused, or cancelled by gRPC): not acknowledged
            assert error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
            unanswered.append(index)
            continue
        assert reply.result == pb.APPROVED and not reply.replayed
    assert server.proc.wait(60) == 0
    assert any(line.startswith("stopped:") for line in server.output)
    server.channel.close()
    again = ServerProcess(url)
    try:
        pos = again.stub(pb_grpc.PosServiceStub)
        held = pos.GetBalance(pb.GetBalanceRequest(card_number=number),
                              metadata=md(token)).held_minor
        # every acknowledged authorization survived the stop (unanswered ones may have too)
        assert held >= 10 * (len(calls) - len(unanswered))
        for index in unanswered:  # retried: applied now, or replayed if it had been applied
            reply = pos.Authorize(pb.AuthorizeRequest(
                request_id=f"drain-{index}", card_number=number, amount_minor=10,
                currency="USD"), metadata=md(token))
            assert reply.result == pb.APPROVED
        # after the retries: every authorization exactly once
        assert pos.GetBalance(pb.GetBalanceRequest(card_number=number),
                              metadata=md(token)).held_minor == 10 * len(calls)
    finally:
        again.stop()


def test_import_cards_killed_midway_then_run_again_imports_every_line_once(
        tmp_path: Path) -> None:
    """kill -9 during an import, then the same command again: every line issued once, every
    load applied once, exit status 0; a bad database URL is one line and exit status 2."""
    import subprocess
    import threading

    from domain.common import Principal, Role, luhn_complete
    from domain.registry import commands as rc
    from ledger.engine import Ledger
    from ledger.store import open_store
    from tests.support.processes import ROOT, cli, env

    url = f"sqlite:///{tmp_path}/ledger.db"
    admin_token = run("init", "--database", url).stdout.strip().splitlines()[-1]
    store = open_store(url)
    ledger = Ledger(store).start()
    admin = ledger.authenticate(admin_token)
    assert admin is not None
    for i, command in enumerate((rc.RegisterPartner("P1", "P", "USD"),
                                 rc.RegisterStore("P1", "S1", "S", "UTC"),
                                 rc.CreateCredential(Principal(Role.STORE_MANAGER, "P1", "S1"),
                                                     "importer"))):
        reply = ledger.call(admin.credential_id, command, request_id=f"setup-{i}")
    token = reply.token  # type: ignore[union-attr]
    ledger.stop()
    store.close()
    lines = 60_000
    path = tmp_path / "cards.csv"
    with path.open("w") as out:
        out.write("card_number,card_class,currency,customer_ref,amount_minor,payment_ref\n")
        for i in range(lines):
            load = f"{100 + i % 7},psp" if i % 3 == 0 else ","
            out.write(f"{luhn_complete(f'72{i:013d}')},STANDARD,USD,c-{i},{load}\n")
    environment = {**env(), "LEDGER_TOKEN": token}
    argv = cli("import-cards", str(path), "--database", url, "--store", "S1")

    first = subprocess.Popen(argv, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    assert first.stderr is not None
    progress = threading.Event()

    def watch() -> None:  # the progress bar's first drawing: some chunks are committed
        assert first.stderr is not None
        while chunk := first.stderr.read1(4096):  # type: ignore[attr-defined]
            if b"import-cards: lines [" in chunk:
                progress.set()

    threading.Thread(target=watch, daemon=True).start()
    assert progress.wait(120)  # a guard against a hang
    assert first.poll() is None, "the import ended before it could be killed"
    first.kill()  # SIGKILL: whatever was committed stays, the rest is lost
    first.wait()

    again = subprocess.run(argv, cwd=ROOT, env=environment, capture_output=True, text=True,
                           timeout=300, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    summary = again.stdout
    assert f"issued            {lines:>10,}" in summary, summary
    assert f"loaded            {lines // 3:>10,}" in summary, summary
    assert "errors                     0" in summary
    check = open_store(url)
    try:
        # every line's CardIssued and every third line's ValueLoaded, nothing twice (plus the
        # registry's 3 events and the bootstrap credential)
        assert check.max_notification_id() == lines + lines // 3 + 4
    finally:
        check.close()

    bad_url = subprocess.run(cli("import-cards", str(path), "--database",
                                 "postgresql://clerk:s3cret-pw@127.0.0.1:1/ledger"),
                             cwd=ROOT, env=environment, capture_output=True, text=True,
                             timeout=60, check=False)
    assert bad_url.returncode == 2 and len(bad_url.stderr.strip().splitlines()) == 1
    assert "s3cret-pw" not in bad_url.stderr
