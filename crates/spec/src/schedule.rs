//! The spec's `schedule:` section: cron expressions (an optional seconds field) in IANA
//! time zones, and which slot is due. The trigger-watcher fires due slots; `tollgate
//! schedules` lists the next ones. Parsing is croner's and chrono-tz's, not ours.

use std::{fmt, str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The brief's default: every Monday at 02:00 UTC.
pub const DEFAULT_CRON: &str = "0 2 * * MON";

/// How long after its time a missed slot still fires, unless the entry says otherwise.
pub const DEFAULT_CATCH_UP: Duration = Duration::from_secs(24 * 3600);

/// A cron expression, checked when the spec is read.
#[derive(Clone)]
pub struct CronExpr {
    text: String,
    cron: croner::Cron,
}

impl fmt::Debug for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl FromStr for CronExpr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let cron = croner::Cron::from_str(text)
            .map_err(|e| format!("{text:?} is not a cron expression: {e}"))?;
        Ok(CronExpr {
            text: text.into(),
            cron,
        })
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// An IANA time zone, e.g. `Asia/Tokyo`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Zone(pub chrono_tz::Tz);

impl Default for Zone {
    fn default() -> Self {
        Zone(chrono_tz::UTC)
    }
}

/// Implements serde through `FromStr` and `Display` for the schedule's own types.
macro_rules! serde_as_text {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

impl FromStr for Zone {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        name.parse::<chrono_tz::Tz>()
            .map(Zone)
            .map_err(|_| format!("{name:?} is not an IANA time zone (e.g. Europe/Paris, UTC)"))
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

/// A duration written as people do: `6h`, `30m`, `2days`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window(pub Duration);

impl FromStr for Window {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        humantime::parse_duration(text)
            .map(Window)
            .map_err(|e| format!("{text:?} is not a duration (e.g. 6h, 30m): {e}"))
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

serde_as_text!(CronExpr);
serde_as_text!(Zone);
serde_as_text!(Window);

/// One schedule: when, in which zone, and how late a missed slot may still fire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleEntry {
    /// Cron expression: minute hour day-of-month month day-of-week, with an optional
    /// leading seconds field.
    pub cron: CronExpr,
    /// IANA time zone the expression is read in; UTC when omitted.
    #[serde(default)]
    pub timezone: Zone,
    /// A missed slot fires (once, for all missed slots) only this long after its time.
    #[serde(default = "default_catch_up")]
    pub catch_up: Window,
}

fn default_catch_up() -> Window {
    Window(DEFAULT_CATCH_UP)
}

/// What a schedule entry says at a moment.
#[derive(Debug, Clone, PartialEq)]
pub enum Due {
    /// Nothing since the last slot; the next is at this time.
    NotYet(Option<DateTime<Utc>>),
    /// Fire for this slot (the latest due), standing for `missed` more slots before it.
    Fire {
        /// The slot.
        slot: DateTime<Utc>,
        /// Earlier slots since the last fire that this one stands for.
        missed: usize,
    },
    /// The latest due slot is older than the catch-up window: skip to it, fire nothing.
    TooLate(DateTime<Utc>),
}

impl ScheduleEntry {
    /// The brief's default entry: Monday 02:00 UTC.
    pub fn default_entry() -> Self {
        ScheduleEntry {
            cron: DEFAULT_CRON
                .parse()
                .unwrap_or_else(|e: String| unreachable!("the default cron parses: {e}")),
            timezone: Zone::default(),
            catch_up: default_catch_up(),
        }
    }

    /// A stable name for the entry (its cron and zone), for state keys and trigger ids.
    pub fn id(&self) -> String {
        crate::digest(&format!("{} {}", self.cron, self.timezone))[..12].to_string()
    }

    /// The shortest time between two of its slots, as the 120 slots after a fixed
    /// moment show (enough to see a seconds field, or two slots in one minute of a day).
    pub fn shortest_gap(&self) -> Option<Duration> {
        let mut t = DateTime::<Utc>::from_timestamp(1_798_761_600, 0)?;
        let mut shortest: Option<Duration> = None;
        for _ in 0..120 {
            let next = self.next_after(t)?;
            let gap = (next - t).to_std().ok()?;
            shortest = Some(shortest.map_or(gap, |s| s.min(gap)));
            t = next;
        }
        shortest
    }

    /// The first slot after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.timezone.0);
        self.cron
            .cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// Which slot is due at `now` when the last one fired (or counting started) at
    /// `since`: after downtime, missed slots fire once in total, and only within the
    /// catch-up window.
    pub fn due(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Due {
        let mut latest = None;
        let mut count = 0usize;
        let mut cursor = since;
        while let Some(slot) = self.next_after(cursor).filter(|s| *s <= now) {
            latest = Some(slot);
            count += 1;
            cursor = slot;
            if count > 10_000 {
                // A seconds-level cron after long downtime: jump to the latest slot.
                let local = now.with_timezone(&self.timezone.0);
                latest = self
                    .cron
                    .cron
                    .find_previous_occurrence(&local, true)
                    .ok()
                    .map(|d| d.with_timezone(&Utc));
                break;
            }
        }
        match latest {
            None => Due::NotYet(self.next_after(since.max(now))),
            Some(slot)
                if (now - slot)
                    .to_std()
                    .is_ok_and(|late| late <= self.catch_up.0) =>
            {
                Due::Fire {
                    slot,
                    missed: count.saturating_sub(1),
                }
            }
            Some(slot) => Due::TooLate(slot),
        }
    }
}

/// The spec's `schedule:`: `default` (Monday 02:00 UTC) or a list of entries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schedule(pub Vec<ScheduleEntry>);

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<ScheduleEntry>),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "default" => Ok(Schedule(vec![ScheduleEntry::default_entry()])),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "schedule {w:?}: use `default` or a list of {{cron, timezone, catch_up}}"
            ))),
            Raw::List(entries) => Ok(Schedule(entries)),
        }
    }
}

#[cfg(test)]
mod tests;
