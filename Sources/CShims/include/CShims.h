// The C shims, one header per concern.
#include "tb_blas.h"
#include "tb_conv.h"
#include "tb_dnnl.h"
#include "tb_channel.h"
#include "tb_elementwise.h"
#include "tb_pool.h"
