/* clipnn: the public API in one header. Prefix cn_ for everything public. */
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
