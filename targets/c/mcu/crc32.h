/* CRC-32 (IEEE 802.3, zlib's crc32), table-less: 1 KB of table is not worth it on an MCU for the
 * few kilobytes per frame; the model slot is checked once at boot. */
#ifndef CRC32_H
#define CRC32_H

#include <stddef.h>
#include <stdint.h>

/* crc32_update(0, data, n) == zlib.crc32(data); chains like zlib's. */
uint32_t crc32_update(uint32_t crc, const void *data, size_t n);

#endif
