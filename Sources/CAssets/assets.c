// The files are built into the binary with C23's #embed (clang takes it as an extension here and
// records each file in the dependency list, so an edit to one rebuilds this file).
#include "tb_assets.h"

#pragma clang diagnostic ignored "-Wc23-extensions"

static const unsigned char stdlib_train[] = {
#embed "../../stdlib/train.tb"
};
static const unsigned char stdlib_augment[] = {
#embed "../../stdlib/augment.tb"
};
static const unsigned char stdlib_ablation[] = {
#embed "../../stdlib/ablation.tb"
};
static const unsigned char web_css[] = {
#embed "../../web/notebook.css"
};
static const unsigned char web_js[] = {
#embed "../../web/notebook.js"
};

#define ASSET(name, array) { name, array, sizeof array }
static const tb_asset assets[] = {
    ASSET("stdlib/train.tb", stdlib_train),
    ASSET("stdlib/augment.tb", stdlib_augment),
    ASSET("stdlib/ablation.tb", stdlib_ablation),
    ASSET("web/notebook.css", web_css),
    ASSET("web/notebook.js", web_js),
};

const tb_asset *tb_assets(size_t *count) {
    *count = sizeof assets / sizeof assets[0];
    return assets;
}
