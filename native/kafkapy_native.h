/* kafkapy native core: CRC-32C, magic-2 batch header scan, offset patching, index search.
 *
 * Everything here works on caller-owned buffers and never allocates: the Python face
 * (kafkapy/native.py) passes bytes/bytearray/memoryview through cffi's from_buffer.
 * This header is also fed verbatim to cffi's cdef, so it holds only declarations that
 * pycparser understands (no macros with expressions, no includes).
 */
#ifndef KAFKAPY_NATIVE_H
#define KAFKAPY_NATIVE_H

#include <stddef.h>
#include <stdint.h>

/* Scan outcome kinds (kp_scan_result.error). */
enum kp_scan_error {
    KP_SCAN_OK = 0,          /* every byte of the buffer is whole valid batches */
    KP_SCAN_TRUNCATED = 1,   /* torn tail: header or body runs past the end */
    KP_SCAN_SHORT = 2,       /* batchLength below what the format needs */
    KP_SCAN_MAGIC = 3,       /* magic != 2 (detail = the magic byte) */
    KP_SCAN_CRC = 4,         /* stored CRC-32C != computed (detail = computed) */
    KP_SCAN_COUNT = 5,       /* recordsCount != lastOffsetDelta + 1 (detail = count) */
    KP_SCAN_FULL = 6         /* the output array filled up; resume at valid_bytes */
};

/* Number of int64 slots per scanned batch in the output array, in this order:
 * position, size, base_offset, partition_leader_epoch, magic, crc, attributes,
 * last_offset_delta, first_timestamp, max_timestamp, producer_id, producer_epoch,
 * base_sequence, record_count.  A flat int64 array (instead of a struct) lets Python
 * turn each batch into a tuple with one struct.iter_unpack step. */
enum { KP_BATCH_FIELDS = 14 };

typedef struct {
    int64_t valid_bytes;     /* bytes of whole valid batches from the buffer start */
    int64_t count;           /* batches written to the output array */
    int64_t error;           /* enum kp_scan_error */
    int64_t error_position;  /* offset in the buffer of the offending batch */
    int64_t detail;          /* magic, computed crc, size, or count, depending on error */
} kp_scan_result;

/* CRC-32C (Castagnoli).  `crc` is the result of a previous call (0 to start), so calls
 * chain: kp_crc32c(kp_crc32c(0, a), b) == CRC of a||b. */
uint32_t kp_crc32c(uint32_t crc, const uint8_t *data, size_t len);
uint32_t kp_crc32c_table(uint32_t crc, const uint8_t *data, size_t len);
/* Hardware path; falls back to the table when the CPU (or build target) lacks SSE4.2. */
uint32_t kp_crc32c_hw(uint32_t crc, const uint8_t *data, size_t len);
int kp_crc32c_hw_available(void);
/* 0 = auto (hardware when available), 1 = force the table path (tests). Returns the
 * implementation now in use: 1 hardware, 0 table. */
int kp_crc32c_select(int force_table);

/* Scan flags. */
enum {
    /* Accept recordsCount < lastOffsetDelta + 1: batches rewritten by log compaction keep
     * their offset span but lose records, so recovery and replication must accept them;
     * produce validation must not (Kafka's LogValidator rejects any mismatch). */
    KP_SCAN_ALLOW_GAPS = 1
};

/* Walk magic-2 batches of buf[start, len).  Fills up to max_out batches into out
 * (KP_BATCH_FIELDS int64 each) and stops at the first bad or incomplete batch.
 * Never looks at records. */
void kp_scan_batches(const uint8_t *buf, size_t len, size_t start, int flags,
                     int64_t *out, size_t max_out, kp_scan_result *res);

/* Write consecutive baseOffsets from base_offset and partitionLeaderEpoch into every
 * batch of buf.  Returns the next offset, or -1 if the buffer is not a chain of
 * well-formed batch frames (nothing past the bad frame is touched). */
int64_t kp_assign_offsets(uint8_t *buf, size_t len, int64_t base_offset, int32_t leader_epoch);

/* Set the LogAppendTime attribute bit and maxTimestamp of every batch, recomputing the
 * CRC.  Returns the number of batches, or -1 on a malformed frame. */
int64_t kp_set_log_append_time(uint8_t *buf, size_t len, int64_t ts);

/* Greatest slot whose key <= target, or -1.  Entries are big-endian: offset index
 * 8 bytes (relOffset int32, position int32), time index 12 bytes (timestamp int64,
 * relOffset int32).  Keys must be non-decreasing. */
int64_t kp_offset_index_lookup(const uint8_t *buf, int64_t entries, int64_t target);
int64_t kp_time_index_lookup(const uint8_t *buf, int64_t entries, int64_t target);

#endif
