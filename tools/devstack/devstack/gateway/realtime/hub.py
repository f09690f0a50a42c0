"""Who is subscribed to what: joined channels, indexed for broadcast and postgres_changes fan-out.

Realtime keeps public and private channels of the same name apart (its pubsub topic includes the
privacy), so a private message never reaches a public subscriber and vice versa.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from devstack.gateway.realtime.bindings import Binding
from devstack.gateway.realtime.protocol import Broadcast, Serializer

log = logging.getLogger(__name__)


class Outbox(Protocol):
    """The sending half of one websocket; never blocks the caller."""

    serializer: Serializer

    def send(self, data: str | bytes) -> None: ...


@dataclass(eq=False)
class Channel:
    """One joined topic on one socket, with what the join (or a later access_token) established."""

    outbox: Outbox
    topic: str  # "realtime:<name>"
    join_ref: str | None
    private: bool
    self_broadcast: bool
    ack_broadcast: bool
    presence_enabled: bool
    access_token: str
    claims: dict[str, Any]
    bindings: list[Binding] = field(default_factory=list)
    # Private channels: RLS on realtime.messages; None = not evaluated yet (write is lazy).
    can_read: bool | None = None
    can_write: bool | None = None

    @property
    def name(self) -> str:
        return self.topic.removeprefix("realtime:")

    @property
    def role(self) -> str:
        return str(self.claims.get("role"))

    @property
    def receives_broadcasts(self) -> bool:
        return not self.private or self.can_read is True

    def push(self, event: str, payload: dict[str, Any]) -> None:
        """A server push on this channel (system messages, phx_close ...)."""
        self.outbox.send(self.outbox.serializer.message(self.topic, event, payload, join_ref=self.join_ref))

    def push_fastlane(self, event: str, payload: dict[str, Any]) -> None:
        """A fanned-out message: no refs at all, as Realtime's fastlane sends them."""
        self.outbox.send(self.outbox.serializer.message(self.topic, event, payload))

    def push_broadcast(self, bc: Broadcast) -> None:
        data = self.outbox.serializer.broadcast(self.topic, bc)
        if data is not None:
            self.outbox.send(data)

    def system(self, extension: str, status: str, message: str) -> None:
        self.push("system", {"extension": extension, "status": status, "message": message, "channel": self.name})


class Hub:
    def __init__(self) -> None:
        self._topics: dict[tuple[str, bool], set[Channel]] = {}
        self._with_bindings: set[Channel] = set()

    def add(self, channel: Channel) -> None:
        self._topics.setdefault((channel.name, channel.private), set()).add(channel)
        if channel.bindings:
            self._with_bindings.add(channel)

    def remove(self, channel: Channel) -> None:
        key = (channel.name, channel.private)
        members = self._topics.get(key)
        if members is not None:
            members.discard(channel)
            if not members:
                del self._topics[key]
        self._with_bindings.discard(channel)

    def broadcast(self, name: str, private: bool, bc: Broadcast, *, sender: Channel | None = None) -> int:
        """Deliver to every reader of the topic; the sender only when it asked for ``self``."""
        delivered = 0
        for channel in list(self._topics.get((name, private), ())):
            if channel is sender and not channel.self_broadcast:
                continue
            if not channel.receives_broadcasts:
                continue
            try:
                channel.push_broadcast(bc)
                delivered += 1
            except Exception:  # one broken subscriber must not stop the others
                log.exception("realtime: broadcast to %s failed", channel.topic)
        return delivered

    def postgres_subscribers(self, action: str, schema: str, table: str) -> Iterator[tuple[Channel, list[Binding]]]:
        for channel in list(self._with_bindings):
            wanted = [b for b in channel.bindings if b.wants(action, schema, table)]
            if wanted:
                yield channel, wanted

    def has_postgres_subscribers(self) -> bool:
        return bool(self._with_bindings)

    def wants_table(self, schema: str, table: str) -> bool:
        """Whether some joined channel has a postgres_changes binding on (schema, table)."""
        return any(b.names(schema, table) for ch in self._with_bindings for b in ch.bindings)
