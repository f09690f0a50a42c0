"""The AI report's worker CPU ratio to the processes whose work per job is fixed."""

from __future__ import annotations

from bench.worker_cpu import ratio_text, worker_to_reference


def test_the_ratio_divides_the_worker_by_the_stand_ins_and_the_load_generator() -> None:
    cpu = {"worker": 7.04, "gateway": 7.57, "model_standins": 3.05, "load_generator": 3.58}
    assert worker_to_reference(cpu) == 1.062
    assert "(model stand-ins + load generator, 6.63 ms/job) 1.062" in ratio_text(cpu)


def test_no_ratio_without_both_references() -> None:
    assert worker_to_reference({"worker": 5.0, "model_standins": 2.0}) is None
    assert worker_to_reference({"worker": 5.0, "model_standins": 0.0, "load_generator": 0.0}) is None
    assert worker_to_reference({"worker": None, "model_standins": 2.0, "load_generator": 3.0}) is None
    assert ratio_text({"worker": 5.0}) == ""
