"""The model broker's admin APIs: CreatePartitions and DescribeCluster.

Each handler is called as ``handler(cluster, ctx, request, version, now)``
exactly like the handlers in :mod:`._model` and returns the response message
(or None for no answer).  Injected errors (``cluster.inject_error``) apply per
topic for CreatePartitions and to the whole answer for DescribeCluster.
Neither keeps state of its own beyond the cluster's topics, so nothing lives
in ``cluster.extensions`` yet.

Behaviour follows Kafka 4.x's controller: CreatePartitions refuses an
unknown topic (UNKNOWN_TOPIC_OR_PARTITION), a count that does not grow the
topic (INVALID_PARTITIONS), assignments of the wrong length or naming unknown
brokers (INVALID_REPLICA_ASSIGNMENT) and a topic named twice
(INVALID_REQUEST); new partitions get the topic's replication factor, spread
round robin over the running brokers.  DescribeCluster lists the running
brokers and the controller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._messages.create_partitions import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    CreatePartitionsTopicResult,
)
from .._messages.describe_cluster import (
    DescribeClusterBroker,
    DescribeClusterRequest,
    DescribeClusterResponse,
)
from .._wire import Message
from ._model_log import PartitionLog

if TYPE_CHECKING:
    from ._model import ModelCluster

__all__ = ["HANDLERS", "VERSIONS"]

CREATE_PARTITIONS = 37
DESCRIBE_CLUSTER = 60

_UNKNOWN_TOPIC_OR_PARTITION = 3
_INVALID_PARTITIONS = 37
_INVALID_REPLICA_ASSIGNMENT = 39
_INVALID_REQUEST = 42
#: A bound on partitions one request may add (as the model bounds CreateTopics).
_MAX_NEW_PARTITIONS = 10_000


def _create_partitions(
    cluster: ModelCluster, ctx: Any, request: CreatePartitionsRequest, version: int, now: float
) -> Message:
    from ._model import PartitionState

    names = [t.name for t in request.topics]
    results = []
    answered: set[str] = set()
    for t in request.topics:
        if t.name in answered:
            continue
        answered.add(t.name)
        res = CreatePartitionsTopicResult(name=t.name, error_message=None)
        results.append(res)
        code = ctx.forced(t.name)
        message: str | None = None
        plan: list[list[int]] = []
        if not code and names.count(t.name) > 1:
            code, message = _INVALID_REQUEST, f"Duplicate topic name: {t.name}"
        if not code:
            code, message, plan = _plan(cluster, t)
        if code:
            res.error_code, res.error_message = code, message
            continue
        if request.validate_only:
            continue
        topic = cluster.topics[t.name]
        for replicas in plan:
            alive = [r for r in replicas if cluster.brokers[r].alive]
            index = len(topic.partitions)
            topic.partitions.append(
                PartitionState(
                    t.name,
                    index,
                    alive[0] if alive else -1,
                    list(replicas),
                    alive,
                    0,
                    PartitionLog(0),
                )
            )
    cluster._wake(now)
    return CreatePartitionsResponse(results=results)


def _plan(cluster: ModelCluster, t: Any) -> tuple[int, str | None, list[list[int]]]:
    """Kafka's checks for one topic: (error, message, replicas of each new partition)."""
    topic = cluster.topics.get(t.name)
    if topic is None:
        return _UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{t.name}' does not exist.", []
    current = len(topic.partitions)
    if t.count < current:
        message = (
            f"The topic {t.name} currently has {current} partition(s); "
            f"{t.count} would not be an increase."
        )
        return _INVALID_PARTITIONS, message, []
    if t.count == current:
        return _INVALID_PARTITIONS, f"Topic already has {current} partition(s).", []
    added = t.count - current
    if added > _MAX_NEW_PARTITIONS:
        return _INVALID_PARTITIONS, f"The model adds at most {_MAX_NEW_PARTITIONS}.", []
    if t.assignments is not None:
        plan = [list(a.broker_ids) for a in t.assignments]
        if len(plan) != added:
            message = f"Attempted to add {added} partition(s), but only {len(plan)} assignment(s)."
            return _INVALID_REPLICA_ASSIGNMENT, message, []
        valid = all(
            r and len(set(r)) == len(r) and all(b in cluster.brokers for b in r) for r in plan
        )
        if not valid:
            return _INVALID_REPLICA_ASSIGNMENT, "Invalid replica assignment.", []
        return 0, None, plan
    alive = [n for n, b in sorted(cluster.brokers.items()) if b.alive]
    rf = len(topic.partitions[0].replicas) if topic.partitions else 1
    if rf > len(alive):
        message = f"Unable to replicate the partition {rf} time(s): not enough brokers."
        return 38, message, []
    plan = [[alive[(current + i + j) % len(alive)] for j in range(rf)] for i in range(added)]
    return 0, None, plan


def _describe_cluster(
    cluster: ModelCluster, ctx: Any, request: DescribeClusterRequest, version: int, now: float
) -> Message:
    code = ctx.forced()
    if code:
        return DescribeClusterResponse(error_code=code, cluster_id="", brokers=[])
    return DescribeClusterResponse(
        cluster_id=cluster.cluster_id,
        controller_id=cluster.controller_id,
        brokers=[
            DescribeClusterBroker(broker_id=b.node_id, host=b.host, port=b.port, rack=b.rack)
            for b in cluster.brokers.values()
            if b.alive
        ],
    )


#: api key -> handler, merged into the model's dispatch table.
HANDLERS: dict[int, Any] = {
    CREATE_PARTITIONS: _create_partitions,
    DESCRIBE_CLUSTER: _describe_cluster,
}
#: api key -> (lowest, highest) version advertised by ApiVersions (Kafka 4.0's, capped at
#: the codec's stable maximum).
VERSIONS: dict[int, tuple[int, int]] = {
    CREATE_PARTITIONS: (0, 3),
    DESCRIBE_CLUSTER: (0, 1),
}
