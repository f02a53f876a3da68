#!/usr/bin/env python3
"""Writes a small seed corpus of valid request frames (header + body) for the fuzzer."""
import os
import struct
import sys
import zlib

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def s16(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def header(key, ver, corr=1, client="fuzz"):
    return struct.pack(">hhi", key, ver, corr) + s16(client)


def uvarint(n):
    o = b""
    while n >= 0x80:
        o += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return o + bytes([n])


def varint(n):
    return uvarint((n << 1) ^ (n >> 63))


def batch(records):
    body = b""
    for i, (k, v) in enumerate(records):
        r = b"\x00" + varint(0) + varint(i) + varint(len(k)) + k + varint(len(v)) + v + uvarint(0)
        body += varint(len(r)) + r
    attrs_to_end = struct.pack(">hiqqqhii", 0, len(records) - 1, 0, 0, -1, -1, -1, len(records)) + body
    try:
        import crc32c  # optional
        crc = crc32c.crc32c(attrs_to_end)
    except ImportError:
        crc = 0  # a wrong CRC still exercises the decoder paths
    rest = struct.pack(">ib", 0, 2) + struct.pack(">I", crc) + attrs_to_end
    return struct.pack(">qi", 0, len(rest)) + rest


seeds = {
    "apiversions_v0": header(18, 0),
    "apiversions_v3": header(18, 3) + b"\x00" + b"\x05fuzz" + b"\x021" + b"\x00",
    "metadata_v1_all": header(3, 1) + struct.pack(">i", -1),
    "metadata_v4_one": header(3, 4) + struct.pack(">i", 1) + s16("t") + b"\x01",
    "findcoord_v1": header(10, 1) + s16("g") + b"\x00",
    "heartbeat_v0": header(12, 0) + s16("g") + struct.pack(">i", 1) + s16("m"),
}
recs = batch([(b"k1", b"v1"), (b"k2", b"value-2")])
seeds["produce_v3"] = (header(0, 3) + struct.pack(">h", -1) + struct.pack(">hi", -1, 1000) + struct.pack(">i", 1)
                       + s16("t") + struct.pack(">i", 1) + struct.pack(">i", 0) + struct.pack(">i", len(recs)) + recs)
seeds["fetch_v4"] = (header(1, 4) + struct.pack(">iiiib", -1, 100, 1, 1 << 20, 0) + struct.pack(">i", 1) + s16("t")
                     + struct.pack(">i", 1) + struct.pack(">iqi", 0, 0, 1 << 20))
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {out}")
