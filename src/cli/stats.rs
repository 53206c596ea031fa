//! `--stats` on plan, apply and destroy: what the run cost, printed to stderr when it ends
//! (stdout may be a JSON or Markdown plan). AWS requests by service and action with retries and
//! throttles (counted by the AWS clients' interceptor, `aws::request_stats`), wall time per
//! phase (load, refresh, evaluate, apply) and peak memory.
//!
//! The phases are recorded in a process-wide list: one command runs per process, and the
//! workflow's steps that time them need not carry a collector through every signature.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ENABLED: AtomicBool = AtomicBool::new(false);
static PHASES: Mutex<Vec<(&'static str, Duration)>> = Mutex::new(Vec::new());

/// Turns the report on (`--stats`).
pub(crate) fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Adds `took` to the phase `name` (a phase that runs twice, like apply's re-plan, sums).
pub(crate) fn phase(name: &'static str, took: Duration) {
    let mut phases = PHASES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match phases.iter_mut().find(|(n, _)| *n == name) {
        Some((_, d)) => *d += took,
        None => phases.push((name, took)),
    }
}

/// Runs `f`, recording its wall time as phase `name`.
pub(crate) fn timed<T>(name: &'static str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    phase(name, started.elapsed());
    out
}

/// Prints the report to stderr, when `--stats` asked for it.
pub(crate) fn report() {
    if ENABLED.load(Ordering::Relaxed) {
        let phases = PHASES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        eprint!(
            "{}",
            render(&phases, &crate::aws::request_stats(), peak_memory())
        );
    }
}

/// The report's text. One line per (service, action), so that scripts can read it.
fn render(
    phases: &[(&'static str, Duration)],
    requests: &crate::aws::RequestStats,
    peak: Option<u64>,
) -> String {
    let mut out = String::from("\nStats:\n");
    for (name, took) in phases {
        let _ = writeln!(out, "  time {name}: {:.3} s", took.as_secs_f64());
    }
    let total: usize = requests.by_action.values().sum();
    let _ = writeln!(
        out,
        "  requests: {total} ({} retries, {} throttled)",
        requests.retries, requests.throttled
    );
    for ((service, action), n) in &requests.by_action {
        let _ = writeln!(out, "  request {service} {action}: {n}");
    }
    match peak {
        Some(kb) => {
            // Lossless enough for a report: kilobytes far below 2^52.
            #[allow(clippy::cast_precision_loss)]
            let mb = kb as f64 / 1024.0;
            let _ = writeln!(out, "  peak memory: {mb:.1} MB");
        }
        None => out.push_str("  peak memory: unknown on this system\n"),
    }
    out
}

/// The process's peak resident memory in kilobytes (Linux's `VmHWM`); `None` elsewhere.
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_hwm(&status)
}

fn vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_gives_each_phase_each_action_and_the_peak_memory() {
        let mut requests = crate::aws::RequestStats {
            retries: 1,
            throttled: 1,
            ..Default::default()
        };
        requests.by_action.insert(("ec2", "DescribeVpcs".into()), 2);
        requests.by_action.insert(("iam", "CreateRole".into()), 3);
        let text = render(
            &[
                ("load", Duration::from_millis(12)),
                ("refresh", Duration::from_millis(1500)),
            ],
            &requests,
            Some(2048),
        );
        assert_eq!(
            text,
            "\nStats:\n  time load: 0.012 s\n  time refresh: 1.500 s\n  requests: 5 (1 retries, 1 throttled)\n  request ec2 DescribeVpcs: 2\n  request iam CreateRole: 3\n  peak memory: 2.0 MB\n"
        );
    }

    #[test]
    fn peak_memory_is_read_from_vm_hwm() {
        let status = "Name:\tskyform\nVmPeak:\t  900 kB\nVmHWM:\t    4321 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(vm_hwm(status), Some(4321));
        assert_eq!(vm_hwm("Name: x\n"), None);
        assert!(peak_memory().is_some_and(|kb| kb > 0));
    }
}
