//! A capturing logger for the `log` crate, so tests can check what handlers log.
//!
//! The global logger is installed once per test binary. Records are kept per thread, and
//! only on threads that asked for capture: tests running in parallel never see each
//! other's records (the loop runs handlers on the test's own thread).

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::cell::RefCell;
use std::sync::Once;

/// One captured log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The record's level.
    pub level: Level,
    /// The record's target (e.g. `"asyncore"`).
    pub target: String,
    /// The formatted message.
    pub message: String,
}

thread_local! {
    static RECORDS: RefCell<Option<Vec<Captured>>> = const { RefCell::new(None) };
}

struct CaptureLogger;

impl Log for CaptureLogger {
    fn enabled(&self, _metadata: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        RECORDS.with(|r| {
            if let Some(records) = r.borrow_mut().as_mut() {
                records.push(Captured {
                    level: record.level(),
                    target: record.target().to_string(),
                    message: record.args().to_string(),
                });
            }
        });
    }

    fn flush(&self) {}
}

static LOGGER: CaptureLogger = CaptureLogger;
static INSTALL: Once = Once::new();

/// Capture of the current thread's log records, from its creation until it is dropped.
#[derive(Debug)]
pub struct LogCapture(());

/// Starts capturing this thread's log records (all levels).
pub fn capture_logs() -> LogCapture {
    INSTALL.call_once(|| {
        // Only this module installs a logger in the test binaries.
        log::set_logger(&LOGGER).expect("no other logger in the test binary");
        log::set_max_level(LevelFilter::Trace);
    });
    RECORDS.with(|r| *r.borrow_mut() = Some(Vec::new()));
    LogCapture(())
}

impl LogCapture {
    /// Every record captured so far on this thread.
    pub fn records(&self) -> Vec<Captured> {
        RECORDS.with(|r| r.borrow().clone().unwrap_or_default())
    }

    /// The messages captured at `level`, in order.
    pub fn messages(&self, level: Level) -> Vec<String> {
        self.records()
            .into_iter()
            .filter(|c| c.level == level)
            .map(|c| c.message)
            .collect()
    }

    /// Forgets what was captured so far.
    pub fn clear(&self) {
        RECORDS.with(|r| *r.borrow_mut() = Some(Vec::new()));
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        RECORDS.with(|r| *r.borrow_mut() = None);
    }
}
