//! Unit tests of the parent module.

use super::*;
use chrono::TimeZone;

fn entry(cron: &str, tz: &str, catch_up: &str) -> ScheduleEntry {
    ScheduleEntry {
        cron: cron.parse().unwrap(),
        timezone: tz.parse().unwrap(),
        catch_up: catch_up.parse().unwrap(),
    }
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

#[test]
fn monday_two_in_tokyo_is_sunday_seventeen_utc() {
    let e = entry("0 2 * * MON", "Asia/Tokyo", "24h");
    // Thursday 2026-11-26: the next Monday 02:00 JST is Sunday 2026-11-29 17:00 UTC.
    assert_eq!(
        e.next_after(utc(2026, 11, 26, 12, 0)),
        Some(utc(2026, 11, 29, 17, 0))
    );
    let with_seconds = entry("30 0 2 * * MON", "UTC", "1h");
    assert_eq!(
        with_seconds.next_after(utc(2026, 11, 26, 0, 0)),
        Some(Utc.with_ymd_and_hms(2026, 11, 30, 2, 0, 30).unwrap())
    );
}

#[test]
fn missed_slots_fire_once_and_only_within_the_catch_up_window() {
    let e = entry("0 2 * * MON", "UTC", "24h");
    let since = utc(2026, 11, 26, 0, 0);
    assert_eq!(
        e.due(since, utc(2026, 11, 29, 0, 0)),
        Due::NotYet(Some(utc(2026, 11, 30, 2, 0)))
    );
    assert_eq!(
        e.due(since, utc(2026, 11, 30, 2, 1)),
        Due::Fire {
            slot: utc(2026, 11, 30, 2, 0),
            missed: 0
        }
    );
    // Three Mondays missed, the last one an hour ago: one fire, for that one.
    assert_eq!(
        e.due(since, utc(2026, 12, 14, 3, 0)),
        Due::Fire {
            slot: utc(2026, 12, 14, 2, 0),
            missed: 2
        }
    );
    // The last missed Monday is two days old: past the window, nothing fires.
    assert_eq!(
        e.due(since, utc(2026, 12, 16, 2, 0)),
        Due::TooLate(utc(2026, 12, 14, 2, 0))
    );
}

#[test]
fn bad_crons_and_zones_are_refused_with_the_value() {
    assert!(
        "0 2 * * FUNDAY"
            .parse::<CronExpr>()
            .unwrap_err()
            .contains("FUNDAY")
    );
    assert!("Mars/Olympus".parse::<Zone>().unwrap_err().contains("IANA"));
    assert!("soon".parse::<Window>().is_err());
}
