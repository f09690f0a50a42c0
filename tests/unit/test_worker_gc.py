"""Start-up objects are frozen out of garbage collection; later ones are still collected."""

from __future__ import annotations

import gc
import weakref

from worker.compose import FULL_COLLECTION_EVERY, YOUNG_COLLECTION_AFTER, freeze_startup_objects


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_startup_objects_are_frozen_and_later_cycles_still_collected() -> None:
    before = gc.get_freeze_count()
    thresholds = gc.get_threshold()
    kept = _Node()
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > before
        assert gc.get_threshold() == (YOUNG_COLLECTION_AFTER, thresholds[1], FULL_COLLECTION_EVERY)
        later = _Node()
        gone = weakref.ref(later)
        del later
        gc.collect()
        assert gone() is None  # made after the freeze: collected as usual
        assert kept.me is kept
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
