/* clipnn export: the model tensors of a checkpoint, alone, in a safetensors file that PyTorch's
 * safetensors.torch.load_file + load_state_dict(strict=True) accept (the checkpoint itself also holds the
 * optimizer, clip, data and run state, which strict loading rejects as unexpected keys). */
#include "train/trainer.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/safetensors.h"
#include "json/json.h"

/* The prefixes of the non-model items of a checkpoint (layer names may not take them). */
static int model_tensor(const char *name)
{
    static const char *const pre[] = {"optim.", "clip.", "data.", "train.", NULL};
    for (const char *const *p = pre; *p; p++)
        if (!strncmp(name, *p, strlen(*p))) return 0;
    return 1;
}

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

cn_status cn_export_model(const char *checkpoint, const char *out_path, int *n_tensors)
{
    *n_tensors = 0;
    if (same_file(checkpoint, out_path))
        return cn_error(CN_ERR_ARG, "%s: --out is the checkpoint itself; export writes a new file", out_path);
    cn_st_file *f = NULL;
    cn_status st = cn_st_read(checkpoint, &f);
    if (st) return st == CN_ERR_IO ? CN_ERR_ARG : st;   /* an unreadable input is bad input (exit 2) */
    const char *fmt = cn_st_meta(f, "format");
    const char *cfg_text = cn_st_meta(f, "config");
    if (!fmt || strcmp(fmt, "clipnn-checkpoint") || !cfg_text) {
        /* the message first: fmt points into f */
        st = cn_error(CN_ERR_FORMAT, "%s: not a clipnn checkpoint (metadata 'format' is %s)", checkpoint,
                      fmt ? fmt : "missing");
        cn_st_close(f);
        return st;
    }
    cn_state sel;
    cn_state_init(&sel);
    const cn_state *t = cn_st_tensors(f);
    for (int i = 0; i < t->count && !st; i++) {
        const cn_state_item *it = &t->items[i];
        if (!model_tensor(it->name)) continue;
        if (it->dtype != CN_DT_F32) {
            st = cn_error(CN_ERR_FORMAT, "%s: model tensor '%s' is %s, expected F32", checkpoint, it->name,
                          cn_dtype_name(it->dtype));
            break;
        }
        st = cn_state_add(&sel, it->name, it->dtype, it->ndim, it->shape, it->data);
    }
    /* metadata: "format": "pt" as safetensors.torch.save_file writes, the model list the tensors belong to
     * (to rebuild the module), the step and version they come from */
    cJSON *cfg = NULL, *meta = NULL;
    char *model_text = NULL;
    if (!st && (st = cn_json_parse(cfg_text, checkpoint, &cfg))) cn_error_prefix(CN_ERR_FORMAT, "%s: metadata 'config'", checkpoint);
    if (!st) {
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(cfg, "model");
        meta = cJSON_CreateObject();
        model_text = model ? cJSON_PrintUnformatted(model) : NULL;
        const char *step = cn_st_meta(f, "step");
        if (!meta || !model_text || !cJSON_AddStringToObject(meta, "format", "pt") ||
            !cJSON_AddStringToObject(meta, "clipnn_model", model_text) ||
            !cJSON_AddStringToObject(meta, "clipnn_step", step ? step : "") ||
            !cJSON_AddStringToObject(meta, "clipnn_version", CN_VERSION))
            st = cn_error(CN_ERR_NOMEM, "out of memory exporting %s", checkpoint);
    }
    if (!st && sel.count == 0) st = cn_error(CN_ERR_FORMAT, "%s: the checkpoint holds no model tensors", checkpoint);
    if (!st) st = cn_st_write(out_path, &sel, meta);
    if (!st) *n_tensors = sel.count;
    free(model_text);
    cJSON_Delete(meta);
    cJSON_Delete(cfg);
    cn_state_free(&sel);
    cn_st_close(f);
    return st;
}
