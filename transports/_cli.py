"""The ``kafka-sansio`` command line.

Machine-readable output goes to stdout (JSON, one object a line, or plain
topic names for ``topics list``), progress and errors to stderr.  Exit
codes: 0 success, 1 the operation failed (unreachable cluster, unknown
topic, a broker refused), 2 bad usage.  Every command that talks to a
cluster takes ``--bootstrap HOST:PORT[,...]``, which defaults to the
``KAFKA_SANSIO_BOOTSTRAP`` environment variable.  ``docs/cli.md`` has the
whole reference.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import datetime
import json
import operator
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, NoReturn, TextIO

from kafka_sansio import KafkaSansioError, TopicPartition
from kafka_sansio._admin_types import EARLIEST, LATEST, NewTopic, TopicDescription
from kafka_sansio._connection import RequestTimedOutError
from kafka_sansio.errors import UnknownTopicOrPartitionError

ENV_BOOTSTRAP = "KAFKA_SANSIO_BOOTSTRAP"
#: Seconds between progress lines on stderr during long runs.
PROGRESS_EVERY = 5.0


class CliError(Exception):
    """The operation failed: the message goes to stderr and the exit code is 1."""


# ------------------------------------------------------------------ output


def emit(obj: Any, out: TextIO | None = None) -> None:
    """One JSON object on its own line of stdout, flushed (scripts read it at once)."""
    stream = out or sys.stdout
    stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
    stream.flush()


def note(text: str) -> None:
    print(f"kafka-sansio: {text}", file=sys.stderr, flush=True)


def _bytes_fields(name: str, data: bytes | None, into: dict[str, Any]) -> None:
    """``name``: the UTF-8 text, or null with ``name_b64`` when the bytes are not UTF-8."""
    if data is None:
        into[name] = None
        return
    try:
        into[name] = data.decode("utf-8")
    except UnicodeDecodeError:
        into[name] = None
        into[f"{name}_b64"] = base64.b64encode(data).decode("ascii")


def _error_text(error: BaseException) -> str:
    name = type(error).__name__
    text = str(error)
    return f"{name}: {text}" if text and text != name else name


# ------------------------------------------------------------------ clients


class _Clients:
    """Connection settings shared by the commands, from the command line."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.bootstrap: str = args.bootstrap
        self.timeout: float = args.timeout
        self.options: dict[str, Any] = {"client_id": args.client_id}
        if args.ssl_ca or args.ssl:
            self.options["ssl"] = args.ssl_ca or True
        if args.sasl_mechanism:
            self.options["sasl_mechanism"] = args.sasl_mechanism
            self.options["sasl_username"] = args.sasl_username or os.environ.get(
                "KAFKA_SANSIO_SASL_USERNAME"
            )
            self.options["sasl_password"] = args.sasl_password or os.environ.get(
                "KAFKA_SANSIO_SASL_PASSWORD"
            )

    def client_config(self) -> Any:
        from ._ops import client_config

        return client_config(self.bootstrap, self.options)[0]

    def unreachable(self, what: str) -> CliError:
        return CliError(
            f"{what}: no answer from {self.bootstrap} within {self.timeout:g}s "
            "(is the cluster reachable?)"
        )


class _Admin:
    """The blocking :class:`Admin`, answering per item where the call is about several."""

    def __init__(self, clients: _Clients) -> None:
        from .blocking import Admin

        self.clients = clients
        self.admin = Admin(
            clients.bootstrap, default_api_timeout=clients.timeout, **clients.options
        )

    def run(self, what: str, call: Callable[[Any], Any]) -> Any:
        """``call(admin)``'s value; for calls about several items, ``{item: answer | error}``.

        A call that got no answer at all (every item timed out) means the
        cluster is out of reach: CliError saying so.
        """
        try:
            return call(self.admin)
        except KafkaSansioError as exc:
            result = getattr(exc, "result", None)
            value = getattr(result, "value", None)
            if (
                isinstance(value, dict)
                and value
                and not all(isinstance(v, RequestTimedOutError) for v in value.values())
            ):
                return value
            if isinstance(exc, RequestTimedOutError) or isinstance(value, dict):
                raise self.clients.unreachable(what) from None
            raise

    def describe(self, topics: Sequence[str]) -> dict[str, TopicDescription]:
        """Descriptions of these topics; CliError naming any that does not exist."""
        value = self.run("describe topics", lambda a: a.describe_topics(topics))
        out = {}
        for name, answer in value.items():
            if isinstance(answer, UnknownTopicOrPartitionError):
                raise CliError(f"unknown topic {name!r}")
            if isinstance(answer, KafkaSansioError):
                raise CliError(f"describe {name!r}: {_error_text(answer)}")
            out[name] = answer
        return out

    def partitions(self, topic: str, wanted: Sequence[int] | None) -> list[TopicPartition]:
        """The topic's partitions (or the ``wanted`` ones, checked to exist)."""
        desc = self.describe([topic])[topic]
        have = [p.partition for p in desc.partitions]
        if not wanted:
            return [TopicPartition(topic, p) for p in have]
        missing = sorted(set(wanted) - set(have))
        if missing:
            raise CliError(f"topic {topic!r} has no partition {missing[0]} (it has {len(have)})")
        return [TopicPartition(topic, p) for p in wanted]

    def close(self) -> None:
        self.admin.close()


# ------------------------------------------------------------------ topics


def cmd_topics(args: argparse.Namespace, clients: _Clients) -> int:
    admin = _Admin(clients)
    try:
        return _TOPICS[args.action](args, admin)
    finally:
        admin.close()


def _topics_list(args: argparse.Namespace, admin: _Admin) -> int:
    listings = admin.run("list topics", lambda a: a.list_topics(include_internal=args.internal))
    for listing in listings.values():
        if args.json:
            emit(
                {
                    "topic": listing.name,
                    "topic_id": str(listing.topic_id) if listing.topic_id else None,
                    "internal": listing.internal,
                }
            )
        else:
            print(listing.name)
    sys.stdout.flush()
    return 0


def _parse_configs(items: Sequence[str]) -> dict[str, str]:
    configs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--config {item!r} is not NAME=VALUE")
        configs[name] = value
    return configs


def _topics_create(args: argparse.Namespace, admin: _Admin) -> int:
    configs = _parse_configs(args.config)
    topics = [NewTopic(n, args.partitions, args.replication_factor, configs) for n in args.topics]
    answers = admin.run(
        "create topics", lambda a: a.create_topics(topics, validate_only=args.validate_only)
    )
    failed = 0
    for name, value in answers.items():
        if isinstance(value, KafkaSansioError):
            if args.if_not_exists and type(value).__name__ == "TopicAlreadyExistsError":
                emit({"topic": name, "created": False, "exists": True})
                continue
            note(f"create {name!r}: {_error_text(value)}")
            failed += 1
            continue
        emit(
            {
                "topic": name,
                "created": not args.validate_only,
                "topic_id": str(value.topic_id) if value.topic_id else None,
                "partitions": value.partitions,
                "replication_factor": value.replication_factor,
            }
        )
    return 1 if failed else 0


def _topics_delete(args: argparse.Namespace, admin: _Admin) -> int:
    answers = admin.run("delete topics", lambda a: a.delete_topics(args.topics))
    failed = 0
    for name, value in (answers or dict.fromkeys(args.topics)).items():
        if isinstance(value, UnknownTopicOrPartitionError):
            if args.if_exists:
                emit({"topic": name, "deleted": False})
                continue
            note(f"delete {name!r}: unknown topic")
            failed += 1
        elif isinstance(value, KafkaSansioError):
            note(f"delete {name!r}: {_error_text(value)}")
            failed += 1
        else:
            emit({"topic": name, "deleted": True})
    return 1 if failed else 0


def _topics_describe(args: argparse.Namespace, admin: _Admin) -> int:
    names = args.topics
    if not names:
        names = list(admin.run("list topics", lambda a: a.list_topics()))
    answers = admin.run("describe topics", lambda a: a.describe_topics(names)) if names else {}
    failed = 0
    for name, value in answers.items():
        if isinstance(value, KafkaSansioError):
            unknown = isinstance(value, UnknownTopicOrPartitionError)
            note(f"describe {name!r}: {'unknown topic' if unknown else _error_text(value)}")
            failed += 1
            continue
        emit(
            {
                "topic": name,
                "topic_id": str(value.topic_id) if value.topic_id else None,
                "internal": value.internal,
                "partitions": [
                    {
                        "partition": p.partition,
                        "leader": p.leader,
                        "leader_epoch": p.leader_epoch,
                        "replicas": list(p.replicas),
                        "isr": list(p.isr),
                        "offline_replicas": list(p.offline_replicas),
                    }
                    for p in value.partitions
                ],
            }
        )
    return 1 if failed else 0


def _topics_alter(args: argparse.Namespace, admin: _Admin) -> int:
    answers = admin.run(
        "add partitions", lambda a: a.create_partitions({args.topic: args.partitions})
    )
    value = (answers or {}).get(args.topic)
    if isinstance(value, KafkaSansioError):
        unknown = isinstance(value, UnknownTopicOrPartitionError)
        raise CliError(
            f"alter {args.topic!r}: {'unknown topic' if unknown else _error_text(value)}"
        )
    emit({"topic": args.topic, "partitions": args.partitions})
    return 0


_TOPICS: dict[str, Callable[[argparse.Namespace, _Admin], int]] = {
    "list": _topics_list,
    "create": _topics_create,
    "delete": _topics_delete,
    "describe": _topics_describe,
    "alter": _topics_alter,
}


# ------------------------------------------------------------------ offsets


def parse_time(text: str) -> int:
    """Milliseconds since the epoch from an integer or an ISO-8601 date-time (UTC if naive)."""
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{text!r} is neither milliseconds nor an ISO-8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp() * 1000)


def cmd_offsets(args: argparse.Namespace, clients: _Clients) -> int:
    spec: int | None = None
    if args.time is not None:
        spec = {"earliest": EARLIEST, "latest": LATEST}.get(args.time.lower())
        if spec is None:
            spec = parse_time(args.time)
    admin = _Admin(clients)
    try:
        tps = admin.partitions(args.topic, args.partition)
        specs = [spec] if spec is not None else [EARLIEST, LATEST]
        answers = []
        for s in specs:
            lookup = operator.methodcaller("list_offsets", dict.fromkeys(tps, s))
            found = admin.run("list offsets", lookup)
            for tp, value in found.items():
                if isinstance(value, KafkaSansioError):
                    raise CliError(f"offsets of {tp}: {_error_text(value)}")
            answers.append(found)
        for tp in tps:
            if spec is None:
                emit(
                    {
                        "topic": tp.topic,
                        "partition": tp.partition,
                        "earliest": answers[0][tp].offset,
                        "latest": answers[1][tp].offset,
                    }
                )
            else:
                found = answers[0][tp]
                emit(
                    {
                        "topic": tp.topic,
                        "partition": tp.partition,
                        "offset": None if found is None else found.offset,
                        "timestamp": None if found is None else found.timestamp,
                    }
                )
    finally:
        admin.close()
    return 0


# ------------------------------------------------------------------ produce


def _record_from_json(line: str, lineno: int) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CliError(f"stdin line {lineno}: not JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise CliError(f"stdin line {lineno}: expected a JSON object")

    def data(name: str) -> bytes | None:
        if obj.get(f"{name}_b64") is not None:
            try:
                return base64.b64decode(obj[f"{name}_b64"], validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise CliError(f"stdin line {lineno}: {name}_b64 is not base64") from None
        value = obj.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False)
        return value.encode("utf-8")

    record: dict[str, Any] = {"value": data("value"), "key": data("key")}
    partition = obj.get("partition")
    if partition is not None and (not isinstance(partition, int) or partition < 0):
        raise CliError(f"stdin line {lineno}: partition must be a non-negative integer")
    record["partition"] = partition
    timestamp = obj.get("timestamp")
    if timestamp is not None and not isinstance(timestamp, int):
        raise CliError(f"stdin line {lineno}: timestamp must be integer milliseconds")
    record["timestamp_ms"] = timestamp
    headers = obj.get("headers") or []
    if isinstance(headers, dict):
        headers = list(headers.items())
    try:
        record["headers"] = [
            (str(k), None if v is None else str(v).encode("utf-8")) for k, v in headers
        ]
    except (TypeError, ValueError):
        raise CliError(
            f"stdin line {lineno}: headers must be an object or [name, value] pairs"
        ) from None
    return record


def _record_from_line(line: str, separator: str | None) -> dict[str, Any]:
    key = None
    if separator is not None:
        head, sep, line = line.partition(separator)
        if sep:
            key = head.encode("utf-8")
        else:
            line = head
    return {"value": line.encode("utf-8"), "key": key}


def _read_lines(stdin: TextIO, lines: queue.Queue[str | None]) -> None:
    """Hand stdin's lines to the producing thread (None at the end), so that
    waiting for input never stops deliveries."""
    try:
        for line in stdin:
            lines.put(line)
    finally:
        lines.put(None)


def cmd_produce(args: argparse.Namespace, clients: _Clients) -> int:
    from .blocking import Producer

    admin = _Admin(clients)
    try:
        partitions = len(admin.partitions(args.topic, None))
    finally:
        admin.close()
    if args.partition is not None and args.partition >= partitions:
        raise CliError(f"topic {args.topic!r} has no partition {args.partition}")
    producer = Producer(
        clients.bootstrap,
        acks=args.acks,
        compression=args.compression,
        linger=args.linger,
        delivery_timeout=max(clients.timeout, 1.0),
        max_block=clients.timeout,
        **clients.options,
    )
    lines: queue.Queue[str | None] = queue.Queue(maxsize=10_000)
    threading.Thread(target=_read_lines, args=(sys.stdin, lines), daemon=True).start()
    sent = delivered = failed = 0
    errors: list[str] = []
    offsets: dict[int, list[int]] = {}

    def on_delivery(meta: Any, error: KafkaSansioError | None) -> None:
        nonlocal delivered, failed
        if error is not None or meta is None:
            failed += 1
            if error is not None and not errors:
                errors.append(_error_text(error))
            return
        delivered += 1
        if meta.offset >= 0:
            span = offsets.setdefault(meta.partition, [meta.offset, meta.offset])
            span[0], span[1] = min(span[0], meta.offset), max(span[1], meta.offset)

    started = last_note = time.monotonic()
    lineno = 0
    try:
        while not (errors and args.stop_on_error):
            try:
                line = lines.get(timeout=0.05)
            except queue.Empty:
                producer.poll(0)  # move data while stdin is quiet
                line = ""
            else:
                if line is None:
                    break
                lineno += 1
                line = line.rstrip("\r\n")
                if line.strip() or (line and not args.json):
                    record = (
                        _record_from_json(line, lineno)
                        if args.json
                        else _record_from_line(line, args.key_separator)
                    )
                    if record.get("partition") is None:
                        record["partition"] = args.partition
                    try:
                        producer.send(args.topic, on_delivery=on_delivery, **record)
                    except KafkaSansioError as exc:
                        raise CliError(f"stdin line {lineno}: {_error_text(exc)}") from None
                    sent += 1
            if time.monotonic() - last_note >= PROGRESS_EVERY:
                last_note = time.monotonic()
                note(f"produce: {sent} read, {delivered} delivered, {failed} failed")
        try:
            producer.flush(clients.timeout + 5.0)
        except KafkaSansioError as exc:
            errors.append(_error_text(exc))
    finally:
        producer.close(5.0)
    missing = sent - delivered
    emit(
        {
            "topic": args.topic,
            "produced": delivered,
            "failed": missing,
            "offsets": {str(p): span for p, span in sorted(offsets.items())},
        }
    )
    if missing or errors:
        raise CliError(
            f"produce: {missing} of {sent} records not delivered"
            + (f": {errors[0]}" if errors else "")
        )
    if time.monotonic() - started >= PROGRESS_EVERY:
        note(f"produce: {delivered} records delivered")
    return 0


# ------------------------------------------------------------------ consume


def cmd_consume(args: argparse.Namespace, clients: _Clients) -> int:
    from kafka_sansio import FetchError, OffsetReset, ResetReason

    from .blocking import Consumer

    admin = _Admin(clients)
    try:
        tps = admin.partitions(args.topic, args.partition)
    finally:
        admin.close()
    fatal: list[BaseException] = []

    def on_event(event: Any) -> None:
        if isinstance(event, OffsetReset) and event.reason is not ResetReason.NO_POSITION:
            note(
                f"consume: {event.partition} moved from {event.from_offset} to "
                f"{event.to_offset} ({event.reason.value})"
            )
        elif isinstance(event, FetchError) or hasattr(event, "error"):
            fatal.append(event.error)

    consumer = Consumer(
        clients.bootstrap,
        on_event=on_event,
        auto_offset_reset="earliest",
        isolation_level=args.isolation,
        **clients.options,
    )
    interrupted = False
    emitted = 0
    try:
        consumer.assign(tps)
        start = args.start
        if args.from_time is not None:
            found = consumer.offsets_for_times(
                dict.fromkeys(tps, parse_time(args.from_time)), clients.timeout
            )
            for tp in tps:
                if found.get(tp) is None:
                    consumer.seek_to_end(tp)
                else:
                    consumer.seek(tp, found[tp].offset)  # type: ignore[union-attr]
        elif start == "beginning":
            consumer.seek_to_beginning(*tps)
        elif start == "end":
            consumer.seek_to_end(*tps)
        else:
            for tp in tps:
                consumer.seek(tp, int(start))
        ends = None if args.follow else consumer.end_offsets(tps, clients.timeout)
        started = last_note = last_progress = time.monotonic()

        def finished() -> bool:
            if args.count is not None and emitted >= args.count:
                return True
            if ends is None:
                return False
            return all(consumer.position(tp, clients.timeout) >= ends[tp] for tp in tps)

        while not finished():
            batch = consumer.poll(0.5, max_records=None)
            if fatal:
                raise CliError(f"consume: {_error_text(fatal[0])}")
            for tp, record in batch:
                out: dict[str, Any] = {
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "offset": record.offset,
                    "timestamp": record.timestamp,
                }
                _bytes_fields("key", record.key, out)
                _bytes_fields("value", record.value, out)
                out["headers"] = [
                    [k, None if v is None else v.decode("utf-8", "replace")]
                    for k, v in record.headers
                ]
                sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
                emitted += 1
                if args.count is not None and emitted >= args.count:
                    break
            now = time.monotonic()
            if batch:
                sys.stdout.flush()
                last_progress = now
            elif not args.follow and now - last_progress > clients.timeout:
                raise CliError(
                    f"consume: no records for {clients.timeout:g}s before the end offsets "
                    f"were reached ({emitted} records written)"
                )
            if now - last_note >= PROGRESS_EVERY:
                last_note = now
                note(f"consume: {emitted} records")
        if time.monotonic() - started >= PROGRESS_EVERY:
            note(f"consume: {emitted} records")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        sys.stdout.flush()
        consumer.close()
    return 130 if interrupted and not args.follow else 0


# ------------------------------------------------------------------ mock-broker


def cmd_mock_broker(args: argparse.Namespace) -> int:
    from ._mock_broker import MockBroker

    topics = {}
    for item in args.topic:
        name, _, count = item.partition(":")
        if not name or (count and not count.isdigit()) or count == "0":
            raise UsageError(f"--topic {item!r} is not NAME or NAME:PARTITIONS")
        topics[name] = int(count or 1)
    try:
        broker = MockBroker(
            brokers=args.brokers, host=args.host, topics=topics, port_base=args.port
        )
    except OSError as exc:
        raise CliError(f"mock-broker: cannot listen on {args.host}: {exc}") from None

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(broker.bootstrap, flush=True)
    note(f"mock-broker: {args.brokers} broker(s) on {broker.bootstrap}; Ctrl-C stops")
    try:
        broker.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        broker.close()
    return 0


# ------------------------------------------------------------------ the parser


class UsageError(Exception):
    """Bad usage found after parsing: exit code 2."""


def _connection_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection")
    group.add_argument(
        "--bootstrap",
        metavar="HOST:PORT[,...]",
        default=os.environ.get(ENV_BOOTSTRAP),
        help=f"the cluster (default: ${ENV_BOOTSTRAP})",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="give up on the cluster after this long (default 30)",
    )
    group.add_argument("--client-id", default="kafka-sansio-cli", help=argparse.SUPPRESS)
    group.add_argument("--ssl", action="store_true", help="TLS with the system's CA certificates")
    group.add_argument("--ssl-ca", metavar="FILE", help="TLS, trusting this CA file")
    group.add_argument(
        "--sasl-mechanism", choices=["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], help="SASL"
    )
    group.add_argument("--sasl-username", help="SASL user (default: $KAFKA_SANSIO_SASL_USERNAME)")
    group.add_argument(
        "--sasl-password", help="SASL password (default: $KAFKA_SANSIO_SASL_PASSWORD)"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kafka-sansio",
        description="A sans-IO Kafka client core, driven from the shell. "
        "JSON lines on stdout, progress and errors on stderr; "
        "exit 0 ok, 1 failed, 2 bad usage.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _connection_options()

    topics = commands.add_parser("topics", help="list, create, delete, describe, alter topics")
    actions = topics.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("list", parents=[common], help="topic names, one a line")
    p.add_argument("--internal", action="store_true", help="include internal topics")
    p.add_argument("--json", action="store_true", help="JSON objects with topic ids")
    p = actions.add_parser("create", parents=[common], help="create topics")
    p.add_argument("topics", nargs="+", metavar="TOPIC")
    p.add_argument("--partitions", type=int, default=-1, help="default: the broker's")
    p.add_argument("--replication-factor", type=int, default=-1, help="default: the broker's")
    p.add_argument("--config", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--validate-only", action="store_true", help="check, create nothing")
    p.add_argument("--if-not-exists", action="store_true", help="an existing topic is fine")
    p = actions.add_parser("delete", parents=[common], help="delete topics")
    p.add_argument("topics", nargs="+", metavar="TOPIC")
    p.add_argument("--if-exists", action="store_true", help="a missing topic is fine")
    p = actions.add_parser("describe", parents=[common], help="partitions, leaders, replicas")
    p.add_argument("topics", nargs="*", metavar="TOPIC", help="default: every topic")
    p = actions.add_parser("alter", parents=[common], help="add partitions")
    p.add_argument("topic", metavar="TOPIC")
    p.add_argument("--partitions", type=int, required=True, help="the new total")

    p = commands.add_parser(
        "produce", parents=[common], help="write stdin lines (or JSON lines) to a topic"
    )
    p.add_argument("topic", metavar="TOPIC")
    p.add_argument(
        "--json",
        action="store_true",
        help='each line an object: "value", optional "key", "partition", "headers", '
        '"timestamp" (ms); "value_b64"/"key_b64" for binary',
    )
    p.add_argument("--key-separator", metavar="SEP", help="plain lines are KEY<SEP>VALUE")
    p.add_argument("--partition", type=int, help="default: by key, else sticky")
    p.add_argument("--acks", type=int, choices=[-1, 0, 1], default=-1)
    p.add_argument(
        "--compression", choices=["none", "gzip", "snappy", "lz4", "zstd"], default="none"
    )
    p.add_argument("--linger", type=float, default=0.005, metavar="SECONDS")
    p.add_argument(
        "--stop-on-error", action="store_true", help="stop reading stdin after a failed record"
    )

    p = commands.add_parser("consume", parents=[common], help="read records as JSON lines")
    p.add_argument("topic", metavar="TOPIC")
    p.add_argument(
        "--partition", type=int, action="append", help="this partition only (repeatable)"
    )
    start = p.add_mutually_exclusive_group()
    start.add_argument(
        "--from",
        dest="start",
        default="beginning",
        metavar="beginning|end|OFFSET",
        help="where to start (default: beginning)",
    )
    start.add_argument(
        "--from-time", metavar="MS|ISO-8601", help="the first record at or after this time"
    )
    p.add_argument("--count", type=int, help="stop after this many records")
    p.add_argument(
        "--follow", action="store_true", help="keep waiting for new records (until Ctrl-C)"
    )
    p.add_argument(
        "--isolation", choices=["read_uncommitted", "read_committed"], default="read_uncommitted"
    )

    p = commands.add_parser("offsets", parents=[common], help="earliest/latest offsets")
    p.add_argument("topic", metavar="TOPIC")
    p.add_argument("--partition", type=int, action="append", help="this partition only")
    p.add_argument(
        "--time",
        metavar="earliest|latest|MS|ISO-8601",
        help="the offset for this time (default: both earliest and latest)",
    )

    p = commands.add_parser(
        "mock-broker",
        help="serve the in-memory broker model on loopback TCP ports",
        description="Prints the bootstrap servers on stdout and serves until interrupted.",
    )
    p.add_argument("--brokers", type=int, default=1, help="how many brokers (default 1)")
    p.add_argument(
        "--topic", action="append", default=[], metavar="NAME[:PARTITIONS]", help="pre-create"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=0, help="broker 1's port, the next ones follow (default: free)"
    )

    demo = commands.add_parser(
        "demo",
        help="write, consume, seek past the end and show the reset events",
        description=(
            "Runs on the embedded in-memory Kafka model by default (no Java, no network); "
            "--bootstrap points it at a real cluster."
        ),
    )
    demo.add_argument("--bootstrap", metavar="HOST:PORT[,...]", help="a real Kafka cluster")
    demo.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each step (default 60)"
    )
    return parser


def _fail(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.error(message)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run

        return run(args.bootstrap, timeout=args.timeout)
    try:
        if args.command == "mock-broker":
            if args.brokers < 1:
                raise UsageError("--brokers must be at least 1")
            if not 0 <= args.port <= 65536 - args.brokers:
                raise UsageError(f"--port {args.port} leaves no room for {args.brokers} broker(s)")
            return cmd_mock_broker(args)
        if not args.bootstrap:
            raise UsageError(f"no cluster given: pass --bootstrap or set {ENV_BOOTSTRAP}")
        if args.timeout <= 0:
            raise UsageError("--timeout must be positive")
        if args.command == "consume" and args.count is not None and args.count < 0:
            raise UsageError("--count must be >= 0")
        if (
            args.command == "consume"
            and args.start not in ("beginning", "end")
            and not args.start.isdigit()
        ):
            raise UsageError(f"--from {args.start!r}: use beginning, end or an offset")
        try:
            clients = _Clients(args)
            clients.client_config()
        except (KafkaSansioError, ValueError, TypeError, OSError) as exc:
            raise UsageError(str(exc)) from None
        if args.command == "topics":
            return cmd_topics(args, clients)
        if args.command == "offsets":
            return cmd_offsets(args, clients)
        if args.command == "produce":
            return cmd_produce(args, clients)
        if args.command == "consume":
            return cmd_consume(args, clients)
    except UsageError as exc:
        _fail(parser, str(exc))
    except CliError as exc:
        note(str(exc))
        return 1
    except KafkaSansioError as exc:
        note(_error_text(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); nothing more to say.
        with contextlib.suppress(OSError):
            sys.stdout.close()
        return 0
    _fail(parser, f"unknown command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
