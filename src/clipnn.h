/* clipnn: the public API in one header. Prefix cn_ for everything public.
 *
 * Installed (make install) as <clipnn/clipnn.h> with the headers it includes under include/clipnn/;
 * build with `pkg-config --cflags --libs clipnn`. The public headers include each other by paths relative
 * to themselves, so they need no -I of their own beyond the one for <clipnn/...> (and cJSON's, which
 * pkg-config adds through clipnn.pc's Requires). The API is described in docs/api.md. */
#ifndef CLIPNN_H
#define CLIPNN_H

#include "tensor/core.h"
#include "tensor/tensor.h"
#include "tensor/rng.h"
#include "tensor/state.h"
#include "json/json.h"

#include "autograd/autograd.h"
#include "layers/layers.h"
#include "optim/optim.h"
#include "clip/clip.h"
#include "data/data.h"
#include "io/safetensors.h"

#define CLIPNN_VERSION CN_VERSION

#endif
