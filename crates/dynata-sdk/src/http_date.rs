//! HTTP dates (RFC 9110 §5.6.7), one of the two forms `Retry-After` takes:
//! the preferred IMF-fixdate and the two obsolete forms recipients must
//! still accept.
//!
//! Written here rather than taken from a crate: sixty lines keep a crate out
//! of every user's build (see `.ci/dependency-budget`). The property tests in
//! `props.rs` hold it to the `httpdate` crate's answers.

use std::time::{Duration, SystemTime};

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The instant `text` names, if it is an HTTP date of a year from 1970 to
/// 9999 whose fields (the day of the week included) agree.
pub(crate) fn parse(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    if !text.is_ascii() {
        return None;
    }
    let (weekday, rest) = text.split_once(", ").unwrap_or(("", text));
    let [weekday, day, month, year, time] = match (weekday.len(), text.len()) {
        // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
        (3, 29) => match rest.split(' ').collect::<Vec<_>>()[..] {
            [day, month, year, time, "GMT"] if year.len() == 4 => [weekday, day, month, year, time],
            _ => return None,
        },
        // asctime: `Sun Nov  6 08:49:37 1994`, the day padded with a space.
        (0, 24) => {
            let day = text.get(8..10)?.trim_start();
            match (
                text.get(..3)?,
                text.get(3..4)?,
                text.get(4..7)?,
                text.get(7..8)?,
            ) {
                (weekday, " ", month, " ")
                    if text.get(10..11)? == " " && text.get(19..20)? == " " =>
                {
                    [weekday, day, month, text.get(20..24)?, text.get(11..19)?]
                }
                _ => return None,
            }
        }
        // RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`.
        _ => match rest.split(' ').collect::<Vec<_>>()[..] {
            [date, time, "GMT"] if LONG_DAYS.contains(&weekday) => {
                match date.split('-').collect::<Vec<_>>()[..] {
                    [day, month, year] if year.len() == 2 => {
                        [&weekday[..3], day, month, year, time]
                    }
                    _ => return None,
                }
            }
            _ => return None,
        },
    };
    if day.len() > 2 || time.len() != 8 || &time[2..3] != ":" || &time[5..6] != ":" {
        return None;
    }
    let number = |digits: &str| -> Option<i64> {
        digits
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| digits.parse().ok())
            .flatten()
    };
    let year = match (number(year)?, year.len()) {
        // Two-digit years: 70 to 99 are the 1900s, 00 to 69 the 2000s.
        (two, 2) if two < 70 => 2000 + two,
        (two, 2) => 1900 + two,
        (four, _) => four,
    };
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let (day, hour, minute, second) = (
        number(day)?,
        number(&time[0..2])?,
        number(&time[3..5])?,
        number(&time[6..8])?,
    );
    let valid = (1970..=9999).contains(&year)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    let days = days_since_epoch(year, month, day);
    // 1970-01-01 was a Thursday.
    let named_weekday = DAYS.iter().position(|d| *d == weekday)? as i64;
    if !valid || (days + 3).rem_euclid(7) != named_weekday {
        return None;
    }
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).ok()?))
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date of the proleptic Gregorian calendar.
fn days_since_epoch(year: i64, month: i64, day: i64) -> i64 {
    let years = (1970..year)
        .map(|y| if is_leap(y) { 366 } else { 365 })
        .sum::<i64>();
    let months = (1..month).map(|m| days_in_month(year, m)).sum::<i64>();
    years + months + day - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> Option<SystemTime> {
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
    }

    #[test]
    fn the_three_forms_of_rfc_9110_name_the_same_instant() {
        let november_6_1994 = at(784_111_777);
        assert_eq!(parse("Sun, 06 Nov 1994 08:49:37 GMT"), november_6_1994);
        assert_eq!(parse("Sunday, 06-Nov-94 08:49:37 GMT"), november_6_1994);
        assert_eq!(parse("Sun Nov  6 08:49:37 1994"), november_6_1994);
        assert_eq!(parse(" Thu, 01 Jan 1970 00:00:00 GMT "), at(0));
        assert_eq!(parse("Fri, 31 Dec 9999 23:59:59 GMT"), at(253_402_300_799));
        assert_eq!(parse("Tuesday, 29-Feb-00 00:00:00 GMT"), at(951_782_400));
    }

    #[test]
    fn dates_whose_fields_disagree_are_not_dates() {
        for bad in [
            "Mon, 06 Nov 1994 08:49:37 GMT", // a Sunday
            "Sun, 31 Nov 1994 08:49:37 GMT", // no 31st
            "Sun, 06 Nov 1994 24:00:00 GMT", // no hour 24
            "Sun, 06 Nov 1994 08:49:37 UTC", // not GMT
            "Sun, 6 Nov 1994 08:49:37 GMT",  // one digit
            "Wed, 31 Dec 1969 23:59:59 GMT", // before 1970
            "Sun, 06 Nov 1994 08:49:3x GMT",
            "Sun, 06 Nov +994 08:49:37 GMT",
            "Sun Nov  6 08:49:37 94  ",
            "",
            "7",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
