#include "skip2_model.h"

#include <stddef.h>

#include "skip2_linalg.h"

void skip2_data_rows(const skip2_data *data, int D, const uint32_t *idx, uint32_t m, float *out)
{
    if (data->x)
        skip2_gather_rows((int)m, D, data->x, idx, out);
    else
        data->fetch(data, idx, 0, m, out);
}

const float *skip2_data_block(const skip2_data *data, int D, uint32_t first, uint32_t m,
                              float *scratch)
{
    if (data->x)
        return data->x + (size_t)first * D;
    data->fetch(data, NULL, first, m, scratch);
    return scratch;
}
