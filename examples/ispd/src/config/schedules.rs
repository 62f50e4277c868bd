//! The `[scheduler]` and `[schedules]` sections: the watcher's settings and
//! each job's cron schedule (parsed by [`isp_core::runtime::Schedule`]).

use super::raw::*;
use super::validate::Cx;
use super::*;

impl Cx<'_> {
    pub(super) fn scheduler(
        &self,
        raw: &RawScheduler,
        schedules: &RawSchedules,
    ) -> Result<SchedulerConfig, ConfigError> {
        let mut s = SchedulerConfig::default();
        if let Some(v) = self.env.var("ISPD_SCHEDULER_TIME_ZONE") {
            s.time_zone = parse_zone(&v).map_err(|m| self.env_err("ISPD_SCHEDULER_TIME_ZONE", m))?;
        } else if let Some(Zone(z)) = raw.time_zone {
            s.time_zone = z;
        }
        if let Some(v) = self.env.var("ISPD_SCHEDULER_WATCHER") {
            s.watcher_enabled = match v.trim() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    return Err(self.env_err("ISPD_SCHEDULER_WATCHER", format!("{v:?} is not true or false")))
                }
            };
        } else if let Some(w) = raw.watcher {
            s.watcher_enabled = w;
        }
        if let Some(m) = &raw.watcher_max_sleep {
            let d = m.get_ref().0;
            if d < Duration::from_millis(100) || d > Duration::from_secs(60) {
                return Err(self.at(
                    m.span(),
                    "scheduler.watcher_max_sleep",
                    "must be between 100ms and 60s: the watcher must notice new purchases within seconds",
                ));
            }
            s.watcher_max_sleep = d;
        }
        if let Some(Dur(d)) = raw.watcher_min_sleep {
            s.watcher_min_sleep = d;
        }
        if s.watcher_min_sleep > s.watcher_max_sleep {
            return Err(self.nowhere(
                "scheduler.watcher_min_sleep",
                "must not be longer than scheduler.watcher_max_sleep",
            ));
        }
        if let Some(Dur(d)) = raw.shutdown_grace {
            s.shutdown_grace = d;
        }
        if let Some(on) = raw.voucher_listen {
            s.voucher_listen = on;
        }
        for job in JobKind::ALL {
            let var = format!(
                "ISPD_SCHEDULE_{}",
                job.name().replace('-', "_").to_ascii_uppercase()
            );
            if let Some(v) = self.env.var(&var) {
                let sch = Schedule::parse(&v).map_err(|m| self.env_err(&var, m))?;
                s.schedules.insert(job, sch);
            } else if let Some(CronSpec(sch)) = schedules.get(job) {
                s.schedules.insert(job, sch.clone());
            }
        }
        Ok(s)
    }
}
