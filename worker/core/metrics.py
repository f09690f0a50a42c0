"""Prometheus text metrics without a client library: counters by kind, gauges, histograms."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    n: int = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.n += 1


_HELP = {
    "worker_jobs_claimed_total": ("counter", "Jobs claimed, by kind."),
    "worker_jobs_handed_total": ("counter", "Jobs claimed for this worker by the statement that queued them, by kind."),
    "worker_jobs_succeeded_total": ("counter", "Jobs completed, by kind."),
    "worker_jobs_failed_total": ("counter", "Jobs failed (retryable or not), by kind."),
    "worker_jobs_deferred_total": ("counter", "Jobs deferred on provider rate limits, by kind."),
    "worker_jobs_cancelled_total": ("counter", "Jobs cancelled by the user while running, by kind."),
    "worker_jobs_lost_total": ("counter", "Jobs whose lease was lost while running, by kind."),
    "worker_wakeups_total": ("counter", "Claim-loop wake-ups, by reason."),
    "worker_artifacts_deleted_total": ("counter", "Artifacts deleted by retention and acknowledged in the outbox."),
    "worker_jobs_in_flight": ("gauge", "Jobs running in this worker."),
    "worker_claim_duration_seconds": ("histogram", "Duration of claim_jobs calls."),
    "worker_run_duration_seconds": ("histogram", "Handler run time, by kind."),
    "worker_gc_pause_seconds": ("histogram", "Garbage collections, by generation: each stops every job in flight."),
    "worker_event_loop_lag_seconds": (
        "histogram",
        "How late the event loop ran a timer due every 0.1 s: time every job in flight waited on other work.",
    ),
}


class Metrics:
    def __init__(self) -> None:
        self.counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(lambda: defaultdict(float))
        self.gauges: dict[str, float] = {}
        self.histograms: dict[str, dict[tuple[tuple[str, str], ...], Histogram]] = defaultdict(
            lambda: defaultdict(Histogram)
        )

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        self.counters[name][tuple(sorted(labels.items()))] += value

    def set(self, name: str, value: float) -> None:
        self.gauges[name] = value

    def observe(self, name: str, value: float, **labels: str) -> None:
        self.histograms[name][tuple(sorted(labels.items()))].observe(value)

    def count(self, name: str, **labels: str) -> float:
        return self.counters[name].get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        lines: list[str] = []
        names = sorted(set(self.counters) | set(self.gauges) | set(self.histograms) | set(_HELP))
        for name in names:
            kind, text = _HELP.get(name, ("untyped", name))
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            for labels, value in sorted(self.counters.get(name, {}).items()):
                lines.append(f"{name}{_labels(labels)} {value:g}")
            if name in self.gauges:
                lines.append(f"{name} {self.gauges[name]:g}")
            for labels, hist in sorted(self.histograms.get(name, {}).items()):
                for bound, count in zip(BUCKETS, hist.counts, strict=True):
                    lines.append(f"{name}_bucket{_labels((*labels, ('le', f'{bound:g}')))} {count}")
                lines.append(f"{name}_bucket{_labels((*labels, ('le', '+Inf')))} {hist.n}")
                lines.append(f"{name}_sum{_labels(labels)} {hist.total:.6f}")
                lines.append(f"{name}_count{_labels(labels)} {hist.n}")
        return "\n".join(lines) + "\n"


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in labels)
    return "{" + inner + "}"
