"""The model broker's producer APIs: InitProducerId.

Each handler is called as ``handler(cluster, ctx, request, version, now)``
exactly like the handlers in :mod:`._model` and returns the response message
(or None for no answer).  State that belongs to this part of the broker lives
in ``cluster.extensions`` under this module's name.

InitProducerId behaves as Kafka 4.x's transaction coordinator does for the
parts a producer can tell apart: without a transactional id every request
gets a fresh producer id at epoch 0 (an idempotent producer bumps its epoch
itself); with one, the transaction coordinator of :mod:`._model_txn` keeps
the id and bumps the epoch (see :func:`._model_txn.init_transactional`).  An
injected error (``inject_error`` with api key 22) answers the whole request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._messages.init_producer_id import InitProducerIdRequest, InitProducerIdResponse
from .._wire import Message

if TYPE_CHECKING:
    from ._model import ModelCluster

__all__ = ["HANDLERS", "VERSIONS", "ProducerIds"]

INIT_PRODUCER_ID = 22
_FIRST_PRODUCER_ID = 1000


@dataclass(slots=True)
class ProducerIds:
    """Producer ids handed out so far (``cluster.extensions[__name__]``)."""

    next_id: int = _FIRST_PRODUCER_ID
    #: transactional id -> (producer id, epoch)
    transactional: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: every (producer id, epoch) answered, in order
    issued: list[tuple[int, int]] = field(default_factory=list)

    def new_id(self) -> int:
        pid = self.next_id
        self.next_id += 1
        return pid


def producer_ids(cluster: ModelCluster) -> ProducerIds:
    return cluster.extension(__name__, ProducerIds)


def _init_producer_id(
    cluster: ModelCluster, ctx: Any, request: InitProducerIdRequest, version: int, now: float
) -> Message:
    code = ctx.forced()
    if code:
        return InitProducerIdResponse(error_code=code, producer_id=-1, producer_epoch=-1)
    if request.transactional_id is not None:
        from ._model_txn import init_transactional

        return init_transactional(cluster, request, version, now)
    state = producer_ids(cluster)
    answer = (state.new_id(), 0)
    state.issued.append(answer)
    return InitProducerIdResponse(producer_id=answer[0], producer_epoch=answer[1])


#: api key -> handler, merged into the model's dispatch table.
HANDLERS: dict[int, Any] = {INIT_PRODUCER_ID: _init_producer_id}
#: api key -> (lowest, highest) version advertised by ApiVersions (Kafka 4.0's range).
VERSIONS: dict[int, tuple[int, int]] = {INIT_PRODUCER_ID: (0, 5)}
