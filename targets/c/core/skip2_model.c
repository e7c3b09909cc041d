#include "skip2_model.h"

#include <stddef.h>

#include "skip2_quant.h"

/* Rows idx[0..m-1] (or first..first+m-1 when idx is NULL) of data not held as float32, into out. */
static void copy_rows(const skip2_data *data, int D, const uint32_t *idx, uint32_t first,
                      uint32_t m, float *out)
{
    if (!data->x8) {
        data->fetch(data, idx, first, m, out);
        return;
    }
    for (uint32_t i = 0; i < m; i++) {
        uint32_t r = idx ? idx[i] : first + i;
        skip2_dequantise(D, data->x8 + (size_t)r * D, data->x8_scale[r], out + (size_t)i * D);
    }
}

void skip2_data_rows(const skip2_data *data, int D, const uint32_t *idx, uint32_t m,
                     float *scratch, const float **rows)
{
    if (data->x) {
        for (uint32_t i = 0; i < m; i++)
            rows[i] = data->x + (size_t)idx[i] * D;
        return;
    }
    copy_rows(data, D, idx, 0, m, scratch);
    for (uint32_t i = 0; i < m; i++)
        rows[i] = scratch + (size_t)i * D;
}

const float *skip2_data_block(const skip2_data *data, int D, uint32_t first, uint32_t m,
                              float *scratch)
{
    if (data->x)
        return data->x + (size_t)first * D;
    copy_rows(data, D, NULL, first, m, scratch);
    return scratch;
}
