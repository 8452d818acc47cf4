//! Thread safety of the C API's detector: concurrent inference gives the same maps as
//! sequential inference, and inference during a training is refused with
//! `CDAD_ERR_BUSY` instead of waiting or corrupting anything.

use cdad::ffi::*;
use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};

static TRAINING_STARTED: AtomicBool = AtomicBool::new(false);
static PROBED: AtomicBool = AtomicBool::new(false);

unsafe extern "C" fn hold_training(_: f32, _: *const c_char, _: *mut c_void) -> i32 {
    TRAINING_STARTED.store(true, Ordering::SeqCst);
    while !PROBED.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    0
}

struct Handle(*mut cdad_detector);
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

fn image(pixels: &[u8]) -> cdad_image {
    cdad_image {
        data: pixels.as_ptr() as *const c_void,
        width: 32,
        height: 32,
        row_stride: 96,
        plane_stride: 0,
        format: cdad_pixel_format::CDAD_PIXEL_RGB8 as i32,
        layout: cdad_layout::CDAD_LAYOUT_INTERLEAVED as i32,
    }
}

#[test]
fn concurrent_inference_and_busy_while_training() {
    let dir = tempfile::tempdir().unwrap();
    let root = CString::new(dir.path().join("bench").to_str().unwrap()).unwrap();
    assert_eq!(
        cdad_benchmark_generate(root.as_ptr(), 32, 4, 1, 1, 5, std::ptr::null()),
        cdad_status::CDAD_OK
    );
    let mut config = std::ptr::null_mut();
    assert_eq!(
        cdad_config_new(c"tiny".as_ptr(), &mut config),
        cdad_status::CDAD_OK
    );
    assert_eq!(
        cdad_config_set_int(config, c"train_steps".as_ptr(), 4),
        cdad_status::CDAD_OK
    );
    let mut detector = std::ptr::null_mut();
    assert_eq!(
        cdad_detector_create(config, &mut detector),
        cdad_status::CDAD_OK
    );
    cdad_config_free(config);
    let mut id = 0usize;
    for (name, class) in [(c"a", c"gear"), (c"b", c"wood")] {
        let mut task = std::ptr::null_mut();
        assert_eq!(
            cdad_task_new(name.as_ptr(), &mut task),
            cdad_status::CDAD_OK
        );
        assert_eq!(
            cdad_task_add_class_from_dataset(task, root.as_ptr(), class.as_ptr(), 0),
            cdad_status::CDAD_OK
        );
        assert_eq!(
            cdad_detector_add_task(detector, task, &mut id),
            cdad_status::CDAD_OK
        );
        cdad_task_free(task);
    }
    assert_eq!(
        cdad_detector_train_task(detector, 0, None, std::ptr::null_mut()),
        cdad_status::CDAD_OK
    );

    // Four threads infer the same image at once: all succeed with identical maps.
    let pixels: Vec<u8> = (0..32 * 32 * 3).map(|i| (i * 7 % 251) as u8).collect();
    let shared = Handle(detector);
    let results: Vec<(Vec<f32>, f32)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (shared, pixels) = (&shared, &pixels);
                scope.spawn(move || {
                    let mut map = vec![0f32; 32 * 32];
                    let mut score = 0f32;
                    let status = cdad_detector_infer(
                        shared.0,
                        &image(pixels),
                        map.as_mut_ptr(),
                        128,
                        &mut score,
                    );
                    assert_eq!(status, cdad_status::CDAD_OK);
                    (map, score)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(
        results.windows(2).all(|w| w[0] == w[1]),
        "concurrent maps differ"
    );

    // While task 1 trains (held inside its progress callback), inference is refused.
    std::thread::scope(|scope| {
        let shared = &shared;
        let trainer = scope.spawn(move || {
            cdad_detector_train_task(shared.0, 1, Some(hold_training), std::ptr::null_mut())
        });
        while !TRAINING_STARTED.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let mut score = 0f32;
        let status = cdad_detector_infer(
            shared.0,
            &image(&pixels),
            std::ptr::null_mut(),
            0,
            &mut score,
        );
        let message = unsafe { std::ffi::CStr::from_ptr(cdad_last_error_message()) }
            .to_string_lossy()
            .into_owned();
        PROBED.store(true, Ordering::SeqCst);
        assert_eq!(status, cdad_status::CDAD_ERR_BUSY, "{message}");
        assert!(message.contains("busy"), "{message}");
        assert_eq!(trainer.join().unwrap(), cdad_status::CDAD_OK);
    });
    let (mut count, mut trained) = (0usize, 0usize);
    assert_eq!(
        cdad_detector_task_count(detector, &mut count, &mut trained),
        cdad_status::CDAD_OK
    );
    assert_eq!((count, trained), (2, 2));
    cdad_detector_free(detector);
}
