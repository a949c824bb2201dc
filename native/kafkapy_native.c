/* kafkapy native core.  See kafkapy_native.h for the contract of every function.
 *
 * Why C: the produce path must validate (CRC-32C over the whole batch) and patch every
 * incoming batch; in pure Python that costs milliseconds per MiB, here microseconds.
 * All multi-byte wire fields are big-endian and read byte-wise, so the code is
 * independent of host endianness and alignment.
 */
#include "kafkapy_native.h"

#include <string.h>

/* -DKP_NO_SSE42 builds the portable path only, as on non-x86 targets. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(KP_NO_SSE42)
#define KP_X86 1
#include <nmmintrin.h>
#else
#define KP_X86 0
#endif

/* ---- big-endian field access ------------------------------------------------------ */

static inline uint32_t rd_u32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline int32_t rd_i32(const uint8_t *p) { return (int32_t)rd_u32(p); }
static inline int16_t rd_i16(const uint8_t *p) {
    return (int16_t)(((uint16_t)p[0] << 8) | p[1]);
}
static inline int64_t rd_i64(const uint8_t *p) {
    return (int64_t)(((uint64_t)rd_u32(p) << 32) | rd_u32(p + 4));
}
static inline void wr_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);  p[3] = (uint8_t)v;
}
static inline void wr_i64(uint8_t *p, int64_t v) {
    wr_u32(p, (uint32_t)((uint64_t)v >> 32));
    wr_u32(p + 4, (uint32_t)(uint64_t)v);
}
static inline void wr_i16(uint8_t *p, int16_t v) {
    p[0] = (uint8_t)((uint16_t)v >> 8); p[1] = (uint8_t)v;
}

/* ---- CRC-32C -------------------------------------------------------------------- */

#define CRC32C_POLY 0x82F63B78u  /* reflected Castagnoli polynomial */

static uint32_t crc_tab[8][256];
static int crc_tab_ready = 0;

/* Tables are a pure function of the polynomial, so a racing second initialisation
 * writes identical values; the flag only avoids repeating the work. */
static void crc_tab_init(void) {
    uint32_t i, k, c;
    if (crc_tab_ready) return;
    for (i = 0; i < 256; i++) {
        c = i;
        for (k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc_tab[0][i] = c;
    }
    for (i = 0; i < 256; i++) {
        c = crc_tab[0][i];
        for (k = 1; k < 8; k++) {
            c = crc_tab[0][c & 0xff] ^ (c >> 8);
            crc_tab[k][i] = c;
        }
    }
    crc_tab_ready = 1;
}

/* Slice-by-8: eight table lookups per 8 input bytes. Words are assembled byte-wise
 * (little-endian order, matching the reflected CRC) to stay endian-neutral. */
uint32_t kp_crc32c_table(uint32_t crc, const uint8_t *p, size_t len) {
    uint32_t c = ~crc, lo, hi;
    crc_tab_init();
    while (len >= 8) {
        lo = c ^ ((uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                  ((uint32_t)p[3] << 24));
        hi = (uint32_t)p[4] | ((uint32_t)p[5] << 8) | ((uint32_t)p[6] << 16) |
             ((uint32_t)p[7] << 24);
        c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
            crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
            crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
            crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--) c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

#if KP_X86
/* The target attribute lets this one function use the crc32 instruction while the
 * rest of the build stays baseline x86 (no -msse4.2); it is only called after the
 * runtime CPU check. */
__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p, size_t len) {
    uint32_t c = ~crc;
#if defined(__x86_64__)
    uint64_t c64, w;
    while (len && ((uintptr_t)p & 7)) { c = _mm_crc32_u8(c, *p++); len--; }
    c64 = c;
    while (len >= 8) {
        memcpy(&w, p, 8);
        c64 = _mm_crc32_u64(c64, w);
        p += 8;
        len -= 8;
    }
    c = (uint32_t)c64;
#endif
    while (len >= 4) {
        uint32_t w32;
        memcpy(&w32, p, 4);
        c = _mm_crc32_u32(c, w32);
        p += 4;
        len -= 4;
    }
    while (len--) c = _mm_crc32_u8(c, *p++);
    return ~c;
}

static int cpu_has_sse42(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}
#endif

int kp_crc32c_hw_available(void) {
#if KP_X86
    return cpu_has_sse42();
#else
    return 0;
#endif
}

uint32_t kp_crc32c_hw(uint32_t crc, const uint8_t *data, size_t len) {
#if KP_X86
    if (cpu_has_sse42()) return crc32c_sse42(crc, data, len);
#endif
    return kp_crc32c_table(crc, data, len);
}

typedef uint32_t (*crc_fn)(uint32_t, const uint8_t *, size_t);
static crc_fn crc_impl = 0;

int kp_crc32c_select(int force_table) {
    crc_tab_init();
#if KP_X86
    if (!force_table && cpu_has_sse42()) {
        crc_impl = crc32c_sse42;
        return 1;
    }
#else
    (void)force_table;
#endif
    crc_impl = kp_crc32c_table;
    return 0;
}

uint32_t kp_crc32c(uint32_t crc, const uint8_t *data, size_t len) {
    if (!crc_impl) kp_crc32c_select(0);
    return crc_impl(crc, data, len);
}

/* ---- record batch layout (magic 2) ---------------------------------------------------- */

enum {
    OFF_BASE_OFFSET = 0, OFF_LENGTH = 8, OFF_EPOCH = 12, OFF_MAGIC = 16, OFF_CRC = 17,
    OFF_ATTRIBUTES = 21, OFF_LAST_DELTA = 23, OFF_FIRST_TS = 27, OFF_MAX_TS = 35,
    OFF_PRODUCER_ID = 43, OFF_PRODUCER_EPOCH = 51, OFF_BASE_SEQ = 53, OFF_COUNT = 57,
    LOG_OVERHEAD = 12,          /* baseOffset + batchLength */
    BATCH_OVERHEAD = 61,        /* full v2 header */
    LEGACY_MIN_SIZE = 14        /* smallest magic-0 message after the log overhead */
};

static void scan_fail(kp_scan_result *res, int64_t kind, size_t pos, int64_t detail) {
    res->error = kind;
    res->error_position = (int64_t)pos;
    res->detail = detail;
}

void kp_scan_batches(const uint8_t *buf, size_t len, size_t start, int flags,
                     int64_t *out, size_t max_out, kp_scan_result *res) {
    size_t pos = start, n = 0;
    res->count = 0;
    res->error = KP_SCAN_OK;
    res->error_position = 0;
    res->detail = 0;
    if (!crc_impl) kp_crc32c_select(0);
    while (pos < len) {
        const uint8_t *b = buf + pos;
        size_t remaining = len - pos;
        int32_t blen;
        size_t size;
        int32_t last_delta, count;
        uint32_t stored, computed;
        if (n == max_out) { scan_fail(res, KP_SCAN_FULL, pos, 0); break; }
        if (remaining < LOG_OVERHEAD) {
            scan_fail(res, KP_SCAN_TRUNCATED, pos, (int64_t)remaining);
            break;
        }
        blen = rd_i32(b + OFF_LENGTH);
        /* Judge the length before trusting it: a negative or tiny length cannot be a
         * frame of either format (Kafka applies the same legacy minimum first). */
        if (blen < LEGACY_MIN_SIZE) { scan_fail(res, KP_SCAN_SHORT, pos, blen); break; }
        size = (size_t)blen + LOG_OVERHEAD;
        if (size > remaining) { scan_fail(res, KP_SCAN_TRUNCATED, pos, (int64_t)size); break; }
        if (b[OFF_MAGIC] != 2) { scan_fail(res, KP_SCAN_MAGIC, pos, (int8_t)b[OFF_MAGIC]); break; }
        if (size < BATCH_OVERHEAD) { scan_fail(res, KP_SCAN_SHORT, pos, blen); break; }
        stored = rd_u32(b + OFF_CRC);
        computed = crc_impl(0, b + OFF_ATTRIBUTES, size - OFF_ATTRIBUTES);
        if (stored != computed) { scan_fail(res, KP_SCAN_CRC, pos, computed); break; }
        last_delta = rd_i32(b + OFF_LAST_DELTA);
        count = rd_i32(b + OFF_COUNT);
        /* Empty batches (count 0) are legal: compaction keeps them for producer state. */
        if (count < 0 || (int64_t)count > (int64_t)last_delta + 1 ||
            (count != 0 && !(flags & KP_SCAN_ALLOW_GAPS) &&
             (int64_t)count != (int64_t)last_delta + 1)) {
            scan_fail(res, KP_SCAN_COUNT, pos, count);
            break;
        }
        {
            int64_t *o = out + n * KP_BATCH_FIELDS;
            o[0] = (int64_t)pos;
            o[1] = (int64_t)size;
            o[2] = rd_i64(b + OFF_BASE_OFFSET);
            o[3] = rd_i32(b + OFF_EPOCH);
            o[4] = 2;
            o[5] = stored;
            o[6] = rd_i16(b + OFF_ATTRIBUTES);
            o[7] = last_delta;
            o[8] = rd_i64(b + OFF_FIRST_TS);
            o[9] = rd_i64(b + OFF_MAX_TS);
            o[10] = rd_i64(b + OFF_PRODUCER_ID);
            o[11] = rd_i16(b + OFF_PRODUCER_EPOCH);
            o[12] = rd_i32(b + OFF_BASE_SEQ);
            o[13] = count;
        }
        n++;
        pos += size;
    }
    res->count = (int64_t)n;
    res->valid_bytes = (int64_t)(pos - start);
}

/* Size of the well-formed v2 frame at buf[pos], or 0 when it is not one. Used by the
 * writers, which run only on buffers that the scan already accepted. */
static size_t frame_size(const uint8_t *buf, size_t len, size_t pos) {
    int32_t blen;
    size_t size;
    if (len - pos < LOG_OVERHEAD) return 0;
    blen = rd_i32(buf + pos + OFF_LENGTH);
    if (blen < BATCH_OVERHEAD - LOG_OVERHEAD) return 0;
    size = (size_t)blen + LOG_OVERHEAD;
    if (size > len - pos || buf[pos + OFF_MAGIC] != 2) return 0;
    return size;
}

int64_t kp_assign_offsets(uint8_t *buf, size_t len, int64_t base_offset, int32_t leader_epoch) {
    size_t pos = 0, size;
    int64_t next = base_offset;
    while (pos < len) {
        if (!(size = frame_size(buf, len, pos))) return -1;
        wr_i64(buf + pos + OFF_BASE_OFFSET, next);
        wr_u32(buf + pos + OFF_EPOCH, (uint32_t)leader_epoch);
        next += (int64_t)rd_i32(buf + pos + OFF_LAST_DELTA) + 1;
        pos += size;
    }
    return next;
}

int64_t kp_set_log_append_time(uint8_t *buf, size_t len, int64_t ts) {
    size_t pos = 0, size;
    int64_t n = 0;
    while (pos < len) {
        uint8_t *b;
        if (!(size = frame_size(buf, len, pos))) return -1;
        b = buf + pos;
        wr_i16(b + OFF_ATTRIBUTES, (int16_t)(rd_i16(b + OFF_ATTRIBUTES) | 0x08));
        wr_i64(b + OFF_MAX_TS, ts);
        wr_u32(b + OFF_CRC, kp_crc32c(0, b + OFF_ATTRIBUTES, size - OFF_ATTRIBUTES));
        pos += size;
        n++;
    }
    return n;
}

/* ---- index search ------------------------------------------------------------- */

int64_t kp_offset_index_lookup(const uint8_t *buf, int64_t entries, int64_t target) {
    int64_t lo = 0, hi = entries - 1, found = -1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if ((int64_t)rd_i32(buf + mid * 8) <= target) { found = mid; lo = mid + 1; }
        else hi = mid - 1;
    }
    return found;
}

int64_t kp_time_index_lookup(const uint8_t *buf, int64_t entries, int64_t target) {
    int64_t lo = 0, hi = entries - 1, found = -1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (rd_i64(buf + mid * 12) <= target) { found = mid; lo = mid + 1; }
        else hi = mid - 1;
    }
    return found;
}
