// gzip (zlib, linked), lz4 frame and zstd (loaded at run time) for Kafka record batches.
//
// liblz4 and libzstd are present on the machines only as runtime libraries (no headers, no -dev
// packages), so they are opened with dlopen and the handful of prototypes used are declared
// here, copied in shape from lz4frame.h (v1.9) and zstd.h (v1.5). Their ABI has been stable
// for years. A missing library is an error message, never a crash.
//
// Contexts are expensive to create (zstd's is ~100 KiB, deflate's ~256 KiB), and batches are
// many and small, so each thread keeps one of each in a cache released at thread exit.
#include "CBrookNative.h"
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

// MARK: - lz4 frame API (from lz4frame.h)

typedef struct {
    unsigned blockSizeID;         // 0 default, 4 = 64 KiB, 5 = 256 KiB, 6 = 1 MiB, 7 = 4 MiB
    unsigned blockMode;           // 0 linked, 1 independent
    unsigned contentChecksumFlag; // 0 none, 1 xxh32 of the content
    unsigned frameType;           // 0 frame
    unsigned long long contentSize;
    unsigned dictID;
    unsigned blockChecksumFlag;
} lz4f_frame_info;

typedef struct {
    lz4f_frame_info frameInfo;
    int compressionLevel;
    unsigned autoFlush;
    unsigned favorDecSpeed;
    unsigned reserved[3];
} lz4f_preferences;

typedef struct {
    int loaded; // 1 ok, 0 failed
    char error[256];
    unsigned (*isError)(size_t);
    const char *(*getErrorName)(size_t);
    size_t (*compressFrameBound)(size_t, const lz4f_preferences *);
    size_t (*compressFrame)(void *, size_t, const void *, size_t, const lz4f_preferences *);
    size_t (*createDecompressionContext)(void **, unsigned);
    size_t (*freeDecompressionContext)(void *);
    size_t (*decompress)(void *, void *, size_t *, const void *, size_t *, const void *);
    void (*resetDecompressionContext)(void *); // 1.8+; optional
} lz4_api_t;

#define LZ4F_VERSION 100

// MARK: - zstd API (from zstd.h)

typedef struct {
    const void *src;
    size_t size;
    size_t pos;
} zstd_in_buffer;

typedef struct {
    void *dst;
    size_t size;
    size_t pos;
} zstd_out_buffer;

typedef struct {
    int loaded;
    char error[256];
    unsigned (*isError)(size_t);
    const char *(*getErrorName)(size_t);
    size_t (*compressBound)(size_t);
    void *(*createCCtx)(void);
    size_t (*freeCCtx)(void *);
    size_t (*compressCCtx)(void *, void *, size_t, const void *, size_t, int);
    void *(*createDStream)(void);
    size_t (*freeDStream)(void *);
    size_t (*initDStream)(void *);
    size_t (*decompressStream)(void *, zstd_out_buffer *, zstd_in_buffer *);
    unsigned long long (*getFrameContentSize)(const void *, size_t);
} zstd_api_t;

static lz4_api_t lz4_api;
static zstd_api_t zstd_api;
static pthread_once_t lz4_once = PTHREAD_ONCE_INIT;
static pthread_once_t zstd_once = PTHREAD_ONCE_INIT;

static void *open_first(const char *const *names, char *err, size_t errlen) {
    const char *last = "unknown error";
    for (int i = 0; names[i]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
        const char *e = dlerror();
        if (e) last = e;
    }
    set_err(err, errlen, "%s not available: %s", names[0], last);
    return NULL;
}

#define LOAD(api, handle, field, sym, required)                                                   \
    do {                                                                                          \
        *(void **)(&(api).field) = dlsym(handle, sym);                                            \
        if (!(api).field && (required)) {                                                         \
            set_err((api).error, sizeof((api).error), "symbol %s missing from library", sym);     \
            return;                                                                               \
        }                                                                                         \
    } while (0)

static void lz4_load(void) {
    static const char *const names[] = {"liblz4.so.1", "liblz4.so", "liblz4.1.dylib", "liblz4.dylib", NULL};
    void *h = open_first(names, lz4_api.error, sizeof(lz4_api.error));
    if (!h) return;
    LOAD(lz4_api, h, isError, "LZ4F_isError", 1);
    LOAD(lz4_api, h, getErrorName, "LZ4F_getErrorName", 1);
    LOAD(lz4_api, h, compressFrameBound, "LZ4F_compressFrameBound", 1);
    LOAD(lz4_api, h, compressFrame, "LZ4F_compressFrame", 1);
    LOAD(lz4_api, h, createDecompressionContext, "LZ4F_createDecompressionContext", 1);
    LOAD(lz4_api, h, freeDecompressionContext, "LZ4F_freeDecompressionContext", 1);
    LOAD(lz4_api, h, decompress, "LZ4F_decompress", 1);
    LOAD(lz4_api, h, resetDecompressionContext, "LZ4F_resetDecompressionContext", 0);
    lz4_api.loaded = 1;
}

static void zstd_load(void) {
    static const char *const names[] = {"libzstd.so.1", "libzstd.so", "libzstd.1.dylib", "libzstd.dylib", NULL};
    void *h = open_first(names, zstd_api.error, sizeof(zstd_api.error));
    if (!h) return;
    LOAD(zstd_api, h, isError, "ZSTD_isError", 1);
    LOAD(zstd_api, h, getErrorName, "ZSTD_getErrorName", 1);
    LOAD(zstd_api, h, compressBound, "ZSTD_compressBound", 1);
    LOAD(zstd_api, h, createCCtx, "ZSTD_createCCtx", 1);
    LOAD(zstd_api, h, freeCCtx, "ZSTD_freeCCtx", 1);
    LOAD(zstd_api, h, compressCCtx, "ZSTD_compressCCtx", 1);
    LOAD(zstd_api, h, createDStream, "ZSTD_createDStream", 1);
    LOAD(zstd_api, h, freeDStream, "ZSTD_freeDStream", 1);
    LOAD(zstd_api, h, initDStream, "ZSTD_initDStream", 1);
    LOAD(zstd_api, h, decompressStream, "ZSTD_decompressStream", 1);
    LOAD(zstd_api, h, getFrameContentSize, "ZSTD_getFrameContentSize", 1);
    zstd_api.loaded = 1;
}

static const lz4_api_t *lz4_get(char *err, size_t errlen) {
    pthread_once(&lz4_once, lz4_load);
    if (!lz4_api.loaded) {
        set_err(err, errlen, "%s", lz4_api.error);
        return NULL;
    }
    return &lz4_api;
}

static const zstd_api_t *zstd_get(char *err, size_t errlen) {
    pthread_once(&zstd_once, zstd_load);
    if (!zstd_api.loaded) {
        set_err(err, errlen, "%s", zstd_api.error);
        return NULL;
    }
    return &zstd_api;
}

int brook_codec_available(int codec, char *err, size_t errlen) {
    switch (codec) {
    case BROOK_CODEC_NONE:
    case BROOK_CODEC_GZIP:
    case BROOK_CODEC_SNAPPY: return 1;
    case BROOK_CODEC_LZ4: return lz4_get(err, errlen) != NULL;
    case BROOK_CODEC_ZSTD: return zstd_get(err, errlen) != NULL;
    default: set_err(err, errlen, "unknown compression codec %d", codec); return 0;
    }
}

// MARK: - decoders

struct brook_decoder {
    int codec;
    int frame_done; // the last call ended exactly at the end of a gzip member / zstd / lz4 frame
    z_stream zs;
    void *ctx; // ZSTD_DStream* or LZ4F_dctx*
};

static void decoder_free(brook_decoder *d) {
    if (!d) return;
    switch (d->codec) {
    case BROOK_CODEC_GZIP: inflateEnd(&d->zs); break;
    case BROOK_CODEC_LZ4: if (d->ctx) lz4_api.freeDecompressionContext(d->ctx); break;
    case BROOK_CODEC_ZSTD: if (d->ctx) zstd_api.freeDStream(d->ctx); break;
    }
    free(d);
}

// MARK: - per-thread cache

typedef struct {
    brook_decoder *decoders[5];
    z_stream *deflater;
    int deflater_level;
    void *zstd_cctx;
} thread_cache;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_destroy(void *p) {
    thread_cache *c = p;
    for (int i = 0; i < 5; i++) decoder_free(c->decoders[i]);
    if (c->deflater) {
        deflateEnd(c->deflater);
        free(c->deflater);
    }
    if (c->zstd_cctx) zstd_api.freeCCtx(c->zstd_cctx);
    free(c);
}

static void cache_key_init(void) { pthread_key_create(&cache_key, cache_destroy); }

static thread_cache *cache_get(void) {
    pthread_once(&cache_once, cache_key_init);
    thread_cache *c = pthread_getspecific(cache_key);
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (c && pthread_setspecific(cache_key, c) != 0) {
            free(c);
            c = NULL;
        }
    }
    return c;
}

brook_decoder *brook_decoder_acquire(int codec, char *err, size_t errlen) {
    if (codec != BROOK_CODEC_GZIP && codec != BROOK_CODEC_LZ4 && codec != BROOK_CODEC_ZSTD) {
        set_err(err, errlen, "codec %d has no streaming decoder", codec);
        return NULL;
    }
    thread_cache *c = cache_get();
    if (c && c->decoders[codec]) {
        brook_decoder *d = c->decoders[codec];
        c->decoders[codec] = NULL;
        return d;
    }
    const lz4_api_t *lz4 = NULL;
    const zstd_api_t *zstd = NULL;
    if (codec == BROOK_CODEC_LZ4 && !(lz4 = lz4_get(err, errlen))) return NULL;
    if (codec == BROOK_CODEC_ZSTD && !(zstd = zstd_get(err, errlen))) return NULL;

    brook_decoder *d = calloc(1, sizeof(*d));
    if (!d) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    d->codec = codec;
    switch (codec) {
    case BROOK_CODEC_GZIP: {
        // 15 + 32: automatic zlib/gzip header detection with the largest window.
        int r = inflateInit2(&d->zs, 15 + 32);
        if (r != Z_OK) {
            set_err(err, errlen, "inflateInit2 failed (%d)", r);
            free(d);
            return NULL;
        }
        break;
    }
    case BROOK_CODEC_LZ4: {
        size_t r = lz4->createDecompressionContext(&d->ctx, LZ4F_VERSION);
        if (lz4->isError(r)) {
            set_err(err, errlen, "LZ4F_createDecompressionContext: %s", lz4->getErrorName(r));
            free(d);
            return NULL;
        }
        break;
    }
    case BROOK_CODEC_ZSTD: {
        d->ctx = zstd->createDStream();
        size_t r = d->ctx ? zstd->initDStream(d->ctx) : 1;
        if (!d->ctx || zstd->isError(r)) {
            set_err(err, errlen, "ZSTD_createDStream failed");
            if (d->ctx) zstd->freeDStream(d->ctx);
            free(d);
            return NULL;
        }
        break;
    }
    }
    return d;
}

void brook_decoder_release(brook_decoder *d) {
    if (!d) return;
    // Reset so that a decoder left mid-stream by an error starts clean next time.
    int ok = 1;
    switch (d->codec) {
    case BROOK_CODEC_GZIP: ok = inflateReset(&d->zs) == Z_OK; break;
    case BROOK_CODEC_LZ4:
        if (lz4_api.resetDecompressionContext) {
            lz4_api.resetDecompressionContext(d->ctx);
        } else {
            ok = 0;
        }
        break;
    case BROOK_CODEC_ZSTD: ok = !zstd_api.isError(zstd_api.initDStream(d->ctx)); break;
    }
    d->frame_done = 0;
    thread_cache *c = ok ? cache_get() : NULL;
    if (c && !c->decoders[d->codec]) {
        c->decoders[d->codec] = d;
    } else {
        decoder_free(d);
    }
}

static int run_gzip(brook_decoder *d, const uint8_t *in, size_t in_len, size_t *in_pos, uint8_t *out,
                    size_t out_cap, size_t *out_pos, char *err, size_t errlen) {
    z_stream *zs = &d->zs;
    for (;;) {
        if (d->frame_done) {
            // Another member follows only if it starts with the gzip magic; anything else after a
            // complete member is ignored, as Java's GZIPInputStream does.
            size_t rest = in_len - *in_pos;
            if (rest >= 2 && in[*in_pos] == 0x1f && in[*in_pos + 1] == 0x8b) {
                inflateReset(zs);
                d->frame_done = 0;
            } else {
                *in_pos = in_len;
                return BROOK_DECODE_DONE;
            }
        }
        if (*out_pos == out_cap) return BROOK_DECODE_NEED_OUTPUT;
        size_t avail_in = in_len - *in_pos, avail_out = out_cap - *out_pos;
        zs->next_in = (Bytef *)(in + *in_pos);
        zs->avail_in = avail_in > UINT_MAX ? UINT_MAX : (uInt)avail_in;
        zs->next_out = out + *out_pos;
        zs->avail_out = avail_out > UINT_MAX ? UINT_MAX : (uInt)avail_out;
        uInt in_before = zs->avail_in, out_before = zs->avail_out;
        int r = inflate(zs, Z_NO_FLUSH);
        *in_pos += in_before - zs->avail_in;
        *out_pos += out_before - zs->avail_out;
        if (r == Z_STREAM_END) {
            d->frame_done = 1;
            continue;
        }
        if (r == Z_OK) continue;
        if (r == Z_BUF_ERROR) {
            if (*out_pos == out_cap) return BROOK_DECODE_NEED_OUTPUT;
            if (*in_pos == in_len) {
                set_err(err, errlen, "truncated gzip stream");
                return BROOK_DECODE_ERROR;
            }
            continue;
        }
        set_err(err, errlen, "gzip: %s (%d)", zs->msg ? zs->msg : "inflate failed", r);
        return BROOK_DECODE_ERROR;
    }
}

static int run_zstd(brook_decoder *d, const uint8_t *in, size_t in_len, size_t *in_pos, uint8_t *out,
                    size_t out_cap, size_t *out_pos, char *err, size_t errlen) {
    for (;;) {
        if (d->frame_done && *in_pos == in_len) return BROOK_DECODE_DONE;
        if (*out_pos == out_cap) return BROOK_DECODE_NEED_OUTPUT;
        zstd_in_buffer ib = {in, in_len, *in_pos};
        zstd_out_buffer ob = {out, out_cap, *out_pos};
        size_t r = zstd_api.decompressStream(d->ctx, &ob, &ib);
        if (zstd_api.isError(r)) {
            set_err(err, errlen, "zstd: %s", zstd_api.getErrorName(r));
            return BROOK_DECODE_ERROR;
        }
        int progressed = ib.pos != *in_pos || ob.pos != *out_pos;
        *in_pos = ib.pos;
        *out_pos = ob.pos;
        d->frame_done = r == 0; // 0: a frame is complete and fully flushed; more frames may follow
        if (d->frame_done) continue;
        if (*out_pos == out_cap) return BROOK_DECODE_NEED_OUTPUT;
        if (*in_pos == in_len || !progressed) {
            set_err(err, errlen, "truncated zstd frame");
            return BROOK_DECODE_ERROR;
        }
    }
}

static int run_lz4(brook_decoder *d, const uint8_t *in, size_t in_len, size_t *in_pos, uint8_t *out,
                   size_t out_cap, size_t *out_pos, char *err, size_t errlen) {
    for (;;) {
        if (d->frame_done && *in_pos == in_len) return BROOK_DECODE_DONE;
        if (*out_pos == out_cap) return BROOK_DECODE_NEED_OUTPUT;
        size_t dst = out_cap - *out_pos, src = in_len - *in_pos;
        size_t r = lz4_api.decompress(d->ctx, out + *out_pos, &dst, in + *in_pos, &src, NULL);
        if (lz4_api.isError(r)) {
            set_err(err, errlen, "lz4: %s", lz4_api.getErrorName(r));
            return BROOK_DECODE_ERROR;
        }
        *in_pos += src;
        *out_pos += dst;
        d->frame_done = r == 0; // 0: frame complete; the context is ready for another frame
        if (d->frame_done) continue;
        if (*out_pos == out_cap) return BROOK_DECODE_NEED_OUTPUT;
        if (*in_pos == in_len || (src == 0 && dst == 0)) {
            set_err(err, errlen, "truncated lz4 frame");
            return BROOK_DECODE_ERROR;
        }
    }
}

int brook_decoder_run(brook_decoder *d, const uint8_t *in, size_t in_len, size_t *in_pos, uint8_t *out,
                      size_t out_cap, size_t *out_pos, char *err, size_t errlen) {
    if (*in_pos > in_len || *out_pos > out_cap) {
        set_err(err, errlen, "invalid decoder positions");
        return BROOK_DECODE_ERROR;
    }
    switch (d->codec) {
    case BROOK_CODEC_GZIP: return run_gzip(d, in, in_len, in_pos, out, out_cap, out_pos, err, errlen);
    case BROOK_CODEC_ZSTD: return run_zstd(d, in, in_len, in_pos, out, out_cap, out_pos, err, errlen);
    case BROOK_CODEC_LZ4: return run_lz4(d, in, in_len, in_pos, out, out_cap, out_pos, err, errlen);
    }
    set_err(err, errlen, "bad decoder");
    return BROOK_DECODE_ERROR;
}

unsigned long long brook_zstd_frame_content_size(const uint8_t *in, size_t in_len) {
    if (!zstd_get(NULL, 0)) return 0;
    unsigned long long r = zstd_api.getFrameContentSize(in, in_len);
    // ZSTD_CONTENTSIZE_UNKNOWN and ZSTD_CONTENTSIZE_ERROR are the two largest values.
    return r >= (0ULL - 2) ? 0 : r;
}

// MARK: - compression

static lz4f_preferences lz4_prefs(int level) {
    // What librdkafka and Kafka's Java client write: independent 64 KiB blocks, no content size
    // (older Java consumers reject frames that carry one).
    lz4f_preferences p;
    memset(&p, 0, sizeof(p));
    p.frameInfo.blockSizeID = 4;
    p.frameInfo.blockMode = 1;
    p.compressionLevel = level;
    return p;
}

size_t brook_compress_bound(int codec, int level, size_t in_len, char *err, size_t errlen) {
    switch (codec) {
    case BROOK_CODEC_GZIP:
        // zlib's compressBound covers the deflate data plus a 6-byte zlib wrapper; gzip's wrapper
        // is 18 bytes (a 10-byte header without optional fields and an 8-byte trailer).
        return (size_t)compressBound((uLong)in_len) + 18;
    case BROOK_CODEC_SNAPPY: return brook_snappy_max_compressed_length(in_len);
    case BROOK_CODEC_LZ4: {
        const lz4_api_t *a = lz4_get(err, errlen);
        if (!a) return 0;
        lz4f_preferences p = lz4_prefs(level);
        return a->compressFrameBound(in_len, &p);
    }
    case BROOK_CODEC_ZSTD: {
        const zstd_api_t *a = zstd_get(err, errlen);
        if (!a) return 0;
        size_t r = a->compressBound(in_len);
        if (a->isError(r)) {
            set_err(err, errlen, "zstd: %s", a->getErrorName(r));
            return 0;
        }
        return r;
    }
    }
    set_err(err, errlen, "unknown compression codec %d", codec);
    return 0;
}

static long long gzip_compress(int level, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                               char *err, size_t errlen) {
    thread_cache *c = cache_get();
    z_stream *zs = NULL;
    if (c && c->deflater && c->deflater_level == level) {
        zs = c->deflater;
        c->deflater = NULL;
    } else {
        zs = calloc(1, sizeof(*zs));
        if (!zs) {
            set_err(err, errlen, "out of memory");
            return -1;
        }
        // 15 + 16: a gzip wrapper, which is what Kafka's GZIPOutputStream writes.
        int r = deflateInit2(zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
        if (r != Z_OK) {
            set_err(err, errlen, "deflateInit2 failed for level %d (%d)", level, r);
            free(zs);
            return -1;
        }
    }
    size_t in_pos = 0, out_pos = 0;
    int r;
    for (;;) {
        size_t avail_in = in_len - in_pos, avail_out = out_cap - out_pos;
        zs->next_in = (Bytef *)(in + in_pos);
        zs->avail_in = avail_in > UINT_MAX ? UINT_MAX : (uInt)avail_in;
        zs->next_out = out + out_pos;
        zs->avail_out = avail_out > UINT_MAX ? UINT_MAX : (uInt)avail_out;
        uInt in_before = zs->avail_in, out_before = zs->avail_out;
        r = deflate(zs, avail_in <= UINT_MAX ? Z_FINISH : Z_NO_FLUSH);
        size_t consumed = in_before - zs->avail_in, produced = out_before - zs->avail_out;
        in_pos += consumed;
        out_pos += produced;
        if (r == Z_STREAM_END) break;
        if ((r != Z_OK && r != Z_BUF_ERROR) || out_pos == out_cap || (consumed == 0 && produced == 0)) break;
    }
    int ok = r == Z_STREAM_END;
    if (!ok) set_err(err, errlen, "gzip: deflate failed (%d%s)", r, out_pos == out_cap ? ", output full" : "");
    if (c && deflateReset(zs) == Z_OK) {
        // Keep the most recently used level: producers rarely mix levels.
        if (c->deflater) {
            deflateEnd(c->deflater);
            free(c->deflater);
        }
        c->deflater = zs;
        c->deflater_level = level;
    } else {
        deflateEnd(zs);
        free(zs);
    }
    return ok ? (long long)out_pos : -1;
}

long long brook_compress(int codec, int level, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                         char *err, size_t errlen) {
    switch (codec) {
    case BROOK_CODEC_GZIP: return gzip_compress(level, in, in_len, out, out_cap, err, errlen);
    case BROOK_CODEC_SNAPPY:
        if (out_cap < brook_snappy_max_compressed_length(in_len)) {
            set_err(err, errlen, "snappy: output buffer too small");
            return -1;
        }
        return (long long)brook_snappy_compress(in, in_len, out);
    case BROOK_CODEC_LZ4: {
        const lz4_api_t *a = lz4_get(err, errlen);
        if (!a) return -1;
        lz4f_preferences p = lz4_prefs(level);
        size_t r = a->compressFrame(out, out_cap, in, in_len, &p);
        if (a->isError(r)) {
            set_err(err, errlen, "lz4: %s", a->getErrorName(r));
            return -1;
        }
        return (long long)r;
    }
    case BROOK_CODEC_ZSTD: {
        const zstd_api_t *a = zstd_get(err, errlen);
        if (!a) return -1;
        thread_cache *c = cache_get();
        void *cctx = NULL;
        if (c && c->zstd_cctx) {
            cctx = c->zstd_cctx;
            c->zstd_cctx = NULL;
        } else if (!(cctx = a->createCCtx())) {
            set_err(err, errlen, "ZSTD_createCCtx failed");
            return -1;
        }
        size_t r = a->compressCCtx(cctx, out, out_cap, in, in_len, level);
        if (c && !c->zstd_cctx) {
            c->zstd_cctx = cctx;
        } else {
            a->freeCCtx(cctx);
        }
        if (a->isError(r)) {
            set_err(err, errlen, "zstd: %s", a->getErrorName(r));
            return -1;
        }
        return (long long)r;
    }
    }
    set_err(err, errlen, "unknown compression codec %d", codec);
    return -1;
}
