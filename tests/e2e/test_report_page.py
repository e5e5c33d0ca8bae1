"""The report page (`loyalty-ledger report html`) opened in a real headless browser (Debian's
chromium, which .ci/run installs): it loads with no error, needs nothing from the network, and
shows the figures of the underlying reports (`report liability|statement --format json`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from domain.cards import commands as cc
from domain.settlement.periods import CloseSettlementPeriod
from tests.integration.test_engine_stories import USD, approved, call, new_card
from tests.integration.test_purchase_stories import purchase
from tests.support.processes import run

pytestmark = [pytest.mark.slow, pytest.mark.backends("sqlite")]


def _browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("LEDGER_REQUIRE_BROWSER") == "1":
            pytest.fail("LEDGER_REQUIRE_BROWSER=1 but no chromium on PATH")
        pytest.skip("no chromium on PATH (apt-get install -y chromium)")
    return found


def _headless(browser: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                           "--disable-dev-shm-usage", "--no-first-run",
                           "--enable-logging=stderr", "--v=0", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_report_page_shows_the_reports_figures_in_a_browser(ledger, alliance, store_url,
                                                                tmp_path: Path) -> None:
    browser = _browser()
    for amount in (1_234_56, 78_90):
        number = new_card(ledger, alliance, load=5_000_00)
        held = approved(call(ledger, alliance.t_air, cc.Authorize(number, amount, USD, False,
                                                                   "")))
        approved(call(ledger, alliance.t_air, cc.Capture(held.authorization_id, amount)))
        approved(call(ledger, alliance.t1, purchase(number, stored_value=1_000)))
    approved(call(ledger, alliance.admin, CloseSettlementPeriod("month end")))

    page = tmp_path / "report.html"
    made = run("report", "html", "--out", str(page), "--database", store_url)
    assert made.returncode == 0, made.stderr
    text = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)  # nothing fetched
    assert "<script" not in text and text.count("<svg") == 8  # liability, settlement, 6 views

    dom = _headless(browser, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "ERROR:CONSOLE" not in dom.stderr and "Uncaught" not in dom.stderr
    shown = dom.stdout
    assert "Loyalty ledger report" in shown and "Settlement period 1 (closed)" in shown

    liability = json.loads(run("report", "liability", "--format", "json", "--database",
                               store_url).stdout)
    for issuer in liability["stored_value"]:
        assert f'<td class="n">{issuer["outstanding_minor"]:,}</td>' in shown
    statement = json.loads(run("report", "statement", "--period", "1", "--format", "json",
                               "--database", store_url).stdout)
    assert statement["statements"] and statement["instructions"]
    for s in statement["statements"]:
        assert f'<td class="n">{s["multilateral_net_minor"]:,}</td>' in shown
    for i in statement["instructions"]:
        assert f'<td>{i["payer"]}</td><td>{i["payee"]}</td>' in shown
        assert f'<td class="n">{i["amount_minor"]:,}</td>' in shown

    pyramid = json.loads(run("report", "pyramid", "--format", "json", "--database",
                             store_url).stdout)
    assert pyramid["customers"] == 1  # both cards are customer "cust"
    for level in pyramid["levels"]:
        assert (f'<td>{level["level"]}</td><td class="n">{level["customers"]:,}</td>'
                f'<td class="n">{level["spend_minor"]:,}</td>') in shown
    assert "Customers: affinity" in shown and "Customers: visits" in shown

    for view, suffix in (("pyramid", "png"), ("matrix", "svg"), ("rfm", "svg"),
                         ("churn", "svg"), ("visits", "png"), ("affinity", "svg")):
        drawn = tmp_path / f"{view}.{suffix}"
        done = run("report", view, "--chart", str(drawn), "--database", store_url)
        assert done.returncode == 0 and drawn.stat().st_size > 5_000, done.stderr
    refused = run("report", "rfm", "--chart", str(tmp_path / "rfm.gif"), "--database",
                  store_url)
    assert refused.returncode == 2 and "--chart" in refused.stderr

    picture = tmp_path / "report.png"
    shot = _headless(browser, f"--screenshot={picture}", "--window-size=1200,1600",
                     page.as_uri())
    assert shot.returncode == 0 and picture.stat().st_size > 10_000, shot.stderr[-2000:]


def test_report_html_without_out_is_exit_2(store, store_url: str) -> None:
    done = run("report", "html", "--database", store_url)
    assert done.returncode == 2 and "--out" in done.stderr and "Traceback" not in done.stderr
