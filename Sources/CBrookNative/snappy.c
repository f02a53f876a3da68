// Raw Snappy (https://github.com/google/snappy/blob/main/format_description.txt), written here
// because no snappy library is installed on the machines. Kafka frames it in xerial's format; the
// framing lives in Swift (Snappy.swift), this file only does the raw block format.
//
// The compressor follows the reference design: 64 KiB fragments, a hash table of 4-byte
// sequences, and a skip heuristic that speeds through incompressible data. The decompressor
// bounds-checks every tag, because its input comes straight off the network.
#include "CBrookNative.h"
#include <string.h>

#define BLOCK_LOG 16
#define BLOCK_SIZE (1u << BLOCK_LOG)
#define MAX_HASH_TABLE_BITS 14
#define MAX_HASH_TABLE_SIZE (1u << MAX_HASH_TABLE_BITS)
#define INPUT_MARGIN 15

static inline uint32_t load32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline void store16le(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline uint32_t hash32(uint32_t bytes, int shift) { return (bytes * 0x1e35a7bdu) >> shift; }

size_t brook_snappy_max_compressed_length(size_t n) { return 32 + n + n / 6; }

static uint8_t *emit_literal(uint8_t *op, const uint8_t *lit, size_t len) {
    size_t n = len - 1;
    if (n < 60) {
        *op++ = (uint8_t)(n << 2);
    } else {
        int count = 0;
        size_t t = n;
        while (t > 0) {
            count++;
            t >>= 8;
        }
        *op++ = (uint8_t)((59 + count) << 2);
        for (int i = 0; i < count; i++) *op++ = (uint8_t)(n >> (8 * i));
    }
    memcpy(op, lit, len);
    return op + len;
}

// len in [4, 64], offset < 65536 (guaranteed by 64 KiB fragments).
static inline uint8_t *emit_copy_upto64(uint8_t *op, size_t offset, size_t len) {
    if (len < 12 && offset < 2048) {
        *op++ = (uint8_t)(1 | ((len - 4) << 2) | ((offset >> 8) << 5));
        *op++ = (uint8_t)offset;
    } else {
        *op++ = (uint8_t)(2 | ((len - 1) << 2));
        store16le(op, (uint16_t)offset);
        op += 2;
    }
    return op;
}

static inline uint8_t *emit_copy(uint8_t *op, size_t offset, size_t len) {
    // Keep every emitted piece at least 4 long so the 1-byte-offset form stays usable.
    while (len >= 68) {
        op = emit_copy_upto64(op, offset, 64);
        len -= 64;
    }
    if (len > 64) {
        op = emit_copy_upto64(op, offset, 60);
        len -= 60;
    }
    return emit_copy_upto64(op, offset, len);
}

static inline size_t match_length(const uint8_t *s1, const uint8_t *s2, const uint8_t *s2_end) {
    size_t matched = 0;
    while (s2 + matched + 8 <= s2_end) {
        uint64_t x = load64(s2 + matched) ^ load64(s1 + matched);
        if (x) return matched + ((size_t)__builtin_ctzll(x) >> 3);
        matched += 8;
    }
    while (s2 + matched < s2_end && s1[matched] == s2[matched]) matched++;
    return matched;
}

static uint8_t *compress_fragment(const uint8_t *input, size_t n, uint8_t *op, uint16_t *table,
                                  size_t table_size) {
    int shift = 32;
    for (size_t t = table_size; t > 1; t >>= 1) shift--;
    const uint8_t *ip = input, *base = input, *ip_end = input + n, *next_emit = input;
    memset(table, 0, table_size * sizeof(uint16_t));

    if (n >= INPUT_MARGIN) {
        const uint8_t *ip_limit = input + n - INPUT_MARGIN;
        uint32_t next_hash = hash32(load32(++ip), shift);
        for (;;) {
            // Scan for a 4-byte match; the step grows the longer nothing matches.
            uint32_t skip = 32;
            const uint8_t *next_ip = ip, *candidate;
            do {
                ip = next_ip;
                uint32_t h = next_hash;
                uint32_t step = skip >> 5;
                skip += step;
                next_ip = ip + step;
                if (next_ip > ip_limit) goto remainder;
                next_hash = hash32(load32(next_ip), shift);
                candidate = base + table[h];
                table[h] = (uint16_t)(ip - base);
            } while (load32(ip) != load32(candidate));

            op = emit_literal(op, next_emit, (size_t)(ip - next_emit));
            // Emit copies for as long as the bytes right after a copy match again.
            uint32_t cur;
            do {
                const uint8_t *start = ip;
                size_t matched = 4 + match_length(candidate + 4, ip + 4, ip_end);
                ip += matched;
                op = emit_copy(op, (size_t)(start - candidate), matched);
                next_emit = ip;
                if (ip >= ip_limit) goto remainder;
                table[hash32(load32(ip - 1), shift)] = (uint16_t)(ip - base - 1);
                cur = load32(ip);
                uint32_t h = hash32(cur, shift);
                candidate = base + table[h];
                table[h] = (uint16_t)(ip - base);
            } while (cur == load32(candidate));
            next_hash = hash32(load32(++ip), shift);
        }
    }
remainder:
    if (next_emit < ip_end) op = emit_literal(op, next_emit, (size_t)(ip_end - next_emit));
    return op;
}

size_t brook_snappy_compress(const uint8_t *in, size_t n, uint8_t *out) {
    uint8_t *op = out;
    size_t v = n;
    while (v >= 0x80) {
        *op++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *op++ = (uint8_t)v;

    uint16_t table[MAX_HASH_TABLE_SIZE];
    size_t pos = 0;
    while (pos < n) {
        size_t frag = n - pos < BLOCK_SIZE ? n - pos : BLOCK_SIZE;
        size_t table_size = 256;
        while (table_size < MAX_HASH_TABLE_SIZE && table_size < frag) table_size <<= 1;
        op = compress_fragment(in + pos, frag, op, table, table_size);
        pos += frag;
    }
    return (size_t)(op - out);
}

int brook_snappy_uncompressed_length(const uint8_t *in, size_t n, size_t *result) {
    uint64_t v = 0;
    for (size_t i = 0; i < 5 && i < n; i++) {
        v |= (uint64_t)(in[i] & 0x7f) << (7 * i);
        if (!(in[i] & 0x80)) {
            if (v > 0xffffffffu) return -1;
            *result = (size_t)v;
            return (int)(i + 1);
        }
    }
    return -1;
}

int brook_snappy_decompress(const uint8_t *in, size_t n, uint8_t *out, size_t out_len) {
    size_t declared;
    int hdr = brook_snappy_uncompressed_length(in, n, &declared);
    if (hdr < 0 || declared != out_len) return -1;
    const uint8_t *ip = in + hdr, *ip_end = in + n;
    uint8_t *op = out, *op_end = out + out_len;

    while (ip < ip_end) {
        uint8_t tag = *ip++;
        size_t len, offset;
        switch (tag & 3) {
        case 0: { // literal
            len = (size_t)(tag >> 2) + 1;
            if (len > 60) {
                size_t extra = len - 60; // 1..4 little-endian length bytes
                if ((size_t)(ip_end - ip) < extra) return -1;
                size_t l = 0;
                for (size_t i = 0; i < extra; i++) l |= (size_t)ip[i] << (8 * i);
                ip += extra;
                len = l + 1;
            }
            if ((size_t)(ip_end - ip) < len || (size_t)(op_end - op) < len) return -1;
            memcpy(op, ip, len);
            ip += len;
            op += len;
            continue;
        }
        case 1:
            if (ip_end - ip < 1) return -1;
            len = 4 + ((tag >> 2) & 7);
            offset = ((size_t)(tag >> 5) << 8) | ip[0];
            ip += 1;
            break;
        case 2:
            if (ip_end - ip < 2) return -1;
            len = 1 + (tag >> 2);
            offset = (size_t)ip[0] | ((size_t)ip[1] << 8);
            ip += 2;
            break;
        default:
            if (ip_end - ip < 4) return -1;
            len = 1 + (tag >> 2);
            offset = (size_t)ip[0] | ((size_t)ip[1] << 8) | ((size_t)ip[2] << 16) | ((size_t)ip[3] << 24);
            ip += 4;
            break;
        }
        if (offset == 0 || offset > (size_t)(op - out) || (size_t)(op_end - op) < len) return -1;
        const uint8_t *src = op - offset;
        if (offset >= 8 && (size_t)(op_end - op) >= len + 8) {
            // Whole 8-byte words: every word reads bytes at least 8 behind, already written.
            for (size_t i = 0; i < len; i += 8) memcpy(op + i, src + i, 8);
        } else {
            for (size_t i = 0; i < len; i++) op[i] = src[i];
        }
        op += len;
    }
    return op == op_end ? 0 : -1;
}
