#ifndef CBROOK_NATIVE_H
#define CBROOK_NATIVE_H
#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli) of `len` bytes, continuing from `crc` (0 to start).
/// Uses the SSE4.2 crc32 instruction when the CPU has it, slicing-by-8 tables otherwise.
uint32_t brook_crc32c(uint32_t crc, const void *data, size_t len);

/// 1 when the hardware path is in use (for benchmarks and logs).
int brook_crc32c_hardware(void);

// MARK: - compression codecs (codecs.c, snappy.c)

/// Codec ids, equal to the compression bits of Kafka's batch attributes.
enum {
    BROOK_CODEC_NONE = 0,
    BROOK_CODEC_GZIP = 1,
    BROOK_CODEC_SNAPPY = 2,
    BROOK_CODEC_LZ4 = 3,
    BROOK_CODEC_ZSTD = 4,
};

/// Results of `brook_decoder_run`.
enum {
    BROOK_DECODE_ERROR = -1,
    /// All input was consumed and ended on a complete gzip member / lz4 frame / zstd frame.
    BROOK_DECODE_DONE = 1,
    /// The output buffer is full; call again with more room.
    BROOK_DECODE_NEED_OUTPUT = 2,
};

/// 1 when `codec` can be used; otherwise 0 and a message in `err` (e.g. liblz4.so.1 missing).
int brook_codec_available(int codec, char *err, size_t errlen);

/// Upper bound of the compressed size of `in_len` bytes; 0 and a message in `err` on failure.
size_t brook_compress_bound(int codec, int level, size_t in_len, char *err, size_t errlen);

/// One-shot compression of gzip (gzip wrapper), raw snappy, lz4 frame or zstd frame.
/// `out_cap` should be at least `brook_compress_bound`. Returns bytes written, or -1 and `err`.
long long brook_compress(int codec, int level, const uint8_t *in, size_t in_len, uint8_t *out,
                         size_t out_cap, char *err, size_t errlen);

/// A streaming decompressor for gzip, lz4 frame or zstd, reused through a per-thread cache.
typedef struct brook_decoder brook_decoder;

/// Takes a decoder from this thread's cache or makes one; NULL and `err` when the codec's
/// library cannot be loaded.
brook_decoder *brook_decoder_acquire(int codec, char *err, size_t errlen);

/// Resets the decoder and returns it to the calling thread's cache (or frees it).
void brook_decoder_release(brook_decoder *d);

/// Decodes `in[*in_pos..<in_len]` into `out[*out_pos..<out_cap]`, advancing both positions.
/// Concatenated gzip members and lz4/zstd frames are decoded in sequence.
int brook_decoder_run(brook_decoder *d, const uint8_t *in, size_t in_len, size_t *in_pos, uint8_t *out,
                      size_t out_cap, size_t *out_pos, char *err, size_t errlen);

/// The content size a zstd frame header declares, or 0 when absent or unknown (a sizing hint only).
unsigned long long brook_zstd_frame_content_size(const uint8_t *in, size_t in_len);

/// Worst-case size of raw snappy output for `n` input bytes.
size_t brook_snappy_max_compressed_length(size_t n);

/// Raw snappy compression; `out` must hold `brook_snappy_max_compressed_length(n)` bytes.
size_t brook_snappy_compress(const uint8_t *in, size_t n, uint8_t *out);

/// Reads the uncompressed length preamble of a raw snappy block. Returns the preamble's size in
/// bytes, or -1 when it is malformed.
int brook_snappy_uncompressed_length(const uint8_t *in, size_t n, size_t *result);

/// Decompresses a raw snappy block whose declared length must equal `out_len`. 0 ok, -1 corrupt.
int brook_snappy_decompress(const uint8_t *in, size_t n, uint8_t *out, size_t out_len);

/// Caps glibc's malloc arenas at `n` (mallopt M_ARENA_MAX); returns 1 on success, 0 where the
/// allocator has no such setting.
int brook_set_malloc_arenas(int n);

/// Sets glibc's mmap and trim thresholds (mallopt M_MMAP_THRESHOLD, M_TRIM_THRESHOLD) in
/// bytes; returns 1 if both were taken, 0 otherwise.
int brook_set_malloc_thresholds(long mmap_threshold, long trim_threshold);

#endif
