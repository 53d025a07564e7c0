//! Dynata's timestamps: kept as the text the server sent, parsed on request.
//!
//! Dynata writes `YYYY/MM/DD HH:MM:SS`, sends `""` or `null` for a moment that
//! has not happened, and documents no time zone. Decoding a response must
//! never fail on any of that, so [`Timestamp`] holds the text and
//! [`Timestamp::parse`] is a separate, fallible step.

use std::fmt;
use std::time::{Duration, SystemTime};

/// A moment as Dynata wrote it (the spec's `Timestamp` schema). Any string
/// decodes, and `null` decodes as an empty timestamp; call [`Timestamp::parse`]
/// for the date and time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Timestamp(String);

impl Timestamp {
    /// A timestamp holding `text`, such as `"2024/03/01 09:30:00"`.
    pub fn new(text: impl Into<String>) -> Self {
        Timestamp(text.into())
    }

    /// The text as the server sent it (`""` for `null`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the server sent `""` or `null`: the moment has not happened.
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// The date and time. Reads Dynata's `YYYY/MM/DD HH:MM:SS`, and the
    /// `MM/DD/YYYY HH:MM:SS` of Dynata's own test data.
    pub fn parse(&self) -> Result<DateTime, TimestampError> {
        if self.is_empty() {
            return Err(TimestampError::Empty);
        }
        DateTime::parse(self.0.trim()).ok_or(TimestampError::Malformed)
    }

    /// [`Timestamp::parse`], read as UTC (Dynata documents no time zone; its
    /// Go client reads UTC).
    pub fn to_system_time(&self) -> Result<SystemTime, TimestampError> {
        self.parse().map(|moment| moment.to_system_time_utc())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Timestamp {
    fn from(text: &str) -> Self {
        Timestamp::new(text)
    }
}

impl From<String> for Timestamp {
    fn from(text: String) -> Self {
        Timestamp(text)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<String>::deserialize(deserializer).map(|text| Timestamp(text.unwrap_or_default()))
    }
}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> String {
        "Timestamp".to_string()
    }

    fn json_schema(_: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        schemars::schema::SchemaObject {
            instance_type: Some(schemars::schema::InstanceType::String.into()),
            ..Default::default()
        }
        .into()
    }
}

/// Why a [`Timestamp`] has no date and time. The message never quotes the
/// text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimestampError {
    /// `""` or `null`: the moment has not happened (yet).
    Empty,
    /// Not a valid date and time in a form Dynata uses.
    Malformed,
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimestampError::Empty => {
                f.write_str("the timestamp is empty: the moment has not happened")
            }
            TimestampError::Malformed => f.write_str(
                "the timestamp is not a valid date and time in Dynata's `YYYY/MM/DD HH:MM:SS` form",
            ),
        }
    }
}

impl std::error::Error for TimestampError {}

/// A calendar date and time of day, as Dynata wrote it, without a time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    /// The year, such as 2024.
    pub year: u16,
    /// 1 to 12.
    pub month: u8,
    /// 1 to 31.
    pub day: u8,
    /// 0 to 23.
    pub hour: u8,
    /// 0 to 59.
    pub minute: u8,
    /// 0 to 59.
    pub second: u8,
}

impl DateTime {
    fn parse(text: &str) -> Option<DateTime> {
        let (date, time) = text.split_once(' ')?;
        let date: Vec<&str> = date.split('/').collect();
        let [first, second, third] = date.as_slice() else {
            return None;
        };
        // The year has four digits; it comes first in Dynata's form and
        // last in its test data's.
        let (year, month, day) = if first.len() == 4 {
            (first, second, third)
        } else {
            (third, first, second)
        };
        let time: Vec<&str> = time.trim_start().split(':').collect();
        let [hour, minute, second] = time.as_slice() else {
            return None;
        };
        let moment = DateTime {
            year: digits(year, 4)?.try_into().ok()?,
            month: digits(month, 2)?.try_into().ok()?,
            day: digits(day, 2)?.try_into().ok()?,
            hour: digits(hour, 2)?.try_into().ok()?,
            minute: digits(minute, 2)?.try_into().ok()?,
            second: digits(second, 2)?.try_into().ok()?,
        };
        let valid = (1..=12).contains(&moment.month)
            && (1..=days_in_month(moment.year, moment.month)).contains(&moment.day)
            && moment.hour < 24
            && moment.minute < 60
            && moment.second < 60;
        valid.then_some(moment)
    }

    /// This date and time read as UTC. Dates before 1970 saturate to the
    /// epoch.
    pub fn to_system_time_utc(&self) -> SystemTime {
        let days = days_since_epoch(self.year, self.month, self.day);
        let seconds = days * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds.max(0).unsigned_abs())
    }
}

impl fmt::Display for DateTime {
    /// Dynata's own form, `YYYY/MM/DD HH:MM:SS`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// `text` as a number, if it is exactly `width` ASCII digits (one digit less
/// is allowed for the two-digit fields, which some writers do not pad).
fn digits(text: &str, width: usize) -> Option<u32> {
    let allowed = if width == 2 { 1..=2 } else { width..=width };
    if !allowed.contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date of the proleptic Gregorian
/// calendar (the civil-from-days algorithm, run backwards).
fn days_since_epoch(year: u16, month: u8, day: u8) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moment(text: &str) -> Result<DateTime, TimestampError> {
        Timestamp::new(text).parse()
    }

    #[test]
    fn dynata_form_parses() {
        assert_eq!(
            moment("2024/03/01 09:30:05"),
            Ok(DateTime {
                year: 2024,
                month: 3,
                day: 1,
                hour: 9,
                minute: 30,
                second: 5
            })
        );
        assert_eq!(
            moment("2024/03/01 09:30:05").map(|m| m.to_string()),
            Ok("2024/03/01 09:30:05".to_string())
        );
    }

    #[test]
    fn the_test_data_form_parses_to_the_same_moment() {
        assert_eq!(moment("03/01/2024 09:30:05"), moment("2024/03/01 09:30:05"));
    }

    #[test]
    fn empty_and_malformed_are_told_apart() {
        assert_eq!(moment(""), Err(TimestampError::Empty));
        assert_eq!(moment("  "), Err(TimestampError::Empty));
        for bad in [
            "2024-03-01T09:30:05Z",
            "2024/13/01 09:30:05",
            "2023/02/29 09:30:05",
            "2024/03/01 24:00:00",
            "2024/03/01",
            "2024/03/01 09:30",
            "+024/03/01 09:30:05",
            "yesterday",
        ] {
            assert_eq!(moment(bad), Err(TimestampError::Malformed), "{bad}");
        }
        assert!(moment("2024/02/29 00:00:00").is_ok(), "a leap day");
    }

    #[test]
    fn system_time_reads_utc() {
        let epoch = Timestamp::new("1970/01/01 00:00:00").to_system_time();
        assert_eq!(epoch, Ok(SystemTime::UNIX_EPOCH));
        // 2024-03-01T09:30:05Z is 1709285405 seconds after the epoch.
        let later = Timestamp::new("2024/03/01 09:30:05").to_system_time();
        assert_eq!(
            later,
            Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_285_405))
        );
        let before = Timestamp::new("1969/12/31 23:59:59").to_system_time();
        assert_eq!(before, Ok(SystemTime::UNIX_EPOCH), "saturates");
    }

    #[test]
    fn null_and_empty_decode() {
        let decoded: Vec<Timestamp> =
            serde_json::from_str(r#"[null, "", "2024/03/01 09:30:05", "whenever"]"#)
                .expect("any string or null decodes");
        assert!(decoded[0].is_empty() && decoded[1].is_empty());
        assert_eq!(decoded[2].as_str(), "2024/03/01 09:30:05");
        assert_eq!(decoded[3].parse(), Err(TimestampError::Malformed));
        assert!(!TimestampError::Malformed.to_string().contains("whenever"));
    }
}
