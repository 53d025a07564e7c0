//! The Demand API's notion of "now": tokio's clock (so paused test time
//! drives feasibility and field work) shown as Dynata's timestamps,
//! `YYYY/MM/DD HH:MM:SS`, counted from the wall-clock time the sandbox
//! started.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

pub(crate) struct Clock {
    started: Instant,
    started_unix_secs: u64,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            started: Instant::now(),
            started_unix_secs: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_secs(),
        }
    }

    /// `at` as Dynata writes a moment, in UTC.
    pub(crate) fn timestamp(&self, at: Instant) -> String {
        let secs = self.started_unix_secs + at.saturating_duration_since(self.started).as_secs();
        format_utc(secs)
    }
}

/// `YYYY/MM/DD HH:MM:SS` for seconds since 1970 (UTC), with the days-to-date
/// conversion of Howard Hinnant's `civil_from_days`.
pub(crate) fn format_utc(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let rest = unix_secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}/{month:02}/{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::format_utc;

    #[test]
    fn dates_are_dynatas_format_in_utc() {
        assert_eq!(format_utc(0), "1970/01/01 00:00:00");
        assert_eq!(format_utc(951_782_400), "2000/02/29 00:00:00");
        assert_eq!(format_utc(1_709_285_400), "2024/03/01 09:30:00");
        assert_eq!(format_utc(4_102_444_799), "2099/12/31 23:59:59");
    }
}
