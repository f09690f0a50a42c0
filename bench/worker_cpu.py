"""The worker's CPU per AI job against that of the processes whose work per job it does not change
(the model stand-ins and the load generator), as the AI report puts it. No plotting or load
imports: the product's unit tests check it."""

from __future__ import annotations

from collections.abc import Mapping


def _reference(cpu_ms: Mapping[str, float | None]) -> float | None:
    """The model stand-ins' and the load generator's CPU per job together; None without both."""
    standins, users = cpu_ms.get("model_standins"), cpu_ms.get("load_generator")
    if standins is None or users is None or standins + users <= 0:
        return None
    return standins + users


def worker_to_reference(cpu_ms: Mapping[str, float | None]) -> float | None:
    """The worker's CPU per job over that of the model stand-ins and the load generator, whose work
    per job nothing in the worker changes: the box's speed, which moves every process's CPU per
    job by 10-30 % between runs, moves this ratio far less (1.03-1.06 via Supabase in three full
    runs whose worker CPU per job spread over 7.04-7.65 ms)."""
    worker, reference = cpu_ms.get("worker"), _reference(cpu_ms)
    return None if worker is None or reference is None else round(worker / reference, 3)


def ratio_text(cpu_ms: Mapping[str, float | None]) -> str:
    ratio, reference = worker_to_reference(cpu_ms), _reference(cpu_ms)
    if ratio is None or reference is None:
        return ""
    return (
        f"; worker ÷ (model stand-ins + load generator, {round(reference, 2)} ms/job) {ratio}, a ratio the box's "
        "speed moves far less"
    )
