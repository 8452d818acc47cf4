/*
 * Trains a detector on one class of the built-in benchmark through the C API, infers
 * every test image through image descriptors, writes heat-map overlays as PNG, saves
 * the model, reloads it and checks that the reloaded detector gives bit-identical maps.
 * Also checks cancellation (nothing changes), refusal of a damaged model file, and the
 * error paths of the detector functions.
 *   usage: detector [preset] [train steps] [work folder]
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>

enum { MAX_IMAGES = 64 };


struct test_image {
    char path[PATH];
    unsigned char *rgb;
    uint32_t width, height;
    float *map;
    float score;
};

static struct test_image images[MAX_IMAGES];
static int image_count = 0;

static void collect_test_images(const char *class_dir) {
    char test_dir[PATH];
    path_join(test_dir, class_dir, "test");
    DIR *kinds = opendir(test_dir);
    CHECK(kinds != NULL, "open %s\n", test_dir);
    if (!kinds) return;
    struct dirent *kind;
    while ((kind = readdir(kinds)) != NULL) {
        if (kind->d_name[0] == '.') continue;
        char kind_dir[PATH];
        path_join(kind_dir, test_dir, kind->d_name);
        DIR *files = opendir(kind_dir);
        if (!files) continue;
        struct dirent *file;
        while ((file = readdir(files)) != NULL && image_count < MAX_IMAGES) {
            if (file->d_name[0] == '.') continue;
            struct test_image *t = &images[image_count++];
            path_join(t->path, kind_dir, file->d_name);
        }
        closedir(files);
    }
    closedir(kinds);
}

struct progress_log {
    int calls;
    float last;
    int monotonic;
    int cancel_after;
};

static int on_progress(float fraction, const char *stage, void *user) {
    struct progress_log *log = user;
    log->calls++;
    if (fraction < log->last) log->monotonic = 0;
    log->last = fraction;
    (void)stage;
    return log->cancel_after > 0 && log->calls >= log->cancel_after;
}

/* Infers every test image; maps go to `maps[i]` (allocated here when NULL). */
static int infer_all(const cdad_detector *detector, float **maps, float *scores) {
    int ok = 1;
    for (int i = 0; i < image_count; i++) {
        struct test_image *t = &images[i];
        cdad_image desc = {t->rgb, t->width, t->height, 3 * (size_t)t->width, 0, CDAD_PIXEL_RGB8,
                           CDAD_LAYOUT_INTERLEAVED};
        if (!maps[i]) maps[i] = malloc(sizeof(float) * t->width * t->height);
        ok &= cdad_detector_infer(detector, &desc, maps[i], sizeof(float) * t->width, &scores[i]) == CDAD_OK;
    }
    return ok;
}

int main(int argc, char **argv) {
    const char *preset = argc > 1 ? argv[1] : "tiny";
    long steps = argc > 2 ? atol(argv[2]) : 30;
    const char *work = argc > 3 ? argv[3] : "target/examples_c/detector_work";
    char root[PATH], out[PATH], model[PATH], class_dir[PATH], damaged[PATH], png[PATH], name[32];
    path_join(root, work, "benchmark");
    path_join(out, work, "overlays");
    path_join(model, work, "model.cdad");
    path_join(class_dir, root, "gear");
    path_join(damaged, work, "damaged.cdad");
    mkdir(work, 0755);
    mkdir(out, 0755);

    CHECK(cdad_benchmark_generate(root, 32, 8, 2, 1, 11, NULL) == CDAD_OK, "generate benchmark\n");
    cdad_config *config = NULL;
    CHECK(cdad_config_new(preset, &config) == CDAD_OK, "config %s\n", preset);
    CHECK(cdad_config_set_int(config, "train_steps", steps) == CDAD_OK, "train steps\n");
    cdad_detector *detector = NULL;
    CHECK(fails_with(cdad_detector_create(NULL, &detector), CDAD_ERR_NULL_POINTER, "'config'"), "NULL config\n");
    CHECK(cdad_detector_create(config, &detector) == CDAD_OK, "create detector\n");
    cdad_config_free(config);

    /* Inference before training is refused. */
    unsigned char gray[32 * 32 * 3];
    memset(gray, 128, sizeof gray);
    cdad_image gray_image = {gray, 32, 32, 96, 0, CDAD_PIXEL_RGB8, CDAD_LAYOUT_INTERLEAVED};
    float score = 0;
    CHECK(fails_with(cdad_detector_infer(detector, &gray_image, NULL, 0, &score), CDAD_ERR_STATE, "train a task"),
          "infer before training\n");

    cdad_task *task = NULL;
    size_t task_id = 99;
    CHECK(cdad_task_new("base", &task) == CDAD_OK, "task\n");
    CHECK(cdad_task_add_class_from_dataset(task, root, "gear", CDAD_DATASET_AUTO) == CDAD_OK, "add gear\n");
    CHECK(cdad_detector_add_task(detector, task, &task_id) == CDAD_OK && task_id == 0, "add task\n");
    CHECK(fails_with(cdad_detector_add_task(detector, task, &task_id), CDAD_ERR_INVALID_ARGUMENT, "already belongs"),
          "class added twice\n");
    cdad_task_free(task);
    CHECK(fails_with(cdad_detector_train_task(detector, 7, NULL, NULL), CDAD_ERR_INVALID_ARGUMENT, "does not exist"),
          "unknown task id\n");
    struct progress_log progress = {0, 0.0f, 1, 0};
    CHECK(cdad_detector_train_task(detector, 0, on_progress, &progress) == CDAD_OK, "train\n");
    CHECK(progress.calls > steps && progress.monotonic && progress.last == 1.0f, "progress %d calls, last %f\n",
          progress.calls, (double)progress.last);

    /* Infer every test image from its file, through a descriptor; write overlays. */
    collect_test_images(class_dir);
    CHECK(image_count >= 4, "found %d test images\n", image_count);
    float *maps[MAX_IMAGES] = {0}, *reloaded_maps[MAX_IMAGES] = {0};
    float scores[MAX_IMAGES], reloaded_scores[MAX_IMAGES];
    for (int i = 0; i < image_count; i++) {
        struct test_image *t = &images[i];
        CHECK(cdad_image_file_read(t->path, NULL, 0, &t->width, &t->height) == CDAD_OK, "size of %s\n", t->path);
        t->rgb = malloc(3 * (size_t)t->width * t->height);
        CHECK(cdad_image_file_read(t->path, t->rgb, 3 * (size_t)t->width * t->height, &t->width, &t->height) ==
                  CDAD_OK,
              "read %s\n", t->path);
    }
    CHECK(infer_all(detector, maps, scores), "infer all\n");
    float low = 1e30f, high = -1e30f;
    for (int i = 0; i < image_count; i++) {
        low = scores[i] < low ? scores[i] : low;
        high = scores[i] > high ? scores[i] : high;
    }
    for (int i = 0; i < image_count; i++) {
        struct test_image *t = &images[i];
        cdad_image desc = {t->rgb, t->width, t->height, 3 * (size_t)t->width, 0, CDAD_PIXEL_RGB8,
                           CDAD_LAYOUT_INTERLEAVED};
        snprintf(name, sizeof name, "overlay_%02d.png", i);
        path_join(png, out, name);
        CHECK(cdad_overlay_write_png(png, &desc, maps[i], sizeof(float) * t->width, low * 0.9f, high) == CDAD_OK,
              "overlay %s\n", png);
    }

    /* Save, reload: bit-identical maps and scores. */
    CHECK(cdad_detector_save(detector, model) == CDAD_OK, "save\n");
    cdad_detector *reloaded = NULL;
    CHECK(cdad_detector_load(model, "cpu", &reloaded) == CDAD_OK, "load\n");
    CHECK(infer_all(reloaded, reloaded_maps, reloaded_scores), "infer after reload\n");
    int identical = 1;
    for (int i = 0; i < image_count; i++) {
        identical &= memcmp(maps[i], reloaded_maps[i], sizeof(float) * images[i].width * images[i].height) == 0;
        identical &= scores[i] == reloaded_scores[i];
    }
    CHECK(identical, "reloaded detector gives bit-identical maps\n");

    /* Cancellation: a second task cancelled mid-training changes nothing. */
    CHECK(cdad_task_new("next", &task) == CDAD_OK, "second task\n");
    CHECK(cdad_task_add_class_from_dataset(task, root, "wood", CDAD_DATASET_AUTO) == CDAD_OK, "add wood\n");
    CHECK(cdad_detector_add_task(reloaded, task, &task_id) == CDAD_OK && task_id == 1, "add second task\n");
    cdad_task_free(task);
    struct progress_log cancel = {0, 0.0f, 1, 12};
    CHECK(cdad_detector_train_task(reloaded, 1, on_progress, &cancel) == CDAD_ERR_CANCELLED, "cancel training\n");
    size_t count = 0, trained = 0;
    CHECK(cdad_detector_task_count(reloaded, &count, &trained) == CDAD_OK && count == 2 && trained == 1,
          "tasks after cancel: %zu, trained %zu\n", count, trained);
    float *after_cancel[MAX_IMAGES] = {0};
    float after_scores[MAX_IMAGES];
    CHECK(infer_all(reloaded, after_cancel, after_scores), "infer after cancel\n");
    identical = 1;
    for (int i = 0; i < image_count; i++) {
        identical &= memcmp(maps[i], after_cancel[i], sizeof(float) * images[i].width * images[i].height) == 0;
    }
    CHECK(identical, "cancelled training left the maps unchanged\n");

    /* Inference keys change on a trained detector; other keys and bad values are refused. */
    CHECK(fails_with(cdad_detector_set_inference_int(reloaded, "train_steps", 5), CDAD_ERR_INVALID_ARGUMENT,
                     "cannot change"),
          "training key refused\n");
    CHECK(fails_with(cdad_detector_set_inference_int(reloaded, "map_seeds", 0), CDAD_ERR_OUT_OF_RANGE, "map_seeds"),
          "map_seeds 0 refused\n");
    CHECK(cdad_detector_set_inference_float(reloaded, "map_sigma", 1.0) == CDAD_OK, "map_sigma 1\n");
    float *sharper[MAX_IMAGES] = {0};
    float sharper_scores[MAX_IMAGES];
    CHECK(infer_all(reloaded, sharper, sharper_scores), "infer with map_sigma 1\n");
    CHECK(memcmp(maps[0], sharper[0], sizeof(float) * images[0].width * images[0].height) != 0,
          "less smoothing changes the map\n");
    CHECK(cdad_detector_set_inference_float(reloaded, "map_sigma", 5.0) == CDAD_OK, "map_sigma back to 5\n");
    CHECK(infer_all(reloaded, sharper, sharper_scores), "infer with map_sigma 5\n");
    CHECK(memcmp(maps[0], sharper[0], sizeof(float) * images[0].width * images[0].height) == 0,
          "the original smoothing gives the original map\n");
    for (int i = 0; i < image_count; i++) free(sharper[i]);

    /* A damaged file is refused. */
    FILE *in = fopen(model, "rb");
    FILE *copy = fopen(damaged, "wb");
    CHECK(in && copy, "copy model\n");
    if (in && copy) {
        char buffer[4096];
        size_t n, total = 0;
        while ((n = fread(buffer, 1, sizeof buffer, in)) > 0 && total < 20000) {
            fwrite(buffer, 1, n, copy);
            total += n;
        }
    }
    if (in) fclose(in);
    if (copy) fclose(copy);
    cdad_detector *broken = NULL;
    CHECK(fails_with(cdad_detector_load(damaged, NULL, &broken), CDAD_ERR_FILE_FORMAT, "truncated"),
          "truncated model refused\n");
    CHECK(broken == NULL, "no handle for a refused file\n");

    /* Error paths. */
    CHECK(fails_with(cdad_detector_infer(detector, NULL, NULL, 0, &score), CDAD_ERR_NULL_POINTER, "'image'"),
          "NULL image\n");
    CHECK(fails_with(cdad_detector_infer(detector, &gray_image, NULL, 0, NULL), CDAD_ERR_NULL_POINTER, "'score'"),
          "NULL score\n");
    float small_map[32 * 32];
    CHECK(fails_with(cdad_detector_infer(detector, &gray_image, small_map, 16, &score), CDAD_ERR_INVALID_ARGUMENT,
                     "row stride"),
          "short map stride\n");
    CHECK(fails_with(cdad_detector_save(detector, "/nonexistent/dir/model.cdad"), CDAD_ERR_IO, "/nonexistent"),
          "save into a missing folder\n");
    CHECK(fails_with(cdad_detector_load("/nonexistent/model.cdad", NULL, &broken), CDAD_ERR_IO, "/nonexistent"),
          "load a missing file\n");
    CHECK(fails_with(cdad_detector_task_count((const cdad_detector *)gray, &count, NULL), CDAD_ERR_INVALID_HANDLE,
                     "cdad_detector"),
          "foreign handle\n");

    for (int i = 0; i < image_count; i++) {
        free(images[i].rgb);
        free(maps[i]);
        free(reloaded_maps[i]);
        free(after_cancel[i]);
    }
    cdad_detector_free(reloaded);
    cdad_detector_free(detector);
    cdad_detector_free(NULL);
    printf("overlays in %s\n", out);
    return check_summary("detector");
}
