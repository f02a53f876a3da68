// CRC-32C for record batches. Kafka checksums every batch on produce and on recovery, so this is
// on the hot path: the SSE4.2 instruction, three streams at a time on long inputs; the table
// path is a fallback.
#include "CBrookNative.h"
#include <pthread.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

static uint32_t table[8][256];
static int table_ready = 0;
static int hw_state = -1; // -1 unknown, 0 no, 1 yes

static void build_tables(void) {
    const uint32_t poly = 0x82F63B78u; // reflected Castagnoli polynomial
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ poly : (c >> 1);
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = table[0][i];
        for (int t = 1; t < 8; t++) {
            c = table[0][c & 0xff] ^ (c >> 8);
            table[t][i] = c;
        }
    }
    __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t len) {
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) build_tables();
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint32_t lo = (uint32_t)w ^ crc, hi = (uint32_t)(w >> 32);
        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
              table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
              table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--) crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
// The crc32 instruction issues every cycle but takes three to finish, so one stream of it runs
// at a third of its speed. Long inputs are cut into three blocks checksummed side by side and
// joined after: the register after a block B, started from c, is crc(B from 0) xor "c followed
// by |B| zero bytes", and that second part is linear in c, so it is four table lookups for a
// fixed |B|.
#define CRC_LONG 8192
#define CRC_SHORT 256
static uint32_t zeros_long[4][256];
static uint32_t zeros_short[4][256];
static pthread_once_t zeros_once = PTHREAD_ONCE_INIT;

__attribute__((target("sse4.2")))
static uint32_t crc_zero_bytes(uint32_t crc, size_t n) {
    uint64_t c = crc;
    for (size_t i = 0; i < n / 8; i++) c = __builtin_ia32_crc32di(c, 0);
    return (uint32_t)c;
}

static void build_zeros(uint32_t t[4][256], size_t n) {
    uint32_t bit[32];
    for (int b = 0; b < 32; b++) bit[b] = crc_zero_bytes(1u << b, n);
    for (int k = 0; k < 4; k++) {
        for (int v = 0; v < 256; v++) {
            uint32_t r = 0;
            for (int j = 0; j < 8; j++)
                if (v & (1 << j)) r ^= bit[8 * k + j];
            t[k][v] = r;
        }
    }
}

static void build_all_zeros(void) {
    build_zeros(zeros_long, CRC_LONG);
    build_zeros(zeros_short, CRC_SHORT);
}

static inline uint32_t crc_shift(uint32_t t[4][256], uint32_t crc) {
    return t[0][crc & 0xff] ^ t[1][(crc >> 8) & 0xff] ^ t[2][(crc >> 16) & 0xff] ^ t[3][crc >> 24];
}

__attribute__((target("sse4.2")))
static inline uint64_t crc_three_blocks(uint64_t c0, const uint8_t *p, size_t block, uint32_t t[4][256]) {
    uint64_t c1 = 0, c2 = 0;
    for (size_t i = 0; i < block; i += 8) {
        uint64_t w0, w1, w2;
        memcpy(&w0, p + i, 8);
        memcpy(&w1, p + block + i, 8);
        memcpy(&w2, p + 2 * block + i, 8);
        c0 = __builtin_ia32_crc32di(c0, w0);
        c1 = __builtin_ia32_crc32di(c1, w1);
        c2 = __builtin_ia32_crc32di(c2, w2);
    }
    uint32_t c = crc_shift(t, (uint32_t)c0) ^ (uint32_t)c1;
    return crc_shift(t, c) ^ (uint32_t)c2;
}

__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len) {
    uint64_t c = crc;
    if (len >= 3 * CRC_SHORT) {
        pthread_once(&zeros_once, build_all_zeros);
        while (len >= 3 * CRC_LONG) {
            c = crc_three_blocks(c, p, CRC_LONG, zeros_long);
            p += 3 * CRC_LONG;
            len -= 3 * CRC_LONG;
        }
        while (len >= 3 * CRC_SHORT) {
            c = crc_three_blocks(c, p, CRC_SHORT, zeros_short);
            p += 3 * CRC_SHORT;
            len -= 3 * CRC_SHORT;
        }
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

int brook_crc32c_hardware(void) {
    int s = __atomic_load_n(&hw_state, __ATOMIC_ACQUIRE);
    if (s < 0) {
#if defined(__x86_64__)
        unsigned a, b, c, d;
        s = (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2)) ? 1 : 0;
#else
        s = 0;
#endif
        __atomic_store_n(&hw_state, s, __ATOMIC_RELEASE);
    }
    return s;
}

uint32_t brook_crc32c(uint32_t crc, const void *data, size_t len) {
    uint32_t c = ~crc;
#if defined(__x86_64__)
    if (brook_crc32c_hardware()) return ~crc_hw(c, (const uint8_t *)data, len);
#endif
    return ~crc_sw(c, (const uint8_t *)data, len);
}
