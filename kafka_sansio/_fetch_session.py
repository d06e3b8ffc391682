"""The client side of an incremental fetch session (KIP-227), for one broker.

A full fetch request lists every partition and asks the broker to open a
session (session id 0, epoch 0).  Later requests in the session carry the
session id and the next epoch and list only partitions that are new or whose
fetch parameters changed; partitions no longer wanted are "forgotten".  The
broker answers an incremental request with only the partitions that have
news.  Any session error or failed request falls back to a full request.

Partitions the client does not want fetched *right now* (their buffer is
full, they are paused) must be forgotten, not merely left out: the broker
keeps fetching every partition in the session from the offset it last heard.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from ._types import TopicPartition

__all__ = ["NO_TOPIC_ID", "FetchSession", "FetchTarget", "SessionRequest"]

_MAX_EPOCH = 0x7FFFFFFF
NO_TOPIC_ID = UUID(int=0)


@dataclass(frozen=True, slots=True)
class FetchTarget:
    """What the client asks of one partition in a fetch."""

    fetch_offset: int
    max_bytes: int
    current_leader_epoch: int
    #: The topic's id when the partition was asked for (zero when unknown).
    topic_id: UUID = NO_TOPIC_ID


@dataclass(frozen=True, slots=True)
class SessionRequest:
    """The session part of one fetch request."""

    session_id: int
    epoch: int
    full: bool
    to_send: dict[TopicPartition, FetchTarget]
    to_forget: tuple[TopicPartition, ...]


class FetchSession:
    """Session state for one node; one request in flight at a time.

    Call :meth:`build` with the partitions wanted now, send the request, then
    :meth:`handle_success` or :meth:`handle_failure` with the outcome.
    """

    __slots__ = ("_pending", "epoch", "partitions", "session_id", "supported")

    def __init__(self, supported: bool = True) -> None:
        self.supported = supported
        self.session_id = 0
        self.epoch = 0
        self.partitions: dict[TopicPartition, FetchTarget] = {}
        self._pending: dict[TopicPartition, FetchTarget] | None = None

    def build(self, wanted: dict[TopicPartition, FetchTarget]) -> SessionRequest:
        """The request for ``wanted``: full when there is no session, else incremental."""
        self._pending = dict(wanted)
        if not self.supported:
            return SessionRequest(0, -1, True, dict(wanted), ())
        if self.session_id == 0:
            return SessionRequest(0, 0, True, dict(wanted), ())
        to_send = {tp: t for tp, t in wanted.items() if self.partitions.get(tp) != t}
        to_forget = tuple(tp for tp in self.partitions if tp not in wanted)
        return SessionRequest(self.session_id, self.epoch, False, to_send, to_forget)

    def check_topic_ids(self, topic_ids: Mapping[str, UUID]) -> None:
        """Start a new session if a topic in this one was deleted or created anew.

        The broker's session names partitions by topic id (KIP-516): one whose
        topic now has another id, or none, can be neither updated nor
        forgotten there, and the broker would answer its error on every
        request at once.  Call before :meth:`build`; the next request is full.
        """
        if any(
            t.topic_id != topic_ids.get(tp.topic, NO_TOPIC_ID) for tp, t in self.partitions.items()
        ):
            self.handle_failure()

    def handle_success(self, request: SessionRequest, response_session_id: int) -> None:
        """The request succeeded at the top level; advance the session."""
        wanted = self._pending or {}
        self._pending = None
        if not self.supported:
            return
        if request.full:
            self.session_id = response_session_id
            self.epoch = 1
        else:
            self.epoch = self.epoch + 1 if self.epoch < _MAX_EPOCH else 1
        self.partitions = wanted if self.session_id else {}

    def handle_failure(self) -> None:
        """A session error or a failed request: the next request is full."""
        self._pending = None
        self.session_id = 0
        self.epoch = 0
        self.partitions = {}
