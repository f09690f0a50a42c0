"""Which models each kind uses: its chain in SQL (public.kind_models), read at every sweep, or
the environment's model (MODEL_<KIND>) for a kind without rows there."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from worker.core.llm import LimitedModel, ModelChain
from worker.core.ports import Clock, ModelRoute, ProviderControl

log = logging.getLogger("worker.models")


@dataclass
class ModelRouter:
    """``link`` turns a route into a ``LimitedModel`` (None when this worker has no key for the
    provider: that entry of a chain is skipped). ``control`` None: the environment's models only."""

    defaults: Mapping[str, ModelRoute]
    link: Callable[[ModelRoute], LimitedModel | None]
    clock: Clock
    control: ProviderControl | None = None
    max_wait: float = 0.0  # each chain's: how long a call waits out a cooldown before deferring
    chains: dict[str, ModelChain] = field(default_factory=dict)
    _configured: dict[str, tuple[ModelRoute, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._apply({})

    def chain(self, kind: str) -> ModelChain | None:
        return self.chains.get(kind)

    async def refresh(self) -> None:
        """Read the chains again (StoreError propagates: the caller's sweep handles it)."""
        if self.control is not None:
            self._apply(await self.control.kind_models())

    def _apply(self, configured: Mapping[str, list[ModelRoute]]) -> None:
        for kind, default in self.defaults.items():
            routes = tuple(configured.get(kind) or (default,))
            if kind in self.chains and self._configured.get(kind) == routes:
                continue  # unchanged: keep the chain (and its LimitedModels) as they are
            links = [(route, model) for route in routes if (model := self.link(route)) is not None]
            skipped = [str(route) for route in routes if all(route != r for r, _ in links)]
            if skipped:
                log.warning("kind %s: no key for %s; skipped in its chain", kind, ", ".join(skipped))
            self._configured[kind] = routes
            if links:
                self.chains[kind] = ModelChain(tuple(links), self.clock, max_wait=self.max_wait)
                if kind in configured:
                    log.info("kind %s uses %s", kind, " -> ".join(str(r) for r, _ in links))
            else:
                self.chains.pop(kind, None)
