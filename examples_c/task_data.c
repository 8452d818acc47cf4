/*
 * Assembles a task's training data through the C API: writes a small built-in
 * benchmark, adds classes from it (layout detected and named), adds a camera image of a
 * new class through an image descriptor (a BGR region inside a padded buffer), and
 * checks the error paths (unknown class, bad layout, corrupt file, duplicate class).
 *   usage: task_data [benchmark folder]
 */
#include "check.h"

#include <stdlib.h>

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : "target/examples_c/task_data_benchmark";

    CHECK(cdad_benchmark_generate(root, 32, 3, 1, 1, 7, NULL) == CDAD_OK, "generate benchmark\n");
    CHECK(fails_with(cdad_benchmark_generate(root, 4, 3, 1, 1, 7, NULL), CDAD_ERR_INVALID_ARGUMENT, "image_size"),
          "tiny image size refused");

    cdad_task *task = NULL;
    CHECK(fails_with(cdad_task_new("", &task), CDAD_ERR_INVALID_ARGUMENT, "task name"), "empty task name\n");
    CHECK(cdad_task_new("base", &task) == CDAD_OK && task != NULL, "create task\n");
    CHECK(cdad_task_add_class_from_dataset(task, root, "gear", CDAD_DATASET_AUTO) == CDAD_OK, "add gear\n");
    CHECK(cdad_task_add_class_from_dataset(task, root, "wood", CDAD_DATASET_MVTEC_AD) == CDAD_OK, "add wood\n");
    CHECK(fails_with(cdad_task_add_class_from_dataset(task, root, "gear", CDAD_DATASET_AUTO),
                     CDAD_ERR_INVALID_ARGUMENT, "already part of task"),
          "duplicate class refused");
    CHECK(fails_with(cdad_task_add_class_from_dataset(task, root, "sprocket", CDAD_DATASET_AUTO),
                     CDAD_ERR_INVALID_ARGUMENT, "known classes: bottle_cap"),
          "unknown class lists the known ones");
    CHECK(fails_with(cdad_task_add_class_from_dataset(task, root, "cable", 9), CDAD_ERR_INVALID_ARGUMENT,
                     "not a cdad_dataset_layout"),
          "bad layout value");
    CHECK(fails_with(cdad_task_add_class_from_dataset(task, "/nonexistent/cdad", "cable", CDAD_DATASET_AUTO),
                     CDAD_ERR_INVALID_ARGUMENT, "/nonexistent/cdad"),
          "missing dataset root named");

    /* A camera frame of a new class: a 4x4 BGR region inside a 10-pixel-wide frame. */
    enum { FRAME_W = 10, FRAME_H = 6, STRIDE = FRAME_W * 3 + 2 };
    unsigned char frame[STRIDE * FRAME_H];
    memset(frame, 90, sizeof frame);
    cdad_image roi = {frame + STRIDE + 3 * 3, 4, 4, STRIDE, 0, CDAD_PIXEL_BGR8, CDAD_LAYOUT_INTERLEAVED};
    CHECK(cdad_task_add_image(task, "line3_bracket", &roi) == CDAD_OK, "add image\n");
    CHECK(cdad_task_add_image(task, "line3_bracket", &roi) == CDAD_OK, "add second image\n");
    roi.row_stride = 5;
    CHECK(fails_with(cdad_task_add_image(task, "line3_bracket", &roi), CDAD_ERR_INVALID_IMAGE, "row stride"),
          "bad descriptor refused");

    size_t count = 0;
    CHECK(cdad_task_class_count(task, &count) == CDAD_OK && count == 3, "three classes\n");
    CHECK(cdad_task_image_count(task, "gear", &count) == CDAD_OK && count == 3, "gear has 3 images\n");
    CHECK(cdad_task_image_count(task, "line3_bracket", &count) == CDAD_OK && count == 2, "bracket has 2 images\n");
    CHECK(fails_with(cdad_task_image_count(task, "bolt", &count), CDAD_ERR_INVALID_ARGUMENT, "no class 'bolt'"),
          "unknown class count");

    /* A corrupt training file is named when its class is added. */
    char path[1024];
    snprintf(path, sizeof path, "%s/cable/train/good/001.png", root);
    FILE *file = fopen(path, "wb\n");
    CHECK(file != NULL, "open file to corrupt\n");
    if (file) {
        fputs("not an image", file);
        fclose(file);
    }
    CHECK(fails_with(cdad_task_add_class_from_dataset(task, root, "cable", CDAD_DATASET_AUTO),
                     CDAD_ERR_INVALID_ARGUMENT, "001.png"),
          "corrupt file named");
    CHECK(cdad_task_class_count(task, &count) == CDAD_OK && count == 3, "failed add changed nothing\n");

    cdad_task_free(task);
    cdad_task_free(NULL);
    return check_summary("task_data");
}
