/* pngcheck: is a screenshot a picture, or one flat colour (a page that rendered nothing)?
 *   usage: pngcheck FILE WIDTH HEIGHT
 * Prints the size, the number of distinct colours (counted up to 4096) and the share of pixels that
 * differ from the most common colour (the background). Exit 0 when the image has the expected size,
 * at least 16 colours and at least 1% of non-background pixels; 1 otherwise (or unreadable). Part of
 * `make report-check` (tests/browser/check.sh); reads PNG with libpng's simplified API. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLOURS 4096

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: pngcheck FILE WIDTH HEIGHT\n");
        return 2;
    }
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&im, argv[1])) {
        fprintf(stderr, "pngcheck: %s: %s\n", argv[1], im.message);
        return 1;
    }
    im.format = PNG_FORMAT_RGB;
    size_t bytes = PNG_IMAGE_SIZE(im);
    unsigned char *px = malloc(bytes);
    if (!px || !png_image_finish_read(&im, NULL, px, 0, NULL)) {
        fprintf(stderr, "pngcheck: %s: %s\n", argv[1], px ? im.message : "out of memory");
        free(px);
        png_image_free(&im);
        return 1;
    }
    /* distinct colours with their counts (linear probing is plenty for 4096 entries) */
    static unsigned keys[2 * MAX_COLOURS];
    static size_t counts[2 * MAX_COLOURS];
    static unsigned char used[2 * MAX_COLOURS];
    int distinct = 0;
    size_t n = (size_t)im.width * im.height;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned)px[3 * i] << 16 | (unsigned)px[3 * i + 1] << 8 | px[3 * i + 2];
        unsigned h = (c * 2654435761u) % (2 * MAX_COLOURS);
        while (used[h] && keys[h] != c) h = (h + 1) % (2 * MAX_COLOURS);
        if (!used[h]) {
            if (distinct == MAX_COLOURS) continue;   /* enough colours: stop counting new ones */
            used[h] = 1;
            keys[h] = c;
            distinct++;
        }
        counts[h]++;
    }
    size_t top = 0;
    for (int h = 0; h < 2 * MAX_COLOURS; h++)
        if (used[h] && counts[h] > top) top = counts[h];
    double other = n ? 100.0 * (double)(n - top) / (double)n : 0;
    long want_w = strtol(argv[2], NULL, 10), want_h = strtol(argv[3], NULL, 10);
    printf("%s: %ux%u, %d%s colours, %.1f%% non-background\n", argv[1], im.width, im.height, distinct,
           distinct == MAX_COLOURS ? "+" : "", other);
    int ok = (long)im.width == want_w && (long)im.height == want_h && distinct >= 16 && other >= 1.0;
    if (!ok) fprintf(stderr, "pngcheck: %s: expected %ldx%ld with 16+ colours and 1%%+ non-background\n", argv[1],
                     want_w, want_h);
    free(px);
    return ok ? 0 : 1;
}
