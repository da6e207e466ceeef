#include <png.h>
// Function-like macros do not import into Swift: re-export what we use as functions.
static inline size_t tb_png_image_size(const png_image *image) { return PNG_IMAGE_SIZE(*image); }
static inline int tb_png_image_failed(const png_image *image) { return PNG_IMAGE_FAILED(*image); }
