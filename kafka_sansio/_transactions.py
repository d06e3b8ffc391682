"""Transactions of a producer with a ``transactional_id`` (KIP-98, transaction protocol 1).

:class:`Transactions` is the state machine; a :class:`~._producer.ProducerCore`
whose config names a ``transactional_id`` owns one, forwards the user's
transaction calls to it and runs :meth:`Transactions.update` in each update
pass.  ``_TRANSITIONS`` is every move it makes::

    UNINITIALIZED --init--> INITIALIZING --producer id--> READY
    READY --begin--> IN_TRANSACTION --commit--> COMMITTING --EndTxn--> READY
    IN_TRANSACTION | ABORTABLE_ERROR --abort--> ABORTING --EndTxn--> READY
    ABORTING --EndTxn, epoch to bump--> INITIALIZING --producer id--> READY
    ABORTING --ended by the coordinator (no EndTxn)--> INITIALIZING --producer id--> READY
    IN_TRANSACTION | COMMITTING --a batch, partition or offsets failed--> ABORTABLE_ERROR
    any --fenced, not authorized, invalid state--> FATAL

Requests: FindCoordinator (key type 1) finds the transaction coordinator;
InitProducerId with the transactional id gets the producer id and epoch
(fencing any older producer with the same id); AddPartitionsToTxn adds a
partition before its first batch of the transaction goes out (batches wait
until it has); AddOffsetsToTxn, then TxnOffsetCommit to the group's own
coordinator, put consumed offsets in the transaction; EndTxn commits or
aborts.  A commit first waits for every batch of the transaction; an abort
fails the batches not sent yet (:class:`TransactionAbortedError`) and waits
for those in flight.  Every call that waits returns a token, and its outcome
comes as a :class:`TransactionResult` event.

A partition leader answering INVALID_PRODUCER_EPOCH has seen a newer epoch:
the coordinator bumped it and aborted the transaction, either because it ran
past its timeout or because another producer took the transactional id.  As
in the Java producer (KIP-588) the transaction can then only be aborted; the
abort sends no EndTxn (it would be refused) but InitProducerId naming the
current producer id and epoch.  After a timeout the coordinator hands the
epoch back and the producer goes on; a fenced producer gets PRODUCER_FENCED,
which is fatal.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._connection import RequestFailed, Response
from ._coordinator import GROUP, TRANSACTION, coordinator_answer, find_coordinator_request
from ._errors import KafkaSansioError, LocalProtocolError
from ._group_events import OffsetAndMetadata
from ._messages.add_offsets_to_txn import AddOffsetsToTxnRequest, AddOffsetsToTxnResponse
from ._messages.add_partitions_to_txn import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
    AddPartitionsToTxnTopic,
)
from ._messages.end_txn import EndTxnRequest, EndTxnResponse
from ._messages.find_coordinator import FindCoordinatorResponse
from ._messages.init_producer_id import InitProducerIdRequest, InitProducerIdResponse
from ._messages.txn_offset_commit import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
    TxnOffsetCommitRequestTopic,
    TxnOffsetCommitResponse,
)
from ._producer_events import ProducerEvent
from ._types import TopicPartition
from .errors import exception_for_code

if TYPE_CHECKING:
    from ._producer import ProducerCore

__all__ = ["TransactionAbortedError", "TransactionResult", "TransactionState", "Transactions"]

_FIND_COORDINATOR, _ADD_PARTITIONS = 10, 24
#: AddPartitionsToTxn v4+ is the brokers' batched form; clients speak up to v3.
_ADD_PARTITIONS_MAX = 3

# Error codes with a handling of their own.
_UNKNOWN_TOPIC_OR_PARTITION = 3
_LOAD_IN_PROGRESS = 14
_COORDINATOR_NOT_AVAILABLE = 15
_NOT_COORDINATOR = 16
_CONCURRENT_TRANSACTIONS = 51
_OPERATION_NOT_ATTEMPTED = 55
#: Wait and ask again.
_RETRY = frozenset(
    {_LOAD_IN_PROGRESS, _CONCURRENT_TRANSACTIONS, _UNKNOWN_TOPIC_OR_PARTITION,
     _OPERATION_NOT_ATTEMPTED, 7}  # 7: REQUEST_TIMED_OUT
)  # fmt: skip
#: Ask for the coordinator again, then retry.
_MOVED = frozenset({_COORDINATOR_NOT_AVAILABLE, _NOT_COORDINATOR})
#: Coordinator answers after which the producer cannot go on: fenced
#: (47 INVALID_PRODUCER_EPOCH, 90 PRODUCER_FENCED; from a partition leader 47 is abortable),
#: not authorized (31, 53), invalid state or mapping (48, 49), bad timeout (50),
#: unsupported (35).
FATAL = frozenset({31, 35, 47, 48, 49, 50, 53, 90})


class TransactionState(enum.Enum):
    UNINITIALIZED = "uninitialized"
    INITIALIZING = "initializing"
    READY = "ready"
    IN_TRANSACTION = "in_transaction"
    COMMITTING = "committing"
    ABORTING = "aborting"
    ABORTABLE_ERROR = "abortable_error"
    FATAL = "fatal"


_S = TransactionState
_TRANSITIONS: dict[tuple[TransactionState, str], TransactionState] = {
    (_S.UNINITIALIZED, "init"): _S.INITIALIZING,
    (_S.INITIALIZING, "initialized"): _S.READY,
    (_S.READY, "begin"): _S.IN_TRANSACTION,
    (_S.IN_TRANSACTION, "commit"): _S.COMMITTING,
    (_S.IN_TRANSACTION, "abort"): _S.ABORTING,
    (_S.ABORTABLE_ERROR, "abort"): _S.ABORTING,
    (_S.COMMITTING, "ended"): _S.READY,
    (_S.ABORTING, "ended"): _S.READY,
    (_S.ABORTING, "bump"): _S.INITIALIZING,
    (_S.IN_TRANSACTION, "failed"): _S.ABORTABLE_ERROR,
    (_S.COMMITTING, "failed"): _S.ABORTABLE_ERROR,
}


class TransactionAbortedError(KafkaSansioError):
    """The record's transaction was aborted before the record went out."""


@dataclass(frozen=True, slots=True)
class TransactionResult(ProducerEvent):
    """The outcome of ``init_transactions``, ``send_offsets_to_transaction``,
    ``commit_transaction`` or ``abort_transaction`` (``operation``), by the token
    the call returned; ``error`` is None on success.
    """

    token: int
    operation: str
    error: KafkaSansioError | None = None


@dataclass(slots=True)
class _Offsets:
    """One ``send_offsets_to_transaction`` on its way: AddOffsetsToTxn, then TxnOffsetCommit."""

    token: int
    group_id: str
    offsets: dict[TopicPartition, OffsetAndMetadata]
    generation_id: int
    member_id: str
    group_instance_id: str | None
    added: bool = False


class Transactions:
    """The transaction state of one producer (see the module docstring)."""

    def __init__(self, core: ProducerCore, transactional_id: str, timeout: float) -> None:
        self.core = core
        self.transactional_id = transactional_id
        self.timeout_ms = int(timeout * 1000)
        self.state = _S.UNINITIALIZED
        #: The abortable error of the current transaction, or the fatal one.
        self.error: KafkaSansioError | None = None
        self.coordinator: int | None = None
        self._group_coordinators: dict[str, int] = {}
        self._finding: str | None = None  # "" for the transaction coordinator, else a group
        self._retry_at = 0.0
        self._failures = 0
        #: Partitions in the transaction, and those waiting for AddPartitionsToTxn.
        self.added: set[TopicPartition] = set()
        self.pending: set[TopicPartition] = set()
        self._in_flight = False  # one coordinator request at a time
        self._offsets: deque[_Offsets] = deque()
        #: The coordinator knows the transaction (a partition or offsets were added):
        #: it must be ended with EndTxn.
        self._started = False
        #: The token of the init, commit or abort under way (0: none).
        self._op = 0
        self._op_name = ""
        self._next_token = 1
        #: The epoch must be bumped (InitProducerId) once the abort is done.
        self.bump_after_abort = False
        #: A partition leader refused the epoch: the coordinator has already ended
        #: the transaction, so the abort skips EndTxn (see the module docstring).
        self.ended_by_coordinator = False

    # ------------------------------------------------------------ user calls

    def init(self) -> int:
        """Start getting the producer id; returns the token of the outcome.

        Like commit and abort: called again while under way, it returns the
        same token (an adapter's call that timed out can wait again).
        """
        if self._op_name == "init":
            return self._op
        if self.state is not _S.UNINITIALIZED:
            raise LocalProtocolError(f"init_transactions in state {self.state.value}")
        self._move("init")
        return self._start("init")

    def begin(self) -> None:
        """Open a transaction (local only)."""
        if self.state is not _S.READY:
            self._refuse("begin_transaction")
        self._move("begin")
        self.added.clear()
        self.pending.clear()
        self._started = False

    def send_offsets(
        self,
        offsets: Mapping[TopicPartition, OffsetAndMetadata | int],
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
    ) -> int:
        """Queue consumed offsets for the transaction; returns the token of the outcome."""
        if self.state is not _S.IN_TRANSACTION:
            self._refuse("send_offsets_to_transaction")
        plain = {
            TopicPartition(*tp): o if isinstance(o, OffsetAndMetadata) else OffsetAndMetadata(o)
            for tp, o in offsets.items()
        }
        token = self._token()
        self._offsets.append(
            _Offsets(token, group_id, plain, generation_id, member_id, group_instance_id)
        )
        return token

    def commit(self) -> int:
        """Commit once every batch of the transaction is written; returns the token."""
        if self._op_name == "commit":
            return self._op
        if self.state is not _S.IN_TRANSACTION:
            self._refuse("commit_transaction")
        self._move("commit")
        return self._start("commit")

    def abort(self) -> int:
        """Fail the batches not sent yet and abort; returns the token."""
        if self._op_name == "abort":
            return self._op
        if self.state not in (_S.IN_TRANSACTION, _S.ABORTABLE_ERROR):
            self._refuse("abort_transaction")
        self._move("abort")
        token = self._start("abort")
        self.core._abort_unsent(TransactionAbortedError("the transaction was aborted"))
        self.pending.clear()
        for op in self._offsets:
            self._report(op.token, "send_offsets", TransactionAbortedError("aborted"))
        self._offsets.clear()
        return token

    def check_send(self) -> None:
        """Raise unless records may be sent now (an open transaction)."""
        if self.state is not _S.IN_TRANSACTION:
            self._refuse("send")

    def add_partition(self, tp: TopicPartition) -> None:
        """A batch of ``tp`` was created: the partition joins the transaction."""
        if tp not in self.added:
            self.pending.add(tp)

    def sendable(self, tp: TopicPartition) -> bool:
        """May a batch of ``tp`` go out (its partition is in the transaction)?"""
        return tp in self.added and self.state in (_S.IN_TRANSACTION, _S.COMMITTING, _S.ABORTING)

    def batch_failed(self, error: KafkaSansioError) -> None:
        """A batch of the transaction failed: the transaction can only be aborted."""
        self._fail_abortable(error)

    # ------------------------------------------------------------ the engine

    def update(self, now: float) -> None:
        """Send the next coordinator request the state calls for (at most one at a time)."""
        state = self.state
        if state in (_S.UNINITIALIZED, _S.READY, _S.FATAL) or self._in_flight:
            return
        if now < self._retry_at:
            return
        if state is _S.INITIALIZING:
            self._to_coordinator(now, self._init_request())
            return
        if self.pending and state in (_S.IN_TRANSACTION, _S.COMMITTING):
            self._to_coordinator(now, self._add_partitions_request())
            return
        if self._offsets and state in (_S.IN_TRANSACTION, _S.COMMITTING):
            self._send_offsets(now, self._offsets[0])
            return
        if state in (_S.COMMITTING, _S.ABORTING) and self._quiet():
            if not self._started or (state is _S.ABORTING and self.ended_by_coordinator):
                # Nothing reached the coordinator, or it ended the transaction itself.
                self._ended()
                self.core._update_again = True  # the bump's InitProducerId goes in this pass
                return
            request = EndTxnRequest(
                transactional_id=self.transactional_id,
                producer_id=self.core.producer_id,
                producer_epoch=self.core.producer_epoch,
                committed=state is _S.COMMITTING,
            )
            self._to_coordinator(now, request)

    def _quiet(self) -> bool:
        """No batch of the transaction is queued or in flight, no offsets are on their way."""
        core = self.core
        return (
            not self.pending
            and not self._offsets
            and core._in_flight_batches == 0
            and not core._active
            and not core._waiting
        )

    def _to_coordinator(self, now: float, request: object) -> None:
        if self.coordinator is None:
            self._find(now, "")
            return
        self._send(now, self.coordinator, request)

    def _send(self, now: float, node: int, request: object, version: int | None = None) -> None:
        client = self.core.client
        if not client.node_ready(node):
            client.ensure_connected(node, now)
            self.core._waiting_nodes.add(node)
            return
        if isinstance(request, AddPartitionsToTxnRequest):
            negotiated = client.api_version(node, _ADD_PARTITIONS)
            version = min(negotiated if negotiated is not None else 0, _ADD_PARTITIONS_MAX)
        self._in_flight = True
        client.send(node, request, now, self._on_answer, version=version)  # type: ignore[arg-type]

    def _find(self, now: float, group: str) -> None:
        client = self.core.client
        node = client.least_loaded_node(now)
        if node is None:
            self._retry_at = now + self.core._backoff(self._failures)
            return
        version = client.api_version(node, _FIND_COORDINATOR)
        if version is None:
            client.ensure_connected(node, now)
            self.core._waiting_nodes.add(node)
            return
        if group:
            request = find_coordinator_request(group, GROUP, version)
        else:
            request = find_coordinator_request(self.transactional_id, TRANSACTION, version)
        self._finding = group
        self._in_flight = True
        client.send(node, request, now, self._on_answer, version=version)

    def _send_offsets(self, now: float, op: _Offsets) -> None:
        core = self.core
        if not op.added:
            request: object = AddOffsetsToTxnRequest(
                transactional_id=self.transactional_id,
                producer_id=core.producer_id,
                producer_epoch=core.producer_epoch,
                group_id=op.group_id,
            )
            self._to_coordinator(now, request)
            return
        node = self._group_coordinators.get(op.group_id)
        if node is None:
            self._find(now, op.group_id)
            return
        by_topic: dict[str, list[TxnOffsetCommitRequestPartition]] = {}
        for tp, om in op.offsets.items():
            by_topic.setdefault(tp.topic, []).append(
                TxnOffsetCommitRequestPartition(
                    partition_index=tp.partition,
                    committed_offset=om.offset,
                    committed_leader_epoch=-1 if om.leader_epoch is None else om.leader_epoch,
                    committed_metadata=om.metadata,
                )
            )
        request = TxnOffsetCommitRequest(
            transactional_id=self.transactional_id,
            group_id=op.group_id,
            producer_id=core.producer_id,
            producer_epoch=core.producer_epoch,
            generation_id=op.generation_id,
            member_id=op.member_id,
            group_instance_id=op.group_instance_id,
            topics=[TxnOffsetCommitRequestTopic(name=t, partitions=ps) for t, ps in by_topic.items()],
        )
        self._send(now, node, request)

    def _init_request(self) -> InitProducerIdRequest:
        core = self.core
        bump = self.bump_after_abort and core.producer_id >= 0
        return InitProducerIdRequest(
            transactional_id=self.transactional_id,
            transaction_timeout_ms=self.timeout_ms,
            producer_id=core.producer_id if bump else -1,
            producer_epoch=core.producer_epoch if bump else -1,
        )

    def _add_partitions_request(self) -> AddPartitionsToTxnRequest:
        by_topic: dict[str, list[int]] = {}
        for tp in sorted(self.pending):
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        return AddPartitionsToTxnRequest(
            v3_and_below_transactional_id=self.transactional_id,
            v3_and_below_producer_id=self.core.producer_id,
            v3_and_below_producer_epoch=self.core.producer_epoch,
            v3_and_below_topics=[
                AddPartitionsToTxnTopic(name=t, partitions=ps) for t, ps in by_topic.items()
            ],
        )

    # ------------------------------------------------------------ answers

    def _on_answer(self, result: Response | RequestFailed, now: float) -> None:
        self._in_flight = False
        self.core._update_again = True
        if self.state is _S.FATAL:
            return
        response = result.response if isinstance(result, Response) else None
        if response is None:  # the connection went: ask the coordinator anew
            self._finding = None
            self._moved(now)
            return
        if isinstance(response, FindCoordinatorResponse):
            self._on_find(response, now)
        elif isinstance(response, InitProducerIdResponse):
            self._on_init(response, now)
        elif isinstance(response, AddPartitionsToTxnResponse):
            self._on_add_partitions(response, now)
        elif isinstance(response, AddOffsetsToTxnResponse):
            self._on_add_offsets(response, now)
        elif isinstance(response, TxnOffsetCommitResponse):
            self._on_txn_offset_commit(response, now)
        elif isinstance(response, EndTxnResponse):
            self._on_end(response, now)

    def _on_find(self, response: FindCoordinatorResponse, now: float) -> None:
        group = self._finding
        self._finding = None
        code, node = coordinator_answer(response)
        if code == 0 and node >= 0:
            if node not in self.core.client.metadata.brokers:
                self.core.client.request_metadata(now)
                self._later(now)
                return
            if group:
                self._group_coordinators[group] = node
            else:
                self.coordinator = node
            self._failures = 0
            return
        if code in (-1, 0) or code in _MOVED or code in _RETRY:
            self._later(now)  # (0 with no node: ask again)
        elif group and code not in FATAL:
            # e.g. GROUP_AUTHORIZATION_FAILED: the offsets cannot go in; abort is left.
            self._fail_abortable(exception_for_code(code, f"FindCoordinator for {group!r}"))
        else:
            self._fatal(exception_for_code(code, "FindCoordinator"))

    def _on_init(self, response: InitProducerIdResponse, now: float) -> None:
        code = response.error_code
        if code:
            self._on_error(code, now, "InitProducerId", abortable=False)
            return
        self._failures = 0
        self.core._reset_sequences(response.producer_id, response.producer_epoch)
        self.bump_after_abort = False
        self._move("initialized")
        self._finish_op(None)

    def _on_add_partitions(self, response: AddPartitionsToTxnResponse, now: float) -> None:
        worst = 0
        for topic in response.results_by_topic_v3_and_below:
            for r in topic.results_by_partition:
                tp = TopicPartition(topic.name, r.partition_index)
                if r.partition_error_code == 0:
                    # Added even if an abort dropped it from pending meanwhile:
                    # the coordinator now has the transaction, EndTxn must follow.
                    self.pending.discard(tp)
                    self.added.add(tp)
                    self._started = True
                elif worst in (0, _OPERATION_NOT_ATTEMPTED):
                    worst = r.partition_error_code
        if response.error_code:
            worst = response.error_code
        if worst:
            self._on_error(worst, now, "AddPartitionsToTxn", abortable=True)
        else:
            self._failures = 0

    def _on_add_offsets(self, response: AddOffsetsToTxnResponse, now: float) -> None:
        if response.error_code:
            self._on_error(response.error_code, now, "AddOffsetsToTxn", abortable=True)
            return
        self._failures = 0
        self._started = True
        if self._offsets:
            self._offsets[0].added = True

    def _on_txn_offset_commit(self, response: TxnOffsetCommitResponse, now: float) -> None:
        code = 0
        for topic in response.topics:
            for p in topic.partitions:
                if p.error_code and not code:
                    code = p.error_code
        if code in _MOVED and self._offsets:
            self._group_coordinators.pop(self._offsets[0].group_id, None)
            self._later(now)
            return
        if code:
            self._on_error(code, now, "TxnOffsetCommit", abortable=True)
            return
        self._failures = 0
        if self._offsets:
            op = self._offsets.popleft()
            self._report(op.token, "send_offsets", None)

    def _on_end(self, response: EndTxnResponse, now: float) -> None:
        if response.error_code:
            self._on_error(response.error_code, now, "EndTxn", abortable=False)
            return
        self._failures = 0
        self._ended()

    def _ended(self) -> None:
        self.added.clear()
        self._started = False
        self.ended_by_coordinator = False
        if self.state is _S.ABORTING and self.bump_after_abort:
            self._move("bump")  # the abort's outcome comes once the new epoch is in
            return
        self._move("ended")
        self._finish_op(None)

    def _on_error(self, code: int, now: float, what: str, *, abortable: bool) -> None:
        if code in _MOVED:
            self._moved(now)
        elif code in _RETRY:
            self._later(now)
        elif code in FATAL or not abortable:
            self._fatal(exception_for_code(code, what))
        else:
            self._fail_abortable(exception_for_code(code, what))

    def _moved(self, now: float) -> None:
        self.coordinator = None
        self._group_coordinators.clear()
        self._later(now)

    def _later(self, now: float) -> None:
        self._retry_at = now + self.core._backoff(self._failures)
        self._failures += 1

    # ------------------------------------------------------------ outcomes

    def _fail_abortable(self, error: KafkaSansioError) -> None:
        if self.state not in (_S.IN_TRANSACTION, _S.COMMITTING):
            return
        committing = self.state is _S.COMMITTING
        self.error = error
        self._move("failed")
        # As the Java producer does: what was not sent yet fails now, not at the abort.
        aborted = TransactionAbortedError(f"the transaction failed: {error}")
        aborted.__cause__ = error
        self.core._abort_unsent(aborted)
        for op in self._offsets:
            self._report(op.token, "send_offsets", error)
        self._offsets.clear()
        if committing:
            self._finish_op(error)

    def _fatal(self, error: KafkaSansioError) -> None:
        if self.state is _S.FATAL:
            return
        self.state = _S.FATAL
        self.error = error
        for op in self._offsets:
            self._report(op.token, "send_offsets", error)
        self._offsets.clear()
        self._finish_op(error)
        self.core._fail_fatally(error)

    def _refuse(self, what: str) -> None:
        if self.state in (_S.ABORTABLE_ERROR, _S.FATAL) and self.error is not None:
            raise self.error
        raise LocalProtocolError(f"{what} is not possible now (transaction {self.state.value})")

    def _move(self, trigger: str) -> None:
        try:
            self.state = _TRANSITIONS[(self.state, trigger)]
        except KeyError:
            raise LocalProtocolError(
                f"no transaction move {trigger!r} from {self.state.value}"
            ) from None

    def _token(self) -> int:
        token = self._next_token
        self._next_token += 1
        return token

    def _start(self, name: str) -> int:
        self._op, self._op_name = self._token(), name
        return self._op

    def _finish_op(self, error: KafkaSansioError | None) -> None:
        if self._op:
            self._report(self._op, self._op_name, error)
            self._op, self._op_name = 0, ""

    def _report(self, token: int, operation: str, error: KafkaSansioError | None) -> None:
        self.core._events.append(TransactionResult(token, operation, error))
