//! Wall time, CPU time and peak memory of each pipeline stage, for `--profile` and the benchmark.
//!
//! A stage is timed by holding the guard [`stage`] returns. While recording is on (see
//! [`enable`]), entering a stage resets the process's peak resident set size (Linux:
//! `/proc/self/clear_refs`), and leaving it reads the peak (`VmHWM` in `/proc/self/status`), so
//! each stage reports the most memory the process held while it ran, including what earlier
//! stages still hold. Stages do not nest; a stage entered twice adds up its times. Off (the
//! default), a guard costs one atomic load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// One stage's measurements.
#[derive(Debug, Clone, Serialize)]
pub struct StageTime {
    pub name: &'static str,
    pub seconds: f64,
    /// Peak resident set size while the stage ran, bytes (0 where the system does not say).
    pub peak_rss: u64,
    /// CPU time of the process (user + system, all threads) while the stage ran, seconds (0
    /// where the system does not say): `cpu_seconds / seconds` is how many cores it kept busy.
    pub cpu_seconds: f64,
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static STAGES: Mutex<Vec<StageTime>> = Mutex::new(Vec::new());
static PROCESS_PEAK: Mutex<u64> = Mutex::new(0);

/// Starts recording.
pub fn enable() {
    ENABLED.store(true, Ordering::SeqCst);
}

/// The guard of a running stage.
pub struct Stage {
    name: &'static str,
    start: Option<(Instant, f64)>,
}

/// Enters stage `name`.
pub fn stage(name: &'static str) -> Stage {
    if !ENABLED.load(Ordering::Relaxed) {
        return Stage { name, start: None };
    }
    note_peak();
    // Writing "5" resets the peak RSS to the current RSS (Linux ≥ 4.0); ignored elsewhere.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    Stage {
        name,
        start: Some((Instant::now(), cpu_seconds())),
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let Some((start, cpu_start)) = self.start else {
            return;
        };
        let elapsed: Duration = start.elapsed();
        let cpu = (cpu_seconds() - cpu_start).max(0.0);
        let peak = peak_rss().unwrap_or(0);
        let mut stages = STAGES.lock().unwrap_or_else(|e| e.into_inner());
        match stages.iter_mut().find(|s| s.name == self.name) {
            Some(s) => {
                s.seconds += elapsed.as_secs_f64();
                s.peak_rss = s.peak_rss.max(peak);
                s.cpu_seconds += cpu;
            }
            None => stages.push(StageTime {
                name: self.name,
                seconds: elapsed.as_secs_f64(),
                peak_rss: peak,
                cpu_seconds: cpu,
            }),
        }
    }
}

/// Folds the current peak into the process-wide peak (before a reset loses it).
fn note_peak() {
    if let Some(p) = peak_rss() {
        let mut m = PROCESS_PEAK.lock().unwrap_or_else(|e| e.into_inner());
        *m = (*m).max(p);
    }
}

/// The stages recorded so far, in the order first entered.
pub fn stages() -> Vec<StageTime> {
    STAGES.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The process's peak RSS over its whole life so far, bytes (0 where unknown).
pub fn process_peak_rss() -> u64 {
    note_peak();
    *PROCESS_PEAK.lock().unwrap_or_else(|e| e.into_inner())
}

/// User + system CPU time of the whole process so far, seconds (`getrusage`; 0 off Linux).
fn cpu_seconds() -> f64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getrusage only writes the struct it is given.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } == 0 {
            let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
            return t(u.ru_utime) + t(u.ru_stime);
        }
    }
    0.0
}

/// `VmHWM` of `/proc/self/status`, bytes.
pub fn peak_rss() -> Option<u64> {
    status_kb("VmHWM:").map(|kb| kb * 1024)
}

fn status_kb(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
