//! Logging: every message goes through the `log` facade to env_logger (controlled by
//! `RUST_LOG`) and, when the host installed one, to a callback sink.

use std::sync::{Arc, OnceLock, RwLock};

/// Receives log records the host asked for.
pub trait LogSink: Send + Sync {
    /// Called once per record at or above the sink's level.
    fn log(&self, level: log::Level, target: &str, message: &str);
}

struct Installed {
    sink: Arc<dyn LogSink>,
    level: log::LevelFilter,
}

static SINK: RwLock<Option<Installed>> = RwLock::new(None);
static ENV_LEVEL: OnceLock<log::LevelFilter> = OnceLock::new();

struct CdadLogger {
    env: env_logger::Logger,
}

impl log::Log for CdadLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.env.enabled(metadata) || sink_level() >= metadata.level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.env.enabled(record.metadata()) {
            self.env.log(record);
        }
        if let Ok(guard) = SINK.read() {
            if let Some(installed) = guard.as_ref() {
                if installed.level >= record.level() {
                    let message = record.args().to_string();
                    installed
                        .sink
                        .log(record.level(), record.target(), &message);
                }
            }
        }
    }

    fn flush(&self) {
        self.env.flush();
    }
}

fn sink_level() -> log::LevelFilter {
    SINK.read()
        .ok()
        .and_then(|g| g.as_ref().map(|i| i.level))
        .unwrap_or(log::LevelFilter::Off)
}

/// Installs the library's logger once per process (env_logger configured by
/// `RUST_LOG`, plus the callback sink) and returns env_logger's level. Harmless if the
/// host set its own `log` logger first: then records go to that logger only.
pub fn init() -> log::LevelFilter {
    *ENV_LEVEL.get_or_init(|| {
        let env = env_logger::Builder::from_env(env_logger::Env::default()).build();
        let env_level = env.filter();
        if log::set_boxed_logger(Box::new(CdadLogger { env })).is_ok() {
            log::set_max_level(env_level);
        }
        env_level
    })
}

/// Sends records at `level` and above to `sink` (replacing any earlier sink); `None`
/// removes the sink.
pub fn set_sink(sink: Option<(Arc<dyn LogSink>, log::LevelFilter)>) {
    let env_level = init();
    if let Ok(mut guard) = SINK.write() {
        *guard = sink.map(|(sink, level)| Installed { sink, level });
    }
    log::set_max_level(env_level.max(sink_level()));
}
