/* An out-of-tree program built against the installed library with `pkg-config --cflags --libs clipnn` only
 * (tests/install_test.sh). It clips the gradient [3, 4] to norm 1 with the PyTorch rule and prints what the
 * report says; the script compares the output of the static and the shared build with the expected one. */
#include <stdio.h>
#include <clipnn/clipnn.h>

int main(void)
{
    cn_paramset ps;
    cn_paramset_init(&ps);
    int shape[1] = {2};
    cn_clip *clip = NULL;
    cn_clip_action act = CN_CLIP_STOP;
    if (cn_paramset_add(&ps, "w", 1, shape, NULL) || cn_paramset_finalize(&ps) ||
        cn_clip_from_string("{\"mode\": \"norm\", \"max_norm\": 1.0, \"eps\": 0}", &ps, &clip)) {
        fprintf(stderr, "use_clipnn: %s\n", cn_errmsg());
        cn_paramset_free(&ps);
        return 1;
    }
    ps.grad[0] = 3.0f;
    ps.grad[1] = 4.0f;
    int rc = cn_clip_run(clip, &ps, 0, &act) != CN_OK || act != CN_CLIP_UPDATE;
    const cn_clip_report *r = cn_clip_last_report(clip);
    printf("clipnn %s: norm_pre %g norm_post %g coef %g clipped %d grad %.7g %.7g\n", CLIPNN_VERSION,
           r->norm_pre, r->norm_post, r->coef, r->clipped, ps.grad[0], ps.grad[1]);
    cn_clip_free(clip);
    cn_paramset_free(&ps);
    return rc;
}
