"""What every hostile request is judged by: its status (5xx), its body (a canary of user A's data
is a leak) and, where the request must be refused, whether it was (an accepted forgery or
cross-tenant write is a breach)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

EXAMPLES_KEPT = 20  # per kind of finding, in the report


@dataclass
class Recorder:
    canaries: list[str] = field(default_factory=list)  # unique strings planted in A's data
    requests: Counter[str] = field(default_factory=Counter)  # per category
    statuses: Counter[str] = field(default_factory=Counter)
    server_errors: list[dict[str, Any]] = field(default_factory=list)
    leaks: list[dict[str, Any]] = field(default_factory=list)
    breaches: list[dict[str, Any]] = field(default_factory=list)  # a must-refuse request that was served
    transport_errors: list[dict[str, Any]] = field(default_factory=list)
    extra_findings: list[dict[str, Any]] = field(default_factory=list)  # the catalog check's

    def leaked(self, body: bytes | str, sent: str = "") -> str | None:
        """The first canary in ``body`` that the request did not carry itself (an error message
        echoing B's own input is no leak). Canaries are plain [a-z0-9] strings, so JSON-escaped
        and percent-encoded forms match too."""
        text = body if isinstance(body, str) else body.decode("utf-8", "replace")
        return next((c for c in self.canaries if c in text and c not in sent), None)

    def see(
        self, category: str, name: str, status: int, body: bytes | str, *, must_refuse: bool = False, sent: str = ""
    ) -> None:
        self.requests[category] += 1
        self.statuses[str(status)] += 1
        case = {"category": category, "case": name, "status": status}
        if status >= 500:
            self.server_errors.append({**case, "body": _head(body)})
        canary = self.leaked(body, sent)
        if canary is not None:
            self.leaks.append({**case, "canary": canary, "body": _head(body)})
        if must_refuse and status < 400:
            self.breaches.append({**case, "body": _head(body)})

    def response(self, category: str, name: str, answer: httpx.Response, *, must_refuse: bool = False) -> None:
        # Headers count too: a leak in Content-Range or Location is still a leak.
        head = "\n".join(f"{k}: {v}" for k, v in answer.headers.items())
        request = answer.request
        sent = "\n".join([str(request.url), *(v for _, v in request.headers.items())])
        sent += "\n" + request.content.decode("utf-8", "replace")
        self.see(category, name, answer.status_code, head + "\n" + answer.text, must_refuse=must_refuse, sent=sent)

    def failed(self, category: str, name: str, exc: BaseException) -> None:
        """No answer at all (reset, timeout): counted as a request and kept, judged by the health checks."""
        self.requests[category] += 1
        self.transport_errors.append({"category": category, "case": name, "error": f"{type(exc).__name__}: {exc}"})

    def counts(self) -> dict[str, int]:
        return {
            "requests": sum(self.requests.values()),
            "server_errors_5xx": len(self.server_errors),
            "leaks": len(self.leaks),
            "breaches": len(self.breaches),
            "no_answer": len(self.transport_errors),
        }

    def findings(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "server_errors_5xx": self.server_errors[:EXAMPLES_KEPT],
            "leaks": self.leaks[:EXAMPLES_KEPT],
            "breaches": self.breaches[:EXAMPLES_KEPT],
            "no_answer": self.transport_errors[:EXAMPLES_KEPT],
        }


def _head(body: bytes | str, limit: int = 300) -> str:
    text = body if isinstance(body, str) else body.decode("utf-8", "replace")
    return text[:limit]
