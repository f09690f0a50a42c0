"""The attack suite's judge (bench/attack/recorder.py): what counts as a leak, a 5xx and a breach."""

from __future__ import annotations

import httpx

from bench.attack.recorder import Recorder

CANARY = "cnry1x0123456789abcdef"


def test_a_canary_in_a_body_is_a_leak_unless_the_request_carried_it() -> None:
    rec = Recorder(canaries=[CANARY])
    rec.see("c", "row of A", 200, f'[{{"note": "{CANARY}"}}]')
    rec.see("c", "error echoing B's own input", 400, f"Invalid key: {CANARY}", sent=f"/object/x/{CANARY}")
    rec.see("c", "nothing", 200, "[]")
    assert [leak["case"] for leak in rec.leaks] == ["row of A"]
    assert rec.counts() == {"requests": 3, "server_errors_5xx": 0, "leaks": 1, "breaches": 0, "no_answer": 0}


def test_a_canary_in_a_response_header_is_a_leak() -> None:
    rec = Recorder(canaries=[CANARY])
    request = httpx.Request("GET", "http://127.0.0.1:1/rest/v1/jobs")
    rec.response("c", "header", httpx.Response(200, headers={"Location": f"/x/{CANARY}"}, request=request))
    assert rec.counts()["leaks"] == 1


def test_5xx_and_served_must_refuse_requests_are_counted() -> None:
    rec = Recorder()
    rec.see("c", "crash", 500, "boom")
    rec.see("c", "forged token served", 200, "[]", must_refuse=True)
    rec.see("c", "forged token refused", 401, "no", must_refuse=True)
    rec.failed("c", "reset", ConnectionResetError("reset"))
    counts = rec.counts()
    assert (counts["server_errors_5xx"], counts["breaches"], counts["no_answer"], counts["requests"]) == (1, 1, 1, 4)
    assert rec.breaches[0]["case"] == "forged token served"
