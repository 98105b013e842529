/* The mode registry: name -> definition. Built-ins are in the table from the
 * start; cn_clip_register appends. This table is the clip module's only global
 * state (documented in clip.h): register modes at start-up. */
#include "clip/internal.h"

#include <stdio.h>
#include <string.h>

#define MAX_MODES 64

static const cn_clip_mode_def *g_modes[MAX_MODES] = {
    &cn_clip_mode_none, &cn_clip_mode_value, &cn_clip_mode_norm, &cn_clip_mode_norm_per_tensor,
    &cn_clip_mode_agc, &cn_clip_mode_autoclip, &cn_clip_mode_zclip,
};
static int g_n_modes = 7;

const cn_clip_mode_def *cn_clip_find_mode(const char *name)
{
    if (!name) return NULL;
    for (int i = 0; i < g_n_modes; i++)
        if (!strcmp(g_modes[i]->name, name)) return g_modes[i];
    return NULL;
}

cn_status cn_clip_register(const cn_clip_mode_def *def)
{
    if (!def || !def->name || !*def->name || !def->create)
        return cn_error(CN_ERR_ARG, "cn_clip_register: a mode needs a name and a create function");
    const cn_clip_mode_def *old = cn_clip_find_mode(def->name);
    if (old == def) return CN_OK;
    if (old) return cn_error(CN_ERR_ARG, "cn_clip_register: mode \"%s\" is already registered", def->name);
    if (g_n_modes == MAX_MODES)
        return cn_error(CN_ERR_ARG, "cn_clip_register: registry full (%d modes)", MAX_MODES);
    g_modes[g_n_modes++] = def;
    return CN_OK;
}

const char *cn_clip_mode_names(char *buf, size_t n)
{
    size_t k = 0;
    if (n) buf[0] = 0;
    for (int i = 0; i < g_n_modes && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? ", " : "", g_modes[i]->name);
    return buf;
}
