//! When a CronJob's schedule fires, in its time zone (`spec.timeZone`, else the cluster's,
//! i.e. the controller manager's local zone), as kube-controller-manager's
//! `mostRecentScheduleTime` and `nextScheduleTime` (pkg/controller/cronjob/utils.go) work it
//! out: the latest time the schedule fired since the last one acted on, how many were missed,
//! and the next one.

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// More missed start times than this are reported (`TooManyMissedTimes`).
pub(crate) const MAX_MISSED: usize = 100;

/// A parsed schedule in its time zone.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    cron: Cron,
    zone: TimeZone,
}

/// The standard five fields or a descriptor (`@hourly`, `@midnight`, …), as the controller's
/// cron parser reads them (robfig/cron's `ParseStandard`).
pub(crate) fn parse(schedule: &str, zone: TimeZone) -> Result<Schedule, String> {
    let trimmed = schedule.trim();
    let standard = if trimmed.eq_ignore_ascii_case("@midnight") {
        "@daily"
    } else {
        trimmed
    };
    let cron = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(standard)
        .map_err(|error| error.to_string())?;
    Ok(Schedule { cron, zone })
}

/// The time zone named by `spec.timeZone`, or the cluster's when none is named.
pub(crate) fn zone(name: Option<&str>) -> Result<TimeZone, String> {
    match name {
        None => Ok(TimeZone::system()),
        Some(name) => TimeZone::get(name).map_err(|error| error.to_string()),
    }
}

impl Schedule {
    /// The latest time in `(earliest, now]` the schedule fired, and how many times it fired
    /// in that window (counted up to [`MAX_MISSED`] + 1).
    pub(crate) fn most_recent(
        &self,
        earliest: Timestamp,
        now: Timestamp,
    ) -> (Option<Timestamp>, usize) {
        let latest = self
            .cron
            .find_previous_occurrence(&now.to_zoned(self.zone.clone()), true)
            .ok()
            .map(|zoned| zoned.timestamp())
            .filter(|latest| *latest > earliest);
        let Some(latest) = latest else {
            return (None, 0);
        };
        let missed = self
            .cron
            .iter_after(earliest.to_zoned(self.zone.clone()))
            .take_while(|zoned| zoned.timestamp() <= now)
            .take(MAX_MISSED + 1)
            .count();
        (Some(latest), missed)
    }

    /// The first time after `now` the schedule fires.
    pub(crate) fn next_after(&self, now: Timestamp) -> Option<Timestamp> {
        self.cron
            .find_next_occurrence(&now.to_zoned(self.zone.clone()), false)
            .ok()
            .map(|zoned| zoned.timestamp())
    }

    /// `t` as an RFC 3339 time in the schedule's zone (the scheduled-timestamp annotation).
    pub(crate) fn local_rfc3339(&self, t: Timestamp) -> String {
        let zoned = t.to_zoned(self.zone.clone());
        zoned
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
            .replace("+00:00", "Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn every_minute_fired_at_the_last_whole_minute() {
        let schedule = parse("*/1 * * * *", TimeZone::UTC).unwrap();
        let (latest, missed) =
            schedule.most_recent(at("2026-01-01T00:00:30Z"), at("2026-01-01T00:03:10Z"));
        assert_eq!(latest, Some(at("2026-01-01T00:03:00Z")));
        assert_eq!(missed, 3);
        assert_eq!(
            schedule.next_after(at("2026-01-01T00:03:10Z")),
            Some(at("2026-01-01T00:04:00Z"))
        );
        let (none, _) =
            schedule.most_recent(at("2026-01-01T00:03:00Z"), at("2026-01-01T00:03:59Z"));
        assert_eq!(none, None);
    }

    #[test]
    fn descriptors_and_zones_are_understood() {
        let paris = zone(Some("Europe/Paris")).unwrap();
        let daily = parse("@midnight", paris).unwrap();
        assert_eq!(
            daily.next_after(at("2026-01-01T12:00:00Z")),
            Some(at("2026-01-01T23:00:00Z"))
        );
        assert_eq!(
            daily.local_rfc3339(at("2026-01-01T23:00:00Z")),
            "2026-01-02T00:00:00+01:00"
        );
        assert!(parse("@hourly", TimeZone::UTC).is_ok());
        assert!(parse("not a schedule", TimeZone::UTC).is_err());
        assert!(zone(Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn missed_times_are_counted_up_to_the_limit() {
        let schedule = parse("* * * * *", TimeZone::UTC).unwrap();
        let (_, missed) =
            schedule.most_recent(at("2026-01-01T00:00:00Z"), at("2026-01-02T00:00:00Z"));
        assert_eq!(missed, MAX_MISSED + 1);
    }
}
