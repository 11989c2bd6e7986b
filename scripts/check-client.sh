#!/usr/bin/env bash
# A refund service's view of the API document: generates a typed Python client from the
# running service's /openapi.json with openapi-python-client (pinned in
# scripts/requirements-client.txt), after checking the document with
# openapi-spec-validator, then calls every operation through it and checks
# what comes back parses as the document says: a return decided, tracked and settled;
# a cheap one kept without return (or refused with its code);
# a return_id reused (409 with its error code from the catalogue); exposure, rating,
# a buyer's link and page and its contest form; health, readiness, metrics and an admin reload; a case opened,
# answered, queued, claimed, released and decided, and the reviewers' pages.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/client-venv
scripts/venv.sh scripts/requirements-client.txt "$VENV"
# shellcheck source=serve-bg.sh
source scripts/serve-bg.sh
OUT=target/client
rm -rf "$OUT"
mkdir -p target
curl -sf "$BASE/openapi.json" >target/openapi.json
"$VENV/bin/python" -c 'import json, sys
from openapi_spec_validator import validate
validate(json.load(open(sys.argv[1])))
print("the OpenAPI document is valid (openapi-spec-validator)")' target/openapi.json
PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/openapi-python-client" generate \
  --path target/openapi.json --output-path "$OUT" >target/client-generate.log 2>&1 ||
  { cat target/client-generate.log; echo "the client does not generate"; exit 1; }
grep -q "Warning" target/client-generate.log && { cat target/client-generate.log; echo "the generator warned"; exit 1; }
PYTHONPATH="$OUT" "$VENV/bin/python" - "$BASE" "$FASTREFUND_API_TOKEN" "$FASTREFUND_ADMIN_TOKEN" "$FASTREFUND_REVIEWER_TOKEN" <<'PY'
import datetime as dt, sys
from fastrefund_client import AuthenticatedClient, Client
from fastrefund_client.api.refund_services import eligibility, tracking, outcome, exposure, keep
from fastrefund_client.api.buyers import rating, buyer_link, buyer_page, contest
from fastrefund_client.api.operations import healthz, readyz, metrics, reload
from fastrefund_client.models import (EligibilityRequest, EligibilityResponse, ErrorBody, ErrorCode,
    Outcome, OutcomeRequest, OutcomeResponse, ReturnReason, TrackingRequest, TrackingResponse,
    ExposureResponse, RatingResponse, BuyerLink, Health, ServingInfo, ReloadRequest, KeepResponse,
    ContestForm, KeepBody)
from fastrefund_client.api.cases import open_case, get_case, respond, buyer_cases
from fastrefund_client.api.reviewers import queue, claim, release, decide, queue_page, case_page
from fastrefund_client.models import (OpenCaseRequest, CaseKindDto, PartyDto, CaseDto, CaseList,
    CaseResponseRequest, ClaimRequest, DecisionRequest, VerdictDto)
base, api_token, admin_token, reviewer_token = sys.argv[1:5]
reviewer = AuthenticatedClient(base_url=base, token=reviewer_token)
api = AuthenticatedClient(base_url=base, token=api_token)
admin = AuthenticatedClient(base_url=base, token=admin_token)
anon = Client(base_url=base)
called = set()
def ok(name, r, cls, status=200):
    called.add(name)
    assert r.status_code == status, f"{name}: {r.status_code} {r.content[:200]!r}"
    assert isinstance(r.parsed, cls), f"{name}: parsed {type(r.parsed)} not {cls}"
    return r.parsed
t = lambda s: dt.datetime.fromisoformat(s)
buyer = 100001
req = EligibilityRequest(return_id=7001, buyer_id=buyer, order_id=7001, merchant_id=1, category="shoes",
    amount="59.90", reason=ReturnReason.NO_REASON, delivered_at=t("2026-06-30T02:00:00+00:00"),
    requested_at=t("2026-07-01T02:00:00+00:00"))
d = ok("eligibility", eligibility.sync_detailed(client=api, body=req), EligibilityResponse)
req.amount = "1.00"
e = ok("eligibility", eligibility.sync_detailed(client=api, body=req), ErrorBody, 409)
assert e.error.code == ErrorCode.RETURN_ID_REUSED and e.error.field == "amount", e
tr = ok("tracking", tracking.sync_detailed(7001, client=api, body=TrackingRequest(tracking_number="SF7001")), TrackingResponse)
if tr.advanced:
    ok("outcome", outcome.sync_detailed(7001, client=api, body=OutcomeRequest(outcome=Outcome.RECEIVED_OK, at=t("2026-07-04T02:00:00+00:00"))), OutcomeResponse)
else:
    e = ok("outcome", outcome.sync_detailed(7001, client=api, body=OutcomeRequest(outcome=Outcome.RECEIVED_OK, at=t("2026-07-04T02:00:00+00:00"))), ErrorBody, 409)
    assert e.error.code == ErrorCode.NOT_ADVANCED, e
# Refund without return (spec §11): a cheap item; kept when offered, else refused with its code.
cheap = EligibilityRequest(return_id=7002, buyer_id=buyer, order_id=7002, merchant_id=1,
    category="phone_accessories", amount="19.90", reason=ReturnReason.NO_REASON,
    delivered_at=t("2026-06-30T02:00:00+00:00"), requested_at=t("2026-07-01T02:00:00+00:00"))
o = ok("eligibility", eligibility.sync_detailed(client=api, body=cheap), EligibilityResponse)
if o.refund_without_return:
    k = ok("keep", keep.sync_detailed(7002, client=api, body=KeepBody()), KeepResponse)
    assert k.outcome == "refunded_without_return", k
else:
    e = ok("keep", keep.sync_detailed(7002, client=api, body=KeepBody()), ErrorBody, 409)
    assert e.error.code == ErrorCode.NO_REFUND_WITHOUT_RETURN_OFFER, e
ok("exposure", exposure.sync_detailed(buyer, client=api), ExposureResponse)
ok("rating", rating.sync_detailed(buyer, client=api), RatingResponse)
link = ok("buyer_link", buyer_link.sync_detailed(buyer, client=api), BuyerLink)
ok("buyer_page", buyer_page.sync_detailed(buyer, client=api), str)
# The page's contest form, as a browser posts it (here with the API token), by a buyer whose
# star has a reason to contest: 303 back to the page.
held = next(b for b in range(100002, 102001) if rating.sync_detailed(b, client=api).parsed.reasons)
code = rating.sync_detailed(held, client=api).parsed.reasons[0].code
ok("contest", contest.sync_detailed(held, client=api, body=ContestForm(contest=f"reason:{code}",
    statement="this reason is not mine")), str, 303)
ok("healthz", healthz.sync_detailed(client=anon), Health)
ok("readyz", readyz.sync_detailed(client=anon), ServingInfo)
ok("metrics", metrics.sync_detailed(client=anon), str)
ok("reload", reload.sync_detailed(client=admin, body=ReloadRequest()), ServingInfo)
# A case, from opening to decision (spec §10).
c = ok("open_case", open_case.sync_detailed(client=api, body=OpenCaseRequest(kind=CaseKindDto.RATING,
    buyer_id=buyer, opened_by=PartyDto.BUYER, statement="a return counted against me was the merchant's fault")), CaseDto, 201)
ok("get_case", get_case.sync_detailed(c.case_id, client=api), CaseDto)
e = ok("respond", respond.sync_detailed(c.case_id, client=api, body=CaseResponseRequest(party=PartyDto.MERCHANT,
    statement="no other party in a rating case")), ErrorBody, 409)
assert e.error.code == ErrorCode.CASE_WRONG_STATE, e
ok("buyer_cases", buyer_cases.sync_detailed(buyer, client=api), CaseList)
ok("queue", queue.sync_detailed(client=reviewer), CaseList)
ok("claim", claim.sync_detailed(c.case_id, client=reviewer, body=ClaimRequest(reviewer="li.wei")), CaseDto)
ok("release", release.sync_detailed(c.case_id, client=reviewer, body=ClaimRequest(reviewer="li.wei")), CaseDto)
ok("claim", claim.sync_detailed(c.case_id, client=reviewer, body=ClaimRequest(reviewer="li.wei")), CaseDto)
d = ok("decide", decide.sync_detailed(c.case_id, client=reviewer, body=DecisionRequest(reviewer="li.wei",
    decision=VerdictDto.BUYER_WON, note="the return was the merchant's fault")), CaseDto)
assert d.decision == "buyer_won", d
ok("queue_page", queue_page.sync_detailed(client=reviewer), str)
ok("case_page", case_page.sync_detailed(c.case_id, client=reviewer), str)
want = {"eligibility", "tracking", "outcome", "keep", "exposure", "rating", "buyer_link", "buyer_page", "contest",
        "healthz", "readyz", "metrics", "reload", "open_case", "get_case", "respond", "buyer_cases",
        "queue", "claim", "release", "decide", "queue_page", "case_page"}
assert called == want, f"not called: {want - called}"
print(f"generated client: {len(called)} operations called, every answer parsed as documented")
PY
