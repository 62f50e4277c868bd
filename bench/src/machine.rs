//! What the figures were measured on, and the process's peak memory.

use std::fmt;

/// The machine and the moment a run started.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub(crate) cpus: usize,
    pub(crate) cpu_model: String,
    pub(crate) mem_total_mb: u64,
    pub(crate) mem_available_mb: u64,
    pub(crate) load_at_start: String,
    pub(crate) kernel: String,
    pub(crate) rustc: &'static str,
    pub(crate) profile: &'static str,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A `Key:   123 kB` value of a `/proc` status-like file, in kB.
pub(crate) fn kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

impl Machine {
    /// Reads `/proc` now (the load average is the one at this moment).
    pub(crate) fn describe() -> Machine {
        let meminfo = read("/proc/meminfo");
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let load = read("/proc/loadavg");
        let load_at_start = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            mem_total_mb: kb_field(&meminfo, "MemTotal").unwrap_or(0) / 1024,
            mem_available_mb: kb_field(&meminfo, "MemAvailable").unwrap_or(0) / 1024,
            load_at_start: if load_at_start.is_empty() {
                "unknown".to_owned()
            } else {
                load_at_start
            },
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            rustc: env!("ISP_BENCH_RUSTC"),
            profile: env!("ISP_BENCH_PROFILE"),
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} CPUs ({}), {} MB memory ({} MB available at start), load average at start {} (1, 5, 15 min), \
             Linux {}, {}, {} build",
            self.cpus,
            self.cpu_model,
            self.mem_total_mb,
            self.mem_available_mb,
            self.load_at_start,
            self.kernel,
            self.rustc,
            self.profile
        )
    }
}

/// The current 1-minute load average.
pub(crate) fn load_now() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_owned()
}

/// Peak resident set size of this process so far (`VmHWM`), kB.
pub(crate) fn vm_hwm_kb() -> u64 {
    kb_field(&read("/proc/self/status"), "VmHWM").unwrap_or(0)
}

/// CPU time (user + system) this process has used so far, seconds.
pub(crate) fn cpu_secs() -> f64 {
    let stat = read("/proc/self/stat");
    // Fields after the `(comm)`: state is field 3; utime and stime are 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU used by the simulated routers while idle: this process's CPU over `d`.
pub(crate) async fn idle_cpu_share(d: std::time::Duration) -> f64 {
    let before = cpu_secs();
    tokio::time::sleep(d).await;
    (cpu_secs() - before) / d.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kb_fields() {
        let status = "Name:\tx\nVmPeak:\t  2000 kB\nVmHWM:\t   1234 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(kb_field(status, "VmHWM"), Some(1234));
        assert_eq!(kb_field(status, "VmRSS"), Some(1000));
        assert_eq!(kb_field(status, "VmSwap"), None);
        assert!(vm_hwm_kb() > 0, "this process has a peak RSS");
        let t = cpu_secs();
        let mut x = 0_u64;
        for i in 0..50_000_000_u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(cpu_secs() > t, "burning CPU shows in /proc/self/stat");
        let m = Machine::describe();
        assert!(m.cpus >= 1);
        assert!(m.to_string().contains("CPUs"));
    }
}
