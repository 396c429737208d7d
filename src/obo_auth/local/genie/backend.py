"""The Genie service's state: its spaces, and the conversations asked in them."""

from __future__ import annotations

from collections.abc import Callable

from obo_auth.local.genie.conversations import ConversationStore
from obo_auth.local.genie.spaces import Space


class GenieBackend:
    def __init__(self, spaces: list[Space], clock: Callable[[], float]):
        self._spaces = {s.id: s for s in spaces}
        self.conversations = ConversationStore(clock)

    def spaces(self) -> list[Space]:
        return list(self._spaces.values())

    def space(self, space_id: str) -> Space | None:
        """The space with this id, or None: the routes answer a missing space and a hidden one alike."""
        return self._spaces.get(space_id)
