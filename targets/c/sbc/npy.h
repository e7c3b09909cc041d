/* Minimal NumPy .npy (format version 1.0) reader and writer: little-endian, C order, 1-D or
 * 2-D arrays of '<f4' (features, weights) and '<i4' / '<i8' (labels). Anything else is refused
 * with a message that says what was found. */
#ifndef NPY_H
#define NPY_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int ndim;           /* 1 or 2 */
    uint32_t shape[2];  /* shape[1] is 1 for 1-D arrays */
    size_t count;       /* number of elements */
    float *f32;         /* set by npy_load_f32 */
    int32_t *i32;       /* set by npy_load_labels */
} npy_array;

/* Each loader returns 0, or -1 with a one-line reason in err (the caller names the file). */
int npy_load_f32(const char *path, npy_array *out, char *err, size_t err_len);

/* '<i4' or '<i8' integers, converted to int32 (values outside int32 are an error). */
int npy_load_labels(const char *path, npy_array *out, char *err, size_t err_len);

void npy_free(npy_array *a);

/* Writes a '<f4' array of shape[0] (ndim 1) or shape[0] x shape[1] (ndim 2). */
int npy_save_f32(const char *path, const float *data, int ndim, const uint32_t shape[2], char *err,
                 size_t err_len);

#endif
