// Checks the C++ wrapper: RAII handles, exceptions with status and message, copies,
// text and list getters, and image conversion.
#include "cdad.hpp"
#include "check.h"

#include <cstring>

template <typename F>
static bool throws_status(F body, cdad_status expected, const char *fragment) {
    try {
        body();
    } catch (const cdad::Error &e) {
        return e.status() == expected && std::strstr(e.what(), fragment) != nullptr;
    }
    return false;
}

int main() {
    CHECK(cdad::version() == cdad_version(), "version\n");

    cdad::Config config("tiny");
    config.set("image_size", 64);
    config.set("learning_rate", 1e-3);
    config.set("codec", "pixel");
    config.set("unet_channel_mult", std::vector<std::int64_t>{1, 2});
    CHECK(config.get_int("image_size") == 64, "int round trip\n");
    CHECK(config.get_float("learning_rate") == 1e-3, "float round trip\n");
    CHECK(config.get_string("codec") == "pixel", "text round trip\n");
    CHECK((config.get_int_list("unet_channel_mult") == std::vector<std::int64_t>{1, 2}), "list round trip\n");
    CHECK(config.resolve_device() == "cpu" || config.resolve_device() == "cuda:0", "device\n");

    cdad::Config copy = config;
    copy.set("image_size", 128);
    CHECK(config.get_int("image_size") == 64 && copy.get_int("image_size") == 128, "copies are independent\n");
    CHECK(copy.to_json().find("\"image_size\":128") != std::string::npos, "json export\n");

    CHECK(throws_status([&] { config.set("image_size", 5000); }, CDAD_ERR_OUT_OF_RANGE, "32..=1024"),
          "range error becomes an exception");
    CHECK(throws_status([&] { config.get_bool("image_size"); }, CDAD_ERR_WRONG_TYPE, "image_size"),
          "type error becomes an exception");
    CHECK(throws_status([] { cdad::Config bad("large"); }, CDAD_ERR_INVALID_ARGUMENT, "preset"),
          "bad preset becomes an exception");

    const unsigned char bgr[2 * 3] = {0, 0, 255, 255, 0, 0};
    std::vector<float> rgb = cdad::to_rgb(cdad::interleaved_image(bgr, 2, 1, 6, CDAD_PIXEL_BGR8));
    CHECK(rgb.size() == 6 && rgb[0] == 1.0f && rgb[1] == 0.0f && rgb[5] == 1.0f, "BGR conversion\n");
    CHECK(throws_status([&] { cdad::to_rgb(cdad::interleaved_image(bgr, 2, 1, 3, CDAD_PIXEL_BGR8)); },
                        CDAD_ERR_INVALID_IMAGE, "row stride"),
          "bad stride becomes an exception");

    return check_summary("cpp wrapper");
}
