/*
 * cdad: continual diffusion anomaly detection, C API.
 * Generated from the Rust sources by cbindgen; do not edit by hand
 * (regenerate with scripts/generate-header.sh).
 */

#ifndef CDAD_H
#define CDAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Version of this header; compare with cdad_version() at run time. */
#define CDAD_VERSION_MAJOR 0
#define CDAD_VERSION_MINOR 1
#define CDAD_VERSION_PATCH 0


/**
 * Largest value [`merge_threshold`] returns: the schedule is capped below 1.
 */
#define MAX_MERGE_THRESHOLD 0.9999

/**
 * The format version this build writes and the only one it reads.
 */
#define FORMAT_VERSION 1

/**
 * Largest accepted width or height.
 */
#define CDAD_MAX_IMAGE_SIDE (1 << 16)

/**
 * Largest accepted pixel count (width x height), about 268 megapixels.
 */
#define CDAD_MAX_IMAGE_PIXELS (1 << 28)

/**
 * The FPR limit of the published AU-PRO numbers (method.md section 7).
 */
#define DEFAULT_FPR_LIMIT 0.3

/**
 * Latent scale of SD1.5: latents are the posterior mean times this factor.
 */
#define SD_SCALE_FACTOR 0.18215

/**
 * The result of a C API call. `CDAD_OK` is zero; every other value is an error whose
 * message `cdad_last_error_message()` returns on the same thread. Codes are stable:
 * new ones are only ever appended.
 */
typedef enum cdad_status {
  /**
   * Success.
   */
  CDAD_OK = 0,
  /**
   * A required pointer argument was NULL.
   */
  CDAD_ERR_NULL_POINTER = 1,
  /**
   * A handle was not created by this library, was freed, or is of another type.
   */
  CDAD_ERR_INVALID_HANDLE = 2,
  /**
   * An argument is malformed or inconsistent (not UTF-8, unknown name, bad size).
   */
  CDAD_ERR_INVALID_ARGUMENT = 3,
  /**
   * A configuration key does not exist.
   */
  CDAD_ERR_UNKNOWN_KEY = 4,
  /**
   * A configuration value has the wrong type for its key.
   */
  CDAD_ERR_WRONG_TYPE = 5,
  /**
   * A configuration value lies outside its key's accepted range or choices.
   */
  CDAD_ERR_OUT_OF_RANGE = 6,
  /**
   * An image descriptor or its pixels cannot be read as described.
   */
  CDAD_ERR_INVALID_IMAGE = 7,
  /**
   * A caller buffer is too small; the message says how large it must be.
   */
  CDAD_ERR_BUFFER_TOO_SMALL = 8,
  /**
   * The requested compute device is not available in this process.
   */
  CDAD_ERR_DEVICE_UNAVAILABLE = 9,
  /**
   * A file could not be read or written.
   */
  CDAD_ERR_IO = 10,
  /**
   * Training met a non-finite loss or gradient and stopped; weights are unchanged.
   */
  CDAD_ERR_NUMERICAL = 11,
  /**
   * The caller cancelled the call through its progress callback; nothing changed.
   */
  CDAD_ERR_CANCELLED = 12,
  /**
   * The call does not fit the detector's state (e.g. infer before training).
   */
  CDAD_ERR_STATE = 13,
  /**
   * The detector is busy with another call that needs exclusive access.
   */
  CDAD_ERR_BUSY = 14,
  /**
   * The file is not a cdad model, has another format version, is truncated or corrupt.
   */
  CDAD_ERR_FILE_FORMAT = 15,
  /**
   * The library caught an internal panic; the process is intact, the call had no effect.
   */
  CDAD_ERR_PANIC = 255,
} cdad_status;

/**
 * Pixel encodings accepted in `cdad_image.format`.
 */
typedef enum cdad_pixel_format {
  /**
   * 8-bit grey.
   */
  CDAD_PIXEL_GRAY8 = 0,
  /**
   * 16-bit grey, native byte order, full range 0..65535.
   */
  CDAD_PIXEL_GRAY16 = 1,
  /**
   * 8-bit R, G, B.
   */
  CDAD_PIXEL_RGB8 = 2,
  /**
   * 8-bit B, G, R (OpenCV's order).
   */
  CDAD_PIXEL_BGR8 = 3,
  /**
   * 8-bit R, G, B, A (alpha ignored).
   */
  CDAD_PIXEL_RGBA8 = 4,
  /**
   * 8-bit B, G, R, A (alpha ignored).
   */
  CDAD_PIXEL_BGRA8 = 5,
  /**
   * 32-bit float grey in [0, 1], native byte order (clamped; NaN/Inf rejected).
   */
  CDAD_PIXEL_GRAY32F = 6,
} cdad_pixel_format;

/**
 * Channel arrangements accepted in `cdad_image.layout`.
 */
typedef enum cdad_layout {
  /**
   * All samples of a pixel together (OpenCV, most camera SDKs).
   */
  CDAD_LAYOUT_INTERLEAVED = 0,
  /**
   * One plane per channel, `plane_stride` bytes apart, in the format's channel order
   * (Halcon's multi-channel images).
   */
  CDAD_LAYOUT_PLANAR = 1,
} cdad_layout;

/**
 * Severity of a log message; a callback receives messages at or above its chosen level.
 */
typedef enum cdad_log_level {
  /**
   * Log nothing.
   */
  CDAD_LOG_OFF = 0,
  /**
   * Failures.
   */
  CDAD_LOG_ERROR = 1,
  /**
   * Suspicious situations that do not fail the call.
   */
  CDAD_LOG_WARN = 2,
  /**
   * Progress of long calls (training, evaluation).
   */
  CDAD_LOG_INFO = 3,
  /**
   * Details useful while integrating (every failed call's message, for example).
   */
  CDAD_LOG_DEBUG = 4,
  /**
   * Very detailed tracing.
   */
  CDAD_LOG_TRACE = 5,
} cdad_log_level;

/**
 * Dataset layouts for `cdad_task_add_class_from_dataset`.
 */
typedef enum cdad_dataset_layout {
  /**
   * Recognise the layout from the files.
   */
  CDAD_DATASET_AUTO = 0,
  /**
   * `<root>/<class>/train/good`, `test/<kind>`, `ground_truth/<kind>/<name>_mask.png`.
   */
  CDAD_DATASET_MVTEC_AD = 1,
  /**
   * VisA: a split CSV (`<root>/split_csv/1cls.csv`, or the CSV's path as root).
   */
  CDAD_DATASET_VISA = 2,
  /**
   * One class in plain folders: `<root>/good`, optional `test_good`, `defect`, `mask`.
   */
  CDAD_DATASET_FOLDER = 3,
} cdad_dataset_layout;

/**
 * Continual methods for `cdad_protocol_run`.
 */
typedef enum cdad_method {
  /**
   * Task after task with gradient projection.
   */
  CDAD_METHOD_CDAD = 0,
  /**
   * Task after task without projection (shows forgetting).
   */
  CDAD_METHOD_FINETUNE = 1,
  /**
   * All classes in one task, trained with the summed step budget of the setting (upper bound).
   */
  CDAD_METHOD_JOINT = 2,
} cdad_method;

/**
 * A detector configuration: every tunable value, starting from a preset.
 */
typedef struct cdad_config cdad_config;

/**
 * A continual anomaly detector: one model for every class learned so far.
 */
typedef struct cdad_detector cdad_detector;

/**
 * The result of `cdad_detector_evaluate` or `cdad_protocol_run`.
 */
typedef struct cdad_report cdad_report;

/**
 * The training data of one task: named classes, each with good images.
 */
typedef struct cdad_task cdad_task;

/**
 * Reports progress of a long call: `fraction` in [0, 1], `stage` names the current
 * step ("loading", "training", ...; valid during the call only). Return 0 to continue,
 * any other value to cancel: the call then returns `CDAD_ERR_CANCELLED` and the
 * detector is unchanged.
 */
typedef int32_t (*cdad_progress_callback)(float fraction, const char *stage, void *user);

/**
 * A caller-owned image. The library reads it during the call and never keeps the
 * pointer. Rows are `row_stride` bytes apart (at least one row of pixels); for planar
 * multi-channel images, planes are `plane_stride` bytes apart (at least one plane).
 * Sides are limited to 65536 pixels and the pixel count to 2^28.
 */
typedef struct cdad_image {
  /**
   * First byte of the first row (of the first plane).
   */
  const void *data;
  /**
   * Width in pixels.
   */
  uint32_t width;
  /**
   * Height in pixels.
   */
  uint32_t height;
  /**
   * Bytes from one row to the next.
   */
  size_t row_stride;
  /**
   * Bytes from one plane to the next (planar layout; ignored for interleaved).
   */
  size_t plane_stride;
  /**
   * A `cdad_pixel_format` value.
   */
  int32_t format;
  /**
   * A `cdad_layout` value.
   */
  int32_t layout;
} cdad_image;

/**
 * Receives one log message. `target` names the library module, `message` the event;
 * both are valid only during the call. May be called from any thread that runs a cdad
 * function, so it must be thread-safe.
 */
typedef void (*cdad_log_callback)(int32_t level, const char *target, const char *message, void *user);

/**
 * ImageNet per-channel mean (R, G, B).
 */
#define IMAGENET_MEAN { 0.485, 0.456, 0.406, }

/**
 * ImageNet per-channel standard deviation (R, G, B).
 */
#define IMAGENET_STD { 0.229, 0.224, 0.225, }

/**
 * Strides of the feature maps that [`EfficientNetLite0::forward_features`] returns.
 */
#define FEATURE_STRIDES { 2, 4, 8, 16, 32, }

/**
 * Channels of those feature maps.
 */
#define FEATURE_CHANNELS { 16, 24, 40, 112, 320, }

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Writes the built-in synthetic benchmark (15 classes, MVTec AD layout) under `root`:
 * `image_size` pixels square (16..=1024), `train_good` good training images and
 * `test_good` good test images per class, `defects_per_kind` defective test images for
 * each of a class's four defect kinds, everything drawn from `seed`. `photo_dir`
 * (nullable) adds one texture class per photograph in that folder. A root that already
 * holds the same benchmark is left untouched, so this is cheap to call on every start.
 */
enum cdad_status cdad_benchmark_generate(const char *root,
                                         uint32_t image_size,
                                         uint32_t train_good,
                                         uint32_t test_good,
                                         uint32_t defects_per_kind,
                                         uint64_t seed,
                                         const char *photo_dir);

/**
 * The message of the most recent failed call on this thread (empty if none failed).
 * The string stays valid until the next failing call on this thread; copy it to keep it.
 * Never NULL.
 */
const char *cdad_last_error_message(void);

/**
 * Creates a configuration from a preset: `"tiny"`, `"compact"` (the default when
 * `preset` is NULL) or `"paper"`. Release it with `cdad_config_free`.
 */
enum cdad_status cdad_config_new(const char *preset, struct cdad_config **out);

/**
 * Creates a configuration from JSON as written by `cdad_config_to_json`. Keys left out
 * keep the compact preset's values; an unknown key or a bad value is an error.
 */
enum cdad_status cdad_config_from_json(const char *json, struct cdad_config **out);

/**
 * Releases a configuration. NULL is a no-op.
 */
void cdad_config_free(struct cdad_config *config);

/**
 * Sets an integer key. Errors: unknown key, wrong type, value out of range (the
 * message names the key and the accepted range). On error nothing changes.
 */
enum cdad_status cdad_config_set_int(struct cdad_config *config, const char *key, int64_t value);

/**
 * Sets a float key (an integer key does not accept floats).
 */
enum cdad_status cdad_config_set_float(struct cdad_config *config, const char *key, double value);

/**
 * Sets a boolean key.
 */
enum cdad_status cdad_config_set_bool(struct cdad_config *config, const char *key, bool value);

/**
 * Sets a text key (a choice such as `codec`, or `device`: `cpu`, `cuda`, `cuda:N`, `auto`).
 */
enum cdad_status cdad_config_set_string(struct cdad_config *config,
                                        const char *key,
                                        const char *value);

/**
 * Sets an integer-list key from `count` values (`values` may be NULL when `count` is 0).
 */
enum cdad_status cdad_config_set_int_list(struct cdad_config *config,
                                          const char *key,
                                          const int64_t *values,
                                          size_t count);

/**
 * Reads an integer key into `*out`.
 */
enum cdad_status cdad_config_get_int(const struct cdad_config *config,
                                     const char *key,
                                     int64_t *out);

/**
 * Reads a float key into `*out`.
 */
enum cdad_status cdad_config_get_float(const struct cdad_config *config,
                                       const char *key,
                                       double *out);

/**
 * Reads a boolean key into `*out`.
 */
enum cdad_status cdad_config_get_bool(const struct cdad_config *config, const char *key, bool *out);

/**
 * Reads a text key into `buffer` (NUL-terminated). `length` (optional) receives the
 * text length without the NUL. Pass `buffer` NULL and `capacity` 0 to learn the length.
 */
enum cdad_status cdad_config_get_string(const struct cdad_config *config,
                                        const char *key,
                                        char *buffer,
                                        size_t capacity,
                                        size_t *length);

/**
 * Reads an integer-list key into `values` (room for `capacity`); `count` (optional)
 * receives the list length. Pass `values` NULL and `capacity` 0 to learn the length.
 */
enum cdad_status cdad_config_get_int_list(const struct cdad_config *config,
                                          const char *key,
                                          int64_t *values,
                                          size_t capacity,
                                          size_t *count);

/**
 * Checks the rules that involve several keys (e.g. `image_size` divisible by the
 * model's total stride, attention levels that exist). Each key's own range is
 * already checked when it is set.
 */
enum cdad_status cdad_config_validate(const struct cdad_config *config);

/**
 * Writes the whole configuration as a JSON object into `buffer`, like
 * `cdad_config_get_string`.
 */
enum cdad_status cdad_config_to_json(const struct cdad_config *config,
                                     char *buffer,
                                     size_t capacity,
                                     size_t *length);

/**
 * Writes the device this configuration resolves to in this process (`"cpu"` or
 * `"cuda:N"`) into `buffer`. `CDAD_ERR_DEVICE_UNAVAILABLE` when it asks for a CUDA
 * device this process does not have.
 */
enum cdad_status cdad_config_resolve_device(const struct cdad_config *config,
                                            char *buffer,
                                            size_t capacity,
                                            size_t *length);

/**
 * Creates a detector from a configuration (checked with `cdad_config_validate`; the
 * configuration is copied, so it may be freed afterwards).
 */
enum cdad_status cdad_detector_create(const struct cdad_config *config, struct cdad_detector **out);

/**
 * Releases a detector. NULL is a no-op. Must not run concurrently with other calls on it.
 */
void cdad_detector_free(struct cdad_detector *detector);

/**
 * Adds a task (its classes and good images are copied from `task`, which may be freed
 * afterwards) and stores its id (0, 1, ...) in `*task_id`. Class names must be new.
 */
enum cdad_status cdad_detector_add_task(const struct cdad_detector *detector,
                                        const struct cdad_task *task,
                                        size_t *task_id);

/**
 * Trains task `task_id` (tasks are trained in the order they were added). `progress`
 * (nullable) reports progress and can cancel. A cancelled or failed training leaves
 * the detector exactly as it was.
 */
enum cdad_status cdad_detector_train_task(const struct cdad_detector *detector,
                                          size_t task_id,
                                          cdad_progress_callback progress,
                                          void *user);

/**
 * Computes the anomaly map (higher = more anomalous) and the image score of one image.
 * `map` (nullable: score only) receives `image->height` rows of `image->width` floats,
 * `map_row_stride` bytes apart (at least `4 * width`); the library never keeps the
 * pointer. `score` receives the image score. Needs a trained task.
 */
enum cdad_status cdad_detector_infer(const struct cdad_detector *detector,
                                     const struct cdad_image *image,
                                     float *map,
                                     size_t map_row_stride,
                                     float *score);

/**
 * Batched `cdad_detector_infer`: `count` images, `maps[i]` (the array and each entry
 * nullable) with row strides `map_row_strides[i]` (nullable when `maps` is NULL), and
 * `scores` (room for `count` floats). Faster than single calls on larger batches.
 */
enum cdad_status cdad_detector_infer_batch(const struct cdad_detector *detector,
                                           const struct cdad_image *images,
                                           size_t count,
                                           float *const *maps,
                                           const size_t *map_row_strides,
                                           float *scores);

/**
 * Saves the detector (configuration, task registry, every weight) to one file,
 * atomically: an existing file is replaced only when the new one is complete.
 */
enum cdad_status cdad_detector_save(const struct cdad_detector *detector, const char *path);

/**
 * Loads a detector saved with `cdad_detector_save`. `device` (nullable: the saved
 * configuration's) overrides the compute device ("cpu", "cuda:N", "auto"). A
 * truncated, corrupted or incompatible file is refused with `CDAD_ERR_FILE_FORMAT`.
 */
enum cdad_status cdad_detector_load(const char *path,
                                    const char *device,
                                    struct cdad_detector **out);

/**
 * Changes an inference-only key of a detector (`start_step`, `ddim_steps`,
 * `map_seeds`, `map_sigma`), trained or not; the value is saved with the model. Any
 * other key, a wrong type or a value out of range is refused and changes nothing.
 */
enum cdad_status cdad_detector_set_inference_int(const struct cdad_detector *detector,
                                                 const char *key,
                                                 int64_t value);

/**
 * Like `cdad_detector_set_inference_int`, for a float key (`map_sigma`).
 */
enum cdad_status cdad_detector_set_inference_float(const struct cdad_detector *detector,
                                                   const char *key,
                                                   double value);

/**
 * Stores the number of tasks in `*count` and, in `*trained` (nullable), how many of
 * them are trained.
 */
enum cdad_status cdad_detector_task_count(const struct cdad_detector *detector,
                                          size_t *count,
                                          size_t *trained);

/**
 * Checks an image descriptor (sizes, strides, format, layout, NULL data) without
 * reading pixels. `CDAD_ERR_INVALID_IMAGE` with a message naming the problem.
 */
enum cdad_status cdad_image_check(const struct cdad_image *image);

/**
 * Converts an image into the library's internal form: planar RGB floats in [0, 1]
 * (R plane, G plane, B plane, each width x height, row-major). `out` must hold
 * `3 * width * height` floats (`capacity`); grey is replicated into R, G, B; 8-bit
 * samples are divided by 255, 16-bit by 65535.
 */
enum cdad_status cdad_image_to_rgb(const struct cdad_image *image, float *out, size_t capacity);

/**
 * Decodes an image file (PNG, JPEG, BMP, TIFF; 8/16-bit, grey or colour) into
 * interleaved RGB8 (`rgb`, room for `capacity` bytes, at least 3 x width x height) and
 * stores its size in `*width` and `*height`. With `rgb` NULL and `capacity` 0 only
 * the size is stored, so the caller can allocate.
 */
enum cdad_status cdad_image_file_read(const char *path,
                                      uint8_t *rgb,
                                      size_t capacity,
                                      uint32_t *width,
                                      uint32_t *height);

/**
 * Writes `image` with `map` drawn over it as a heat map to a PNG file (atomically).
 * `map` holds `image->height` rows of `image->width` floats, `map_row_stride` bytes
 * apart; values at or below `low` leave the image as it is, values at `high` and
 * above are drawn red.
 */
enum cdad_status cdad_overlay_write_png(const char *path,
                                        const struct cdad_image *image,
                                        const float *map,
                                        size_t map_row_stride,
                                        float low,
                                        float high);

/**
 * Installs (or, with `callback` NULL or `level` CDAD_LOG_OFF, removes) the process-wide
 * log callback. `level` is a `cdad_log_level`; `user` is passed back unchanged. Messages
 * also go to env_logger (stderr), filtered by the `RUST_LOG` environment variable.
 */
enum cdad_status cdad_set_log_callback(cdad_log_callback callback, int32_t level, void *user);

/**
 * Evaluates the detector on the test sets of `count` classes of the dataset at `root`
 * (`classes` NULL and `count` 0: every class of its trained tasks). The report's
 * values are `<class>.<metric>` and `mean.<metric>` for image_auroc, image_aupr,
 * image_f1_max, pixel_auroc, pixel_aupr and au_pro.
 */
enum cdad_status cdad_detector_evaluate(const struct cdad_detector *detector,
                                        const char *root,
                                        const char *const *classes,
                                        size_t count,
                                        struct cdad_report **out);

/**
 * Runs a continual setting (`"3x5"`, `"10-1x5"`, `"14-1"`, any `B-IxS` or `IxS`) on the
 * dataset at `root` with `method` (a `cdad_method`), starting from `config`: classes in
 * alphabetical order, trained task after task, all seen classes evaluated after each
 * task. The report's values are `a.<metric>` and `fm.<metric>`; its Markdown holds the
 * tables. `detector` (nullable) receives the trained detector. `progress` (nullable)
 * follows the run and can cancel it.
 */
enum cdad_status cdad_protocol_run(const struct cdad_config *config,
                                   const char *root,
                                   const char *setting,
                                   int32_t method,
                                   cdad_progress_callback progress,
                                   void *user,
                                   struct cdad_report **report,
                                   struct cdad_detector **detector);

/**
 * Releases a report. NULL is a no-op.
 */
void cdad_report_free(struct cdad_report *report);

/**
 * Reads one named value of a report (e.g. `"a.image_auroc"`, `"mean.au_pro"`).
 */
enum cdad_status cdad_report_value(const struct cdad_report *report,
                                   const char *name,
                                   double *value);

/**
 * Writes the report as JSON into `buffer` (see `cdad_config_get_string` for sizing).
 */
enum cdad_status cdad_report_json(const struct cdad_report *report,
                                  char *buffer,
                                  size_t capacity,
                                  size_t *length);

/**
 * Writes the report as Markdown tables into `buffer` (sized like `cdad_report_json`).
 */
enum cdad_status cdad_report_markdown(const struct cdad_report *report,
                                      char *buffer,
                                      size_t capacity,
                                      size_t *length);

/**
 * The name of a status code as a static string, e.g. `"CDAD_ERR_OUT_OF_RANGE"`;
 * `"CDAD_UNKNOWN_STATUS"` for a value that is not a status code. Never NULL.
 */
const char *cdad_status_name(int32_t status);

/**
 * Creates an empty task called `name` (1..=256 printable characters).
 */
enum cdad_status cdad_task_new(const char *name, struct cdad_task **out);

/**
 * Releases a task. NULL is a no-op.
 */
void cdad_task_free(struct cdad_task *task);

/**
 * Adds class `class_name` with all good training images of the dataset at `root`.
 * `layout` is a `cdad_dataset_layout`. Each image file must exist and have a readable
 * header. Errors (unknown class, corrupt file, class already in the task, ...) name
 * the problem; on error the task is unchanged.
 */
enum cdad_status cdad_task_add_class_from_dataset(struct cdad_task *task,
                                                  const char *root,
                                                  const char *class_name,
                                                  int32_t layout);

/**
 * Adds one good image to class `class_name` (created if new). The pixels are copied
 * during the call.
 */
enum cdad_status cdad_task_add_image(struct cdad_task *task,
                                     const char *class_name,
                                     const struct cdad_image *image);

/**
 * Stores the number of classes in `*count`.
 */
enum cdad_status cdad_task_class_count(const struct cdad_task *task, size_t *count);

/**
 * Stores the number of good images of class `class_name` in `*count`; an unknown
 * class is `CDAD_ERR_INVALID_ARGUMENT`.
 */
enum cdad_status cdad_task_image_count(const struct cdad_task *task,
                                       const char *class_name,
                                       size_t *count);

/**
 * The library version as `"MAJOR.MINOR.PATCH"`; matches the header's `CDAD_VERSION_*`
 * macros when header and library belong together. Static; never NULL.
 */
const char *cdad_version(void);

/**
 * Stores in `*count` how many CUDA devices the linked libtorch can use (0 with the
 * CPU-only libtorch).
 */
enum cdad_status cdad_cuda_device_count(size_t *count);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* CDAD_H */
