#!/usr/bin/env python3
"""Agreement check between Brook's protocol definitions and Kafka's message JSON files.

Development-time only (it needs a local git mirror of apache/kafka, so it never runs in CI).
For every `protocol/definitions/NN_Name.def` it reads Kafka's
`clients/src/main/resources/common/message/<Name>Request.json` and `<Name>Response.json` at the
given git ref(s), and compares, for the versions that both sides define:

  * API key, version range (ours must not exceed Kafka's) and flexible versions;
  * every field: name, order, type (including struct names), the versions in which it is present,
    nullable versions, tag number and tagged versions, default value;
  * nested structs recursively (inline structs and top-level `struct` blocks / Kafka commonStructs).

Fields that Kafka only defines in versions above the range we cover are listed with -v but are not
differences. Versions are compared as *effective* sets: a field's versions intersected with its
parent's and with the compared version range, so `Name string` inside a `v3+` array equals
Kafka's `"versions": "3+"` (or `"0+"`). A missing default is the type's implicit default (0,
false, "", empty), so `default=0` and no default are equal.

Usage:
  scripts/check_definitions.py KAFKA_GIT_DIR [REF ...] [--defs DIR] [--api NAME ...] [-v]

KAFKA_GIT_DIR is a bare git directory (e.g. the mirror's `.../repo`) or a work tree; REF defaults
to HEAD; with several refs each is checked in turn. Exit status 1 if any difference was found.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field as dc_field
from typing import Optional

MESSAGE_DIR = "clients/src/main/resources/common/message"
PRIMITIVES = {"bool", "int8", "int16", "int32", "int64", "uint16", "uint32", "float64", "uuid",
              "string", "bytes", "records"}
INT_TYPES = {"int8", "int16", "int32", "int64", "uint16", "uint32"}
BOUND = 256  # versions are compared as sets within [0, BOUND)
IGNORE_STRUCT_NAMES = False


# --------------------------------------------------------------------------------------------
# Version sets

def vrange(lo: int, hi: Optional[int]) -> frozenset:
    return frozenset(range(lo, (BOUND - 1 if hi is None else hi) + 1))


ALL = vrange(0, None)
NONE = frozenset()


def parse_kafka_versions(spec: Optional[str]) -> frozenset:
    """Kafka's "0+", "1-3", "3", "none"."""
    if spec is None:
        return NONE
    spec = spec.strip()
    if spec in ("", "none"):
        return NONE
    if spec.endswith("+"):
        return vrange(int(spec[:-1]), None)
    if "-" in spec:
        lo, hi = spec.split("-", 1)
        return vrange(int(lo), int(hi))
    return vrange(int(spec), int(spec))


def parse_def_versions(spec: str) -> frozenset:
    """Ours: "v3+", "v3-5", "v4" (the leading v is optional), or "none"."""
    if spec == "none":
        return NONE
    return parse_kafka_versions(spec[1:] if spec.startswith("v") else spec)


def fmt(vs: frozenset) -> str:
    if not vs:
        return "none"
    out, run = [], []
    for v in sorted(vs):
        if run and v != run[-1] + 1:
            out.append(run)
            run = []
        run.append(v)
    out.append(run)
    parts = []
    for r in out:
        if r[-1] == BOUND - 1:
            parts.append(f"{r[0]}+")
        elif r[0] == r[-1]:
            parts.append(str(r[0]))
        else:
            parts.append(f"{r[0]}-{r[-1]}")
    return ",".join(parts)


# --------------------------------------------------------------------------------------------
# Common model

@dataclass
class Field:
    name: str
    type: str                 # "int32", "[int32]", "[Foo]", "Foo"
    versions: frozenset
    nullable: frozenset = NONE
    tag: Optional[int] = None
    tagged: frozenset = NONE  # versions in which the field is tagged
    default: Optional[str] = None  # raw text; None = not given
    flexible: Optional[frozenset] = None  # field-level flexibleVersions (Kafka only)
    fields: Optional[list] = None  # struct fields (resolved), None for primitives
    line: int = 0

    @property
    def elem(self) -> str:
        return self.type[1:-1] if self.type.startswith("[") else self.type

    @property
    def is_struct(self) -> bool:
        return self.elem not in PRIMITIVES


@dataclass
class Message:
    fields: list
    versions: frozenset
    flexible: frozenset
    key: Optional[int] = None


@dataclass
class Api:
    name: str
    key: int
    versions: frozenset
    flexible: frozenset
    request: list = dc_field(default_factory=list)
    response: list = dc_field(default_factory=list)
    path: str = ""


# --------------------------------------------------------------------------------------------
# Kafka JSON

def strip_json_comments(text: str) -> str:
    """Remove // and /* */ comments outside of string literals."""
    out, i, n, in_str = [], 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
        elif c == '"':
            in_str = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Git:
    def __init__(self, path: str):
        if os.path.isdir(os.path.join(path, ".git")):
            path = os.path.join(path, ".git")
        self.git_dir = path

    def show(self, ref: str, path: str) -> Optional[str]:
        r = subprocess.run(["git", "--git-dir", self.git_dir, "show", f"{ref}:{path}"],
                           capture_output=True, text=True)
        return r.stdout if r.returncode == 0 else None

    def resolve(self, ref: str) -> str:
        r = subprocess.run(["git", "--git-dir", self.git_dir, "rev-parse", "--short=12",
                            f"{ref}^{{commit}}"], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"error: cannot resolve ref {ref!r} in {self.git_dir}: "
                             f"{r.stderr.strip()}")
        return r.stdout.strip()


def kafka_type(t: str) -> str:
    return f"[{t[2:]}]" if t.startswith("[]") else t


def load_kafka_message(git: Git, ref: str, name: str) -> Optional[Message]:
    text = git.show(ref, f"{MESSAGE_DIR}/{name}.json")
    if text is None:
        return None
    try:
        j = json.loads(strip_json_comments(text))
    except json.JSONDecodeError as e:
        raise SystemExit(f"error: {name}.json at {ref} is not valid JSON after removing "
                         f"comments: {e}")
    common = {s["name"]: s for s in j.get("commonStructs", [])}

    def conv(fs: list, stack: tuple) -> list:
        out = []
        for f in fs:
            t = kafka_type(f["type"])
            kf = Field(
                name=f["name"], type=t,
                versions=parse_kafka_versions(f.get("versions")),
                nullable=parse_kafka_versions(f.get("nullableVersions")),
                tag=f.get("tag"),
                tagged=parse_kafka_versions(f.get("taggedVersions")),
                default=None if "default" not in f else str(f["default"]),
                flexible=(parse_kafka_versions(f["flexibleVersions"])
                          if "flexibleVersions" in f else None),
            )
            if isinstance(kf.default, str) and isinstance(f.get("default"), bool):
                kf.default = "true" if f["default"] else "false"
            if kf.is_struct:
                if "fields" in f:
                    kf.fields = conv(f["fields"], stack)
                elif kf.elem in common and kf.elem not in stack:
                    kf.fields = conv(common[kf.elem]["fields"], stack + (kf.elem,))
                else:
                    raise SystemExit(f"error: {name}.json@{ref}: cannot resolve struct "
                                     f"{kf.elem!r} of field {kf.name}")
            out.append(kf)
        return out

    return Message(fields=conv(j.get("fields", []), ()),
                   versions=parse_kafka_versions(j.get("validVersions")),
                   flexible=parse_kafka_versions(j.get("flexibleVersions")),
                   key=j.get("apiKey"))


# --------------------------------------------------------------------------------------------
# Brook .def files (an independent parser: this script must not depend on the generator)

class DefError(Exception):
    pass


def tokenize(s: str) -> list:
    """Split on whitespace, keeping "quoted strings" (with their quotes) inside one token."""
    toks, cur, in_q, i = [], "", False, 0
    while i < len(s):
        c = s[i]
        if in_q:
            cur += c
            if c == "\\" and i + 1 < len(s):
                cur += s[i + 1]
                i += 1
            elif c == '"':
                in_q = False
        elif c == '"':
            cur += c
            in_q = True
        elif c.isspace():
            if cur:
                toks.append(cur)
                cur = ""
        elif c == "#":
            break
        else:
            cur += c
        i += 1
    if in_q:
        raise DefError("unterminated string")
    if cur:
        toks.append(cur)
    return toks


TYPE_RE = re.compile(r"^(\[)?([A-Za-z][A-Za-z0-9]*)(\])?$")
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def parse_def(path: str) -> Api:
    with open(path, encoding="utf-8") as fh:
        raw = fh.read().split("\n")
    lines = []  # (lineno, indent, tokens)
    for no, text in enumerate(raw, 1):
        if "\t" in text[: len(text) - len(text.lstrip())]:
            raise DefError(f"{path}:{no}: tab in indentation")
        try:
            toks = tokenize(text)
        except DefError as e:
            raise DefError(f"{path}:{no}: {e}")
        if not toks:
            continue
        indent = len(text) - len(text.lstrip(" "))
        if indent % 2:
            raise DefError(f"{path}:{no}: indentation must be a multiple of two spaces")
        lines.append((no, indent // 2, toks))
    if not lines or lines[0][2][0] != "api":
        raise DefError(f"{path}: first line must be `api NAME key=K versions=LO-HI flexible=F`")

    no, _, toks = lines[0]
    if len(toks) < 2:
        raise DefError(f"{path}:{no}: missing API name")
    attrs = {}
    for t in toks[2:]:
        if "=" not in t:
            raise DefError(f"{path}:{no}: unexpected {t!r}")
        k, v = t.split("=", 1)
        attrs[k] = v
    for k in ("key", "versions", "flexible"):
        if k not in attrs:
            raise DefError(f"{path}:{no}: missing {k}=")
    api = Api(name=toks[1], key=int(attrs["key"]),
              versions=parse_kafka_versions(attrs["versions"]),
              flexible=parse_kafka_versions(attrs["flexible"]), path=path)

    structs: dict = {}  # struct name -> list of Field (shared by request/response, per file)
    pos = 1

    def parse_field(no: int, toks: list) -> Field:
        if len(toks) < 2:
            raise DefError(f"{path}:{no}: field needs a name and a type")
        name, typ = toks[0], toks[1]
        if not NAME_RE.match(name):
            raise DefError(f"{path}:{no}: bad field name {name!r}")
        m = TYPE_RE.match(typ)
        if not m or bool(m.group(1)) != bool(m.group(3)):
            raise DefError(f"{path}:{no}: bad type {typ!r}")
        elem = m.group(2)
        if elem not in PRIMITIVES and not elem[0].isupper():
            raise DefError(f"{path}:{no}: unknown type {elem!r}")
        f = Field(name=name, type=typ, versions=ALL, line=no)
        seen = set()
        for t in toks[2:]:
            if t.startswith("v") and t[1:2].isdigit():
                key, val = "versions", t
            elif "=" in t:
                key, val = t.split("=", 1)
            else:
                raise DefError(f"{path}:{no}: unexpected {t!r}")
            if key in seen:
                raise DefError(f"{path}:{no}: {key} given twice")
            seen.add(key)
            try:
                if key == "versions":
                    f.versions = parse_def_versions(val)
                elif key == "nullable":
                    f.nullable = parse_def_versions(val)
                elif key == "tag":
                    f.tag = int(val)
                elif key == "default":
                    f.default = val
                else:
                    raise DefError(f"{path}:{no}: unknown attribute {key!r}")
            except ValueError:
                raise DefError(f"{path}:{no}: bad value in {t!r}")
        if f.tag is not None:
            f.tagged = f.versions & api.flexible
        return f

    def parse_block(depth: int) -> list:
        nonlocal pos
        out = []
        while pos < len(lines):
            no, ind, toks = lines[pos]
            if ind < depth:
                break
            if ind > depth:
                raise DefError(f"{path}:{no}: unexpected indentation")
            pos += 1
            f = parse_field(no, toks)
            if any(o.name == f.name for o in out):
                raise DefError(f"{path}:{no}: duplicate field {f.name}")
            has_children = pos < len(lines) and lines[pos][1] > depth
            if f.is_struct:
                if has_children:
                    if f.elem in structs:
                        raise DefError(f"{path}:{no}: struct {f.elem} is already defined")
                    structs[f.elem] = None  # allow forward/self reference detection
                    f.fields = parse_block(depth + 1)
                    structs[f.elem] = f.fields
                elif structs.get(f.elem) is not None:
                    f.fields = structs[f.elem]
                else:
                    raise DefError(f"{path}:{no}: struct {f.elem} has no fields and is not "
                                   f"defined earlier")
            elif has_children:
                raise DefError(f"{path}:{no}: primitive field {f.name} cannot have fields")
            out.append(f)
        return out

    seen_sections = set()
    while pos < len(lines):
        no, ind, toks = lines[pos]
        if ind != 0:
            raise DefError(f"{path}:{no}: expected `request`, `response` or `struct NAME`")
        pos += 1
        if toks == ["request"] or toks == ["response"]:
            if toks[0] in seen_sections:
                raise DefError(f"{path}:{no}: second `{toks[0]}` section")
            seen_sections.add(toks[0])
            setattr(api, toks[0], parse_block(1))
        elif len(toks) == 2 and toks[0] == "struct":
            if toks[1] in structs:
                raise DefError(f"{path}:{no}: struct {toks[1]} is already defined")
            structs[toks[1]] = None
            structs[toks[1]] = parse_block(1)
        else:
            raise DefError(f"{path}:{no}: expected `request`, `response` or `struct NAME`")
    for s in ("request", "response"):
        if s not in seen_sections:
            raise DefError(f"{path}: missing `{s}` section")
    return api


# --------------------------------------------------------------------------------------------
# Comparison

def implicit_default(f: Field) -> str:
    if f.type.startswith("["):
        return "[]"
    return {"bool": "false", "string": '""', "bytes": "[]", "records": "null",
            "uuid": "AAAAAAAAAAAAAAAAAAAAAA", "float64": "0"}.get(f.type, "0")


def norm_default(f: Field, raw: Optional[str], ours: bool) -> str:
    if raw is None:
        return implicit_default(f)
    if raw == "null":
        return "null"
    if f.type in INT_TYPES or f.type == "float64":
        try:
            v = int(raw, 0)
            return str(v)
        except ValueError:
            try:
                return repr(float(raw))
            except ValueError:
                return raw
    if f.type == "bool":
        return raw.lower()
    if f.type == "string":
        if ours:
            if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                return json.dumps(json.loads(raw))
            return json.dumps(raw)  # unquoted word
        return json.dumps(raw)
    return raw


class Report:
    def __init__(self):
        self.errors: list = []
        self.notes: list = []

    def err(self, where: str, msg: str):
        self.errors.append(f"{where}: {msg}")

    def note(self, where: str, msg: str):
        self.notes.append(f"{where}: {msg}")


def compare_fields(ours: list, theirs: list, ours_par: frozenset, theirs_par: frozenset,
                   rng: frozenset, flexible: frozenset, where: str, rep: Report):
    """ours_par / theirs_par: effective versions of the parent within the compared range."""
    def eff(f: Field, par: frozenset) -> frozenset:
        return f.versions & par & rng

    def key(name: str) -> str:
        return name[:1].upper() + name[1:]

    o_by = {key(f.name): f for f in ours}
    t_by = {key(f.name): f for f in theirs}

    # Fields that exist in only one of the two (within the range).
    for k, tf in t_by.items():
        if k not in o_by:
            te = eff(tf, theirs_par)
            if te:
                rep.err(f"{where}.{tf.name}", f"missing (Kafka has it in v{fmt(te)})")
            elif tf.versions:
                rep.note(f"{where}.{tf.name}", f"not covered (Kafka has it in "
                                              f"v{fmt(tf.versions)}, outside the checked range)")
    for k, of in o_by.items():
        if k not in t_by:
            oe = eff(of, ours_par)
            if oe:
                rep.err(f"{where}.{of.name}", f"not in Kafka's definition (ours v{fmt(oe)})")

    # Order of the fields present in the range (wire order).
    o_order = [key(f.name) for f in ours if eff(f, ours_par) and key(f.name) in t_by]
    t_order = [key(f.name) for f in theirs if eff(f, theirs_par) and key(f.name) in o_by]
    if o_order != t_order:
        rep.err(where, f"field order differs: ours {o_order}, Kafka {t_order}")

    for k, of in o_by.items():
        tf = t_by.get(k)
        if tf is None:
            continue
        w = f"{where}.{of.name}"
        oe, te = eff(of, ours_par), eff(tf, theirs_par)
        if not oe and not te:
            continue
        if of.name != tf.name:
            rep.note(w, f"name written {of.name!r}, Kafka spells it {tf.name!r} "
                        f"(same on the wire; README asks for PascalCase)")
        if oe != te:
            rep.err(w, f"versions differ: ours v{fmt(oe)}, Kafka v{fmt(te)}")
        common = oe & te
        if of.type != tf.type:
            same_shape = (of.is_struct and tf.is_struct
                          and of.type.startswith("[") == tf.type.startswith("["))
            if IGNORE_STRUCT_NAMES and same_shape:
                rep.note(w, f"struct name differs: ours {of.type}, Kafka {tf.type}")
            else:
                rep.err(w, f"type differs: ours {of.type}, Kafka {tf.type}")
                continue
        on, tn = of.nullable & common, tf.nullable & common
        if on != tn:
            rep.err(w, f"nullable versions differ: ours {fmt(on)}, Kafka {fmt(tn)}")
        if of.tag != tf.tag and (of.tagged & common or tf.tagged & common):
            rep.err(w, f"tag differs: ours {of.tag}, Kafka {tf.tag}")
        otg, ttg = of.tagged & common, tf.tagged & common
        if otg != ttg:
            rep.err(w, f"tagged versions differ: ours {fmt(otg)}, Kafka {fmt(ttg)}"
                       + ("" if of.tag is None else
                          " (our grammar tags a field in all its flexible versions)"))
        if ttg and not (ttg <= flexible):
            rep.err(w, f"Kafka tags it in non-flexible versions {fmt(ttg - flexible)}")
        if tf.flexible is not None and (tf.flexible & common) != (flexible & common):
            rep.err(w, f"Kafka gives field-level flexibleVersions {fmt(tf.flexible)} which "
                       f"differs from the message's; our grammar cannot express it")
        od, td = norm_default(of, of.default, True), norm_default(tf, tf.default, False)
        if od != td:
            rep.err(w, f"default differs: ours {of.default!r} -> {od}, "
                       f"Kafka {tf.default!r} -> {td}")
        if of.is_struct:
            compare_fields(of.fields or [], tf.fields or [], oe, te, rng, flexible, w, rep)


def check_api(api: Api, git: Git, ref: str, rep: Report) -> Optional[frozenset]:
    where = f"{os.path.basename(api.path)}"
    m = re.match(r"^(\d+)_(\w+)\.def$", os.path.basename(api.path))
    if not m or int(m.group(1)) != api.key or m.group(2) != api.name:
        rep.err(where, f"file name does not match `api {api.name} key={api.key}`")
    rng_all = None
    for kind in ("Request", "Response"):
        msg = load_kafka_message(git, ref, api.name + kind)
        w = f"{where} {kind.lower()}"
        if msg is None:
            rep.err(w, f"{api.name}{kind}.json does not exist at {ref}")
            continue
        if msg.key != api.key:
            rep.err(w, f"api key differs: ours {api.key}, Kafka {msg.key}")
        if not api.versions <= msg.versions:
            extra = api.versions - msg.versions
            below = {v for v in extra if v < min(msg.versions, default=0)}
            if below:
                rep.note(w, f"Kafka at {ref} no longer defines v{fmt(frozenset(below))}; "
                            f"those versions are not checked")
            above = extra - below
            if above:
                rep.err(w, f"we define v{fmt(frozenset(above))} which Kafka at {ref} does not "
                           f"(Kafka: v{fmt(msg.versions)})")
        rng = api.versions & msg.versions
        rng_all = rng if rng_all is None else rng_all & rng
        if (api.flexible & rng) != (msg.flexible & rng):
            rep.err(w, f"flexible versions differ: ours {fmt(api.flexible & rng)}, "
                       f"Kafka {fmt(msg.flexible & rng)}")
        if msg.versions - api.versions and max(msg.versions) > max(api.versions, default=-1):
            rep.note(w, f"Kafka defines up to v{max(msg.versions)}, we stop at "
                        f"v{max(api.versions)}")
        ours = api.request if kind == "Request" else api.response
        compare_fields(ours, msg.fields, rng, rng, rng, api.flexible & rng, w, rep)
    return rng_all


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kafka", help="apache/kafka git directory (bare mirror or work tree)")
    ap.add_argument("refs", nargs="*", default=["HEAD"], help="git refs to check (default HEAD)")
    ap.add_argument("--defs", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "..", "protocol", "definitions"))
    ap.add_argument("--api", action="append", help="only check these APIs (by name)")
    ap.add_argument("--ignore-struct-names", action="store_true",
                    help="compare struct type names loosely (they are not on the wire; Kafka has "
                         "renamed some, e.g. CreateableTopicConfig -> CreatableTopicConfig)")
    ap.add_argument("-v", "--verbose", action="store_true", help="also print notes")
    args = ap.parse_args()
    global IGNORE_STRUCT_NAMES
    IGNORE_STRUCT_NAMES = args.ignore_struct_names

    git = Git(args.kafka)
    files = sorted(f for f in os.listdir(args.defs) if f.endswith(".def"))
    apis = []
    failed = False
    for f in files:
        try:
            a = parse_def(os.path.join(args.defs, f))
        except DefError as e:
            print(f"PARSE ERROR {e}")
            failed = True
            continue
        if args.api and a.name not in args.api:
            continue
        apis.append(a)

    for ref in args.refs:
        sha = git.resolve(ref)
        print(f"== Kafka {ref} ({sha}): {len(apis)} definitions")
        n_err = n_note = 0
        for a in apis:
            rep = Report()
            rng = check_api(a, git, ref, rep)
            status = "OK  " if not rep.errors else "DIFF"
            print(f"{status} {a.key:>3} {a.name:<24} checked v{fmt(rng or NONE)}"
                  + (f"  ({len(rep.notes)} notes)" if rep.notes and not args.verbose else ""))
            for e in rep.errors:
                print(f"       error: {e}")
            if args.verbose:
                for n in rep.notes:
                    print(f"       note:  {n}")
            n_err += len(rep.errors)
            n_note += len(rep.notes)
        print(f"== {ref}: {n_err} differences, {n_note} notes")
        failed = failed or n_err > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
