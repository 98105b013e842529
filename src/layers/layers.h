/* clipnn layers: the model as a PyTorch nn.Sequential built from the JSON "model" list.
 *
 * A model is a list of layers run in order (docs/config.md). Parameters live in a cn_paramset under PyTorch's
 * state_dict names ("0.weight", "1.weight_hh_l0", or "<name>.weight" when the layer has a "name"), so a
 * checkpoint loads into the matching torch module. Layer table, names and init rules: src/layers/README.md.
 *
 * Life cycle:
 *   cn_model_build(json, "model", &in, &ps, &m);   registers parameters (ps not finalized yet)
 *   cn_paramset_finalize(&ps);
 *   cn_model_init(m, &ps, &rng);                   PyTorch default init + "init" overrides
 *   per step: y = cn_model_forward(m, g, &ps, x, bptt); loss = cn_loss(g, kind, y, target, labels);
 * Sequences are time-major [T, B, F]. */
#ifndef CN_LAYERS_H
#define CN_LAYERS_H

#include <cJSON.h>
#include "../tensor/tensor.h"
#include "../tensor/rng.h"
#include "../autograd/autograd.h"

typedef struct cn_model cn_model;

/* Largest size a layer key takes (out, hidden, vocab, dim). */
#define CN_LAYER_MAX_SIZE (1 << 24)

/* seq: input is [T,B,F] time-major (else [B,F]); ids: input holds token ids (float-valued) for an embedding
 * first layer, features = 1 (the trailing dim of 1 may be absent); vocab: number of distinct ids (0 unknown). */
typedef struct { int seq; int features; int ids; int vocab; } cn_model_input;
/* [T,B,O] if seq else [B,O] */
typedef struct { int seq; int features; } cn_model_output;

/* Parses the JSON "model" array (mutated: defaults filled in) found at `path`, registers every parameter in
 * ps (not finalized) under nn.Sequential state_dict names. Errors name the JSON path
 * (`model.1.hidden: expected an integer >= 1, got 0`) and inconsistent shapes (embedding not first, a
 * recurrent layer after a non-sequence output, ...). */
cn_status cn_model_build(cJSON *model_json, const char *path, const cn_model_input *in, cn_paramset *ps,
                         cn_model **out);
/* The same model from C, without JSON: a list of layer specs, e.g.
 *   cn_layer_spec layers[] = {{.type = CN_LAYER_RNN, .hidden = 50}, {.type = CN_LAYER_LINEAR, .out = 1}};
 *   cn_model_new(layers, 2, &in, &ps, &m);
 * A field left 0 takes the JSON key's default; fields of other layer types are ignored. The result (and
 * its parameter names and initialisation) is the model the equivalent "model" list gives. Per-parameter
 * "init" overrides need the JSON path. Errors name "model.<i>.<key>". */
typedef enum {
    CN_LAYER_LINEAR = 0, CN_LAYER_TANH, CN_LAYER_RELU, CN_LAYER_SIGMOID, CN_LAYER_DROPOUT, CN_LAYER_EMBEDDING,
    CN_LAYER_RNN, CN_LAYER_LSTM, CN_LAYER_GRU
} cn_layer_type;
typedef struct {
    cn_layer_type type;
    const char *name;   /* parameter-name prefix instead of the index (NULL: the index)          */
    int out;            /* linear: required                                                      */
    int no_bias;        /* linear: 1 = no bias                                                   */
    double p;           /* dropout: 0.5                                                          */
    int vocab, dim;     /* embedding: required (vocab may come from cn_model_input.vocab)        */
    int hidden;         /* rnn, lstm, gru: required                                              */
    int relu;           /* rnn: 1 = relu nonlinearity (tanh otherwise)                           */
    int sequence;       /* rnn, lstm, gru: 1 = output every step ("sequence"), else the last     */
} cn_layer_spec;
cn_status cn_model_new(const cn_layer_spec *layers, int n_layers, const cn_model_input *in, cn_paramset *ps,
                       cn_model **out);
cn_model_output cn_model_output_shape(const cn_model *m);
/* The NULL-terminated list of keys a layer of this type accepts ("type", "name", "init" where it has
 * parameters, and its own keys), or NULL for an unknown type. cn_model_build validates with these lists;
 * the config module uses them to drop the keys a changed "type" does not accept. Static storage. */
const char *const *cn_layer_type_keys(const char *type);
/* After cn_paramset_finalize: PyTorch's default initialisation for every layer, or the per-parameter "init"
 * override, drawing from rng in a fixed order: layers in model order, within a layer its parameters in
 * state_dict order, within a parameter the elements in row-major order (orthogonal: the rows*cols normal
 * draws of the matrix in row-major order, then QR). "zeros" draws nothing. */
cn_status cn_model_init(cn_model *m, cn_paramset *ps, cn_rng *rng);
/* Forward on graph g (g->training: dropout on/off; g->rng: the dropout RNG). bptt = 0: full BPTT; k > 0: the
 * recurrent state is carried over the whole sequence but its gradient is cut every k steps (before steps
 * k, 2k, ...). Initial states are zero. Returns NULL on error (g->err, message in cn_errmsg()). */
cn_var *cn_model_forward(cn_model *m, cn_graph *g, const cn_paramset *ps, cn_var *x, int bptt);
void cn_model_free(cn_model *m);
/* Number of layers, the parameter-name prefix of layer i ("0", "1", or its "name") and its type ("linear",
 * "lstm", ...; NULL when i is out of range); whether any layer is recurrent (rnn, lstm or gru). */
int cn_model_layers(const cn_model *m);
const char *cn_model_layer_prefix(const cn_model *m, int i);
const char *cn_model_layer_type(const cn_model *m, int i);
int cn_model_has_recurrent(const cn_model *m);

/* ---- Losses ---- */
typedef enum { CN_LOSS_MSE, CN_LOSS_CROSS_ENTROPY, CN_LOSS_BCE_LOGITS } cn_loss_kind;
/* "mse", "cross_entropy", "bce_with_logits". */
cn_status cn_loss_parse(const char *name, cn_loss_kind *out);
const char *cn_loss_name(cn_loss_kind k);
/* pred from cn_model_forward. mse / bce_with_logits: `target` a var with pred's number of elements.
 * cross_entropy: `labels`, one per row of pred seen as [rows, C] (for [T,B,C] time-major: labels[t*B + b]);
 * the mean over all rows, i.e. over batch and time. Mean reduction as PyTorch's defaults. */
cn_var *cn_loss(cn_graph *g, cn_loss_kind k, cn_var *pred, cn_var *target, const int32_t *labels);
/* The value of a loss node as the trainer sees it: the double mean (cn_scalar_value), except that a value
 * beyond float32 range (|loss| > FLT_MAX) is returned as +-inf. The loss is accumulated in double, but the
 * model computes in float32 and PyTorch's float32 loss is inf there: reporting it as inf makes a float32
 * overflow count as a non-finite loss (on_nonfinite) on the same step as in a float32 framework, instead of
 * letting a finite 1e40 loss, and the gradients computed from it, through. NaN stays NaN. */
double cn_loss_value(const cn_var *loss);

#endif
