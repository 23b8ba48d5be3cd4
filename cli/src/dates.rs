//! Dates on the command line: `2025-03-31` or RFC 3339 (`2025-03-31T12:00:00Z`,
//! `2025-03-31T14:00:00+02:00`), to unix microseconds and back.
//!
//! A bare date used as a point in time ("the register as of 2025-03-31") means the end of that
//! day (UTC): what a person expects the register "on 31 March" to include.

use anyhow::Context as _;
use projections::Timestamp;

/// How to read a bare date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BareDate {
    /// Midnight at the start of the day (for "it happened on").
    StartOfDay,
    /// The last microsecond of the day (for "as of").
    EndOfDay,
}

/// Parses a date or an RFC 3339 time into unix microseconds.
pub fn parse(text: &str, bare: BareDate) -> anyhow::Result<i64> {
    parse_inner(text.trim())
        .map(|(t, had_time)| {
            if !had_time && bare == BareDate::EndOfDay {
                t + Timestamp::DAY - 1
            } else {
                t
            }
        })
        .with_context(|| {
            format!(
                "{text:?} is not a date (2025-03-31) or an RFC 3339 time (2025-03-31T12:00:00Z)"
            )
        })
}

fn parse_inner(text: &str) -> anyhow::Result<(i64, bool)> {
    let (date, rest) = match text.find(['T', 't', ' ']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let day = calendar_date(date)?;
    let Some(rest) = rest else {
        return Ok((day.0, false));
    };
    // Split the offset off: Z, +HH:MM or -HH:MM.
    let (clock, offset_us) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if rest.len() > 6 && matches!(rest.as_bytes()[rest.len() - 6], b'+' | b'-') {
        let (c, off) = rest.split_at(rest.len() - 6);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let h: i64 = off[1..3].parse()?;
        let m: i64 = off[4..6].parse()?;
        (c, sign * (h * 3600 + m * 60) * 1_000_000)
    } else {
        anyhow::bail!("an RFC 3339 time needs Z or an offset")
    };
    let mut parts = clock.splitn(3, ':');
    let h: i64 = parts.next().context("hour")?.parse()?;
    let m: i64 = parts.next().context("minute")?.parse()?;
    let sec_text = parts.next().unwrap_or("0");
    let (s, frac) = sec_text.split_once('.').unwrap_or((sec_text, ""));
    let s: i64 = s.parse()?;
    anyhow::ensure!(h < 24 && m < 60 && s < 61, "bad time");
    let mut micros = 0i64;
    for (i, c) in frac.chars().take(6).enumerate() {
        let d = c.to_digit(10).context("bad fraction")? as i64;
        micros += d * 10i64.pow(5 - i as u32);
    }
    Ok((
        day.0 + (h * 3600 + m * 60 + s) * 1_000_000 + micros - offset_us,
        true,
    ))
}

/// A real calendar date from 1970 to 9999 at midnight UTC; an impossible one (`2025-02-30`)
/// is an error that says why, never normalised into another day.
fn calendar_date(date: &str) -> anyhow::Result<Timestamp> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let b = date.as_bytes();
    anyhow::ensure!(
        b.len() == 10 && b[4] == b'-' && b[7] == b'-',
        "a date is written YYYY-MM-DD"
    );
    let number = |part: &str, what: &str| {
        part.parse::<u32>()
            .with_context(|| format!("{what} {part:?} is not a number"))
    };
    let year = number(&date[..4], "year")?;
    let month = number(&date[5..7], "month")?;
    let day = number(&date[8..], "day")?;
    anyhow::ensure!(
        (1970..=9999).contains(&year),
        "the year must be from 1970 to 9999"
    );
    anyhow::ensure!((1..=12).contains(&month), "there is no month {month}");
    let last = projections::model::days_in_month(i64::from(year), month);
    anyhow::ensure!(
        (1..=last).contains(&day),
        "{} {year} has {last} days",
        MONTHS[month as usize - 1]
    );
    Timestamp::parse_date(date).context("not a calendar date")
}

/// `2025-03-10` at midnight, `2025-03-10T14:03:00Z` otherwise.
pub fn show(us: i64) -> String {
    Timestamp(us).to_string()
}

/// Unix seconds (as witnesses timestamp their cosignatures) in the microseconds every other
/// time here uses, saturating instead of overflowing.
pub fn from_unix_seconds(seconds: u64) -> i64 {
    i64::try_from(seconds)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000)
}

/// Always the full time, `2025-03-10T14:03:00Z`.
pub fn show_time(us: i64) -> String {
    let text = Timestamp(us).to_string();
    if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_dates_and_rfc3339() {
        let day = parse("2025-03-31", BareDate::StartOfDay).unwrap();
        assert_eq!(show(day), "2025-03-31");
        let end = parse("2025-03-31", BareDate::EndOfDay).unwrap();
        assert_eq!(end, day + Timestamp::DAY - 1);
        let t = parse("2025-03-31T12:30:00Z", BareDate::EndOfDay).unwrap();
        assert_eq!(show(t), "2025-03-31T12:30:00Z");
        let z = parse("2025-03-31T14:30:00+02:00", BareDate::EndOfDay).unwrap();
        assert_eq!(z, t);
        assert!(parse("31/03/2025", BareDate::EndOfDay).is_err());
    }

    #[test]
    fn an_impossible_calendar_date_is_refused_saying_why() {
        let error = parse("2025-02-30", BareDate::EndOfDay).expect_err("no 30 February");
        assert!(
            format!("{error:#}").contains("February 2025 has 28 days"),
            "{error:#}"
        );
    }

    #[test]
    fn the_29th_of_february_is_a_date_in_leap_years_only() {
        assert!(parse("2024-02-29", BareDate::StartOfDay).is_ok());
        assert!(parse("2025-02-29", BareDate::StartOfDay).is_err());
    }

    #[test]
    fn a_year_outside_1970_to_9999_is_refused() {
        let error = parse("1969-12-31", BareDate::StartOfDay).expect_err("before 1970");
        assert!(format!("{error:#}").contains("1970 to 9999"), "{error:#}");
    }
}
