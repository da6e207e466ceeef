#pragma once
#include <stddef.h>

// Files the binary carries, so that a copied binary needs nothing beside it: the stdlib's modules
// and the notebook page's stylesheet and script.
typedef struct {
    const char *name;            // "stdlib/train.tb", "web/notebook.js"
    const unsigned char *bytes;  // not NUL-terminated
    size_t size;
} tb_asset;

// The embedded files; *count receives how many.
const tb_asset *tb_assets(size_t *count);
