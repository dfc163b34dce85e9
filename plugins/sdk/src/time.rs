//! Timestamps as trackers write them, read into Unix milliseconds (for the monotonic version
//! of a webhook's `event-change`).

/// Reads `2026-07-08T10:00:00.000Z`, `2021-01-17T12:34:00.000+0000`, `2013-12-03T17:15:43+01:00`
/// and GitLab's `2017-09-15 16:52:00 UTC` into Unix milliseconds; none for anything else.
pub fn timestamp_millis(text: &str) -> Option<u64> {
    let text = text.trim();
    let date = text.get(..10)?;
    let mut parts = date.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    let rest = text.get(10..)?.strip_prefix(['T', ' '])?;
    let clock = rest.get(..8)?;
    let mut hms = clock.split(':');
    let hour: i64 = hms.next()?.parse().ok()?;
    let minute: i64 = hms.next()?.parse().ok()?;
    let second: i64 = hms.next()?.parse().ok()?;
    let mut rest = &rest[8..];
    let mut millis = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.len()
            - fraction
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset_secs = match rest.trim() {
        "" | "Z" | "UTC" => 0,
        zone => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
            let h: i64 = digits.get(..2)?.parse().ok()?;
            let m: i64 = digits.get(2..4).unwrap_or("00").parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    u64::try_from(secs * 1000 + millis).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::timestamp_millis;

    #[test]
    fn reads_the_trackers_formats() {
        assert_eq!(timestamp_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            timestamp_millis("2026-07-08T10:00:00.000Z"),
            Some(1_783_504_800_000)
        );
        assert_eq!(
            timestamp_millis("2026-07-08T10:00:00.5Z"),
            Some(1_783_504_800_500)
        );
        assert_eq!(
            timestamp_millis("2026-07-08T12:00:00.000+0200"),
            Some(1_783_504_800_000)
        );
        assert_eq!(
            timestamp_millis("2026-07-08T12:00:00+02:00"),
            Some(1_783_504_800_000)
        );
        assert_eq!(
            timestamp_millis("2026-07-08 10:00:00 UTC"),
            Some(1_783_504_800_000)
        );
        assert_eq!(timestamp_millis("yesterday"), None);
    }
}
