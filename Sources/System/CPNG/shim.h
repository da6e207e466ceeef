#include <png.h>
// Function-like macros do not import into Swift: re-export what we use as functions.
static inline size_t tb_png_image_size(const png_image *image) { return PNG_IMAGE_SIZE(*image); }
static inline int tb_png_image_failed(const png_image *image) { return PNG_IMAGE_FAILED(*image); }
// The simplified API's constants, as plain values for Swift.
static const unsigned int TB_PNG_IMAGE_VERSION = PNG_IMAGE_VERSION;
static const unsigned int TB_PNG_FORMAT_GRAY = PNG_FORMAT_GRAY;
static const unsigned int TB_PNG_FORMAT_GA = PNG_FORMAT_GA;
static const unsigned int TB_PNG_FORMAT_RGB = PNG_FORMAT_RGB;
static const unsigned int TB_PNG_FORMAT_RGBA = PNG_FORMAT_RGBA;
static const unsigned int TB_PNG_FORMAT_FLAG_LINEAR = PNG_FORMAT_FLAG_LINEAR;
