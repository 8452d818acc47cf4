/*
 * The continual demo, through the C API only: writes the built-in benchmark (first run
 * only), runs a continual setting (default 3x5: five tasks of three classes) with the
 * compact preset, printing progress, then prints the per-task tables (A-AUROC image and
 * pixel, A-AUPR, A-PRO, FM), writes heat-map overlays of a few test images per class,
 * and saves the model and the report.
 *   usage: continual_demo [preset] [setting] [work folder] [train steps] [image size]
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>


static char last_stage[256] = "";

static int show_progress(float fraction, const char *stage, void *user) {
    (void)user;
    int changed = strcmp(stage, last_stage) != 0;
    if (changed && last_stage[0] != '\0') printf("\n");
    snprintf(last_stage, sizeof last_stage, "%s", stage);
    int width = 30, filled = (int)(fraction * width + 0.5f);
    printf("\r[%.*s%*s] %5.1f%%  %-40s", filled, "##############################", width - filled, "",
           100.0 * fraction, stage);
    fflush(stdout);
    return 0;
}

static int write_file(const char *path, const char *text) {
    FILE *file = fopen(path, "w");
    if (!file) return 0;
    fputs(text, file);
    return fclose(file) == 0;
}

/* Writes overlays of the first `per_class` defective test images of every class. */
static int write_overlays(const cdad_detector *detector, const char *root, const char *out, int per_class) {
    int written = 0;
    DIR *classes = opendir(root);
    if (!classes) return 0;
    struct dirent *class_entry;
    while ((class_entry = readdir(classes)) != NULL) {
        if (class_entry->d_name[0] == '.') continue;
        char class_dir[PATH], test_dir[PATH];
        path_join(class_dir, root, class_entry->d_name);
        path_join(test_dir, class_dir, "test");
        DIR *kinds = opendir(test_dir);
        if (!kinds) continue;
        int done = 0;
        struct dirent *kind;
        while ((kind = readdir(kinds)) != NULL && done < per_class) {
            if (kind->d_name[0] == '.' || strcmp(kind->d_name, "good") == 0) continue;
            char image_path[PATH], kind_dir[PATH], name[PATH / 2], png[PATH];
            path_join(kind_dir, test_dir, kind->d_name);
            path_join(image_path, kind_dir, "000.png");
            uint32_t w = 0, h = 0;
            if (cdad_image_file_read(image_path, NULL, 0, &w, &h) != CDAD_OK) continue;
            unsigned char *rgb = malloc(3 * (size_t)w * h);
            float *map = malloc(sizeof(float) * w * h);
            float score = 0;
            cdad_image desc = {rgb, w, h, 3 * (size_t)w, 0, CDAD_PIXEL_RGB8, CDAD_LAYOUT_INTERLEAVED};
            if (cdad_image_file_read(image_path, rgb, 3 * (size_t)w * h, &w, &h) == CDAD_OK &&
                cdad_detector_infer(detector, &desc, map, sizeof(float) * w, &score) == CDAD_OK) {
                float low = map[0], high = map[0];
                for (size_t i = 0; i < (size_t)w * h; i++) {
                    low = map[i] < low ? map[i] : low;
                    high = map[i] > high ? map[i] : high;
                }
                snprintf(name, sizeof name, "%.200s_%.200s.png", class_entry->d_name, kind->d_name);
                path_join(png, out, name);
                if (cdad_overlay_write_png(png, &desc, map, sizeof(float) * w, low + 0.5f * (high - low), high) ==
                    CDAD_OK) {
                    written++;
                    done++;
                }
            }
            free(rgb);
            free(map);
        }
        closedir(kinds);
    }
    closedir(classes);
    return written;
}

int main(int argc, char **argv) {
    const char *preset = argc > 1 ? argv[1] : "compact";
    const char *setting = argc > 2 ? argv[2] : "3x5";
    const char *work = argc > 3 ? argv[3] : "out/demo";
    long steps = argc > 4 ? atol(argv[4]) : 0;
    long size = argc > 5 ? atol(argv[5]) : 128;
    char root[PATH], overlays[PATH], model[PATH], report_json[PATH], report_md[PATH];
    path_join(root, work, "benchmark");
    path_join(overlays, work, "overlays");
    path_join(model, work, "model.cdad");
    path_join(report_json, work, "report.json");
    path_join(report_md, work, "report.md");
    mkdir(work, 0755);
    mkdir(overlays, 0755);

    printf("cdad %s continual demo: setting %s, preset %s, benchmark in %s\n", cdad_version(), setting, preset, root);
    CHECK(cdad_benchmark_generate(root, (uint32_t)size, 40, 12, 4, 0, NULL) == CDAD_OK, "benchmark\n");
    cdad_config *config = NULL;
    CHECK(cdad_config_new(preset, &config) == CDAD_OK, "config\n");
    if (steps > 0) CHECK(cdad_config_set_int(config, "train_steps", steps) == CDAD_OK, "train steps\n");

    cdad_report *report = NULL;
    cdad_detector *detector = NULL;
    cdad_status status =
        cdad_protocol_run(config, root, setting, CDAD_METHOD_CDAD, show_progress, NULL, &report, &detector);
    printf("\n");
    CHECK(status == CDAD_OK, "protocol run: %s\n", cdad_status_name(status));
    cdad_config_free(config);
    if (status != CDAD_OK) return check_summary("continual_demo");

    size_t length = 0;
    CHECK(cdad_report_markdown(report, NULL, 0, &length) == CDAD_OK, "markdown size\n");
    char *markdown = malloc(length + 1);
    CHECK(cdad_report_markdown(report, markdown, length + 1, NULL) == CDAD_OK, "markdown\n");
    printf("\n%s\n", markdown);
    const char *names[] = {"image_auroc", "pixel_auroc", "image_aupr", "au_pro"};
    const char *labels[] = {"A-AUROC image", "A-AUROC pixel", "A-AUPR image", "A-PRO"};
    printf("| measure | A | FM |\n|---|---|---|\n");
    for (int i = 0; i < 4; i++) {
        char key_a[64], key_fm[64];
        double a = -1, fm = -1;
        snprintf(key_a, sizeof key_a, "a.%s", names[i]);
        snprintf(key_fm, sizeof key_fm, "fm.%s", names[i]);
        CHECK(cdad_report_value(report, key_a, &a) == CDAD_OK && a >= 0 && a <= 1, "%s\n", key_a);
        CHECK(cdad_report_value(report, key_fm, &fm) == CDAD_OK && fm >= -1 && fm <= 1, "%s\n", key_fm);
        printf("| %s | %.1f | %.2f |\n", labels[i], 100 * a, 100 * fm);
    }
    CHECK(fails_with(cdad_report_value(report, "a.nothing", NULL), CDAD_ERR_INVALID_ARGUMENT, "a.image_auroc"),
          "unknown report value\n");
    CHECK(write_file(report_md, markdown), "write %s\n", report_md);
    CHECK(cdad_report_json(report, NULL, 0, &length) == CDAD_OK, "json size\n");
    char *json = malloc(length + 1);
    CHECK(cdad_report_json(report, json, length + 1, NULL) == CDAD_OK && json[0] == '{', "json\n");
    CHECK(write_file(report_json, json), "write %s\n", report_json);

    int written = write_overlays(detector, root, overlays, 2);
    CHECK(written > 0, "overlays\n");
    CHECK(cdad_detector_save(detector, model) == CDAD_OK, "save %s\n", model);
    printf("\n%d overlays in %s; model %s; report %s\n", written, overlays, model, report_md);

    free(markdown);
    free(json);
    cdad_report_free(report);
    cdad_detector_free(detector);
    return check_summary("continual_demo");
}
