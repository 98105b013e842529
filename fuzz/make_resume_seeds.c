/* Writes the seed corpus of the resume fuzz target, fuzz/corpus/resume/<config name>: for every config of
 * resume_configs.h, a real checkpoint of a short training run (train.steps of the config), prefixed by
 * the config's index byte. Built and run by fuzz/make_resume_seeds.sh (from the repo root). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/files.h"
#include "train/trainer.h"
#include "resume_configs.h"

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int bad = fputs(text, f) < 0;
    return fclose(f) != 0 || bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    const char *out_dir = argc > 1 ? argv[1] : "fuzz/corpus/resume";
    char tmp[] = "/tmp/clipnn-resume-seeds-XXXXXX", path[4200], run[4200];
    if (!mkdtemp(tmp)) { perror("mkdtemp"); return 1; }
    snprintf(path, sizeof path, "%s/fuzz_text.txt", tmp);
    if (write_file(path, FUZZ_RESUME_TEXT)) { perror(path); return 1; }
    int status = 0;
    for (int i = 0; i < FUZZ_RESUME_N; i++) {
        const fuzz_resume_config *c = &fuzz_resume_configs[i];
        snprintf(path, sizeof path, "%s/%s.json", tmp, c->name);
        snprintf(run, sizeof run, "%s/run-%s", tmp, c->name);
        if (write_file(path, c->json)) { perror(path); return 1; }
        cn_train_opts o = {.config_path = path, .out_dir = run};
        cn_train_result r;
        cn_status st = cn_train(&o, &r);
        if (st) { fprintf(stderr, "%s: %s\n", c->name, cn_errmsg()); status = 1; continue; }
        char ck[4300], *data = NULL;
        size_t len = 0;
        snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", run);
        if (cn_read_file(ck, CN_READ_UNLIMITED, &data, &len)) { fprintf(stderr, "%s: %s\n", c->name, cn_errmsg()); status = 1; continue; }
        snprintf(path, sizeof path, "%s/%s", out_dir, c->name);
        FILE *f = fopen(path, "wb");
        unsigned char idx = (unsigned char)i;
        if (!f || fwrite(&idx, 1, 1, f) != 1 || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
            perror(path);
            return 1;
        }
        printf("%s: %zu bytes, step %lld%s%s\n", path, len + 1, r.steps, r.diverged ? ", diverged" : "",
               r.stopped ? ", stopped" : "");
        cn_free(data);
        char cmd[4400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", run);
        if (system(cmd) != 0) status = 1;
    }
    snprintf(path, sizeof path, "%s/fuzz_text.txt", tmp);
    unlink(path);
    for (int i = 0; i < FUZZ_RESUME_N; i++) {
        snprintf(path, sizeof path, "%s/%s.json", tmp, fuzz_resume_configs[i].name);
        unlink(path);
    }
    rmdir(tmp);
    return status;
}
