/*
 * Exercises the cdad C contract: version, status codes and messages, configuration
 * presets with typed get/set and validation, image descriptors (including a BGR region
 * of interest inside a padded buffer, 16-bit grey and planar images), the log callback,
 * and the error paths of each. Prints one line per check and a closing summary; exits
 * non-zero if any check fails.
 */
#include "check.h"

#include <math.h>
#include <stdlib.h>

static void check_version(void) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", CDAD_VERSION_MAJOR, CDAD_VERSION_MINOR,
             CDAD_VERSION_PATCH);
    CHECK(strcmp(cdad_version(), expected) == 0, "version %s != header %s\n", cdad_version(), expected);
    CHECK(strcmp(cdad_status_name(CDAD_ERR_OUT_OF_RANGE), "CDAD_ERR_OUT_OF_RANGE") == 0, "status name\n");
    CHECK(strcmp(cdad_status_name(12345), "CDAD_UNKNOWN_STATUS") == 0, "unknown status name\n");
}

static void check_config(void) {
    cdad_config *config = NULL;
    CHECK(fails_with(cdad_config_new("huge", &config), CDAD_ERR_INVALID_ARGUMENT, "tiny, compact, paper"),
          "unknown preset must be rejected\n");
    CHECK(config == NULL, "out-parameter written on failure\n");
    CHECK(fails_with(cdad_config_new("tiny", NULL), CDAD_ERR_NULL_POINTER, "'out'"), "NULL out\n");
    CHECK(cdad_config_new("tiny", &config) == CDAD_OK && config != NULL, "create tiny preset\n");

    int64_t size = 0;
    CHECK(cdad_config_get_int(config, "image_size", &size) == CDAD_OK && size == 32, "tiny image_size %lld\n",
          (long long)size);
    CHECK(cdad_config_set_int(config, "image_size", 64) == CDAD_OK, "set image_size\n");
    CHECK(cdad_config_get_int(config, "image_size", &size) == CDAD_OK && size == 64, "get image_size\n");
    CHECK(fails_with(cdad_config_set_int(config, "image_size", 100000), CDAD_ERR_OUT_OF_RANGE,
                     "'image_size': 100000 is not accepted; expected an integer in 32..=1024"),
          "range error names key and range\n");
    CHECK(cdad_config_get_int(config, "image_size", &size) == CDAD_OK && size == 64, "failed set changed value\n");
    CHECK(fails_with(cdad_config_set_int(config, "no_such_key", 1), CDAD_ERR_UNKNOWN_KEY, "'no_such_key'"),
          "unknown key\n");
    CHECK(fails_with(cdad_config_set_float(config, "image_size", 1.5), CDAD_ERR_WRONG_TYPE, "holds an integer"),
          "wrong type\n");
    CHECK(fails_with(cdad_config_set_int(NULL, "seed", 1), CDAD_ERR_NULL_POINTER, "'config'"), "NULL config\n");
    CHECK(fails_with(cdad_config_set_int(config, NULL, 1), CDAD_ERR_NULL_POINTER, "'key'"), "NULL key\n");

    double lr = 0;
    CHECK(cdad_config_set_float(config, "learning_rate", 5e-4) == CDAD_OK, "set float\n");
    CHECK(cdad_config_get_float(config, "learning_rate", &lr) == CDAD_OK && lr == 5e-4, "get float\n");
    CHECK(fails_with(cdad_config_set_float(config, "learning_rate", NAN), CDAD_ERR_OUT_OF_RANGE, "finite"),
          "NaN float\n");
    bool projection = false;
    CHECK(cdad_config_set_bool(config, "projection", true) == CDAD_OK, "set bool\n");
    CHECK(cdad_config_get_bool(config, "projection", &projection) == CDAD_OK && projection, "get bool\n");

    char text[64];
    size_t length = 0;
    CHECK(cdad_config_set_string(config, "prediction", "v") == CDAD_OK, "set choice\n");
    CHECK(cdad_config_get_string(config, "prediction", text, sizeof text, &length) == CDAD_OK &&
              strcmp(text, "v") == 0 && length == 1,
          "get choice\n");
    CHECK(fails_with(cdad_config_set_string(config, "codec", "jpeg"), CDAD_ERR_OUT_OF_RANGE, "features, pixel, vae"),
          "bad choice\n");

    int64_t mult[] = {1, 2, 2};
    int64_t back[8] = {0};
    size_t count = 0;
    CHECK(cdad_config_set_int_list(config, "unet_channel_mult", mult, 3) == CDAD_OK, "set list\n");
    CHECK(cdad_config_get_int_list(config, "unet_channel_mult", NULL, 0, &count) == CDAD_OK && count == 3,
          "list length query\n");
    CHECK(fails_with(cdad_config_get_int_list(config, "unet_channel_mult", back, 2, &count),
                     CDAD_ERR_BUFFER_TOO_SMALL, "3 elements needed"),
          "list buffer too small\n");
    CHECK(cdad_config_get_int_list(config, "unet_channel_mult", back, 8, &count) == CDAD_OK && count == 3 &&
              back[2] == 2,
          "get list\n");
    CHECK(cdad_config_validate(config) == CDAD_OK, "tiny config with overrides validates\n");
    CHECK(cdad_config_set_int(config, "amn_mask_size", 4) == CDAD_OK, "even mask size is in range\n");
    CHECK(fails_with(cdad_config_validate(config), CDAD_ERR_INVALID_ARGUMENT, "odd"), "cross-key rule\n");
    CHECK(cdad_config_set_int(config, "amn_mask_size", 3) == CDAD_OK, "restore mask size\n");

    /* Device selection: cpu always resolves; a CUDA device this process lacks is refused. */
    size_t gpus = 0;
    CHECK(cdad_cuda_device_count(&gpus) == CDAD_OK, "cuda device count\n");
    CHECK(cdad_config_set_string(config, "device", "cpu") == CDAD_OK, "set device cpu\n");
    CHECK(cdad_config_resolve_device(config, text, sizeof text, NULL) == CDAD_OK && strcmp(text, "cpu") == 0,
          "resolve cpu\n");
    CHECK(fails_with(cdad_config_set_string(config, "device", "gpu0"), CDAD_ERR_OUT_OF_RANGE, "'cuda:N'"),
          "bad device string\n");
    char wanted[32];
    snprintf(wanted, sizeof wanted, "cuda:%zu", gpus);
    CHECK(cdad_config_set_string(config, "device", wanted) == CDAD_OK, "set device %s\n", wanted);
    CHECK(fails_with(cdad_config_resolve_device(config, text, sizeof text, NULL), CDAD_ERR_DEVICE_UNAVAILABLE,
                     wanted),
          "missing CUDA device refused\n");
    CHECK(cdad_config_set_string(config, "device", "auto") == CDAD_OK, "set device auto\n");
    CHECK(cdad_config_resolve_device(config, text, sizeof text, NULL) == CDAD_OK &&
              strcmp(text, gpus ? "cuda:0" : "cpu") == 0,
          "auto resolves to %s\n", text);

    /* JSON round trip through a buffer sized by a first call. */
    size_t json_length = 0;
    CHECK(cdad_config_to_json(config, NULL, 0, &json_length) == CDAD_OK && json_length > 100, "json length\n");
    char *json = malloc(json_length + 1);
    CHECK(fails_with(cdad_config_to_json(config, json, json_length, NULL), CDAD_ERR_BUFFER_TOO_SMALL, "needed"),
          "json buffer one byte short\n");
    CHECK(cdad_config_to_json(config, json, json_length + 1, NULL) == CDAD_OK && strlen(json) == json_length,
          "json export\n");
    cdad_config *copy = NULL;
    CHECK(cdad_config_from_json(json, &copy) == CDAD_OK, "json import\n");
    CHECK(cdad_config_get_int(copy, "image_size", &size) == CDAD_OK && size == 64, "imported image_size\n");
    CHECK(fails_with(cdad_config_from_json("{\"seed\": -1}", &copy), CDAD_ERR_OUT_OF_RANGE, "'seed'"),
          "bad json value\n");
    CHECK(fails_with(cdad_config_from_json("{not json", &copy), CDAD_ERR_INVALID_ARGUMENT, "does not parse"),
          "malformed json\n");
    free(json);
    cdad_config_free(copy);

    /* A pointer that is not a configuration handle is reported, not used. */
    static uint64_t not_a_handle[128]; /* zeroed, larger than any handle */
    CHECK(fails_with(cdad_config_get_int((const cdad_config *)not_a_handle, "seed", &size),
                     CDAD_ERR_INVALID_HANDLE, "not a live cdad_config"),
          "foreign handle\n");
    cdad_config_free(config);
    cdad_config_free(NULL);
}

static float channel_at(const float *rgb, int width, int height, int channel, int x, int y) {
    return rgb[(size_t)channel * width * height + (size_t)y * width + x];
}

static void check_images(void) {
    /* A 3x2 BGR region of interest at (2, 1) inside a 7x4 BGR buffer whose rows are
     * padded to 24 bytes, as a cv::Mat ROI would be. */
    enum { FULL_W = 7, FULL_H = 4, STRIDE = 24, ROI_W = 3, ROI_H = 2 };
    unsigned char buffer[STRIDE * FULL_H];
    memset(buffer, 255, sizeof buffer);
    for (int y = 0; y < ROI_H; y++) {
        for (int x = 0; x < ROI_W; x++) {
            unsigned char *p = buffer + (size_t)(y + 1) * STRIDE + (size_t)(x + 2) * 3;
            p[0] = (unsigned char)(10 * x);      /* B */
            p[1] = (unsigned char)(100 + y);     /* G */
            p[2] = (unsigned char)(200 + x + y); /* R */
        }
    }
    cdad_image roi = {buffer + STRIDE + 2 * 3, ROI_W, ROI_H, STRIDE, 0, CDAD_PIXEL_BGR8, CDAD_LAYOUT_INTERLEAVED};
    float rgb[3 * ROI_W * ROI_H];
    CHECK(cdad_image_check(&roi) == CDAD_OK, "ROI descriptor\n");
    CHECK(cdad_image_to_rgb(&roi, rgb, 3 * ROI_W * ROI_H) == CDAD_OK, "ROI conversion\n");
    int exact = 1;
    for (int y = 0; y < ROI_H; y++) {
        for (int x = 0; x < ROI_W; x++) {
            exact &= fabsf(channel_at(rgb, ROI_W, ROI_H, 0, x, y) - (200 + x + y) / 255.0f) < 1e-6f;
            exact &= fabsf(channel_at(rgb, ROI_W, ROI_H, 1, x, y) - (100 + y) / 255.0f) < 1e-6f;
            exact &= fabsf(channel_at(rgb, ROI_W, ROI_H, 2, x, y) - (10 * x) / 255.0f) < 1e-6f;
        }
    }
    CHECK(exact, "ROI pixels map to the right RGB values\n");
    CHECK(fails_with(cdad_image_to_rgb(&roi, rgb, 5), CDAD_ERR_BUFFER_TOO_SMALL, "18 elements needed"),
          "output too small\n");

    /* 16-bit grey, full range. */
    uint16_t gray16[2] = {0, 65535};
    cdad_image g16 = {gray16, 2, 1, sizeof gray16, 0, CDAD_PIXEL_GRAY16, CDAD_LAYOUT_INTERLEAVED};
    float g16_rgb[6];
    CHECK(cdad_image_to_rgb(&g16, g16_rgb, 6) == CDAD_OK && g16_rgb[0] == 0.0f && g16_rgb[1] == 1.0f &&
              g16_rgb[5] == 1.0f,
          "GRAY16 conversion\n");

    /* Planar RGB (Halcon style): three planes of 2x1, 16 bytes apart. */
    unsigned char planes[40] = {0};
    planes[0] = 255; /* R of pixel 0 */
    planes[16 + 1] = 255; /* G of pixel 1 */
    planes[32 + 0] = 51; /* B of pixel 0 */
    cdad_image planar = {planes, 2, 1, 2, 16, CDAD_PIXEL_RGB8, CDAD_LAYOUT_PLANAR};
    float planar_rgb[6];
    CHECK(cdad_image_to_rgb(&planar, planar_rgb, 6) == CDAD_OK && planar_rgb[0] == 1.0f && planar_rgb[3] == 1.0f &&
              fabsf(planar_rgb[4] - 0.2f) < 1e-6f && planar_rgb[1] == 0.0f,
          "planar conversion\n");

    /* Error paths: each names what is wrong. */
    cdad_image bad = roi;
    bad.row_stride = 8;
    CHECK(fails_with(cdad_image_check(&bad), CDAD_ERR_INVALID_IMAGE, "shorter than one row"), "short stride\n");
    bad = roi;
    bad.width = 0;
    CHECK(fails_with(cdad_image_check(&bad), CDAD_ERR_INVALID_IMAGE, "is empty"), "zero width\n");
    bad = roi;
    bad.width = 100000;
    bad.row_stride = 300000;
    CHECK(fails_with(cdad_image_check(&bad), CDAD_ERR_INVALID_IMAGE, "too large"), "absurd width\n");
    bad = roi;
    bad.data = NULL;
    CHECK(fails_with(cdad_image_check(&bad), CDAD_ERR_INVALID_IMAGE, "data is NULL"), "NULL data\n");
    bad = roi;
    bad.format = 42;
    CHECK(fails_with(cdad_image_check(&bad), CDAD_ERR_INVALID_IMAGE, "not a cdad_pixel_format"), "bad format\n");
    bad = roi;
    bad.layout = 7;
    CHECK(fails_with(cdad_image_check(&bad), CDAD_ERR_INVALID_IMAGE, "not a cdad_layout"), "bad layout\n");
    bad = planar;
    bad.plane_stride = 1;
    CHECK(fails_with(cdad_image_check(&bad), CDAD_ERR_INVALID_IMAGE, "plane stride"), "short plane stride\n");
    CHECK(fails_with(cdad_image_check(NULL), CDAD_ERR_NULL_POINTER, "'image'"), "NULL descriptor\n");
}

struct log_capture {
    int calls;
    char last[512];
};

static void on_log(int32_t level, const char *target, const char *message, void *user) {
    struct log_capture *capture = user;
    (void)level;
    (void)target;
    capture->calls++;
    snprintf(capture->last, sizeof capture->last, "%s", message);
}

static void check_logging(void) {
    struct log_capture capture = {0, ""};
    CHECK(fails_with(cdad_set_log_callback(on_log, 9, &capture), CDAD_ERR_INVALID_ARGUMENT, "cdad_log_level"),
          "bad log level\n");
    CHECK(cdad_set_log_callback(on_log, CDAD_LOG_DEBUG, &capture) == CDAD_OK, "install log callback\n");
    cdad_config *config = NULL;
    cdad_config_new("tiny", &config);
    cdad_config_set_int(config, "batch_size", 0);
    CHECK(capture.calls >= 2 && strstr(capture.last, "'batch_size'") != NULL,
          "log callback saw the failure (%d calls, last '%s')\n", capture.calls, capture.last);
    CHECK(cdad_set_log_callback(NULL, CDAD_LOG_OFF, NULL) == CDAD_OK, "remove log callback\n");
    int before = capture.calls;
    cdad_config_set_int(config, "batch_size", 0);
    CHECK(capture.calls == before, "removed callback is not called\n");
    cdad_config_free(config);
}

int main(void) {
    check_version();
    check_config();
    check_images();
    check_logging();
    return check_summary("contract");
}
