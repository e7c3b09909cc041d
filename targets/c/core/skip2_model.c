#include "skip2_model.h"

#include <stddef.h>

void skip2_data_rows(const skip2_data *data, int D, const uint32_t *idx, uint32_t m,
                     float *scratch, const float **rows)
{
    if (data->x) {
        for (uint32_t i = 0; i < m; i++)
            rows[i] = data->x + (size_t)idx[i] * D;
        return;
    }
    data->fetch(data, idx, 0, m, scratch);
    for (uint32_t i = 0; i < m; i++)
        rows[i] = scratch + (size_t)i * D;
}

const float *skip2_data_block(const skip2_data *data, int D, uint32_t first, uint32_t m,
                              float *scratch)
{
    if (data->x)
        return data->x + (size_t)first * D;
    data->fetch(data, NULL, first, m, scratch);
    return scratch;
}
