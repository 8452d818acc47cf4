// cdad.hpp: a header-only C++17 wrapper over the cdad C API (include/cdad.h).
//
// Owns handles with RAII, turns every non-OK status into a cdad::Error exception that
// carries the status and the library's message, and builds image descriptors from
// common C++ buffers. Nothing here adds behaviour: each call maps to one C function.
#ifndef CDAD_HPP
#define CDAD_HPP

#include "cdad.h"

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace cdad {

/// A failed cdad call: the status code and the message of cdad_last_error_message().
class Error : public std::runtime_error {
public:
    Error(cdad_status status, const char *message)
        : std::runtime_error(std::string(cdad_status_name(status)) + ": " + message), status_(status) {}

    /// The status code the C call returned.
    cdad_status status() const noexcept { return status_; }

private:
    cdad_status status_;
};

/// Throws cdad::Error unless `status` is CDAD_OK.
inline void check(cdad_status status) {
    if (status != CDAD_OK) {
        throw Error(status, cdad_last_error_message());
    }
}

/// The library version, e.g. "0.1.0".
inline std::string version() { return cdad_version(); }

/// A detector configuration (owning). Copying is by JSON, moving transfers the handle.
class Config {
public:
    /// A configuration from a preset: "tiny", "compact" or "paper".
    explicit Config(const std::string &preset = "compact") {
        cdad_config *raw = nullptr;
        check(cdad_config_new(preset.c_str(), &raw));
        handle_.reset(raw);
    }

    /// A configuration from JSON as written by to_json().
    static Config from_json(const std::string &json) {
        cdad_config *raw = nullptr;
        check(cdad_config_from_json(json.c_str(), &raw));
        return Config(raw);
    }

    Config(const Config &other) : Config(from_json(other.to_json())) {}
    Config &operator=(const Config &other) {
        if (this != &other) {
            *this = from_json(other.to_json());
        }
        return *this;
    }
    Config(Config &&) noexcept = default;
    Config &operator=(Config &&) noexcept = default;

    void set(const std::string &key, std::int64_t value) { check(cdad_config_set_int(get(), key.c_str(), value)); }
    void set(const std::string &key, int value) { set(key, static_cast<std::int64_t>(value)); }
    void set(const std::string &key, double value) { check(cdad_config_set_float(get(), key.c_str(), value)); }
    void set(const std::string &key, bool value) { check(cdad_config_set_bool(get(), key.c_str(), value)); }
    void set(const std::string &key, const char *value) { check(cdad_config_set_string(get(), key.c_str(), value)); }
    void set(const std::string &key, const std::string &value) { set(key, value.c_str()); }
    void set(const std::string &key, const std::vector<std::int64_t> &values) {
        check(cdad_config_set_int_list(get(), key.c_str(), values.data(), values.size()));
    }

    std::int64_t get_int(const std::string &key) const {
        std::int64_t value = 0;
        check(cdad_config_get_int(get(), key.c_str(), &value));
        return value;
    }
    double get_float(const std::string &key) const {
        double value = 0;
        check(cdad_config_get_float(get(), key.c_str(), &value));
        return value;
    }
    bool get_bool(const std::string &key) const {
        bool value = false;
        check(cdad_config_get_bool(get(), key.c_str(), &value));
        return value;
    }
    std::string get_string(const std::string &key) const {
        return read_text([&](char *buffer, std::size_t capacity, std::size_t *length) {
            return cdad_config_get_string(get(), key.c_str(), buffer, capacity, length);
        });
    }
    std::vector<std::int64_t> get_int_list(const std::string &key) const {
        std::size_t count = 0;
        check(cdad_config_get_int_list(get(), key.c_str(), nullptr, 0, &count));
        std::vector<std::int64_t> values(count);
        check(cdad_config_get_int_list(get(), key.c_str(), values.data(), values.size(), &count));
        return values;
    }

    /// Throws if keys contradict each other (see cdad_config_validate).
    void validate() const { check(cdad_config_validate(get())); }

    /// The whole configuration as a JSON object.
    std::string to_json() const {
        return read_text([&](char *buffer, std::size_t capacity, std::size_t *length) {
            return cdad_config_to_json(get(), buffer, capacity, length);
        });
    }

    /// The device this configuration runs on in this process ("cpu" or "cuda:N").
    std::string resolve_device() const {
        return read_text([&](char *buffer, std::size_t capacity, std::size_t *length) {
            return cdad_config_resolve_device(get(), buffer, capacity, length);
        });
    }

    /// The C handle, for calls this wrapper does not cover.
    cdad_config *get() const noexcept { return handle_.get(); }

private:
    struct Free {
        void operator()(cdad_config *config) const noexcept { cdad_config_free(config); }
    };

    explicit Config(cdad_config *raw) : handle_(raw) {}

    template <typename Reader>
    static std::string read_text(Reader reader) {
        std::size_t length = 0;
        check(reader(nullptr, 0, &length));
        std::string text(length + 1, '\0');
        check(reader(&text[0], text.size(), &length));
        text.resize(length);
        return text;
    }

    std::unique_ptr<cdad_config, Free> handle_;
};

/// An interleaved image descriptor over caller memory (no copy); `row_stride` in bytes.
inline cdad_image interleaved_image(const void *data, std::uint32_t width, std::uint32_t height,
                                    std::size_t row_stride, cdad_pixel_format format) {
    return cdad_image{data, width, height, row_stride, 0, format, CDAD_LAYOUT_INTERLEAVED};
}

/// A planar image descriptor (one plane per channel, `plane_stride` bytes apart).
inline cdad_image planar_image(const void *data, std::uint32_t width, std::uint32_t height,
                               std::size_t row_stride, std::size_t plane_stride, cdad_pixel_format format) {
    return cdad_image{data, width, height, row_stride, plane_stride, format, CDAD_LAYOUT_PLANAR};
}

/// Converts an image into planar RGB floats in [0, 1] (3 x height x width).
inline std::vector<float> to_rgb(const cdad_image &image) {
    check(cdad_image_check(&image));
    std::vector<float> rgb(3 * static_cast<std::size_t>(image.width) * image.height);
    check(cdad_image_to_rgb(&image, rgb.data(), rgb.size()));
    return rgb;
}

}  // namespace cdad

#endif  // CDAD_HPP
