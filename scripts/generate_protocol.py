#!/usr/bin/env python3
"""Generate kafka_sansio's message codec from Kafka's JSON message definitions.

Usage::

    python scripts/generate_protocol.py [--spec-dir DIR] [--out-dir DIR]

``--spec-dir`` is the folder holding Kafka's ``message/*.json`` files and
``errors.tsv`` next to it (default: ``../shared/kafka-protocol/message`` relative
to the repository root, or ``$KAFKA_PROTOCOL_DIR/message``).  ``--out-dir`` is
the package folder to write into (default: the repository's ``kafka_sansio``).

Writes, deterministically:

* ``_messages/<api>.py``: one module per API (request, response and their
  nested structures) with version-specialised encoders and decoders;
* ``_messages/headers.py``: RequestHeader and ResponseHeader;
* ``_messages/__init__.py``: the registry (API names, modules, version ranges);
* ``errors.py``: the error-code table and one exception class per code;
* ``testing/_schema.py``: a compact field table used by the hypothesis
  strategies in ``kafka_sansio.testing``.
"""

from __future__ import annotations

import argparse
import csv
import json
import keyword
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = "scripts/generate_protocol.py"
INF = 1 << 15

FIXED = {
    "bool": ("?", 1),
    "int8": ("b", 1),
    "int16": ("h", 2),
    "uint16": ("H", 2),
    "int32": ("i", 4),
    "uint32": ("I", 4),
    "int64": ("q", 8),
    "float64": ("d", 8),
    "uuid": ("16s", 16),
}
PRIMITIVES = set(FIXED) | {"string", "bytes", "records"}
RESERVED_ATTRS = {"unknown_tagged_fields", "encode", "decode", "encode_into", "decode_at"}


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Versions:
    lo: int
    hi: int  # inclusive; INF for open-ended

    def __contains__(self, v: object) -> bool:
        return isinstance(v, int) and self.lo <= v <= self.hi


NONE = Versions(1, 0)


def parse_versions(text: str | None) -> Versions:
    if text is None or text == "none":
        return NONE
    text = text.strip()
    if text.endswith("+"):
        return Versions(int(text[:-1]), INF)
    if "-" in text:
        lo, hi = text.split("-")
        return Versions(int(lo), int(hi))
    return Versions(int(text), int(text))


def snake(name: str) -> str:
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()
    if keyword.iskeyword(s) or s in RESERVED_ATTRS:
        s += "_"
    return s


@dataclass
class Field:
    name: str
    attr: str
    type: str  # element type for arrays
    is_array: bool
    struct: StructDef | None
    versions: Versions
    nullable: Versions
    tagged: Versions
    tag: int | None
    ignorable: bool
    default: str | None
    flexible_override: Versions | None
    about: str

    def present(self, v: int) -> bool:
        return v in self.versions

    def is_tagged(self, v: int) -> bool:
        return self.tag is not None and v in self.tagged

    def ever_nullable(self) -> bool:
        return self.nullable.lo <= self.nullable.hi


@dataclass
class StructDef:
    name: str
    classname: str
    fields: list[Field]
    message: MessageDef
    is_top: bool = False
    doc: str = ""


@dataclass
class MessageDef:
    name: str
    kind: str  # request / response / header
    api_key: int | None
    valid: Versions
    flexible: Versions
    unstable_latest: bool
    structs: list[StructDef] = field(default_factory=list)  # dependency order
    top: StructDef | None = None


def strip_comments(text: str) -> str:
    out = []
    for line in text.splitlines():
        i = 0
        in_str = False
        while i < len(line):
            c = line[i]
            if c == '"' and (i == 0 or line[i - 1] != "\\"):
                in_str = not in_str
            elif not in_str and line.startswith("//", i):
                line = line[:i]
                break
            i += 1
        out.append(line)
    return "\n".join(out)


def load_message(path: Path) -> MessageDef:
    data = json.loads(strip_comments(path.read_text(encoding="utf-8")))
    msg = MessageDef(
        name=data["name"],
        kind=data["type"],
        api_key=data.get("apiKey"),
        valid=parse_versions(data["validVersions"]),
        flexible=parse_versions(data["flexibleVersions"]),
        unstable_latest=bool(data.get("latestVersionUnstable", False)),
    )
    common = {c["name"]: c for c in data.get("commonStructs", [])}
    built: dict[str, StructDef] = {}

    def build(name: str, fields_json: list[dict[str, Any]], top: bool) -> StructDef:
        if name in built:
            raise SystemExit(f"{path.name}: structure {name} defined twice")
        sd = StructDef(name=name, classname=name, fields=[], message=msg, is_top=top)
        built[name] = sd
        for fj in fields_json:
            sd.fields.append(build_field(fj))
        msg.structs.append(sd)
        return sd

    def build_field(fj: dict[str, Any]) -> Field:
        t = fj["type"]
        is_array = t.startswith("[]")
        base = t[2:] if is_array else t
        struct = None
        if base not in PRIMITIVES:
            if "fields" in fj:
                struct = build(base, fj["fields"], False)
            elif base in built:
                struct = built[base]
            elif base in common:
                struct = build(base, common[base]["fields"], False)
            else:
                raise SystemExit(f"{path.name}: unknown type {t}")
        tag = fj.get("tag")
        default = fj.get("default")
        if isinstance(default, bool):
            default = "true" if default else "false"
        elif default is not None:
            default = str(default)
        return Field(
            name=fj["name"],
            attr=snake(fj["name"]),
            type=base,
            is_array=is_array,
            struct=struct,
            versions=parse_versions(fj["versions"]),
            nullable=parse_versions(fj.get("nullableVersions")),
            tagged=parse_versions(fj.get("taggedVersions")) if tag is not None else NONE,
            tag=int(tag) if tag is not None else None,
            ignorable=bool(fj.get("ignorable", False)),
            default=default,
            flexible_override=parse_versions(fj["flexibleVersions"])
            if "flexibleVersions" in fj
            else None,
            about=fj.get("about", ""),
        )

    top = build(data["name"], data["fields"], True)
    # Common structures never referenced are still part of the message's API.
    for cname, c in common.items():
        if cname not in built:
            build(cname, c["fields"], False)
    msg.top = top
    return msg


# --------------------------------------------------------------------------- values


def parse_int(text: str) -> int:
    t = text.strip().lower()
    neg = t.startswith("-")
    if neg:
        t = t[1:]
    if t.startswith("0x"):
        v = int(t, 16)
    elif len(t) > 1 and t.startswith("0"):
        v = int(t, 8)
    else:
        v = int(t)
    return -v if neg else v


def default_expr(f: Field) -> str:
    """Python expression for the field's default (a fresh object if mutable)."""
    d = f.default
    if f.is_array:
        return "None" if d == "null" else "[]"
    if f.struct is not None:
        return "None" if d == "null" else f"{f.struct.classname}()"
    t = f.type
    if t == "bool":
        return "True" if (d or "false").lower() == "true" else "False"
    if t in ("int8", "int16", "uint16", "int32", "uint32", "int64"):
        return str(parse_int(d)) if d not in (None, "") else "0"
    if t == "float64":
        return repr(float(d)) if d not in (None, "") else "0.0"
    if t == "string":
        if d == "null":
            return "None"
        return repr(d or "")
    if t == "uuid":
        return "_ZERO_UUID"
    if t == "bytes":
        return "None" if d == "null" else 'b""'
    if t == "records":
        return "None" if (d == "null" or f.ever_nullable()) else 'b""'
    raise AssertionError(t)


def is_mutable_default(f: Field) -> bool:
    return default_expr(f) in ("[]",) or (f.struct is not None and f.default != "null")


def py_elem_type(f: Field) -> str:
    if f.struct is not None:
        return f.struct.classname
    return {
        "bool": "bool",
        "int8": "int",
        "int16": "int",
        "uint16": "int",
        "int32": "int",
        "uint32": "int",
        "int64": "int",
        "float64": "float",
        "string": "str",
        "uuid": "_UUID",
        "bytes": "bytes",
        "records": "bytes | memoryview",
    }[f.type]


def py_type(f: Field) -> str:
    t = py_elem_type(f)
    if f.is_array:
        t = f"list[{t}]"
    if f.ever_nullable() or default_expr(f) == "None":
        t = f"{t} | None"
    return t


def nondefault_cond(f: Field, expr: str) -> str:
    """Condition that is true when *expr* differs from the field's default."""
    d = default_expr(f)
    if d == "None":
        return f"{expr} is not None"
    if f.is_array:
        return f"{expr}"  # non-empty (never None here)
    if f.type in ("bytes", "records"):
        return f"len({expr}) != 0"
    if f.type == "bool":
        return f"not {expr}" if d == "True" else f"{expr}"
    return f"{expr} != {d}"


# --------------------------------------------------------------------------- emitter


class Module:
    """Collects the helpers a generated module needs."""

    def __init__(self) -> None:
        self.structs: dict[str, str] = {}  # fmt -> name
        self.arrays: dict[str, str] = {}  # struct code -> per-count unpacker table
        self.uses_uuid = False
        self.wire: set[str] = set()
        # (classname, layout, attrs) -> name of its table of bulk readers
        self.uniform: dict[tuple[str, str, tuple[str, ...]], str] = {}

    def ur(self, classname: str, layout: str, attrs: tuple[str, ...]) -> str:
        key = (classname, layout, attrs)
        name = self.uniform.get(key)
        if name is None:
            name = self.uniform[key] = f"_UR{len(self.uniform)}"
        return name

    def au(self, code: str) -> str:
        name = "_AU_" + code.replace("?", "o")
        self.arrays[code] = name
        return name

    def st(self, fmt: str) -> str:
        name = self.structs.get(fmt)
        if name is None:
            name = "_S_" + fmt.replace(">", "").replace("?", "o").replace("16s", "u")
            self.structs[fmt] = name
        return name


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.ind = 1
        self.n = 0

    def __call__(self, text: str) -> None:
        self.lines.append("    " * self.ind + text)

    def tmp(self, prefix: str = "t") -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def indent(self) -> Lines:
        self.ind += 1
        return self

    def dedent(self) -> None:
        self.ind -= 1


def field_flexible(f: Field, msg_flexible: bool, v: int) -> bool:
    if f.flexible_override is not None:
        return v in f.flexible_override
    return msg_flexible


class Gen:
    def __init__(self, msg: MessageDef, mod: Module) -> None:
        self.msg = msg
        self.mod = mod
        # (struct classname, version) -> function name, and dedup tables
        self.enc_names: dict[tuple[str, int], str] = {}
        self.dec_names: dict[tuple[str, int], str] = {}
        self.enc_bodies: dict[str, str] = {}
        self.dec_bodies: dict[str, str] = {}
        self.out: list[str] = []

    # ----- minimal size (for allocation checks)

    def min_size(self, sd: StructDef, v: int) -> int:
        flex = v in self.msg.flexible
        total = 0
        for f in sd.fields:
            if not f.present(v) or f.is_tagged(v):
                continue
            fx = field_flexible(f, flex, v)
            total += self.field_min_size(f, v, fx)
        if flex:
            total += 1
        return total

    def field_min_size(self, f: Field, v: int, fx: bool) -> int:
        if f.is_array:
            return 1 if fx else 4
        if f.struct is not None:
            if v in f.nullable:
                return 1
            return self.min_size(f.struct, v)
        if f.type in FIXED:
            return FIXED[f.type][1]
        if f.type == "string":
            return 1 if fx else 2
        return 1 if fx else 4

    def elem_min_size(self, f: Field, v: int, fx: bool) -> int:
        if f.struct is not None:
            return self.min_size(f.struct, v)
        if f.type in FIXED:
            return FIXED[f.type][1]
        if f.type == "string":
            return 1 if fx else 2
        return 1 if fx else 4

    # ----- encoders

    def encoder(self, sd: StructDef, v: int) -> str:
        key = (sd.classname, v)
        if key in self.enc_names:
            return self.enc_names[key]
        # children first
        for f in sd.fields:
            if f.struct is not None and f.present(v):
                self.encoder(f.struct, v)
        L = Lines()
        flex = v in self.msg.flexible
        # absent fields that must hold their default
        for f in sd.fields:
            if f.present(v) or f.ignorable:
                continue
            L(f"if {nondefault_cond(f, 'o.' + f.attr)}:")
            L.indent()(
                f"raise _LocalProtocolError({f'attempted to write a non-default {f.name} at version {v} of {sd.name}'!r})"
            )
            L.dedent()
        group: list[tuple[str, str]] = []  # (fmt char, expr)

        def flush() -> None:
            if not group:
                return
            fmt = ">" + "".join(c for c, _ in group)
            name = self.mod.st(fmt)
            L(f"out += {name}.pack({', '.join(e for _, e in group)})")
            group.clear()

        for f in sd.fields:
            if not f.present(v) or f.is_tagged(v):
                continue
            fx = field_flexible(f, flex, v)
            if not f.is_array and f.struct is None and f.type in FIXED:
                expr = f"o.{f.attr}"
                if f.type == "uuid":
                    expr += ".bytes"
                group.append((FIXED[f.type][0], expr))
                continue
            flush()
            self.emit_encode_value(L, f, v, fx, f"o.{f.attr}", "out", sd)
        flush()
        if flex:
            known = [f for f in sd.fields if f.is_tagged(v)]
            if known:
                L("tags: list[tuple[int, bytes | bytearray]] = []")
                for f in sorted(known, key=lambda f: f.tag or 0):
                    L(f"if {nondefault_cond(f, 'o.' + f.attr)}:")
                    L.indent()
                    tb = L.tmp("tb")
                    L(f"{tb} = bytearray()")
                    self.emit_encode_value(L, f, v, True, f"o.{f.attr}", tb, sd)
                    L(f"tags.append(({f.tag}, {tb}))")
                    L.dedent()
                L("_write_tags(out, tags, o.unknown_tagged_fields)")
            else:
                L("u = o.unknown_tagged_fields")
                L("if u:")
                L.indent()("_write_tags(out, [], u)")
                L.dedent()
                L("else:")
                L.indent()("out.append(0)")
                L.dedent()
        else:
            L("if o.unknown_tagged_fields:")
            L.indent()(
                f"raise _LocalProtocolError({f'{sd.name} version {v} cannot carry tagged fields'!r})"
            )
            L.dedent()
        body = sd.classname + "\n" + "\n".join(L.lines)
        fname = self.enc_bodies.get(body)
        if fname is None:
            fname = f"_e_{sd.classname}_{v}"
            self.enc_bodies[body] = fname
            self.out.append(
                f"def {fname}(o: {sd.classname}, out: bytearray) -> None:\n{body.split(chr(10), 1)[1]}\n"
            )
        self.enc_names[key] = fname
        return fname

    def emit_len(self, L: Lines, n: str, fx: bool, out: str, wide: bool) -> None:
        """Write length *n* (already +1 for compact) as uvarint or int16/int32."""
        if fx:
            L(f"if {n} < 128:")
            L.indent()(f"{out}.append({n})")
            L.dedent()
            L("else:")
            L.indent()(f"{out} += _write_uvarint({n})")
            L.dedent()
        else:
            L(f"{out} += {self.mod.st('>i' if wide else '>h')}.pack({n})")

    def emit_encode_value(
        self, L: Lines, f: Field, v: int, fx: bool, expr: str, out: str, sd: StructDef
    ) -> None:
        nullable = v in f.nullable
        val = L.tmp("v")
        L(f"{val} = {expr}")
        may_be_none = f.ever_nullable() or default_expr(f) == "None"
        if may_be_none:
            L(f"if {val} is None:")
            L.indent()
            if nullable:
                if f.is_array or f.type in ("string", "bytes", "records"):
                    if fx:
                        L(f"{out}.append(0)")
                    elif f.is_array or f.type != "string":
                        L(f'{out} += b"\\xff\\xff\\xff\\xff"')
                    else:
                        L(f'{out} += b"\\xff\\xff"')
                else:  # nullable struct
                    L(f"{out}.append(255)")
            else:
                L(
                    f"raise _LocalProtocolError({f'{f.name} of {sd.name} is not nullable at version {v}'!r})"
                )
            L.dedent()
            L("else:")
            L.indent()
        if f.is_array:
            n = L.tmp("n")
            L(f"{n} = len({val})")
            self.emit_len(L, f"{n} + 1" if fx else n, fx, out, True)
            if f.struct is not None:
                fn = self.encoder(f.struct, v)
                e = L.tmp("e")
                L(f"for {e} in {val}:")
                L.indent()(f"{fn}({e}, {out})")
                L.dedent()
            elif f.type in FIXED and f.type != "uuid":
                c = FIXED[f.type][0]
                L(f"{out} += _pack(f'>{{{n}}}{c}', *{val})")
            else:
                e = L.tmp("e")
                L(f"for {e} in {val}:")
                L.indent()
                self.emit_scalar(L, f, e, fx, out)
                L.dedent()
        elif f.struct is not None:
            fn = self.encoder(f.struct, v)
            if nullable:
                L(f"{out}.append(1)")
            L(f"{fn}({val}, {out})")
        else:
            self.emit_scalar(L, f, val, fx, out)
        if may_be_none:
            L.dedent()

    def emit_scalar(self, L: Lines, f: Field, val: str, fx: bool, out: str) -> None:
        t = f.type
        if t in FIXED:
            e = f"{val}.bytes" if t == "uuid" else val
            L(f"{out} += {self.mod.st('>' + FIXED[t][0])}.pack({e})")
            return
        if t == "string":
            b = L.tmp("b")
            n = L.tmp("n")
            L(f"{b} = {val}.encode()")
            L(f"{n} = len({b})")
            L(f"if {n} > 32767:")
            L.indent()(f"raise _LocalProtocolError({f'{f.name} longer than 32767 bytes'!r})")
            L.dedent()
            self.emit_len(L, f"{n} + 1" if fx else n, fx, out, False)
            L(f"{out} += {b}")
            return
        # bytes / records
        n = L.tmp("n")
        L(f"{n} = len({val})")
        self.emit_len(L, f"{n} + 1" if fx else n, fx, out, True)
        L(f"{out} += {val}")

    # ----- decoders

    def is_leaf(self, sd: StructDef, v: int) -> bool:
        """Structures simple enough to decode inline inside their parent's loop."""
        flex = v in self.msg.flexible
        for f in sd.fields:
            if not f.present(v):
                continue
            if f.struct is not None or (flex and f.is_tagged(v)):
                return False
        return True

    def flat_layout(self, sd: StructDef, v: int) -> str | None:
        """The bulk-reader layout of *sd* at *v* (see ``_wire.UniformReaders``), if flat.

        Flat: a flexible version, every field present and untagged, fixed-width
        numbers and compact arrays of fixed-width numbers only.
        """
        if v not in self.msg.flexible or not sd.fields:
            return None
        layout = ""
        for f in sd.fields:
            if not f.present(v) or f.is_tagged(v) or f.struct is not None:
                return None
            if f.type not in FIXED or f.type == "uuid" or not field_flexible(f, True, v):
                return None
            layout += ("[" if f.is_array else "") + FIXED[f.type][0]
        return layout

    def emit_uniform_probe(
        self, L: Lines, sd: StructDef, v: int, layout: str, n: str, buf: str, pos: str
    ) -> str:
        """Emit the bulk-read attempt for an array of flat *sd*; return the result variable.

        The result is ``(elements, end)``, or ``None`` when the caller must
        decode element by element.
        """
        table = self.mod.ur(sd.classname, layout, tuple(f.attr for f in sd.fields))
        rd = L.tmp("rd")
        res = L.tmp("u")
        L(f"{rd} = None")
        L(f"if {n} > 1:")
        L.indent()
        if "[" not in layout:  # a fixed shape: nothing to probe
            L(f"{rd} = {table}[()]")
            L.dedent()
            L(f"{res} = None if {rd} is None else {rd}({buf}, {pos}, {n})")
            return res
        L("try:")
        L.indent()
        q = L.tmp("q")
        keys: list[str] = []
        acc = 0
        prev: tuple[str, int] | None = None
        for f in sd.fields:
            size = FIXED[f.type][1]
            if not f.is_array:
                acc += size
                continue
            if prev is None:
                L(f"{q} = {pos} + {acc}")
            else:
                k, isz = prev
                c = 1 - isz + acc
                tail = f" + {c}" if c > 0 else f" - {-c}" if c < 0 else ""
                L(f"{q} += {isz} * {k}{tail}")
            k = L.tmp("k")
            L(f"{k} = {buf}[{q}]")
            keys.append(k)
            prev = (k, size)
            acc = 0
        key = ", ".join(keys) + ("," if len(keys) == 1 else "")
        L(f"{rd} = {table}[{key}]")
        L.dedent()
        L("except IndexError:  # a count byte past the end: the general loop reports it")
        L.indent()(f"{rd} = None")
        L.dedent()
        L.dedent()
        L(f"{res} = None if {rd} is None else {rd}({buf}, {pos}, {n})")
        return res

    def decoder(self, sd: StructDef, v: int) -> str:
        key = (sd.classname, v)
        if key in self.dec_names:
            return self.dec_names[key]
        L = Lines()
        ov = self.emit_struct_decode(L, sd, v, "buf", "pos")
        L(f"return {ov}, pos")
        body = sd.classname + "\n" + "\n".join(L.lines)
        fname = self.dec_bodies.get(body)
        if fname is None:
            fname = f"_d_{sd.classname}_{v}"
            self.dec_bodies[body] = fname
            self.out.append(
                f"def {fname}(buf: bytes, pos: int) -> tuple[{sd.classname}, int]:\n"
                + body.split("\n", 1)[1]
                + "\n"
            )
        self.dec_names[key] = fname
        return fname

    def emit_struct_decode(self, L: Lines, sd: StructDef, v: int, buf: str, pos: str) -> str:
        """Emit statements decoding *sd* into a new object; return its variable."""
        flex = v in self.msg.flexible
        ov = L.tmp("o")
        L(f"{ov} = _new({sd.classname})")
        group: list[tuple[str, Field]] = []

        def flush() -> None:
            if not group:
                return
            fmt = ">" + "".join(c for c, _ in group)
            name = self.mod.st(fmt)
            size = sum(FIXED[f.type][1] for _, f in group)
            targets = []
            post = []
            for _, f in group:
                if f.type == "uuid":
                    t = L.tmp("b")
                    targets.append(t)
                    post.append(f"{ov}.{f.attr} = _uuid_from_bytes({t})")
                else:
                    targets.append(f"{ov}.{f.attr}")
            tgt = ", ".join(targets) + ("," if len(targets) == 1 else "")
            L(f"{tgt} = {name}.unpack_from({buf}, {pos})")
            for p in post:
                L(p)
            L(f"{pos} += {size}")
            group.clear()

        for f in sd.fields:
            if not f.present(v) or f.is_tagged(v):
                continue
            fx = field_flexible(f, flex, v)
            if not f.is_array and f.struct is None and f.type in FIXED:
                group.append((FIXED[f.type][0], f))
                continue
            flush()
            self.emit_decode_value(L, f, v, fx, f"{ov}.{f.attr}", buf, pos, sd)
        flush()
        for f in sd.fields:
            if not f.present(v):
                L(f"{ov}.{f.attr} = {default_expr(f)}")
        if flex:
            known = sorted((f for f in sd.fields if f.is_tagged(v)), key=lambda f: f.tag or 0)
            if known:
                for f in known:
                    L(f"{ov}.{f.attr} = {default_expr(f)}")
                L("u: dict[int, bytes] = {}")
                L(f"nt = {buf}[{pos}]")
                L(f"{pos} += 1")
                L("if nt > 127:")
                L.indent()(f"nt, {pos} = _read_uvarint({buf}, {pos} - 1)")
                L.dedent()
                L("last = -1")
                L("for _ in range(nt):")
                L.indent()
                L(f"tag, {pos} = _read_uvarint({buf}, {pos})")
                L(f"size, {pos} = _read_uvarint({buf}, {pos})")
                L("if tag <= last:")
                L.indent()(
                    "raise _RemoteProtocolError(f'tagged field {tag} out of order or repeated')"
                )
                L.dedent()
                L("last = tag")
                L(f"end = {pos} + size")
                L(f"if end > len({buf}):")
                L.indent()("raise _truncated('tagged field')")
                L.dedent()
                first = True
                for f in known:
                    L(f"{'if' if first else 'elif'} tag == {f.tag}:")
                    first = False
                    L.indent()
                    L(f"tbuf = {buf}[{pos}:end]")
                    L("tpos = 0")
                    self.emit_decode_value(L, f, v, True, f"{ov}.{f.attr}", "tbuf", "tpos", sd)
                    L("if tpos != len(tbuf):")
                    L.indent()(
                        f"raise _RemoteProtocolError({f'tagged field {f.name} has the wrong size'!r})"
                    )
                    L.dedent()
                    L.dedent()
                L("else:")
                L.indent()(f"u[tag] = {buf}[{pos}:end]")
                L.dedent()
                L(f"{pos} = end")
                L.dedent()
                L(f"{ov}.unknown_tagged_fields = u or _NO_TAGS")
            else:
                L(f"if {buf}[{pos}] == 0:")
                L.indent()
                L(f"{ov}.unknown_tagged_fields = _NO_TAGS")
                L(f"{pos} += 1")
                L.dedent()
                L("else:")
                L.indent()(f"{ov}.unknown_tagged_fields, {pos} = _read_tags({buf}, {pos})")
                L.dedent()
        else:
            L(f"{ov}.unknown_tagged_fields = _NO_TAGS")
        return ov

    def emit_read_len(self, L: Lines, n: str, fx: bool, buf: str, pos: str, wide: bool) -> None:
        """Read a length into *n*: -1 means null (compact lengths are un-offset)."""
        if fx:
            L(f"{n} = {buf}[{pos}]")
            L(f"{pos} += 1")
            L(f"if {n} > 127:")
            L.indent()(f"{n}, {pos} = _read_uvarint({buf}, {pos} - 1)")
            L.dedent()
            L(f"{n} -= 1")
        else:
            st = self.mod.st(">i" if wide else ">h")
            L(f"({n},) = {st}.unpack_from({buf}, {pos})")
            L(f"{pos} += {4 if wide else 2}")

    def emit_decode_value(
        self,
        L: Lines,
        f: Field,
        v: int,
        fx: bool,
        target: str,
        buf: str,
        pos: str,
        sd: StructDef,
    ) -> None:
        nullable = v in f.nullable
        null_err = f"raise _RemoteProtocolError({f'non-nullable field {f.name} of {sd.name} was serialized as null'!r})"
        if f.is_array:
            n = L.tmp("n")
            if f.struct is None and f.type in FIXED and f.type != "uuid":
                # primitive arrays: one cached unpacker per small count
                c, size = FIXED[f.type]
                au = self.mod.au(c)
                reader = "_read_nullable_array" if nullable else "_read_array"
                if fx:
                    L(f"{n} = {buf}[{pos}] - 1")
                    L(f"if {n} == 0:")
                    L.indent()
                    L(f"{target} = []")
                    L(f"{pos} += 1")
                    L.dedent()
                    L(f"elif 0 < {n} < 127:")
                    L.indent()
                    L(f"{target} = [*{au}[{n}]({buf}, {pos} + 1)]")
                    L(f"{pos} += 1 + {size} * {n}" if size > 1 else f"{pos} += 1 + {n}")
                    L.dedent()
                    L("else:")
                    L.indent()(f"{target}, {pos} = {reader}({buf}, {pos}, {c!r}, True, {f.name!r})")
                    L.dedent()
                else:
                    L(f"{target}, {pos} = {reader}({buf}, {pos}, {c!r}, False, {f.name!r})")
                return
            self.emit_read_len(L, n, fx, buf, pos, True)
            L(f"if {n} < 0:")
            L.indent()(f"{target} = None" if nullable else null_err)
            L.dedent()
            L("else:")
            L.indent()
            m = self.elem_min_size(f, v, fx)
            chk = f"{n} * {m}" if m > 1 else n
            L(f"if {chk} > len({buf}) - {pos}:")
            L.indent()(f"raise _truncated({f.name!r})")
            L.dedent()
            lst = L.tmp("a")
            if f.struct is not None:
                layout = self.flat_layout(f.struct, v)
                res = None
                if layout is not None:
                    res = self.emit_uniform_probe(L, f.struct, v, layout, n, buf, pos)
                    L(f"if {res} is None:")
                    L.indent()
                ap = L.tmp("ap")
                L(f"{lst}: list[{f.struct.classname}] = []")
                L(f"{ap} = {lst}.append")
                L(f"for _ in range({n}):")
                L.indent()
                if self.is_leaf(f.struct, v):
                    ov = self.emit_struct_decode(L, f.struct, v, buf, pos)
                    L(f"{ap}({ov})")
                else:
                    fn = self.decoder(f.struct, v)
                    e = L.tmp("e")
                    L(f"{e}, {pos} = {fn}({buf}, {pos})")
                    L(f"{ap}({e})")
                L.dedent()
                if res is not None:
                    L.dedent()
                    L("else:")
                    L.indent()(f"{lst}, {pos} = {res}")
                    L.dedent()
            else:
                L(f"{lst}: list[{py_elem_type(f)}] = []")
                L(f"for _ in range({n}):")
                L.indent()
                e = L.tmp("e")
                self.emit_decode_scalar(L, f, fx, e, buf, pos, sd, nullable_now=False)
                L(f"{lst}.append({e})")
                L.dedent()
            L(f"{target} = {lst}")
            L.dedent()
            return
        if f.struct is not None:
            fn = self.decoder(f.struct, v)
            if nullable:
                L(f"if {buf}[{pos}] >= 128:")
                L.indent()
                L(f"{target} = None")
                L(f"{pos} += 1")
                L.dedent()
                L("else:")
                L.indent()
                L(f"{target}, {pos} = {fn}({buf}, {pos} + 1)")
                L.dedent()
            else:
                L(f"{target}, {pos} = {fn}({buf}, {pos})")
            return
        self.emit_decode_scalar(L, f, fx, target, buf, pos, sd, nullable_now=nullable)

    def emit_decode_scalar(
        self,
        L: Lines,
        f: Field,
        fx: bool,
        target: str,
        buf: str,
        pos: str,
        sd: StructDef,
        nullable_now: bool,
    ) -> None:
        t = f.type
        if t in FIXED:
            c, size = FIXED[t]
            st = self.mod.st(">" + c)
            if t == "uuid":
                L(f"{target} = _UUID(bytes={buf}[{pos}:{pos} + 16])")
            else:
                L(f"({target},) = {st}.unpack_from({buf}, {pos})")
            L(f"{pos} += {size}")
            return
        n = L.tmp("n")
        if t == "string" and fx:
            end = L.tmp("end")
            L(f"{n} = {buf}[{pos}] - 1")
            L(f"if 0 <= {n} < 127:")
            L.indent()
            L(f"{end} = {pos} + 1 + {n}")
            L(f"{target} = {buf}[{pos} + 1:{end}].decode()")
            L(f"{pos} = {end}")
            L.dedent()
            L("else:")
            reader = "_read_nullable_compact_string" if nullable_now else "_read_compact_string"
            L.indent()(f"{target}, {pos} = {reader}({buf}, {pos}, {f.name!r})")
            L.dedent()
            return
        self.emit_read_len(L, n, fx, buf, pos, t != "string")
        L(f"if {n} < 0:")
        L.indent()(f"{target} = None" if nullable_now else self._null_err(f, sd))
        L.dedent()
        if t == "string" and fx:
            L(f"elif {n} > 32767:")
            L.indent()(
                f"raise _RemoteProtocolError({f'string field {f.name} had invalid length'!r})"
            )
            L.dedent()
        L("else:")
        L.indent()
        end = L.tmp("end")
        L(f"{end} = {pos} + {n}")
        if t == "string":
            L(f"{target} = {buf}[{pos}:{end}].decode()")
        elif t == "bytes":
            L(f"if {end} > len({buf}):")
            L.indent()(f"raise _truncated({f.name!r})")
            L.dedent()
            L(f"{target} = {buf}[{pos}:{end}]")
        else:  # records: zero-copy view
            L(f"if {end} > len({buf}):")
            L.indent()(f"raise _truncated({f.name!r})")
            L.dedent()
            L(f"{target} = memoryview({buf})[{pos}:{end}]")
        L(f"{pos} = {end}")
        L.dedent()

    def _null_err(self, f: Field, sd: StructDef) -> str:
        return f"raise _RemoteProtocolError({f'non-nullable field {f.name} of {sd.name} was serialized as null'!r})"


# --------------------------------------------------------------------------- modules

HEADER = (
    "# Generated by scripts/generate_protocol.py from Kafka's message definitions. Do not edit.\n"
)


def emit_class(sd: StructDef, lines: list[str]) -> None:
    msg = sd.message
    base = "_Message" if sd.is_top else "_Struct"
    lines.append(f"class {sd.classname}({base}):")
    doc = sd.doc or (
        f"{msg.name} (versions {msg.valid.lo}-{msg.valid.hi})."
        if sd.is_top
        else f"Element of {msg.name}: {sd.name}."
    )
    lines.append(f'    """{doc}"""')
    lines.append("")
    attrs = [f.attr for f in sd.fields]
    slots = ", ".join(repr(a) for a in sorted([*attrs, "unknown_tagged_fields"]))
    lines.append(f"    __slots__ = ({slots},)")
    fields_tuple = ", ".join(repr(a) for a in attrs)
    lines.append(f"    _FIELDS = ({fields_tuple}{',' if len(attrs) == 1 else ''})")
    if sd.is_top:
        lines.append(f"    NAME = {msg.name!r}")
        lines.append(f"    API_KEY = {msg.api_key if msg.api_key is not None else -1}")
        lines.append(f"    IS_REQUEST = {msg.kind == 'request'}")
        lines.append(f"    MIN_VERSION = {msg.valid.lo}")
        lines.append(f"    MAX_VERSION = {msg.valid.hi}")
        lines.append(f"    MAX_STABLE_VERSION = {stable_max(msg)}")
        lines.append(f"    FIRST_FLEXIBLE_VERSION = {first_flexible(msg)}")
    lines.append("")
    for f in sd.fields:
        lines.append(f"    {f.attr}: {py_type(f)}")
        if f.about:
            about = f.about.replace('"""', "'''").replace("\\", "\\\\")
            lines.append(f'    """{about}"""')
    lines.append("    unknown_tagged_fields: Mapping[int, bytes]")
    lines.append("")
    params = []
    for f in sd.fields:
        d = default_expr(f)
        if is_mutable_default(f):
            d = "_MISSING"
        params.append(f"        {f.attr}: {py_type(f)} = {d},")
    params.append("        unknown_tagged_fields: Mapping[int, bytes] | None = None,")
    lines.append("    def __init__(")
    lines.append("        self,")
    lines.append("        *,")
    lines.extend(params)
    lines.append("    ) -> None:")
    for f in sd.fields:
        if is_mutable_default(f):
            lines.append(
                f"        self.{f.attr} = {default_expr(f)} if {f.attr} is _MISSING else {f.attr}"
            )
        else:
            lines.append(f"        self.{f.attr} = {f.attr}")
    lines.append("        self.unknown_tagged_fields = unknown_tagged_fields or _NO_TAGS")
    lines.append("")
    lines.append("")


def first_flexible(msg: MessageDef) -> int:
    f = msg.flexible
    return f.lo if f.lo <= f.hi and f.lo <= msg.valid.hi else -1


def stable_max(msg: MessageDef) -> int:
    return msg.valid.hi - 1 if msg.unstable_latest else msg.valid.hi


def assign_classnames(msgs: list[MessageDef]) -> None:
    counts: dict[str, int] = {}
    for m in msgs:
        for sd in m.structs:
            counts[sd.name] = counts.get(sd.name, 0) + 1
    tops = {m.name for m in msgs}
    for m in msgs:
        for sd in m.structs:
            if sd.is_top:
                continue
            if counts[sd.name] > 1 or sd.name in tops:
                sd.classname = m.name + sd.name
    names = [sd.classname for m in msgs for sd in m.structs]
    if len(names) != len(set(names)):
        raise SystemExit(f"class name collision in {[m.name for m in msgs]}")


def generate_module(msgs: list[MessageDef], title: str) -> str:
    assign_classnames(msgs)
    mod = Module()
    classes: list[str] = []
    funcs: list[str] = []
    tables: list[str] = []
    for m in msgs:
        g = Gen(m, mod)
        assert m.top is not None
        for sd in m.structs:
            emit_class(sd, classes)
        enc = {}
        dec = {}
        for v in range(m.valid.lo, m.valid.hi + 1):
            enc[v] = g.encoder(m.top, v)
            dec[v] = g.decoder(m.top, v)
        funcs.extend(g.out)
        tables.append(f"{m.name}._ENCODERS = {{{', '.join(f'{v}: {n}' for v, n in enc.items())}}}")
        tables.append(f"{m.name}._DECODERS = {{{', '.join(f'{v}: {n}' for v, n in dec.items())}}}")
    for (classname, layout, attrs), name in mod.uniform.items():
        tables.append(f"{name} = _uniform_readers({classname}, {layout!r}, {attrs!r})")
    text = "\n".join(classes) + "\n" + "\n\n".join(funcs) + "\n\n" + "\n".join(tables) + "\n"
    aliases = {
        "_pack": ("struct", "pack"),
        "_unpack_from": ("struct", "unpack_from"),
        "_UUID": ("uuid", "UUID"),
        "_LocalProtocolError": ("._errors", "LocalProtocolError"),
        "_RemoteProtocolError": ("._errors", "RemoteProtocolError"),
        "_MISSING": ("._wire", "MISSING"),
        "_NO_TAGS": ("._wire", "NO_TAGS"),
        "_array_unpacker": ("._wire", "array_unpacker"),
        "_read_array": ("._wire", "read_array"),
        "_read_compact_string": ("._wire", "read_compact_string"),
        "_uuid_from_bytes": ("._uuid", "uuid_from_bytes"),
        "_read_nullable_array": ("._wire", "read_nullable_array"),
        "_read_nullable_compact_string": ("._wire", "read_nullable_compact_string"),
        "Mapping": ("collections.abc", "Mapping"),
        "_new": ("._wire", "new_instance"),
        "_Message": ("._wire", "Message"),
        "_Struct": ("._wire", "Struct"),
        "_read_tags": ("._wire", "read_tags"),
        "_read_uvarint": ("._wire", "read_uvarint"),
        "_structure": ("._wire", "structure"),
        "_truncated": ("._wire", "truncated"),
        "_uniform_readers": ("._wire", "uniform_readers"),
        "_write_tags": ("._wire", "write_tags"),
        "_write_uvarint": ("._wire", "write_uvarint"),
    }
    pre = []
    if "_ZERO_UUID" in text:
        pre.append("_ZERO_UUID = _UUID(int=0)")
    for fmt, name in sorted(mod.structs.items(), key=lambda kv: kv[1]):
        if name + ".unpack_from(" in text:
            pre.append(f"{name[:2]}U{name[2:]} = _structure({fmt!r}).unpack_from")
        if name + ".pack(" in text:
            pre.append(f"{name[:2]}P{name[2:]} = _structure({fmt!r}).pack")
    text = re.sub(r"\b_S_(\w+)\.unpack_from\(", r"_SU_\1(", text)
    text = re.sub(r"\b_S_(\w+)\.pack\(", r"_SP_\1(", text)
    for code, name in sorted(mod.arrays.items(), key=lambda kv: kv[1]):
        pre.append(f"{name} = _array_unpacker({code!r})")
    body = "\n".join(pre) + "\n\n\n" + text
    imported: dict[str, list[str]] = {}
    for alias, (src, name) in aliases.items():
        if re.search(r"\b" + re.escape(alias) + r"\b", body):
            imported.setdefault(src, []).append(name)
            body = re.sub(r"\b" + re.escape(alias) + r"\b", name, body)
    taken = {sd.classname for m in msgs for sd in m.structs}
    for names in imported.values():
        clash = taken.intersection(names)
        if clash:
            raise SystemExit(f"generated class names clash with imports: {clash}")

    def order(n: str) -> tuple[int, str]:
        kind = 0 if n.isupper() else 1 if n[:1].isupper() else 2
        return (kind, n)

    def from_line(src: str, names: list[str]) -> str:
        names = sorted(names, key=order)
        one = f"from {src} import {', '.join(names)}"
        if len(one) <= 100:
            return one
        return f"from {src} import (\n" + "".join(f"    {n},\n" for n in names) + ")"

    head = [HEADER, f'"""{title}"""\n', "from __future__ import annotations\n"]
    std = [
        from_line(src, imported[src])
        for src in ("collections.abc", "struct", "uuid")
        if src in imported
    ]
    if std:
        head.append("\n".join(std) + "\n")
    local = [
        from_line("." + src, imported[src])
        for src in ("._errors", "._uuid", "._wire")
        if src in imported
    ]
    head.append("\n".join(local) + "\n\n")
    return "\n".join(head) + body


def schema_entries(msgs: list[MessageDef], module: str) -> list[str]:
    out = []
    for m in msgs:
        for sd in m.structs:
            fields = []
            for f in sd.fields:
                fo = f.flexible_override
                fields.append(
                    (
                        f.attr,
                        f.type,
                        f.is_array,
                        f.struct.classname if f.struct else None,
                        (f.versions.lo, f.versions.hi),
                        (f.nullable.lo, f.nullable.hi),
                        (f.tagged.lo, f.tagged.hi),
                        f.tag,
                        (fo.lo, fo.hi) if fo else None,
                    )
                )
            out.append(f"    ({module!r}, {sd.classname!r}): {tuple(fields)!r},")
    return out


def camel_error(name: str) -> str:
    parts = name.lower().split("_")
    s = "".join(p[:1].upper() + p[1:] for p in parts)
    return s if s.endswith("Error") else s + "Error"


def generate_errors(tsv: Path) -> str:
    rows = []
    with tsv.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            rows.append(
                (
                    int(row["code"]),
                    row["name"],
                    row["retriable"].strip() == "true",
                    row["message"] or "",
                )
            )
    rows.sort()
    L = [
        HEADER.rstrip("\n"),
        '"""Kafka protocol error codes and one exception class per code.',
        "",
        "A broker reports failures as error codes inside valid responses; the",
        "core hands them out as fields, never raises them from the receive path.",
        "Callers who prefer exceptions use :func:`error_for_code` (a class) or",
        ":func:`exception_for_code` (an instance) and raise it themselves.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from dataclasses import dataclass",
        "",
        "from ._errors import KafkaSansioError, LocalProtocolError",
        "",
        "@dataclass(frozen=True)",
        "class ErrorCode:",
        '    """One row of the error table: the code, its name, whether retrying can help."""',
        "",
        "    code: int",
        "    name: str",
        "    retriable: bool",
        "    message: str",
        "",
        "",
        "class BrokerError(KafkaSansioError):",
        '    """An error code returned by a broker, as an exception.',
        "",
        "    ``code``, ``name`` and ``retriable`` are class attributes; an instance",
        "    created for a code missing from the table carries its own ``code``.",
        '    """',
        "",
        "    code: int = -1",
        '    name: str = "UNKNOWN"',
        "    retriable: bool = False",
        '    description: str = ""',
        "",
        "    def __init__(self, message: str | None = None, *, code: int | None = None) -> None:",
        "        if code is not None:",
        "            self.code = code",
        "        super().__init__(message or self.description or self.name)",
        "",
        "",
        "class RetriableBrokerError(BrokerError):",
        '    """Base of the errors for which retrying the request may succeed."""',
        "",
        "    retriable = True",
        "",
        "",
        "class UnknownErrorCodeError(BrokerError):",
        '    """A code that is not in this library\'s error table."""',
        "",
        '    name = "UNKNOWN_ERROR_CODE"',
        "",
        "",
    ]
    classes = []
    for code, name, retriable, message in rows:
        if code == 0:
            continue
        cls = camel_error(name)
        classes.append((code, cls))
        base = "RetriableBrokerError" if retriable else "BrokerError"
        L.append(f"class {cls}({base}):")
        L.append(f'    """Error code {code}: {name}."""')
        L.append("")
        L.append(f"    code = {code}")
        L.append(f"    name = {name!r}")
        L.append(f"    retriable = {retriable}")
        L.append(f"    description = {message!r}")
        L.append("")
        L.append("")
    L.append("#: Every known error code, by code.")
    L.append("ERROR_CODES: dict[int, ErrorCode] = {")
    for code, name, retriable, message in rows:
        L.append(f"    {code}: ErrorCode({code}, {name!r}, {retriable}, {message!r}),")
    L.append("}")
    L.append("")
    L.append("_CLASSES: dict[int, type[BrokerError]] = {")
    for code, cls in classes:
        L.append(f"    {code}: {cls},")
    L.append("}")
    L.append("")
    L.append("")
    L.extend(
        [
            "def error_code(code: int) -> ErrorCode:",
            '    """Describe *code*; unknown codes get a placeholder row (not retriable)."""',
            "    info = ERROR_CODES.get(code)",
            "    if info is None:",
            '        return ErrorCode(code, "UNKNOWN_ERROR_CODE", False, f"unknown error code {code}")',
            "    return info",
            "",
            "",
            "def error_for_code(code: int) -> type[BrokerError]:",
            '    """The exception class for a non-zero *code* (``UnknownErrorCodeError`` if unknown).',
            "",
            "    Raises :class:`LocalProtocolError` for 0, which means success.",
            '    """',
            "    if code == 0:",
            '        raise LocalProtocolError("error code 0 means no error")',
            "    return _CLASSES.get(code, UnknownErrorCodeError)",
            "",
            "",
            "def exception_for_code(code: int, message: str | None = None) -> BrokerError:",
            '    """An exception instance for a non-zero *code*, keeping unknown codes."""',
            "    cls = error_for_code(code)",
            "    if cls is UnknownErrorCodeError:",
            '        return cls(message or f"unknown error code {code}", code=code)',
            "    return cls(message)",
            "",
            "",
            "def raise_for_code(code: int, message: str | None = None) -> None:",
            '    """Do nothing for 0; otherwise raise the matching :class:`BrokerError`."""',
            "    if code:",
            "        raise exception_for_code(code, message)",
            "",
        ]
    )
    names = [
        "BrokerError",
        "ERROR_CODES",
        "ErrorCode",
        "RetriableBrokerError",
        "UnknownErrorCodeError",
        "error_code",
        "error_for_code",
        "exception_for_code",
        "raise_for_code",
    ] + [c for _, c in classes]
    all_block = ["__all__ = ["] + [f"    {n!r}," for n in sorted(names)] + ["]", "", ""]
    idx = L.index("@dataclass(frozen=True)")
    L[idx:idx] = all_block
    return "\n".join(L)


def generate(spec_dir: Path, out_dir: Path) -> dict[str, str]:
    """Return {relative path: content} of every generated file."""
    msgs: dict[str, MessageDef] = {}
    for path in sorted(spec_dir.glob("*.json")):
        m = load_message(path)
        msgs[m.name] = m
    files: dict[str, str] = {}
    requests = sorted(
        (m for m in msgs.values() if m.kind == "request"), key=lambda m: m.api_key or 0
    )
    registry_apis = []
    schema: list[str] = []
    for req in requests:
        api = req.name[: -len("Request")]
        resp = msgs[api + "Response"]
        assert resp.api_key == req.api_key
        module = snake(api)
        files[f"_messages/{module}.py"] = generate_module(
            [req, resp], f"{api} (API key {req.api_key}): request and response classes."
        )
        schema.extend(schema_entries([req, resp], module))
        registry_apis.append((req.api_key, api, module, req, resp))
    hdrs = [msgs["RequestHeader"], msgs["ResponseHeader"]]
    files["_messages/headers.py"] = generate_module(hdrs, "Request and response headers.")
    # The classic consumer protocol's embedded schemas (the bytes a consumer
    # puts in JoinGroup metadata and SyncGroup assignments); each is preceded
    # on the wire by an int16 version that the caller reads and writes.
    consumer = [msgs["ConsumerProtocolSubscription"], msgs["ConsumerProtocolAssignment"]]
    files["_messages/consumer_protocol.py"] = generate_module(
        consumer, "Consumer group protocol data: subscription and assignment (no API key)."
    )
    schema.extend(schema_entries(hdrs, "headers"))

    R = [
        HEADER.rstrip("\n"),
        '"""Registry of the generated message modules (imported lazily by ``kafka_sansio.protocol``)."""',
        "",
        "from __future__ import annotations",
        "",
        "#: api_key -> (API name, module name, request class, response class)",
        "APIS: dict[int, tuple[str, str, str, str]] = {",
    ]
    for key, api, module, req, resp in registry_apis:
        R.append(f"    {key}: ({api!r}, {module!r}, {req.name!r}, {resp.name!r}),")
    R.append("}")
    R.append("")
    R.append(
        "#: api_key -> (min version, max version, max stable version, first flexible version or -1)"
    )
    R.append("VERSIONS: dict[int, tuple[int, int, int, int]] = {")
    for key, _api, _module, req, _resp in registry_apis:
        R.append(
            f"    {key}: ({req.valid.lo}, {req.valid.hi}, {stable_max(req)}, {first_flexible(req)}),"
        )
    R.append("}")
    R.append("")
    R.append("#: api_key -> first flexible version of the response (-1 if none)")
    R.append("RESPONSE_FIRST_FLEXIBLE: dict[int, int] = {")
    for key, _api, _module, _req, resp in registry_apis:
        R.append(f"    {key}: {first_flexible(resp)},")
    R.append("}")
    R.append("")
    R.append("#: API name -> api_key")
    R.append("API_KEYS: dict[str, int] = {")
    for key, api, *_ in sorted(registry_apis, key=lambda r: r[1]):
        R.append(f"    {api!r}: {key},")
    R.append("}")
    R.append("")
    files["_messages/__init__.py"] = "\n".join(R)

    index: dict[str, list[str]] = {}
    for _key, _api, module, req, resp in registry_apis:
        for m in (req, resp):
            for sd in m.structs:
                index.setdefault(sd.classname, []).append(module)
    for m in hdrs:
        for sd in m.structs:
            index.setdefault(sd.classname, []).append("headers")
    X = [
        HEADER.rstrip("\n"),
        '"""Generated class name -> the message modules defining a class of that name."""',
        "",
        "from __future__ import annotations",
        "",
        "CLASSES: dict[str, tuple[str, ...]] = {",
    ]
    for name in sorted(index):
        mods = tuple(sorted(set(index[name])))
        X.append(f"    {name!r}: {mods!r},")
    X.append("}")
    X.append("")
    files["_messages/_index.py"] = "\n".join(X)

    files["testing/_schema.py"] = "\n".join(
        [
            HEADER.rstrip("\n"),
            '"""Field table of every generated structure, for the hypothesis strategies.',
            "",
            "(module, class) -> fields; each field is (attribute, type, is_array,",
            "struct class or None, versions, nullable versions, tagged versions, tag,",
            f"flexible-versions override or None); version ranges are (lo, hi) with hi={INF} open.",
            '"""',
            "",
            "from __future__ import annotations",
            "",
            "from typing import Any",
            "",
            "SCHEMA: dict[tuple[str, str], tuple[tuple[Any, ...], ...]] = {",
            *schema,
            "}",
            "",
        ]
    )
    errors_tsv = spec_dir.parent / "errors.tsv"
    files["errors.py"] = generate_errors(errors_tsv)
    return files


def default_spec_dir() -> Path:
    env = os.environ.get("KAFKA_PROTOCOL_DIR")
    if env:
        return Path(env) / "message"
    return ROOT.parent / "shared" / "kafka-protocol" / "message"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec-dir", type=Path, default=default_spec_dir())
    parser.add_argument("--out-dir", type=Path, default=ROOT / "kafka_sansio")
    parser.add_argument("--check", action="store_true", help="fail if the output would change")
    args = parser.parse_args(argv)
    files = generate(args.spec_dir, args.out_dir)
    changed = []
    for rel, content in sorted(files.items()):
        target = args.out_dir / rel
        old = target.read_text(encoding="utf-8") if target.exists() else None
        if old != content:
            changed.append(rel)
            if not args.check:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content, encoding="utf-8")
    if not args.check:
        # remove stale generated modules
        msg_dir = args.out_dir / "_messages"
        expected = {Path(r).name for r in files if r.startswith("_messages/")}
        for p in sorted(msg_dir.glob("*.py")):
            if p.name not in expected and p.read_text(encoding="utf-8").startswith(HEADER):
                p.unlink()
                changed.append(f"_messages/{p.name} (removed)")
    for rel in changed:
        print(("would change " if args.check else "wrote ") + rel)
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
