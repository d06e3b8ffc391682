"""Pump bytes between a client core and a :class:`ModelCluster` under a fake clock.

Any core driven by commands works (``ClientCore``, ``ConsumerCore``, later
producers and admins): :class:`Pump` executes its commands against the
model, delivers the model's answers, and moves a fake clock from deadline to
deadline.  Nothing here sleeps or reads a clock, so a test is deterministic
and runs as fast as the code under test::

    cluster = ModelCluster(brokers=3)
    cluster.create_topic("t", partitions=2)
    core = ConsumerCore(config, random=lambda: 0.5)
    pump = Pump(core, cluster)
    core.assign([TopicPartition("t", 0)], pump.now)
    pump.until(lambda: core.position(TopicPartition("t", 0)) is not None)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._client import CloseConnection, Command, DrivenCore, OpenConnection, SendData
from .._errors import KafkaSansioError
from ._model import ModelCluster, ModelConnection, ModelConnectionRefused

__all__ = ["DrivenCore", "Pump", "PumpStalled"]


class PumpStalled(KafkaSansioError):
    """The condition did not hold within the time limit, or the exchange never settled."""


class Pump:
    """Connects ``core`` to ``cluster``; ``now`` is the fake clock (seconds).

    ``max_rounds`` bounds every settle loop, so a core and model that keep
    talking forever without the clock moving raise :class:`PumpStalled`
    instead of hanging the test.
    """

    def __init__(
        self, core: DrivenCore, cluster: ModelCluster, now: float = 0.0, max_rounds: int = 10_000
    ) -> None:
        self.core = core
        self.cluster = cluster
        self.now = now
        self.max_rounds = max_rounds
        self.conns: dict[int, ModelConnection] = {}
        #: Connections opened, by node id as the core names them.
        self.opened: list[int] = []

    # ------------------------------------------------------------ moving bytes

    def _broker_for(self, host: str, port: int) -> int | None:
        for node_id, info in self.cluster.brokers.items():
            if (info.host, info.port) == (host, port):
                return node_id
        return None

    def _execute(self, commands: list[Command]) -> bool:
        for cmd in commands:
            if isinstance(cmd, OpenConnection):
                broker = self._broker_for(cmd.host, cmd.port)
                try:
                    if broker is None:
                        raise ModelConnectionRefused(f"nothing listens on {cmd.host}:{cmd.port}")
                    conn = self.cluster.accept(broker, self.now)
                except ModelConnectionRefused:
                    self.core.connection_lost(cmd.node_id, self.now)
                    continue
                self.conns[cmd.node_id] = conn
                self.opened.append(cmd.node_id)
                self.core.connection_made(cmd.node_id, self.now)
            elif isinstance(cmd, SendData):
                server = self.conns.get(cmd.node_id)
                if server is not None:
                    server.receive(cmd.data, self.now)
            elif isinstance(cmd, CloseConnection):
                server = self.conns.pop(cmd.node_id, None)
                if server is not None:
                    server.close()
        return bool(commands)

    def _deliver(self) -> bool:
        progressed = False
        for node_id, server in list(self.conns.items()):
            data = server.data_to_send()
            if data:
                progressed = True
                self.core.data_received(node_id, data, self.now)
            if server.closed and self.conns.get(node_id) is server:
                progressed = True
                del self.conns[node_id]
                self.core.connection_lost(node_id, self.now)
        return progressed

    def settle(self) -> bool:
        """Exchange bytes until neither side has anything to say at the current time.

        Returns whether anything was exchanged.
        """
        for rounds in range(self.max_rounds):
            sent = self._execute(self.core.commands())
            got = self._deliver()
            if not sent and not got:
                return rounds > 0
        raise PumpStalled(f"no quiet point after {self.max_rounds} rounds at t={self.now}")

    # ------------------------------------------------------------ moving time

    def next_deadline(self) -> float | None:
        """The earliest deadline of the core or of any server connection."""
        deadlines = [t for t in [self.core.get_timer()] if t is not None]
        deadlines += [t for s in self.conns.values() if (t := s.get_timer()) is not None]
        return min(deadlines) if deadlines else None

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of fake time pass, firing every deadline on the way."""
        end = self.now + seconds
        self.settle()
        for _ in range(self.max_rounds):
            deadline = self.next_deadline()
            if deadline is None or deadline > end:
                break
            self._fire(max(deadline, self.now))
        else:
            raise PumpStalled(f"deadlines keep firing without time passing at t={self.now}")
        self.now = max(self.now, end)
        self.settle()

    def _fire(self, at: float) -> None:
        self.now = at
        for server in list(self.conns.values()):
            timer = server.get_timer()
            if timer is not None and timer <= at:
                server.handle_timer(at)
        timer = self.core.get_timer()
        if timer is not None and timer <= at:
            self.core.handle_timer(at)
        self.settle()

    def until(self, condition: Callable[[], Any], timeout: float = 60.0) -> None:
        """Run (firing deadlines) until ``condition()`` is true, within ``timeout`` fake seconds."""
        end = self.now + timeout
        self.settle()
        for _ in range(self.max_rounds):
            if condition():
                return
            if self.settle():
                continue  # checking the condition set something in motion
            deadline = self.next_deadline()
            if deadline is None or deadline > end:
                break
            self._fire(max(deadline, self.now))
        if condition():
            return
        raise PumpStalled(f"condition still false at t={self.now} (limit {end})")
