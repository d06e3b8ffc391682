"""The model broker's admin APIs (CreatePartitions, DescribeCluster, DescribeConfigs, ...).

Each handler is called as ``handler(cluster, ctx, request, version, now)``
exactly like the handlers in :mod:`._model` and returns the response message
(or None for no answer).  State that belongs to this part of the broker lives
in ``cluster.extensions`` under this module's name.
"""

from __future__ import annotations

from typing import Any

#: api key -> handler, merged into the model's dispatch table.
HANDLERS: dict[int, Any] = {}
#: api key -> (lowest, highest) version advertised by ApiVersions.
VERSIONS: dict[int, tuple[int, int]] = {}
