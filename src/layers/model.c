/* The model: parsing the "model" list, parameter registration, initialisation and the forward pass.
 * Each layer type's forward is written from autograd ops, whose backward rules give the gradients. */
#include "layers/layers.h"
#include "json/json.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { L_LINEAR, L_TANH, L_RELU, L_SIGMOID, L_DROPOUT, L_EMBEDDING, L_RNN, L_LSTM, L_GRU };
static const char *const type_names[] = {"linear", "tanh", "relu", "sigmoid", "dropout", "embedding",
                                         "rnn", "lstm", "gru", NULL};

/* The keys a layer of each type accepts, in type_names order: the single source of truth for validation
 * here and for cn_layer_type_keys (the config module drops the keys a new type does not accept). */
static const char *const k_linear[] = {"type", "name", "out", "bias", "init", NULL};
static const char *const k_act[] = {"type", "name", NULL};
static const char *const k_dropout[] = {"type", "name", "p", NULL};
static const char *const k_embed[] = {"type", "name", "vocab", "dim", "init", NULL};
static const char *const k_rnn[] = {"type", "name", "hidden", "nonlinearity", "output", "init", NULL};
static const char *const k_gated[] = {"type", "name", "hidden", "output", "init", NULL};
static const char *const *const type_keys[] = {k_linear, k_act, k_act, k_act, k_dropout, k_embed,
                                               k_rnn, k_gated, k_gated};
_Static_assert(sizeof type_keys / sizeof type_keys[0] == sizeof type_names / sizeof type_names[0] - 1,
               "one key list per layer type");

const char *const *cn_layer_type_keys(const char *type)
{
    for (int t = 0; type && type_names[t]; t++)
        if (!strcmp(type, type_names[t])) return type_keys[t];
    return NULL;
}

/* Layer names that would collide with the other item prefixes of a checkpoint (optimizer state
 * "optim.*", clip state "clip.*", batcher "data.*", trainer "train.*"). */
static const char *const reserved_names[] = {"optim", "clip", "data", "train", NULL};

/* Per-parameter initialisation: INIT_DEFAULT is PyTorch's rule for the layer. */
enum { INIT_DEFAULT, INIT_UNIFORM, INIT_NORMAL, INIT_ORTHOGONAL, INIT_ZEROS };
static const char *const init_kinds[] = {"uniform", "normal", "orthogonal", "zeros", NULL};

typedef struct {
    int kind;
    double value;               /* uniform: a (bound); normal: std; orthogonal: gain */
} init_spec;

#define MAX_LP 4

typedef struct {
    int type;
    char prefix[CN_NAME_MAX];   /* "0" or the layer's name */
    int in, out;                /* features in / out (out = hidden for recurrent, dim for embedding) */
    int vocab;                  /* embedding */
    int bias;                   /* linear */
    int relu;                   /* rnn nonlinearity */
    int out_seq;                /* recurrent: output the whole sequence */
    int seq;                    /* the layer's input is a sequence */
    float p;                    /* dropout */
    int np;                     /* parameters, in state_dict order */
    int pidx[MAX_LP];
    init_spec init[MAX_LP];
} layer;

struct cn_model {
    int n;
    layer *l;
    cn_model_input in;
    cn_model_output out;
};

/* Parameter attribute names per layer kind, in state_dict order. The "init" object accepts them with or
 * without the "_l0" suffix (docs/config.md example: "weight_hh"). */
static const char *const linear_params[] = {"weight", "bias", NULL};
static const char *const embed_params[] = {"weight", NULL};
static const char *const rec_params[] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", NULL};

static int gates_of(int type) { return type == L_LSTM ? 4 : type == L_GRU ? 3 : 1; }
static int is_recurrent(int type) { return type == L_RNN || type == L_LSTM || type == L_GRU; }

static const char *const *param_names(int type)
{
    if (type == L_LINEAR) return linear_params;
    if (type == L_EMBEDDING) return embed_params;
    if (is_recurrent(type)) return rec_params;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Parsing */

static cn_status parse_init_spec(cJSON *spec, const char *path, init_spec *out)
{
    static const char *const keys[] = {"kind", "a", "std", "gain", NULL};
    cn_status st;
    const char *kind;
    if ((st = cn_json_expect_object(spec, path)) || (st = cn_json_check_keys(spec, path, keys))) return st;
    if ((st = cn_json_string(spec, path, "kind", 1, NULL, init_kinds, &kind))) return st;
    const char *unused[3] = {NULL, NULL, NULL};
    int nu = 0;
    if (!strcmp(kind, "uniform")) {
        out->kind = INIT_UNIFORM;
        st = cn_json_number(spec, path, "a", &(cn_json_num){.required = 1, .lo = 0, .hi = INFINITY}, &out->value);
        unused[nu++] = "std"; unused[nu++] = "gain";
    } else if (!strcmp(kind, "normal")) {
        out->kind = INIT_NORMAL;
        st = cn_json_number(spec, path, "std", &(cn_json_num){.def = 1.0, .lo = 0, .hi = INFINITY}, &out->value);
        unused[nu++] = "a"; unused[nu++] = "gain";
    } else if (!strcmp(kind, "orthogonal")) {
        out->kind = INIT_ORTHOGONAL;
        st = cn_json_number(spec, path, "gain", &(cn_json_num){.def = 1.0, .lo = 0, .hi = INFINITY}, &out->value);
        unused[nu++] = "a"; unused[nu++] = "std";
    } else {
        out->kind = INIT_ZEROS;
        out->value = 0;
        unused[nu++] = "a"; unused[nu++] = "std"; unused[nu++] = "gain";
    }
    if (st) return st;
    for (int i = 0; i < nu; i++)
        if (cJSON_GetObjectItemCaseSensitive(spec, unused[i])) {
            char p[256];
            cn_json_join(p, sizeof p, path, unused[i]);
            return cn_error(CN_ERR_ARG, "%s: not used by init kind \"%s\"", p, kind);
        }
    return CN_OK;
}

/* "init": {"weight_hh": {"kind": "orthogonal", "gain": 1.5}, ...} */
static cn_status parse_init(cJSON *obj, const char *path, const cn_paramset *ps, layer *L)
{
    cJSON *init = cJSON_GetObjectItemCaseSensitive(obj, "init");
    char ipath[256], ppath[320];
    cn_json_join(ipath, sizeof ipath, path, "init");
    for (int i = 0; i < L->np; i++) L->init[i].kind = INIT_DEFAULT;
    if (!init || cJSON_IsNull(init)) return CN_OK;
    cn_status st = cn_json_expect_object(init, ipath);
    if (st) return st;
    const char *const *names = param_names(L->type);
    for (cJSON *it = init->child; it; it = it->next) {
        int found = -1;
        for (int i = 0; i < L->np; i++) {
            size_t n = strlen(names[i]);
            int short_ok = n > 3 && !strcmp(names[i] + n - 3, "_l0") && strlen(it->string) == n - 3 &&
                           !strncmp(it->string, names[i], n - 3);
            if (!strcmp(it->string, names[i]) || short_ok) found = i;
        }
        cn_json_join(ppath, sizeof ppath, ipath, it->string);
        if (found < 0) {
            char list[128] = "";
            size_t k = 0;
            for (int i = 0; i < L->np && k < sizeof list; i++)
                k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", names[i]);
            return cn_error(CN_ERR_ARG, "%s: not a parameter of a %s layer (it has %s)", ppath, type_names[L->type], list);
        }
        if ((st = parse_init_spec(it, ppath, &L->init[found]))) return st;
        /* torch.nn.init.orthogonal_ raises "Only tensors with 2 or more dimensions are supported" */
        if (L->init[found].kind == INIT_ORTHOGONAL && ps->info[L->pidx[found]].ndim < 2)
            return cn_error(CN_ERR_ARG, "%s: orthogonal init needs a matrix, but %s.%s is %d-D [%d]", ppath, L->prefix,
                            names[found], ps->info[L->pidx[found]].ndim, ps->info[L->pidx[found]].shape[0]);
    }
    return CN_OK;
}

static cn_status get_pos_int(cJSON *obj, const char *path, const char *key, int required, long long def, int *out)
{
    long long v;
    cn_status st = cn_json_int(obj, path, key, required, def, 1, (long long)9e18, &v);
    if (st) return st;
    if (v > CN_LAYER_MAX_SIZE) return cn_error(CN_ERR_ARG, "%s.%s: %lld is too large (at most %d)", path, key, v, CN_LAYER_MAX_SIZE);
    *out = (int)v;
    return CN_OK;
}

static cn_status add_param(cn_paramset *ps, layer *L, const char *attr, int ndim, const int *shape)
{
    char name[CN_NAME_MAX + 32];
    snprintf(name, sizeof name, "%s.%s", L->prefix, attr);
    return cn_paramset_add(ps, name, ndim, shape, &L->pidx[L->np++]);
}

/* Parses layer `obj` at `path` given the incoming shape (*seq, *feat); updates them to the outgoing shape. */
static cn_status parse_layer(cJSON *obj, const char *path, int index, const cn_model_input *in, int *seq,
                             int *feat, cn_paramset *ps, layer *L)
{
    static const char *const outputs[] = {"last", "sequence", NULL};
    static const char *const nonlins[] = {"tanh", "relu", NULL};
    cn_status st;
    const char *type;
    if ((st = cn_json_expect_object(obj, path))) return st;
    if ((st = cn_json_string(obj, path, "type", 1, NULL, type_names, &type))) return st;
    for (L->type = 0; strcmp(type_names[L->type], type); L->type++) {}
    if ((st = cn_json_check_keys(obj, path, type_keys[L->type]))) return st;

    /* "name" replaces the index in parameter names; it must not contain '.' (the state_dict separator). */
    cJSON *nm = cJSON_GetObjectItemCaseSensitive(obj, "name");
    if (nm) {
        char p[256], d[96];
        cn_json_join(p, sizeof p, path, "name");
        if (!cJSON_IsString(nm) || !nm->valuestring[0] || strchr(nm->valuestring, '.') ||
            strlen(nm->valuestring) >= 64)
            return cn_error(CN_ERR_ARG, "%s: expected a non-empty string without '.' (at most 63 characters), got %s",
                            p, cn_json_describe(nm, d, sizeof d));
        for (const char *const *r = reserved_names; *r; r++)
            if (!strcmp(nm->valuestring, *r))
                return cn_error(CN_ERR_ARG, "%s: \"%s\" is reserved (checkpoints hold optim.*, clip.*, data.* and "
                                "train.* items next to the parameters); choose another layer name", p, *r);
        snprintf(L->prefix, sizeof L->prefix, "%s", nm->valuestring);
    } else {
        snprintf(L->prefix, sizeof L->prefix, "%d", index);
    }

    L->seq = *seq;
    L->in = *feat;
    L->out = *feat;
    if (L->type == L_EMBEDDING && index != 0)
        return cn_error(CN_ERR_ARG, "%s: an embedding must be the first layer (it reads token ids)", path);
    if (L->type == L_EMBEDDING && !in->ids)
        return cn_error(CN_ERR_ARG, "%s: an embedding needs token-id input, but the data holds features", path);
    if (index == 0 && in->ids && L->type != L_EMBEDDING)
        return cn_error(CN_ERR_ARG, "%s: the data holds token ids, so the first layer must be an embedding", path);
    if (is_recurrent(L->type) && !*seq)
        return cn_error(CN_ERR_ARG, "%s: a %s layer needs a sequence [T, B, F] as input, but %s", path, type,
                        index == 0 ? "the data is not a sequence" : "the previous layer outputs no sequence (output \"last\")");

    switch (L->type) {
    case L_LINEAR: {
        if ((st = get_pos_int(obj, path, "out", 1, 0, &L->out)) ||
            (st = cn_json_bool(obj, path, "bias", 0, 1, &L->bias)) ||
            (st = add_param(ps, L, "weight", 2, (int[]){L->out, L->in})))
            return st;
        if (L->bias && (st = add_param(ps, L, "bias", 1, (int[]){L->out}))) return st;
        break;
    }
    case L_DROPOUT: {
        double p;
        if ((st = cn_json_number(obj, path, "p", &(cn_json_num){.def = 0.5, .lo = 0, .hi = 1, .hi_open = 1}, &p))) return st;
        L->p = (float)p;
        break;
    }
    case L_EMBEDDING: {
        if ((st = get_pos_int(obj, path, "vocab", in->vocab < 1, in->vocab, &L->vocab)) ||
            (st = get_pos_int(obj, path, "dim", 1, 0, &L->out)))
            return st;
        if (in->vocab > L->vocab)
            return cn_error(CN_ERR_ARG, "%s.vocab: %d is smaller than the data's vocabulary of %d", path, L->vocab, in->vocab);
        if ((st = add_param(ps, L, "weight", 2, (int[]){L->vocab, L->out}))) return st;
        break;
    }
    case L_RNN: case L_LSTM: case L_GRU: {
        const char *o, *nl = "tanh";
        if ((st = get_pos_int(obj, path, "hidden", 1, 0, &L->out)) ||
            (L->type == L_RNN && (st = cn_json_string(obj, path, "nonlinearity", 0, "tanh", nonlins, &nl))) ||
            (st = cn_json_string(obj, path, "output", 0, "last", outputs, &o)))
            return st;
        L->relu = !strcmp(nl, "relu");
        L->out_seq = !strcmp(o, "sequence");
        int GH = gates_of(L->type) * L->out;
        if ((st = add_param(ps, L, "weight_ih_l0", 2, (int[]){GH, L->in})) ||
            (st = add_param(ps, L, "weight_hh_l0", 2, (int[]){GH, L->out})) ||
            (st = add_param(ps, L, "bias_ih_l0", 1, (int[]){GH})) ||
            (st = add_param(ps, L, "bias_hh_l0", 1, (int[]){GH})))
            return st;
        *seq = L->out_seq;
        break;
    }
    default:
        break;
    }
    *feat = L->out;
    if (param_names(L->type)) return parse_init(obj, path, ps, L);
    return CN_OK;
}

cn_status cn_model_build(cJSON *model_json, const char *path, const cn_model_input *in, cn_paramset *ps,
                         cn_model **out)
{
    *out = NULL;
    char d[96];
    if (!cJSON_IsArray(model_json) || cJSON_GetArraySize(model_json) < 1)
        return cn_error(CN_ERR_ARG, "%s: expected a non-empty list of layers, got %s", path,
                        cJSON_IsArray(model_json) ? "an empty list" : cn_json_describe(model_json, d, sizeof d));
    if (in->features < 1 || (in->ids && in->features != 1))
        return cn_error(CN_ERR_ARG, "%s: the input has %d features (token ids need exactly 1)", path, in->features);
    int n = cJSON_GetArraySize(model_json);
    cn_model *m = cn_calloc(1, sizeof *m);
    if (!m || !(m->l = cn_calloc((size_t)n, sizeof *m->l))) {
        cn_free(m);
        return cn_error(CN_ERR_NOMEM, "out of memory for a model of %d layers", n);
    }
    m->n = n;
    m->in = *in;
    int seq = in->seq, feat = in->features, i = 0;
    cn_status st = CN_OK;
    for (cJSON *it = model_json->child; it; it = it->next, i++) {
        char lp[256];
        snprintf(lp, sizeof lp, "%s.%d", path, i);
        if ((st = parse_layer(it, lp, i, in, &seq, &feat, ps, &m->l[i]))) {
            cn_model_free(m);
            return st;
        }
    }
    m->out.seq = seq;
    m->out.features = feat;
    *out = m;
    return CN_OK;
}

cn_model_output cn_model_output_shape(const cn_model *m) { return m->out; }
int cn_model_layers(const cn_model *m) { return m->n; }
const char *cn_model_layer_prefix(const cn_model *m, int i) { return i >= 0 && i < m->n ? m->l[i].prefix : NULL; }
const char *cn_model_layer_type(const cn_model *m, int i) { return i >= 0 && i < m->n ? type_names[m->l[i].type] : NULL; }

int cn_model_has_recurrent(const cn_model *m)
{
    for (int i = 0; i < m->n; i++)
        if (is_recurrent(m->l[i].type)) return 1;
    return 0;
}

void cn_model_free(cn_model *m)
{
    if (!m) return;
    cn_free(m->l);
    cn_free(m);
}

/* ------------------------------------------------------------------ */
/* Initialisation */

/* torch.nn.init.orthogonal_: A ~ N(0,1) [rows, cols] (transposed when rows < cols), A = QR with
 * Q *= sign(diag R), W = gain * Q (transposed back). Gram-Schmidt with R's diagonal positive by
 * construction gives that same Q. Rows of W are orthonormal when rows <= cols (W W^T = gain^2 I),
 * columns when rows >= cols (W^T W = gain^2 I). Modified Gram-Schmidt, repeated once for stability. */
static cn_status init_orthogonal(float *w, int rows, int cols, double gain, cn_rng *rng)
{
    int tr = rows < cols, m = tr ? cols : rows, n = tr ? rows : cols;    /* work on A [m, n], m >= n */
    double *a = cn_malloc(sizeof(double) * (size_t)m * (size_t)n);
    if (!a) return cn_error(CN_ERR_NOMEM, "out of memory for an orthogonal init of [%d, %d]", rows, cols);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            double v = cn_rng_normal(rng);
            if (tr) a[(size_t)c * n + r] = v; else a[(size_t)r * n + c] = v;
        }
    for (int j = 0; j < n; j++) {
        for (int pass = 0; pass < 2; pass++)
            for (int k = 0; k < j; k++) {
                double dot = 0;
                for (int i = 0; i < m; i++) dot += a[(size_t)i * n + k] * a[(size_t)i * n + j];
                for (int i = 0; i < m; i++) a[(size_t)i * n + j] -= dot * a[(size_t)i * n + k];
            }
        double nn = 0;
        for (int i = 0; i < m; i++) nn += a[(size_t)i * n + j] * a[(size_t)i * n + j];
        nn = sqrt(nn);
        for (int i = 0; i < m; i++) a[(size_t)i * n + j] = nn > 0 ? a[(size_t)i * n + j] / nn : 0;
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            w[(size_t)r * cols + c] = (float)(gain * (tr ? a[(size_t)c * n + r] : a[(size_t)r * n + c]));
    cn_free(a);
    return CN_OK;
}

/* PyTorch's default bound for uniform init of parameter i of layer L (0 = normal(0, 1) for embedding):
 * nn.Linear: weight kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), bias U(-1/sqrt(in), ..);
 * nn.RNN/LSTM/GRU: every parameter U(-1/sqrt(hidden), 1/sqrt(hidden)); nn.Embedding: N(0, 1). */
static double default_bound(const layer *L)
{
    if (L->type == L_LINEAR) return 1.0 / sqrt((double)L->in);
    if (is_recurrent(L->type)) return 1.0 / sqrt((double)L->out);
    return 0;
}

cn_status cn_model_init(cn_model *m, cn_paramset *ps, cn_rng *rng)
{
    if (!ps->finalized) return cn_error(CN_ERR_STATE, "model init: the parameter set is not finalized");
    for (int li = 0; li < m->n; li++) {
        layer *L = &m->l[li];
        for (int i = 0; i < L->np; i++) {
            cn_tensor t = cn_param_value(ps, L->pidx[i]);
            size_t n = cn_numel(&t);
            init_spec s = L->init[i];
            if (s.kind == INIT_DEFAULT) {
                if (L->type == L_EMBEDDING) s = (init_spec){INIT_NORMAL, 1.0};
                else s = (init_spec){INIT_UNIFORM, default_bound(L)};
            }
            switch (s.kind) {
            case INIT_UNIFORM:
                for (size_t k = 0; k < n; k++) t.data[k] = cn_rng_uniform(rng, (float)-s.value, (float)s.value);
                break;
            case INIT_NORMAL:
                for (size_t k = 0; k < n; k++) t.data[k] = (float)(s.value * cn_rng_normal(rng));
                break;
            case INIT_ORTHOGONAL: {
                int rows = t.shape[0], cols = (int)(n / (size_t)rows);
                cn_status st = init_orthogonal(t.data, rows, cols, s.value, rng);
                if (st) return st;
                break;
            }
            default:
                cn_fill(t.data, n, 0.0f);
            }
        }
    }
    return CN_OK;
}

/* ------------------------------------------------------------------ */
/* Forward */

static cn_var *fail(cn_graph *g, cn_status st)
{
    if (!g->err) g->err = st;
    return NULL;
}

/* Token ids held as floats [T,B(,1)] or [B(,1)] -> int32 [T,B] or [B] in the graph arena (kept until backward). */
static cn_var *embedding_forward(const layer *L, cn_graph *g, const cn_paramset *ps, cn_var *x)
{
    int nd = L->seq ? 2 : 1, shape[2] = {x->v.shape[0], L->seq ? x->v.shape[1] : 0};
    size_t n = cn_numel(&x->v);
    int32_t *idx = cn_arena_alloc(&g->arena, sizeof(int32_t) * n);
    if (!idx) {
        cn_error(CN_ERR_NOMEM, "model.%s: out of memory for token ids", L->prefix);
        return fail(g, CN_ERR_NOMEM);
    }
    for (size_t i = 0; i < n; i++) {
        float v = x->v.data[i];
        if (!(v >= 0.0f && v < (float)L->vocab && v == floorf(v))) {
            char vb[32];
            cn_error(CN_ERR_ARG, "layer %s (embedding): input %zu is %s, not a token id in [0, %d)", L->prefix, i,
                     cn_fmt_g(vb, sizeof vb, (double)v, 6), L->vocab);
            return fail(g, CN_ERR_ARG);
        }
        idx[i] = (int32_t)v;
    }
    return cn_embedding(g, cn_param(g, ps, L->pidx[0]), idx, nd, shape);
}

/* rnn / lstm / gru over x [T, B, F] (PyTorch's CPU algorithm), one cn_recurrent node per layer:
 *   xp = x W_ih^T + b_ih                    [T, B, G*H], all time steps in one matrix product;
 *   per step t: gh = h W_hh^T + b_hh        [B, G*H]
 *     rnn:  h = act(xp[t] + gh)
 *     lstm: gates = xp[t] + gh (i, f, g, o); c = s(f) c + s(i) tanh(g); h = s(o) tanh(c)
 *     gru:  r, z, n; n = tanh(xi_n + r * gh_n), h = (1 - z) n + z h
 * Initial states are zero. Truncation (bptt = k > 0): the gradient into h (and c) is cut before steps
 * k, 2k, ... (as if they were replaced by detached copies). Output: all states [T, B, H], or a view of the
 * last one [B, H]. */
static cn_var *recurrent_forward(const layer *L, cn_graph *g, const cn_paramset *ps, cn_var *x, int bptt)
{
    int kind = L->type == L_LSTM ? CN_REC_LSTM : L->type == L_GRU ? CN_REC_GRU : L->relu ? CN_REC_RELU : CN_REC_TANH;
    cn_var *seq = cn_recurrent(g, kind, x, cn_param(g, ps, L->pidx[0]), cn_param(g, ps, L->pidx[1]),
                               cn_param(g, ps, L->pidx[2]), cn_param(g, ps, L->pidx[3]), bptt);
    if (!seq) return NULL;
    return L->out_seq ? seq : cn_select(g, seq, seq->v.shape[0] - 1);   /* [T, B, H] or [B, H] */
}

cn_var *cn_model_forward(cn_model *m, cn_graph *g, const cn_paramset *ps, cn_var *x, int bptt)
{
    if (g->err) return NULL;
    if (!x) {
        cn_error(CN_ERR_ARG, "model forward: no input");
        return fail(g, CN_ERR_ARG);
    }
    if (!ps->finalized) {
        cn_error(CN_ERR_STATE, "model forward: the parameter set is not finalized");
        return fail(g, CN_ERR_STATE);
    }
    /* Input shape: [T, B, F] or [B, F]; token ids may omit the trailing 1. */
    const cn_tensor *v = &x->v;
    int want = m->in.seq ? 3 : 2;
    int ok = (v->ndim == want && v->shape[want - 1] == m->in.features) || (m->in.ids && v->ndim == want - 1);
    if (!ok) {
        char b[64];
        cn_error(CN_ERR_SHAPE, "model forward: input has shape %s, expected %s with %d features", cn_shape_str(v, b, sizeof b),
                 m->in.seq ? "[T, B, F]" : "[B, F]", m->in.features);
        return fail(g, CN_ERR_SHAPE);
    }
    if (bptt < 0) {
        cn_error(CN_ERR_ARG, "model forward: bptt must be >= 0, got %d", bptt);
        return fail(g, CN_ERR_ARG);
    }
    cn_var *h = x;
    for (int i = 0; i < m->n && h; i++) {
        const layer *L = &m->l[i];
        switch (L->type) {
        case L_LINEAR:
            h = cn_linear(g, h, cn_param(g, ps, L->pidx[0]), L->bias ? cn_param(g, ps, L->pidx[1]) : NULL);
            break;
        case L_TANH:      h = cn_tanh(g, h); break;
        case L_RELU:      h = cn_relu(g, h); break;
        case L_SIGMOID:   h = cn_sigmoid(g, h); break;
        case L_DROPOUT:   h = cn_dropout(g, h, L->p); break;
        case L_EMBEDDING: h = embedding_forward(L, g, ps, h); break;
        default:          h = recurrent_forward(L, g, ps, h, bptt); break;
        }
    }
    if (!h && !g->err) g->err = CN_ERR_ARG;
    return h;
}

/* ------------------------------------------------------------------ */
/* Losses */

static const char *const loss_names[] = {"mse", "cross_entropy", "bce_with_logits"};

cn_status cn_loss_parse(const char *name, cn_loss_kind *out)
{
    for (int k = 0; k < 3; k++)
        if (name && !strcmp(name, loss_names[k])) {
            *out = (cn_loss_kind)k;
            return CN_OK;
        }
    return cn_error(CN_ERR_ARG, "loss: expected one of \"mse\", \"cross_entropy\", \"bce_with_logits\", got \"%s\"",
                    name ? name : "(none)");
}

const char *cn_loss_name(cn_loss_kind k) { return (unsigned)k < 3 ? loss_names[k] : "?"; }

cn_var *cn_loss(cn_graph *g, cn_loss_kind k, cn_var *pred, cn_var *target, const int32_t *labels)
{
    if (g->err) return NULL;
    if (k == CN_LOSS_CROSS_ENTROPY) return cn_cross_entropy(g, pred, labels);
    if (!target) {
        cn_error(CN_ERR_ARG, "loss %s: no target", cn_loss_name(k));
        return fail(g, CN_ERR_ARG);
    }
    return k == CN_LOSS_MSE ? cn_mse(g, pred, target) : cn_bce_with_logits(g, pred, target);
}

double cn_loss_value(const cn_var *loss)
{
    double v = cn_scalar_value(loss);
    return fabs(v) > FLT_MAX ? copysign(INFINITY, v) : v;
}

cn_status cn_model_new(const cn_layer_spec *layers, int n_layers, const cn_model_input *in, cn_paramset *ps,
                       cn_model **out)
{
    *out = NULL;
    if (n_layers < 1 || !layers) return cn_error(CN_ERR_ARG, "model: expected at least one layer, got %d", n_layers);
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return cn_error(CN_ERR_NOMEM, "out of memory building the model");
    cn_status st = CN_OK;
    for (int i = 0; i < n_layers && !st; i++) {
        const cn_layer_spec *L = &layers[i];
        if ((unsigned)L->type > CN_LAYER_GRU) { st = cn_error(CN_ERR_ARG, "model.%d.type: unknown type %d", i, (int)L->type); break; }
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            st = cn_error(CN_ERR_NOMEM, "out of memory building the model");
            break;
        }
        st = cn_json_set(o, "type", cJSON_CreateString(type_names[L->type]));
        if (!st && L->name) st = cn_json_set(o, "name", cJSON_CreateString(L->name));
        switch (L->type) {
        case CN_LAYER_LINEAR:
            if (!st) st = cn_json_set(o, "out", cJSON_CreateNumber(L->out));
            if (!st && L->no_bias) st = cn_json_set(o, "bias", cJSON_CreateFalse());
            break;
        case CN_LAYER_DROPOUT:
            if (!st) st = cn_json_set_opt(o, "p", L->p);
            break;
        case CN_LAYER_EMBEDDING:
            if (!st) st = cn_json_set_opt(o, "vocab", L->vocab);
            if (!st) st = cn_json_set(o, "dim", cJSON_CreateNumber(L->dim));
            break;
        case CN_LAYER_RNN: case CN_LAYER_LSTM: case CN_LAYER_GRU:
            if (!st) st = cn_json_set(o, "hidden", cJSON_CreateNumber(L->hidden));
            if (!st && L->type == CN_LAYER_RNN && L->relu) st = cn_json_set(o, "nonlinearity", cJSON_CreateString("relu"));
            if (!st && L->sequence) st = cn_json_set(o, "output", cJSON_CreateString("sequence"));
            break;
        default: break;
        }
    }
    if (!st) st = cn_model_build(arr, "model", in, ps, out);
    cJSON_Delete(arr);
    return st;
}
