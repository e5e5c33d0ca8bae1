"""AgreementService over gRPC: ADMIN publishes agreements and registers store entities (bad
input is INVALID_ARGUMENT naming the field, nothing written; other roles PERMISSION_DENIED), a
retry replays, and ListAgreements shows each caller what it may see. The cap's decisions
themselves are tested in tests/integration/test_agreements.py."""

from __future__ import annotations

import time

import grpc
import pytest

from grpc_api.generated import agreements_pb2 as apb
from grpc_api.generated import agreements_pb2_grpc as apb_grpc
from tests.support.alliance import Alliance
from tests.support.rpc import R, Server, call, rid, status_of

pytestmark = pytest.mark.backends("sqlite")


def _soon() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3_600))


@pytest.fixture
def stub(server: Server) -> apb_grpc.AgreementServiceStub:
    return apb_grpc.AgreementServiceStub(server.channel)


def test_publish_replay_and_list(server: Server, alliance: Alliance, stub) -> None:
    request = apb.PublishAgreementRequest(request_id=rid("agr"), agreement=apb.Agreement(
        agreement_id="p1-p2", version=1, valid_from=_soon(), entity_a="P1", entity_b="P2",
        sv_commission_bps=125, commission_paid_by=apb.ISSUER))
    first = call(stub.PublishAgreement, request, alliance.admin_token)
    assert first.result == R.APPROVED and not first.replayed
    again = call(stub.PublishAgreement, request, alliance.admin_token)
    assert again.result == R.APPROVED and again.replayed
    listed = call(stub.ListAgreements, apb.ListAgreementsRequest(), alliance.admin_token)
    found = {a.agreement_id: a for a in listed.agreements}
    assert found["p1-p2"].sv_commission_bps == 125
    assert found["p1-p2"].commission_paid_by == apb.ISSUER
    assert found["p1-p2"].points_billing_bps == 10_000  # 0 on the wire reads as all
    assert {e.entity_id for e in listed.entities} >= {"P1", "P2"}
    # a terminal of P1 sees the agreement naming P1
    mine = call(stub.ListAgreements, apb.ListAgreementsRequest(agreement_id="p1-p2"),
                alliance.tokens["t1"])
    assert [a.version for a in mine.agreements] == [1]


@pytest.mark.parametrize(("agreement", "field"), [
    (apb.Agreement(agreement_id="", version=1), "agreement.agreement_id"),
    (apb.Agreement(agreement_id="x", version=0), "agreement.version"),
    (apb.Agreement(agreement_id="x", version=1, valid_from="yesterday"), "agreement.valid_from"),
    (apb.Agreement(agreement_id="x", version=1, valid_from="2001-01-01T00:00:00Z"),
     "agreement.valid_from"),
    (apb.Agreement(agreement_id="x", version=1, entity_a="P1", entity_b="P404"),
     "agreement.entity_b"),
    (apb.Agreement(agreement_id="x", version=1, sv_commission_bps=10_001),
     "agreement.sv_commission_bps"),
    (apb.Agreement(agreement_id="x", version=1, entity_a="P1", entity_b="P2",
                   exchange_fee_bps=25), "agreement.exchange_fee_bps"),
    (apb.Agreement(agreement_id="x", version=1, net_debit_cap_minor=100, cap_currency="usd"),
     "agreement.cap_currency"),
])
def test_bad_agreements_name_the_field(server: Server, alliance: Alliance, stub, agreement,
                                       field) -> None:
    if not agreement.valid_from:
        agreement.valid_from = _soon()
    before = server.ledger.registry.version
    status = status_of(stub.PublishAgreement, apb.PublishAgreementRequest(
        request_id=rid("agr-bad"), agreement=agreement), alliance.admin_token)
    assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT, status
    assert field in status.details
    assert server.ledger.registry.version == before


def test_only_admin_publishes_or_registers(server: Server, alliance: Alliance, stub) -> None:
    for name in ("p1_manager", "finance", "t1", "auditor"):
        status = status_of(stub.PublishAgreement, apb.PublishAgreementRequest(
            request_id=rid("agr-deny"), agreement=apb.Agreement(
                agreement_id="deny", version=1, valid_from=_soon())), alliance.tokens[name])
        assert status is not None and status.code == grpc.StatusCode.PERMISSION_DENIED, name
        status = status_of(stub.RegisterStoreEntity, apb.RegisterStoreEntityRequest(
            request_id=rid("ent-deny"), store_id="S1"), alliance.tokens[name])
        assert status is not None and status.code == grpc.StatusCode.PERMISSION_DENIED, name
    status = status_of(stub.RegisterStoreEntity, apb.RegisterStoreEntityRequest(
        request_id=rid("ent-bad"), store_id="S1"), alliance.admin_token)  # S1 has terminals
    assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "store_id" in status.details
    assert status_of(stub.ListAgreements, apb.ListAgreementsRequest(), None).code == (
        grpc.StatusCode.UNAUTHENTICATED)
