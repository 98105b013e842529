/* Shared between the files of src/clip (not public). */
#ifndef CN_CLIP_INTERNAL_H
#define CN_CLIP_INTERNAL_H

#include "clip/clip.h"
#include "json/json.h"

/* Built-in modes (modes.c), registered statically in registry.c. */
extern const cn_clip_mode_def cn_clip_mode_none, cn_clip_mode_value, cn_clip_mode_norm,
    cn_clip_mode_norm_per_tensor, cn_clip_mode_agc, cn_clip_mode_autoclip, cn_clip_mode_zclip;

/* PyTorch's clip_grad_norm_ / clip_grads_with_norm_ epsilon, also used by the adaptive modes
 * (AutoClip and ZClip call torch.nn.utils.clip_grad_norm_ in their reference code). */
#define CN_CLIP_TORCH_EPS 1e-6

#endif
