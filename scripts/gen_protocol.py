#!/usr/bin/env python3
"""Generates Brook's Swift message types from protocol/definitions/*.def.

Each definition describes one Kafka API once (see protocol/README.md); this script emits one Swift
file per API with request and response structs whose encode/decode cover every version, plus
`APIKey.swift` (the key table) and `AnyRequest.swift` (decode dispatch by key).

Definitions under protocol/definitions/embedded/ describe formats carried *inside* other data
(the consumer protocol in JoinGroup/SyncGroup, the `__consumer_offsets` records): no API key, an
int16 version at the start of the data. They are generated into Generated/Embedded/.

  scripts/gen_protocol.py          regenerate Sources/BrookProtocol/Messages/Generated
  scripts/gen_protocol.py --check  fail if the committed files differ from a fresh generation
"""
import os
import re
import sys
import tempfile
import filecmp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFS = os.environ.get("BROOK_DEFS", os.path.join(ROOT, "protocol", "definitions"))
OUT = os.environ.get("BROOK_GEN_OUT", os.path.join(ROOT, "Sources", "BrookProtocol", "Messages", "Generated"))

PRIMS = {
    "bool": ("Bool", "false", 1),
    "int8": ("Int8", "0", 1),
    "int16": ("Int16", "0", 2),
    "int32": ("Int32", "0", 4),
    "int64": ("Int64", "0", 8),
    "uint16": ("UInt16", "0", 2),
    "uint32": ("UInt32", "0", 4),
    "float64": ("Double", "0", 8),
    "uuid": ("KafkaUUID", ".zero", 16),
    "string": ("String", '""', 1),
    "bytes": ("ByteBuffer", "ByteBuffer()", 1),
    "records": ("ByteBuffer", "ByteBuffer()", 1),
}

SWIFT_KEYWORDS = {
    "default", "protocol", "operator", "internal", "public", "private", "static", "class",
    "struct", "enum", "func", "var", "let", "in", "is", "as", "repeat", "where", "return",
    "throw", "throws", "true", "false", "nil", "self", "Self", "super", "init", "import",
    "extension", "subscript", "typealias", "associatedtype", "case", "switch", "if", "else",
    "for", "while", "do", "break", "continue", "fallthrough", "guard", "defer", "try", "catch",
    "rethrows", "inout", "some", "any", "Type", "deinit", "fileprivate", "open",
}


class DefError(Exception):
    pass


def parse_range(text, where):
    """'v3+' -> (3, None); 'v3-5' -> (3, 5); 'v4' -> (4, 4); 'none' -> None."""
    if text == "none":
        return None
    m = re.fullmatch(r"v?(\d+)(\+|-(\d+))?", text)
    if not m:
        raise DefError(f"{where}: bad version range {text!r}")
    lo = int(m.group(1))
    if m.group(2) == "+":
        return (lo, None)
    if m.group(3) is not None:
        return (lo, int(m.group(3)))
    return (lo, lo)


class Field:
    def __init__(self, name, typ, where):
        self.name = name
        self.where = where
        self.is_array = typ.startswith("[")
        inner = typ[1:-1] if self.is_array else typ
        if self.is_array and not typ.endswith("]"):
            raise DefError(f"{where}: bad array type {typ}")
        self.inner = inner
        self.is_struct = inner not in PRIMS
        if self.is_struct and not inner[:1].isupper():
            raise DefError(f"{where}: unknown type {inner}")
        self.versions = None  # None = all
        self.nullable = None
        self.tag = None
        self.default = None
        self.children = None  # list of Field when the struct is defined here
        self.absent_default = False  # embedded only: may be missing at the end of the data

    @property
    def swift_name(self):
        n = self.name[0].lower() + self.name[1:]
        # keep leading acronyms readable: "ISRNodes" -> "isrNodes"
        m = re.match(r"^([a-z])([A-Z]+)([A-Z][a-z].*)$", n)
        if m:
            n = m.group(1) + m.group(2).lower() + m.group(3)
        return f"`{n}`" if n in SWIFT_KEYWORDS else n

    @property
    def bare_name(self):
        return self.swift_name.strip("`")


class Struct:
    def __init__(self, name, fields):
        self.name = name
        self.fields = fields


class Api:
    def __init__(self):
        self.name = None
        self.key = None
        self.versions = None
        self.flexible = None
        self.request = []
        self.response = []
        self.common = {}  # name -> Struct
        self.embedded = False  # a `message` (embedded format), not a request/response API
        self.write = None  # embedded: the version a new value is written at
        self.newer_latest = False  # embedded: newer versions are read with the latest layout
        self.empty_default = False  # embedded: empty data reads as the default value at the lowest version


def parse_file(path):
    api = Api()
    lines = []
    with open(path) as f:
        for i, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].rstrip()
            if line.strip():
                lines.append((i, line))
    where = os.path.basename(path)
    idx = 0
    current = None  # list to append top-level fields to
    stack = []  # (indent, list) for nesting

    def add_field(indent, text, lineno):
        w = f"{where}:{lineno}"
        parts = text.split()
        if len(parts) < 2:
            raise DefError(f"{w}: field needs a name and a type")
        fld = Field(parts[0], parts[1], w)
        for p in parts[2:]:
            if p.startswith("nullable="):
                fld.nullable = parse_range(p[len("nullable="):], w)
            elif p.startswith("tag="):
                fld.tag = int(p[4:])
            elif p.startswith("default="):
                fld.default = p[len("default="):]
            elif p == "absent=default":
                fld.absent_default = True
            elif p.startswith("v") or p == "none":
                fld.versions = parse_range(p, w)
            else:
                raise DefError(f"{w}: unknown attribute {p}")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if not stack:
            raise DefError(f"{w}: field outside request/response/struct")
        parent_indent, target, owner = stack[-1]
        if indent != parent_indent + 2:
            raise DefError(f"{w}: indentation must grow by two spaces")
        target.append(fld)
        if owner is not None and owner.children is None:
            owner.children = target
        if fld.is_struct:
            stack.append((indent, [], fld))
        return fld

    for lineno, line in lines:
        indent = len(line) - len(line.lstrip(" "))
        text = line.strip()
        if indent == 0:
            parts = text.split()
            if parts[0] == "message":
                api.embedded = True
                api.name = parts[1]
                api.key = -1
                for p in parts[2:]:
                    k, v = p.split("=", 1)
                    if k == "versions":
                        api.versions = parse_range(v, where)
                    elif k == "flexible":
                        r = parse_range(v, where)
                        api.flexible = r[0] if r else None
                    elif k == "write":
                        api.write = int(v)
                    elif k == "newer" and v == "latest":
                        api.newer_latest = True
                    elif k == "empty" and v == "default":
                        api.empty_default = True
                    else:
                        raise DefError(f"{where}:{lineno}: unknown message attribute {p}")
            elif parts[0] == "fields":
                if not api.embedded:
                    raise DefError(f"{where}:{lineno}: `fields` belongs to a `message`")
                stack = [(0, api.request, None)]
            elif parts[0] == "api":
                api.name = parts[1]
                for p in parts[2:]:
                    k, v = p.split("=", 1)
                    if k == "key":
                        api.key = int(v)
                    elif k == "versions":
                        api.versions = parse_range(v, where)
                    elif k == "flexible":
                        r = parse_range(v, where)
                        api.flexible = r[0] if r else None
                    else:
                        raise DefError(f"{where}:{lineno}: unknown api attribute {k}")
            elif parts[0] in ("request", "response"):
                target = api.request if parts[0] == "request" else api.response
                stack = [(0, target, None)]
            elif parts[0] == "struct":
                s = Struct(parts[1], [])
                api.common[parts[1]] = s
                holder = Field(parts[1], parts[1], where)
                holder.children = s.fields
                stack = [(0, s.fields, holder)]
            else:
                raise DefError(f"{where}:{lineno}: unknown directive {parts[0]}")
        else:
            fld = add_field(indent, text, lineno)
            if fld.is_struct:
                # children collected into the list pushed on the stack
                fld.children = stack[-1][1]
    # A struct field that got no children refers to a struct defined elsewhere.
    for body in (api.request, api.response):
        fix_children(body)
    for s in api.common.values():
        fix_children(s.fields)
    if api.name is None or api.key is None or api.versions is None:
        raise DefError(f"{where}: missing api or message line")
    if api.embedded and api.write is None:
        api.write = api.versions[1]
    return api


def fix_children(fields):
    for f in fields:
        if f.is_struct and f.children is not None and len(f.children) == 0:
            f.children = None
        if f.children:
            fix_children(f.children)


def collect_structs(fields, api, out, where):
    """Flattens every struct used by `fields` into out (name -> Struct)."""
    for f in fields:
        if not f.is_struct:
            continue
        if f.children is not None:
            if f.inner in out and out[f.inner].fields is not f.children:
                # The same name defined twice in one body: the later one must be identical in shape.
                pass
            else:
                out[f.inner] = Struct(f.inner, f.children)
            collect_structs(f.children, api, out, where)
        else:
            if f.inner in api.common:
                if f.inner not in out:
                    out[f.inner] = api.common[f.inner]
                    collect_structs(api.common[f.inner].fields, api, out, where)
            elif f.inner not in out:
                # may be defined later in the same body; resolved in a second pass
                out.setdefault("__pending__", Struct("__pending__", [])).fields.append(f)


def resolve_structs(fields, api, where):
    out = {}
    collect_structs(fields, api, out, where)
    pending = out.pop("__pending__", None)
    if pending:
        for f in pending.fields:
            if f.inner not in out:
                raise DefError(f"{where}: struct {f.inner} is used but never defined")
    return out


# ---------------------------------------------------------------- Swift emission helpers

def vcond(rng, api_versions):
    """Swift condition for `version` being in rng; None when always true within the API."""
    if rng is None:
        return None
    lo, hi = rng
    alo, ahi = api_versions
    parts = []
    if lo > alo:
        parts.append(f"version >= {lo}")
    if hi is not None and hi < ahi:
        parts.append(f"version <= {hi}")
    return " && ".join(parts) if parts else None


def never(rng):
    return rng is not None and rng[1] is not None and rng[1] < rng[0]


def is_optional(f):
    return f.nullable is not None


def swift_type(f):
    base = f.inner if f.is_struct else PRIMS[f.inner][0]
    t = f"[{base}]" if f.is_array else base
    return t + "?" if is_optional(f) else t


def default_value(f):
    if f.default is not None:
        d = f.default
        if d == "null":
            return "nil" if is_optional(f) else default_value_plain(f)
        if f.inner == "string":
            return d if d.startswith('"') else f'"{d}"'
        if f.inner == "bool":
            return d
        if f.is_array or f.is_struct:
            return default_value_plain(f)
        if d.startswith("0x"):
            return str(int(d, 16))
        return d
    if is_optional(f):
        return "nil"
    return default_value_plain(f)


def default_value_plain(f):
    if f.is_array:
        return "[]"
    if f.is_struct:
        return f"{f.inner}()"
    return PRIMS[f.inner][1]


def write_prim(inner, expr, buf="buf"):
    if inner in ("int8", "int16", "int32", "int64", "uint16", "uint32"):
        return f"{buf}.writeInteger({expr})"
    if inner == "bool":
        return f"{buf}.writeKafkaBool({expr})"
    if inner == "float64":
        return f"{buf}.writeKafkaFloat64({expr})"
    if inner == "uuid":
        return f"{buf}.writeKafkaUUID({expr})"
    if inner == "string":
        return f"{buf}.writeKafkaString({expr}, compact: flexible)"
    if inner in ("bytes", "records"):
        return f"{buf}.writeKafkaBytes({expr}, compact: flexible)"
    raise AssertionError(inner)


# Responses are decoded leniently: a null where the schema says non-nullable string or bytes reads
# as empty. librdkafka's mock cluster writes null Host (FindCoordinator), ProtocolName (JoinGroup)
# and Assignment (SyncGroup) in error responses; the error code is what matters there. Requests
# (what the broker decodes) stay strict.
LENIENT_NULLS = False


def read_prim(inner, nullable_cond, fname, buf="buf"):
    """Expression reading one value; nullable_cond is a Swift bool expression or 'true'/'false'."""
    if inner in ("int8", "int16", "int32", "int64", "uint16", "uint32"):
        return f'try {buf}.readKafkaInt({PRIMS[inner][0]}.self, "{fname}")'
    if inner == "bool":
        return f'try {buf}.readKafkaBool("{fname}")'
    if inner == "float64":
        return f'try {buf}.readKafkaFloat64("{fname}")'
    if inner == "uuid":
        return f"try {buf}.readKafkaUUID()"
    if inner == "string":
        if nullable_cond == "false" and LENIENT_NULLS:
            return f'(try {buf}.readKafkaNullableString(compact: flexible, "{fname}") ?? "")'
        if nullable_cond == "false":
            return f'try {buf}.readKafkaString(compact: flexible, "{fname}")'
        if nullable_cond == "true":
            return f'try {buf}.readKafkaNullableString(compact: flexible, "{fname}")'
        if LENIENT_NULLS:
            return f'(try {buf}.readKafkaNullableString(compact: flexible, "{fname}") ?? ({nullable_cond} ? nil : ""))'
        return (f'({nullable_cond} ? try {buf}.readKafkaNullableString(compact: flexible, "{fname}") '
                f': try {buf}.readKafkaString(compact: flexible, "{fname}"))')
    if inner in ("bytes", "records"):
        if nullable_cond == "false" and LENIENT_NULLS:
            return f'(try {buf}.readKafkaNullableBytes(compact: flexible, "{fname}") ?? ByteBuffer())'
        if nullable_cond == "false":
            return f'try {buf}.readKafkaBytes(compact: flexible, "{fname}")'
        if nullable_cond == "true":
            return f'try {buf}.readKafkaNullableBytes(compact: flexible, "{fname}")'
        if LENIENT_NULLS:
            return f'(try {buf}.readKafkaNullableBytes(compact: flexible, "{fname}") ?? ({nullable_cond} ? nil : ByteBuffer()))'
        return (f'({nullable_cond} ? try {buf}.readKafkaNullableBytes(compact: flexible, "{fname}") '
                f': try {buf}.readKafkaBytes(compact: flexible, "{fname}"))')
    raise AssertionError(inner)


def nullable_cond(f, api_versions):
    if f.nullable is None:
        return "false"
    c = vcond(f.nullable, api_versions)
    return c if c else "true"


def emit_encode_field(f, api_versions, out, ind, buf="buf"):
    """Appends Swift lines writing self.<f> to out."""
    name = f"self.{f.swift_name}"
    opt = is_optional(f)
    if f.is_array:
        elem_write = (f"e.encode(into: &{buf}, version: version, flexible: flexible)" if f.is_struct
                      else write_prim(f.inner, "e", buf))
        if opt:
            out.append(f"{ind}if let arr = {name} {{")
            out.append(f"{ind}    {buf}.writeKafkaLength(arr.count, compact: flexible, wide: true)")
            out.append(f"{ind}    for e in arr {{ {elem_write} }}")
            out.append(f"{ind}}} else {{")
            out.append(f"{ind}    {buf}.writeKafkaLength({'-1' if True else '0'}, compact: flexible, wide: true)")
            out.append(f"{ind}}}")
        else:
            out.append(f"{ind}{buf}.writeKafkaLength({name}.count, compact: flexible, wide: true)")
            out.append(f"{ind}for e in {name} {{ {elem_write} }}")
        return
    if f.is_struct:
        if opt:
            nc = nullable_cond(f, api_versions)
            out.append(f"{ind}if let s = {name} {{")
            out.append(f"{ind}    if {nc} {{ {buf}.writeInteger(Int8(1)) }}")
            out.append(f"{ind}    s.encode(into: &{buf}, version: version, flexible: flexible)")
            out.append(f"{ind}}} else if {nc} {{")
            out.append(f"{ind}    {buf}.writeInteger(Int8(-1))")
            out.append(f"{ind}}} else {{")
            out.append(f"{ind}    {f.inner}().encode(into: &{buf}, version: version, flexible: flexible)")
            out.append(f"{ind}}}")
        else:
            out.append(f"{ind}{name}.encode(into: &{buf}, version: version, flexible: flexible)")
        return
    if opt and f.inner not in ("string", "bytes", "records"):
        out.append(f"{ind}{write_prim(f.inner, f'{name} ?? {default_value_plain(f)}', buf)}")
    elif opt and f.nullable != f.versions and vcond(f.nullable, api_versions) is not None:
        # Null is representable only in some versions: send the empty value elsewhere.
        nc = vcond(f.nullable, api_versions)
        out.append(f"{ind}{write_prim(f.inner, f'({nc} ? {name} : ({name} ?? {default_value_plain(f)}))', buf)}")
    else:
        out.append(f"{ind}{write_prim(f.inner, name, buf)}")


def emit_decode_field(f, api_versions, out, ind, buf="buf"):
    name = f"self.{f.swift_name}"
    opt = is_optional(f)
    nc = nullable_cond(f, api_versions)
    if f.is_array:
        minb = 1 if f.is_struct else PRIMS[f.inner][2]
        out.append(f'{ind}do {{')
        out.append(f'{ind}    let n = try {buf}.readKafkaLength(compact: flexible, wide: true, field: "{f.name}", minBytesPerElement: {minb})')
        if opt:
            out.append(f'{ind}    if n < 0 {{')
            out.append(f'{ind}        if !({nc}) {{ throw ProtocolError.unexpectedNull(field: "{f.name}") }}')
            out.append(f'{ind}        {name} = nil')
            out.append(f'{ind}    }} else {{')
            inner_ind = ind + "        "
        else:
            out.append(f'{ind}    if n < 0 {{ throw ProtocolError.unexpectedNull(field: "{f.name}") }}')
            out.append(f'{ind}    do {{')
            inner_ind = ind + "        "
        elem_t = f.inner if f.is_struct else PRIMS[f.inner][0]
        out.append(f"{inner_ind}var arr = [{elem_t}]()")
        out.append(f"{inner_ind}arr.reserveCapacity(n)")
        out.append(f"{inner_ind}for _ in 0..<n {{")
        if f.is_struct:
            out.append(f"{inner_ind}    var e = {f.inner}()")
            out.append(f"{inner_ind}    try e.decode(from: &{buf}, version: version, flexible: flexible)")
            out.append(f"{inner_ind}    arr.append(e)")
        else:
            out.append(f"{inner_ind}    arr.append({read_prim(f.inner, 'false', f.name, buf)})")
        out.append(f"{inner_ind}}}")
        out.append(f"{inner_ind}{name} = arr")
        out.append(f"{ind}    }}")
        out.append(f"{ind}}}")
        return
    if f.is_struct:
        if opt:
            out.append(f"{ind}if {nc} {{")
            out.append(f'{ind}    let marker = try {buf}.readKafkaInt(Int8.self, "{f.name}")')
            out.append(f"{ind}    if marker < 0 {{")
            out.append(f"{ind}        {name} = nil")
            out.append(f"{ind}    }} else {{")
            out.append(f"{ind}        var s = {f.inner}()")
            out.append(f"{ind}        try s.decode(from: &{buf}, version: version, flexible: flexible)")
            out.append(f"{ind}        {name} = s")
            out.append(f"{ind}    }}")
            out.append(f"{ind}}} else {{")
            out.append(f"{ind}    var s = {f.inner}()")
            out.append(f"{ind}    try s.decode(from: &{buf}, version: version, flexible: flexible)")
            out.append(f"{ind}    {name} = s")
            out.append(f"{ind}}}")
        else:
            out.append(f"{ind}try {name}.decode(from: &{buf}, version: version, flexible: flexible)")
        return
    if f.inner in ("string", "bytes", "records"):
        out.append(f"{ind}{name} = {read_prim(f.inner, nc if opt else 'false', f.name, buf)}")
    else:
        out.append(f"{ind}{name} = {read_prim(f.inner, 'false', f.name, buf)}")


def emit_memberwise_init(fields, ind, out, leading=()):
    """`public init(a: A = default, …)` over the stored fields; leading = extra (name, type, default)."""
    params = list(leading) + [(f.bare_name, swift_type(f), default_value(f)) for f in fields if not never(f.versions)]
    if not params:
        return
    out.append(f"{ind}public init(")
    for k, (n, t, d) in enumerate(params):
        out.append(f"{ind}    {n}: {t} = {d}{',' if k < len(params) - 1 else ''}")
    out.append(f"{ind}) {{")
    for n, _, _ in params:
        out.append(f"{ind}    self.{n} = {n}")
    out.append(f"{ind}}}")
    out.append("")


def emit_struct_body(name, fields, api, ind, out, top_level, conformance, memberwise=False):
    """Emits a struct with its stored properties and codec."""
    av = api.versions
    out.append(f"{ind}public struct {name}: {conformance} {{")
    i2 = ind + "    "
    for f in fields:
        if never(f.versions):
            continue
        out.append(f"{i2}public var {f.swift_name}: {swift_type(f)} = {default_value(f)}")
    out.append(f"{i2}/// Tagged fields this version of Brook does not know, kept so re-encoding preserves them.")
    out.append(f"{i2}public var unknownTaggedFields: [TaggedField] = []")
    out.append("")
    out.append(f"{i2}public init() {{}}")
    out.append("")
    if memberwise:
        emit_memberwise_init(fields, i2, out)
    # encode
    out.append(f"{i2}public func encode(into buf: inout ByteBuffer, version: Int16, flexible: Bool) {{")
    body = []
    tagged = sorted([f for f in fields if f.tag is not None and not never(f.versions)], key=lambda f: f.tag)
    for f in fields:
        if f.tag is not None or never(f.versions):
            continue
        c = vcond(f.versions, av)
        if c:
            body.append(f"{i2}    if {c} {{")
            emit_encode_field(f, av, body, i2 + "        ")
            body.append(f"{i2}    }}")
        else:
            emit_encode_field(f, av, body, i2 + "    ")
    body.append(f"{i2}    guard flexible else {{ return }}")
    if tagged:
        body.append(f"{i2}    var known = 0")
        for f in tagged:
            c = vcond(f.versions, av)
            cond = f"self.{f.swift_name} != {default_value(f)}"
            if c:
                cond = f"{c} && {cond}"
            body.append(f"{i2}    let has_{f.bare_name} = {cond}")
            body.append(f"{i2}    if has_{f.bare_name} {{ known += 1 }}")
        body.append(f"{i2}    buf.writeUnsignedVarint(UInt32(known + unknownTaggedFields.count))")
        for f in tagged:
            body.append(f"{i2}    if has_{f.bare_name} {{")
            body.append(f"{i2}        buf.writeTaggedField(tag: {f.tag}) {{ tb in")
            emit_encode_field(f, av, body, i2 + "            ", buf="tb")
            body.append(f"{i2}        }}")
            body.append(f"{i2}    }}")
    else:
        body.append(f"{i2}    buf.writeUnsignedVarint(UInt32(unknownTaggedFields.count))")
    body.append(f"{i2}    for t in unknownTaggedFields {{")
    body.append(f"{i2}        buf.writeUnsignedVarint(t.tag)")
    body.append(f"{i2}        buf.writeUnsignedVarint(UInt32(t.data.readableBytes))")
    body.append(f"{i2}        buf.writeImmutableBuffer(t.data)")
    body.append(f"{i2}    }}")
    out.extend(body)
    out.append(f"{i2}}}")
    out.append("")
    # decode
    out.append(f"{i2}public mutating func decode(from buf: inout ByteBuffer, version: Int16, flexible: Bool) throws {{")
    body = []
    for f in fields:
        if f.tag is not None or never(f.versions):
            continue
        c = vcond(f.versions, av)
        if f.absent_default:
            # Older writers left it out: missing at the end of the data, it keeps its default.
            c = f"{c} && buf.readableBytes > 0" if c else "buf.readableBytes > 0"
        if c:
            body.append(f"{i2}    if {c} {{")
            emit_decode_field(f, av, body, i2 + "        ")
            body.append(f"{i2}    }}")
        else:
            emit_decode_field(f, av, body, i2 + "    ")
    body.append(f"{i2}    guard flexible else {{ return }}")
    if tagged:
        body.append(f"{i2}    self.unknownTaggedFields = try buf.readTaggedFields {{ tag, tb in")
        body.append(f"{i2}        switch tag {{")
        for f in tagged:
            c = vcond(f.versions, av)
            where = f" where {c}" if c else ""
            body.append(f"{i2}        case {f.tag}{where}:")
            emit_decode_field(f, av, body, i2 + "            ", buf="tb")
            body.append(f"{i2}            return true")
        body.append(f"{i2}        default:")
        body.append(f"{i2}            return false")
        body.append(f"{i2}        }}")
        body.append(f"{i2}    }}")
    else:
        body.append(f"{i2}    self.unknownTaggedFields = try buf.readTaggedFields {{ _, _ in false }}")
    out.extend(body)
    out.append(f"{i2}}}")
    out.append("")
    emit_arbitrary(name, fields, api, i2, out)


def arb_prim(inner):
    if inner in ("int8", "int16", "int32", "int64", "uint16", "uint32"):
        t = PRIMS[inner][0]
        return f"{t}.random(in: {t}.min...{t}.max, using: &rng)"
    if inner == "bool":
        return "Bool.random(using: &rng)"
    if inner == "float64":
        return "Double(Int32.random(in: Int32.min...Int32.max, using: &rng)) / 7"
    if inner == "uuid":
        return "KafkaUUID(high: UInt64.random(in: 0...UInt64.max, using: &rng), low: UInt64.random(in: 0...UInt64.max, using: &rng))"
    if inner == "string":
        return "_arbitraryString(using: &rng)"
    return "_arbitraryBytes(using: &rng)"


def emit_arbitrary(name, fields, api, ind, out):
    """A random value holding only what `version` can carry: round-trip tests and fuzz seeds."""
    av = api.versions
    out.append(f"{ind}public static func arbitrary(version: Int16, using rng: inout some RandomNumberGenerator) -> {name} {{")
    out.append(f"{ind}    var v = {name}()")
    for f in fields:
        if never(f.versions):
            continue
        c = vcond(f.versions, av)
        if f.tag is not None:
            pass
        cond = c if c else "true"
        nc = nullable_cond(f, av)
        if f.is_array:
            elem = f"{f.inner}.arbitrary(version: version, using: &rng)" if f.is_struct else arb_prim(f.inner)
            val = f"(0..<Int.random(in: 0...2, using: &rng)).map {{ _ in {elem} }}"
        elif f.is_struct:
            val = f"{f.inner}.arbitrary(version: version, using: &rng)"
        else:
            val = arb_prim(f.inner)
        out.append(f"{ind}    if {cond} {{")
        if is_optional(f):
            out.append(f"{ind}        v.{f.swift_name} = ({nc}) && Int.random(in: 0..<4, using: &rng) == 0 ? nil : {val}")
        else:
            out.append(f"{ind}        v.{f.swift_name} = {val}")
        out.append(f"{ind}    }}")
    out.append(f"{ind}    return v")
    out.append(f"{ind}}}")


def emit_message(api, kind, fields, out):
    global LENIENT_NULLS
    LENIENT_NULLS = kind == "Response"
    name = f"{api.name}{kind}"
    structs = resolve_structs(fields, api, f"{api.name} {kind}")
    proto = "KafkaRequestMessage" if kind == "Request" else "KafkaResponseMessage"
    out.append(f"public struct {name}: {proto} {{")
    i = "    "
    out.append(f"{i}public static let apiKey: APIKey = .{lower_first(api.name)}")
    if kind == "Request":
        out.append(f"{i}public typealias Response = {api.name}Response")
    out.append("")
    av = api.versions
    for f in fields:
        if never(f.versions):
            continue
        out.append(f"{i}public var {f.swift_name}: {swift_type(f)} = {default_value(f)}")
    out.append(f"{i}/// Tagged fields this version of Brook does not know, kept so re-encoding preserves them.")
    out.append(f"{i}public var unknownTaggedFields: [TaggedField] = []")
    out.append("")
    out.append(f"{i}public init() {{}}")
    out.append("")
    # reuse struct emitter for the codec by emitting a nested private body: simpler to inline
    tmp = []
    emit_struct_body(name, fields, api, "", tmp, True, "Hashable, Sendable")
    # take everything from the first 'public func encode' on, re-indented
    start = next(k for k, l in enumerate(tmp) if "public func encode" in l)
    for l in tmp[start:]:
        out.append(l)
    out.append("")
    for sname in sorted(structs):
        emit_struct_body(sname, structs[sname].fields, api, i, out, False, "Hashable, Sendable")
        out.append(f"{i}}}")
        out.append("")
    out.append("}")
    out.append("")


def emit_embedded(api, out):
    """An embedded format: one struct that reads and writes its own int16 version prefix."""
    global LENIENT_NULLS
    LENIENT_NULLS = False
    name = api.name
    fields = api.request
    structs = resolve_structs(fields, api, name)
    lo, hi = api.versions
    i = "    "
    out.append(f"public struct {name}: KafkaEmbeddedMessage {{")
    out.append(f"{i}public static let versions: ClosedRange<Int16> = {lo}...{hi}")
    out.append(f"{i}public static let flexibleFrom: Int16? = {'nil' if api.flexible is None else api.flexible}")
    out.append(f"{i}public static let readsNewerVersions = {'true' if api.newer_latest else 'false'}")
    out.append(f"{i}public static let emptyIsDefault = {'true' if api.empty_default else 'false'}")
    out.append("")
    out.append(f"{i}/// The version at the start of the data: the one it was read at, or the one it is written at.")
    out.append(f"{i}public var version: Int16 = {api.write}")
    for f in fields:
        if never(f.versions):
            continue
        out.append(f"{i}public var {f.swift_name}: {swift_type(f)} = {default_value(f)}")
    out.append(f"{i}/// Tagged fields this version of Brook does not know, kept so re-encoding preserves them.")
    out.append(f"{i}public var unknownTaggedFields: [TaggedField] = []")
    out.append("")
    out.append(f"{i}public init() {{}}")
    out.append("")
    emit_memberwise_init(fields, i, out, leading=[("version", "Int16", str(api.write))])
    tmp = []
    emit_struct_body(name, fields, api, "", tmp, True, "Hashable, Sendable")
    start = next(k for k, l in enumerate(tmp) if "public func encode" in l)
    for l in tmp[start:]:
        out.append(l)
        if l.strip() == f"var v = {name}()":
            out.append(l.replace(f"var v = {name}()", "v.version = version"))
    out.append("")
    for sname in sorted(structs):
        emit_struct_body(sname, structs[sname].fields, api, i, out, False, "Hashable, Sendable", memberwise=True)
        out.append(f"{i}}}")
        out.append("")
    out.append("}")
    out.append("")


def render_embedded(api):
    out = [
        "// Generated by scripts/gen_protocol.py from protocol/definitions/embedded — do not edit.",
        "// swift-format-ignore-file",
        "import NIOCore",
        "",
    ]
    emit_embedded(api, out)
    return "\n".join(out).rstrip() + "\n"


def lower_first(s):
    return s[0].lower() + s[1:]


def render_api(api):
    out = [
        "// Generated by scripts/gen_protocol.py from protocol/definitions — do not edit.",
        "// swift-format-ignore-file",
        "import NIOCore",
        "",
    ]
    emit_message(api, "Request", api.request, out)
    emit_message(api, "Response", api.response, out)
    return "\n".join(out).rstrip() + "\n"


def render_keys(apis):
    out = [
        "// Generated by scripts/gen_protocol.py from protocol/definitions — do not edit.",
        "",
        "/// Every Kafka API Brook implements, with the versions it supports.",
        "public enum APIKey: Int16, Sendable, CaseIterable, CustomStringConvertible {",
    ]
    for a in apis:
        out.append(f"    case {lower_first(a.name)} = {a.key}")
    out.append("")
    out.append("    /// Versions Brook encodes and decodes.")
    out.append("    public var versions: ClosedRange<Int16> {")
    out.append("        switch self {")
    for a in apis:
        out.append(f"        case .{lower_first(a.name)}: return {a.versions[0]}...{a.versions[1]}")
    out.append("        }")
    out.append("    }")
    out.append("")
    out.append("    /// First flexible version (compact encodings and tagged fields), or nil if none.")
    out.append("    public var flexibleFrom: Int16? {")
    out.append("        switch self {")
    for a in apis:
        v = "nil" if a.flexible is None else str(a.flexible)
        out.append(f"        case .{lower_first(a.name)}: return {v}")
    out.append("        }")
    out.append("    }")
    out.append("")
    out.append("    public var name: String {")
    out.append("        switch self {")
    for a in apis:
        out.append(f'        case .{lower_first(a.name)}: return "{a.name}"')
    out.append("        }")
    out.append("    }")
    out.append("")
    out.append("    /// The generated request type of this API.")
    out.append("    public var requestType: any KafkaRequestMessage.Type {")
    out.append("        switch self {")
    for a in apis:
        out.append(f"        case .{lower_first(a.name)}: return {a.name}Request.self")
    out.append("        }")
    out.append("    }")
    out.append("")
    out.append("    /// The generated response type of this API.")
    out.append("    public var responseType: any KafkaResponseMessage.Type {")
    out.append("        switch self {")
    for a in apis:
        out.append(f"        case .{lower_first(a.name)}: return {a.name}Response.self")
    out.append("        }")
    out.append("    }")
    out.append("")
    out.append("    public var description: String { name }")
    out.append("}")
    out.append("")
    out.append("/// A decoded request of any API.")
    out.append("public enum AnyRequest: Sendable {")
    for a in apis:
        out.append(f"    case {lower_first(a.name)}({a.name}Request)")
    out.append("")
    out.append("    /// Decodes a request body (after the header) of the given API and version.")
    out.append("    public static func decode(apiKey: APIKey, version: Int16, from buf: inout ByteBuffer) throws -> AnyRequest {")
    out.append("        switch apiKey {")
    for a in apis:
        n = lower_first(a.name)
        out.append(f"        case .{n}: return .{n}(try {a.name}Request(from: &buf, version: version))")
    out.append("        }")
    out.append("    }")
    out.append("}")
    return "\n".join(["import NIOCore", ""] + out) + "\n"


EMBEDDED = "embedded"  # subdirectory of DEFS, and of OUT (capitalised) for the generated files
EMBEDDED_OUT = "Embedded"


def embedded_defs():
    d = os.path.join(DEFS, EMBEDDED)
    if not os.path.isdir(d):
        return []
    return [os.path.join(d, fn) for fn in sorted(os.listdir(d)) if fn.endswith(".def")]


def generate(outdir):
    apis = []
    for fn in sorted(os.listdir(DEFS)):
        if fn.endswith(".def"):
            apis.append(parse_file(os.path.join(DEFS, fn)))
    apis.sort(key=lambda a: a.key)
    os.makedirs(outdir, exist_ok=True)
    written = set()
    for a in apis:
        if a.embedded:
            raise DefError(f"{a.name}: a `message` belongs in definitions/{EMBEDDED}/")
        fn = f"{a.name}.swift"
        with open(os.path.join(outdir, fn), "w") as f:
            f.write(render_api(a))
        written.add(fn)
    with open(os.path.join(outdir, "APIKey.swift"), "w") as f:
        f.write(render_keys(apis))
    written.add("APIKey.swift")
    embedded = [parse_file(p) for p in embedded_defs()]
    if embedded:
        os.makedirs(os.path.join(outdir, EMBEDDED_OUT), exist_ok=True)
    for m in embedded:
        if not m.embedded:
            raise DefError(f"{m.name}: definitions/{EMBEDDED}/ holds `message` definitions only")
        fn = os.path.join(EMBEDDED_OUT, f"{m.name}.swift")
        with open(os.path.join(outdir, fn), "w") as f:
            f.write(render_embedded(m))
        written.add(fn)
    return written


def generated_files(outdir):
    """The .swift files under outdir (one level of subdirectories), as relative paths."""
    found = set()
    if not os.path.isdir(outdir):
        return found
    for fn in os.listdir(outdir):
        if fn.endswith(".swift"):
            found.add(fn)
        elif os.path.isdir(os.path.join(outdir, fn)):
            found |= {os.path.join(fn, g) for g in os.listdir(os.path.join(outdir, fn)) if g.endswith(".swift")}
    return found


def main():
    if "--check" in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            written = generate(tmp)
            existing = generated_files(OUT)
            bad = sorted(existing ^ written)
            for fn in sorted(written & existing):
                if not filecmp.cmp(os.path.join(tmp, fn), os.path.join(OUT, fn), shallow=False):
                    bad.append(fn)
            if bad:
                print("generated protocol code is stale; run scripts/gen_protocol.py:", ", ".join(bad))
                sys.exit(1)
            print(f"generated protocol code is up to date ({len(written)} files)")
        return
    if "--check-defs" in sys.argv:
        for fn in sorted(os.listdir(DEFS)):
            if fn.endswith(".def"):
                a = parse_file(os.path.join(DEFS, fn))
                resolve_structs(a.request, a, fn)
                resolve_structs(a.response, a, fn)
        for p in embedded_defs():
            m = parse_file(p)
            resolve_structs(m.request, m, p)
        print("definitions parse")
        return
    for fn in generated_files(OUT):
        os.remove(os.path.join(OUT, fn))
    written = generate(OUT)
    print(f"wrote {len(written)} files to {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    try:
        main()
    except DefError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
