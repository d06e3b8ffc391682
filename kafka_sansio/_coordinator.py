"""FindCoordinator in both of its shapes, for groups and transactions.

Before version 4 a request names one key and the answer is top level; from
version 4 both carry a list (``coordinator_keys``, ``coordinators``).  The
group membership and the transaction state machine ask one key at a time.
"""

from __future__ import annotations

from ._messages.find_coordinator import FindCoordinatorRequest, FindCoordinatorResponse

__all__ = ["GROUP", "TRANSACTION", "coordinator_answer", "find_coordinator_request"]

#: FindCoordinator key types.
GROUP, TRANSACTION = 0, 1


def find_coordinator_request(key: str, key_type: int, version: int) -> FindCoordinatorRequest:
    """The request for ``key`` at ``version`` (the negotiated one)."""
    if version >= 4:
        return FindCoordinatorRequest(key_type=key_type, coordinator_keys=[key])
    return FindCoordinatorRequest(key=key, key_type=key_type)


def coordinator_answer(response: FindCoordinatorResponse) -> tuple[int, int]:
    """``(error code, node id)`` of the answer for the one key asked."""
    if response.coordinators:
        c = response.coordinators[0]
        return c.error_code, c.node_id
    return response.error_code, response.node_id
