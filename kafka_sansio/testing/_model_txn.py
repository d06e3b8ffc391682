"""The model broker's transaction coordinator (AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit).

Each handler is called as ``handler(cluster, ctx, request, version, now)``
exactly like the handlers in :mod:`._model` and returns the response message.
State that belongs to this part of the broker lives in ``cluster.extensions``
under this module's name.

What Kafka 4.x's TransactionCoordinator does for clients of transaction
protocol version 1 (partitions added explicitly, EndTxn up to v4, Produce up
to v11), as far as a client can tell:

- a transactional id keeps one producer id; every InitProducerId for it
  bumps the epoch, which fences the older producer (its requests get
  PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH for the versions that predate
  that code, and its Produce gets INVALID_PRODUCER_EPOCH).  An InitProducerId
  while a transaction is ongoing aborts it with a bumped epoch and answers
  CONCURRENT_TRANSACTIONS; the retry gets the next epoch.
- the transaction goes Empty -> Ongoing (first AddPartitionsToTxn or
  AddOffsetsToTxn) -> CompleteCommit / CompleteAbort (EndTxn).  Markers are
  written at once through :meth:`ModelCluster.commit_transaction` /
  :meth:`ModelCluster.abort_transaction`, so the model never answers
  CONCURRENT_TRANSACTIONS to EndTxn; an EndTxn repeating the outcome of the
  completed transaction succeeds, the opposite one gets INVALID_TXN_STATE.
- a transactional Produce naming a transactional id is verified as Kafka
  verifies it (KIP-890 part 1): the partition must be in the ongoing
  transaction (:func:`verify_produce`).
- TxnOffsetCommit (answered by the group coordinator) holds offsets pending
  on the group until EndTxn: committed, they become the group's offsets;
  aborted, they are dropped.  OffsetFetch with require_stable answers
  UNSTABLE_OFFSET_COMMIT for a partition with pending offsets.

Transaction timeouts are checked at InitProducerId but never expire a
transaction by themselves: :func:`time_out` does what Kafka's coordinator
does to one past its timeout.  The coordinator of a transactional id is a
broker chosen from the id, like a group's.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._messages.add_offsets_to_txn import AddOffsetsToTxnRequest, AddOffsetsToTxnResponse
from .._messages.add_partitions_to_txn import (
    AddPartitionsToTxnPartitionResult,
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
    AddPartitionsToTxnTopicResult,
)
from .._messages.end_txn import EndTxnRequest, EndTxnResponse
from .._messages.init_producer_id import InitProducerIdRequest, InitProducerIdResponse
from .._messages.txn_offset_commit import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
    TxnOffsetCommitResponsePartition,
    TxnOffsetCommitResponseTopic,
)
from .._wire import Message
from ..records import RecordBatch
from . import _model_group
from ._model_group import (
    COORDINATOR_NOT_AVAILABLE,
    ILLEGAL_GENERATION,
    NONE,
    NOT_COORDINATOR,
    OFFSET_METADATA_TOO_LARGE,
    UNKNOWN_TOPIC_OR_PARTITION,
)
from ._model_producer import producer_ids

if TYPE_CHECKING:
    from ._model import ModelCluster

__all__ = [
    "HANDLERS",
    "VERSIONS",
    "ModelTransaction",
    "coordinator_of",
    "init_transactional",
    "transaction",
    "verify_produce",
]

ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN, TXN_OFFSET_COMMIT = 24, 25, 26, 28

INVALID_REQUEST = 42
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
INVALID_TRANSACTION_TIMEOUT = 50
CONCURRENT_TRANSACTIONS = 51
OPERATION_NOT_ATTEMPTED = 55
PRODUCER_FENCED = 90
TRANSACTION_ABORTABLE = 120

EMPTY = "Empty"
ONGOING = "Ongoing"
COMPLETE_COMMIT = "CompleteCommit"
COMPLETE_ABORT = "CompleteAbort"

_KEY = __name__.rsplit(".", 1)[-1]
#: An epoch at or above this is exhausted: the next InitProducerId moves to a new id.
_EXHAUSTED_EPOCH = 32766
_NOT_ADDED = "Partition was not added to the transaction"


@dataclass(slots=True)
class ModelTransaction:
    """The coordinator's record of one transactional id."""

    transactional_id: str
    producer_id: int
    producer_epoch: int = -1
    #: The epoch before the last bump by a producer that named its epoch (KIP-360 retries).
    last_epoch: int = -1
    previous_producer_id: int = -1
    timeout_ms: int = 60_000
    state: str = EMPTY
    #: Partitions added to the ongoing transaction, in order.
    partitions: dict[tuple[str, int], None] = field(default_factory=dict)
    #: Groups whose offsets the ongoing transaction commits (AddOffsetsToTxn).
    groups: dict[str, None] = field(default_factory=dict)


@dataclass(slots=True)
class _State:
    transactions: dict[str, ModelTransaction] = field(default_factory=dict)
    #: transaction.max.timeout.ms
    max_timeout_ms: int = 900_000


def _state(cluster: ModelCluster) -> _State:
    return cluster.extension(_KEY, _State)


# ------------------------------------------------------------------ public helpers


def transaction(cluster: ModelCluster, transactional_id: str) -> ModelTransaction | None:
    """The coordinator's record of *transactional_id* (None if never initialised)."""
    return _state(cluster).transactions.get(transactional_id)


def time_out(cluster: ModelCluster, transactional_id: str, now: float) -> None:
    """Abort the ongoing transaction of *transactional_id* as if it ran past its timeout.

    As Kafka's coordinator does: the epoch is bumped and the abort markers
    carry the new one, so the producer's next Produce gets
    INVALID_PRODUCER_EPOCH; the old epoch is remembered, so InitProducerId
    naming it is answered with the new epoch (KIP-588), unlike a producer
    fenced by another InitProducerId.
    """
    txn = _state(cluster).transactions.get(transactional_id)
    if txn is None or txn.state != ONGOING:
        raise ValueError(f"no ongoing transaction for {transactional_id!r}")
    txn.producer_epoch, txn.last_epoch = txn.producer_epoch + 1, txn.producer_epoch
    _complete(cluster, txn, False, now)


def set_max_timeout(cluster: ModelCluster, max_timeout_ms: int) -> None:
    """transaction.max.timeout.ms of the model (900000 by default, as Kafka's)."""
    _state(cluster).max_timeout_ms = max_timeout_ms


def coordinator_of(cluster: ModelCluster, transactional_id: str) -> int:
    """The broker coordinating *transactional_id* (-1 if none is running)."""
    nodes = sorted(cluster.brokers)
    start = zlib.crc32(transactional_id.encode()) % len(nodes)
    for i in range(len(nodes)):
        node = nodes[(start + i) % len(nodes)]
        if cluster.brokers[node].alive:
            return node
    return -1


def verify_produce(
    cluster: ModelCluster,
    transactional_id: str,
    batch: RecordBatch,
    topic: str,
    partition: int,
    version: int,
) -> tuple[int, str | None]:
    """Kafka's check of a transactional batch against its coordinator: (error, message).

    The partition must belong to the ongoing transaction of the producer the
    transactional id maps to.  A stale epoch answers INVALID_PRODUCER_EPOCH;
    a partition not added answers TRANSACTION_ABORTABLE from Produce v11 on
    and INVALID_TXN_STATE before.  Changes nothing.
    """
    txn = _state(cluster).transactions.get(transactional_id)
    if txn is None or txn.producer_id != batch.producer_id:
        return INVALID_PRODUCER_ID_MAPPING, None
    if txn.producer_epoch != batch.producer_epoch:
        return INVALID_PRODUCER_EPOCH, None
    if txn.state != ONGOING or (topic, partition) not in txn.partitions:
        if version >= 11:
            return TRANSACTION_ABORTABLE, None
        return INVALID_TXN_STATE, _NOT_ADDED if version >= 8 else None
    return NONE, None


# ------------------------------------------------------------------ state changes


def _fenced(version: int, first_with_fenced: int) -> int:
    """PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH for versions older than *first_with_fenced*."""
    return PRODUCER_FENCED if version >= first_with_fenced else INVALID_PRODUCER_EPOCH


def _check(
    state: _State, transactional_id: str, producer_id: int, producer_epoch: int
) -> tuple[int, ModelTransaction | None]:
    """The coordinator's identity checks (PRODUCER_FENCED before any version mapping)."""
    txn = state.transactions.get(transactional_id)
    if txn is None or txn.producer_id != producer_id:
        return INVALID_PRODUCER_ID_MAPPING, None
    if txn.producer_epoch != producer_epoch:
        return PRODUCER_FENCED, None
    return NONE, txn


def _begin(cluster: ModelCluster, txn: ModelTransaction) -> None:
    """Empty/Complete* -> Ongoing: the log-level transaction is opened."""
    if txn.state == ONGOING:
        return
    txn.state = ONGOING
    txn.partitions.clear()
    txn.groups.clear()
    if txn.producer_id not in cluster._txns:
        cluster.begin_transaction(txn.producer_id, txn.producer_epoch)


def _complete(cluster: ModelCluster, txn: ModelTransaction, commit: bool, now: float) -> None:
    """Ongoing -> CompleteCommit/CompleteAbort: markers written, pending offsets applied or dropped."""
    pid = txn.producer_id
    open_txn = cluster._txns.get(pid)
    if open_txn is not None:
        open_txn.producer_epoch = txn.producer_epoch  # a fencing abort uses the bumped epoch
        if commit:
            cluster.commit_transaction(pid, now=now)
        else:
            cluster.abort_transaction(pid, now=now)
    for group_id in txn.groups:
        g = _model_group._state(cluster).groups.get(group_id)
        if g is None:
            continue
        pending = g.txn_offsets.pop(pid, {})
        if commit:
            g.offsets.update(pending)
    txn.state = COMPLETE_COMMIT if commit else COMPLETE_ABORT
    txn.partitions.clear()
    txn.groups.clear()


# ------------------------------------------------------------------ InitProducerId


def init_transactional(
    cluster: ModelCluster, request: InitProducerIdRequest, version: int, now: float
) -> InitProducerIdResponse:
    """InitProducerId with a transactional id (called by :mod:`._model_producer`).

    Allocates a producer id for a new transactional id and bumps the epoch of
    a known one (a new id once the epoch is exhausted); an ongoing
    transaction is aborted with a bumped epoch first (answered
    CONCURRENT_TRANSACTIONS).  Nothing changes when the answer is an error.
    """

    def refuse(code: int) -> InitProducerIdResponse:
        return InitProducerIdResponse(error_code=code, producer_id=-1, producer_epoch=-1)

    state = _state(cluster)
    ids = producer_ids(cluster)
    txn_id = request.transactional_id
    assert txn_id is not None
    if not txn_id:
        return refuse(INVALID_REQUEST)
    if not 0 < request.transaction_timeout_ms <= state.max_timeout_ms:
        return refuse(INVALID_TRANSACTION_TIMEOUT)
    expected: tuple[int, int] | None = None
    if version >= 3 and (request.producer_id >= 0 or request.producer_epoch >= 0):
        expected = (request.producer_id, request.producer_epoch)
    txn = state.transactions.get(txn_id)
    if txn is None:
        txn = ModelTransaction(txn_id, ids.new_id())
    elif expected is not None and not (
        txn.producer_epoch < 0
        or expected[0] == txn.producer_id
        or (expected[0] == txn.previous_producer_id and expected[1] >= _EXHAUSTED_EPOCH)
    ):
        return refuse(_fenced(version, 4))
    state.transactions[txn_id] = txn
    if txn.state == ONGOING:
        # Kafka fences the running producer with a bumped epoch, aborts, and lets the
        # caller retry.
        txn.producer_epoch += 1
        txn.last_epoch = -1
        _complete(cluster, txn, False, now)
        return refuse(CONCURRENT_TRANSACTIONS)
    if txn.producer_epoch >= _EXHAUSTED_EPOCH and (
        expected is None or expected[1] == txn.producer_epoch
    ):
        txn.previous_producer_id = txn.producer_id
        txn.producer_id, txn.producer_epoch, txn.last_epoch = ids.new_id(), 0, -1
    elif expected is None:
        txn.producer_epoch, txn.last_epoch = txn.producer_epoch + 1, -1
    elif txn.producer_epoch < 0 or expected[1] == txn.producer_epoch:
        txn.producer_epoch, txn.last_epoch = txn.producer_epoch + 1, txn.producer_epoch
    elif expected[1] != txn.last_epoch:
        return refuse(_fenced(version, 4))
    # else: a retry of the last bump; the current epoch is answered again
    txn.timeout_ms = request.transaction_timeout_ms
    txn.state = EMPTY
    answer = (txn.producer_id, txn.producer_epoch)
    ids.transactional[txn_id] = answer
    ids.issued.append(answer)
    return InitProducerIdResponse(producer_id=answer[0], producer_epoch=answer[1])


# ------------------------------------------------------------------ handlers


def _coordinator_check(cluster: ModelCluster, ctx: Any, transactional_id: str) -> int:
    forced = ctx.forced()
    if forced:
        return int(forced)
    if not transactional_id:
        return INVALID_REQUEST
    node = coordinator_of(cluster, transactional_id)
    if node < 0:
        return COORDINATOR_NOT_AVAILABLE
    return NOT_COORDINATOR if node != ctx.node else NONE


def _add_partitions_to_txn(
    cluster: ModelCluster, ctx: Any, request: AddPartitionsToTxnRequest, version: int, now: float
) -> Message:
    """Adds the partitions to the ongoing transaction (opening it on the first call).

    Unknown partitions fail the whole request: they answer
    UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED; any
    other error answers every partition.
    """
    wanted: dict[tuple[str, int], None] = {}
    for t in request.v3_and_below_topics:
        for index in t.partitions:
            wanted[(t.name, index)] = None
    errors: dict[tuple[str, int], int] = {}
    missing = {tp for tp in wanted if cluster._lookup(*tp) is None}
    code = ctx.forced()
    if not code and missing:
        # Checked by the broker before the coordinator sees the request.
        for tp in wanted:
            errors[tp] = UNKNOWN_TOPIC_OR_PARTITION if tp in missing else OPERATION_NOT_ATTEMPTED
    else:
        code = code or _coordinator_check(cluster, ctx, request.v3_and_below_transactional_id)
        txn: ModelTransaction | None = None
        if not code:
            code, txn = _check(
                _state(cluster),
                request.v3_and_below_transactional_id,
                request.v3_and_below_producer_id,
                request.v3_and_below_producer_epoch,
            )
            if code == PRODUCER_FENCED:
                code = _fenced(version, 2)
        if txn is not None and wanted:
            _begin(cluster, txn)
            open_txn = cluster._txns[txn.producer_id]
            for tp in wanted:
                txn.partitions.setdefault(tp, None)
                open_txn.partitions.setdefault(tp, None)
        errors = dict.fromkeys(wanted, code)
    by_topic: dict[str, list[AddPartitionsToTxnPartitionResult]] = {}
    for (name, index), pcode in errors.items():
        by_topic.setdefault(name, []).append(
            AddPartitionsToTxnPartitionResult(partition_index=index, partition_error_code=pcode)
        )
    return AddPartitionsToTxnResponse(
        results_by_topic_v3_and_below=[
            AddPartitionsToTxnTopicResult(name=name, results_by_partition=parts)
            for name, parts in by_topic.items()
        ]
    )


def _add_offsets_to_txn(
    cluster: ModelCluster, ctx: Any, request: AddOffsetsToTxnRequest, version: int, now: float
) -> Message:
    """Adds the group's offsets to the ongoing transaction (opening it if needed)."""
    code = _coordinator_check(cluster, ctx, request.transactional_id)
    if not code:
        code, txn = _check(
            _state(cluster), request.transactional_id, request.producer_id, request.producer_epoch
        )
        if txn is not None:
            _begin(cluster, txn)
            txn.groups.setdefault(request.group_id, None)
        elif code == PRODUCER_FENCED:
            code = _fenced(version, 2)
    return AddOffsetsToTxnResponse(error_code=code)


def _end_txn(
    cluster: ModelCluster, ctx: Any, request: EndTxnRequest, version: int, now: float
) -> Message:
    """Commits or aborts the ongoing transaction: markers, then the pending offsets.

    Repeating the outcome of the completed transaction succeeds and changes
    nothing; anything else without an ongoing transaction is INVALID_TXN_STATE.
    """
    code = _coordinator_check(cluster, ctx, request.transactional_id)
    if not code:
        code, txn = _check(
            _state(cluster), request.transactional_id, request.producer_id, request.producer_epoch
        )
        if code == PRODUCER_FENCED:
            code = _fenced(version, 2)
        if txn is not None:
            done = COMPLETE_COMMIT if request.committed else COMPLETE_ABORT
            if txn.state == ONGOING:
                _complete(cluster, txn, request.committed, now)
            elif txn.state != done:
                code = INVALID_TXN_STATE
    return EndTxnResponse(error_code=code)


def _group_member_check(cluster: ModelCluster, request: TxnOffsetCommitRequest, now: float) -> int:
    """The group coordinator's check of a transactional commit's generation and member."""
    g = _model_group._state(cluster).groups.get(request.group_id)
    if g is not None:
        _model_group._advance(cluster, g, now)
    members = g.members if g is not None else {}
    generation = request.generation_id
    member, instance = request.member_id, request.group_instance_id
    if generation < 0 and not members:
        return NONE
    if generation < 0 and not member and instance is None:
        return NONE  # transactional commits skip the empty-group rule of OffsetCommit
    if g is None:
        return ILLEGAL_GENERATION  # as Kafka 4.x answers for a group that does not exist
    code = _model_group._fenced(g, member, instance)
    if not code and generation != g.generation:
        code = ILLEGAL_GENERATION
    return code


def _txn_offset_commit(
    cluster: ModelCluster, ctx: Any, request: TxnOffsetCommitRequest, version: int, now: float
) -> Message:
    """Holds the offsets pending on the group until the transaction ends (group coordinator).

    The producer must have added the group with AddOffsetsToTxn (else
    INVALID_TXN_STATE, TRANSACTION_ABORTABLE from v4); a stale epoch answers
    INVALID_PRODUCER_EPOCH.  Unknown partitions answer UNKNOWN_TOPIC_OR_PARTITION.
    """
    code = _model_group._group_check(cluster, ctx, request.group_id)
    if not code:
        txn = _state(cluster).transactions.get(request.transactional_id)
        if txn is None or txn.producer_id != request.producer_id:
            code = INVALID_PRODUCER_ID_MAPPING
        elif txn.producer_epoch != request.producer_epoch:
            code = INVALID_PRODUCER_EPOCH
        elif txn.state != ONGOING or request.group_id not in txn.groups:
            code = TRANSACTION_ABORTABLE if version >= 4 else INVALID_TXN_STATE
    if not code:
        code = _group_member_check(cluster, request, now)
    groups = _model_group._state(cluster).groups
    topics = []
    for t in request.topics:
        parts = []
        for p in t.partitions:
            pcode = code
            if cluster._lookup(t.name, p.partition_index) is None:
                pcode = UNKNOWN_TOPIC_OR_PARTITION
            elif not pcode and p.committed_metadata and len(p.committed_metadata) > 4096:
                pcode = OFFSET_METADATA_TOO_LARGE
            if not pcode:
                g = groups.get(request.group_id)
                if g is None:
                    g = groups[request.group_id] = _model_group.ModelGroup(request.group_id)
                epoch = p.committed_leader_epoch if version >= 2 else -1
                g.txn_offsets.setdefault(request.producer_id, {})[(t.name, p.partition_index)] = (
                    p.committed_offset,
                    epoch,
                    p.committed_metadata,
                )
            parts.append(
                TxnOffsetCommitResponsePartition(
                    partition_index=p.partition_index, error_code=pcode
                )
            )
        topics.append(TxnOffsetCommitResponseTopic(name=t.name, partitions=parts))
    return TxnOffsetCommitResponse(topics=topics)


#: api key -> handler, merged into the model's dispatch table.
HANDLERS: dict[int, Any] = {
    ADD_PARTITIONS_TO_TXN: _add_partitions_to_txn,
    ADD_OFFSETS_TO_TXN: _add_offsets_to_txn,
    END_TXN: _end_txn,
    TXN_OFFSET_COMMIT: _txn_offset_commit,
}
#: api key -> (lowest, highest) version advertised by ApiVersions: the client
#: form of AddPartitionsToTxn and transaction version 1 (EndTxn v5 and
#: TxnOffsetCommit v5 belong to version 2).
VERSIONS: dict[int, tuple[int, int]] = {
    ADD_PARTITIONS_TO_TXN: (0, 3),
    ADD_OFFSETS_TO_TXN: (0, 4),
    END_TXN: (0, 4),
    TXN_OFFSET_COMMIT: (0, 4),
}
