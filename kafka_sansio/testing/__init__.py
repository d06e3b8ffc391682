"""Test helpers for code built on kafka_sansio.

- :class:`ModelCluster`: an in-memory Kafka cluster that decodes real requests
  and encodes real answers (sans-IO, fake clock), with fault injection.
- :class:`Pump`: drives any core against a :class:`ModelCluster`, moving a fake
  clock from deadline to deadline.
- ``kafka_sansio.testing.strategies``: hypothesis strategies for every
  generated message at every version.  It is the only part of the package
  that imports hypothesis; importing ``kafka_sansio.testing`` alone does not.
"""

from __future__ import annotations

from ._model import (
    ADVERTISED_VERSIONS,
    ModelCluster,
    ModelConnection,
    ModelConnectionRefused,
    ModelError,
)
from ._pump import DrivenCore, Pump, PumpStalled

__all__ = [
    "ADVERTISED_VERSIONS",
    "DrivenCore",
    "ModelCluster",
    "ModelConnection",
    "ModelConnectionRefused",
    "ModelError",
    "Pump",
    "PumpStalled",
]
