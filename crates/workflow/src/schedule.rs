//! When a workflow runs: `--schedule Nd` as ACR reads it.
//!
//! Owns [`Schedule`]: parsing `Nd` (1 ≤ N ≤ 30), the cron expression ACR
//! stores (`M H */N * *`), the days a month's runs fall on and the next run
//! after an instant. Pure: callers pass the workflow's creation time and
//! "now"; the clock is never read.
//!
//! The rule is cron's: runs fall on days 1, 1+N, 1+2N, … of every month
//! (as far as the month reaches), at the hour and minute (UTC) the workflow
//! was created, seconds dropped; the cycle restarts on the 1st of every
//! month, so a gap can be shorter than N days across a month's end. 7d:
//! the 1st, 8th, 15th, 22nd, 29th; 14d: the 1st, 15th, 29th; 30d: the 1st
//! and the 31st (where there is one); 1d: daily.
//!
//! Sources (Azure/azure-cli-extensions `src/acrcssc/azext_acrcssc/`):
//! `helper/_utility.py` (`convert_timespan_to_cron`: the pattern `(\d+)(d)$`
//! and the cron expression), `helper/_constants.py`
//! (`ERROR_MESSAGE_INVALID_TIMESPAN_FORMAT`,
//! `ERROR_MESSAGE_INVALID_TIMESPAN_VALUE`, `RECOMMENDATION_SCHEDULE`, used
//! verbatim with the given text appended), `helper/_taskoperations.py`
//! (`get_next_date`: croniter's next occurrence strictly after now). ACR's
//! pattern, run by Python's `re`, also takes non-ASCII digits and a final
//! newline; here only ASCII digits followed by `d` are accepted.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// The shortest schedule: daily.
pub const MIN_DAYS: u32 = 1;

/// The longest schedule: the 1st and (where there is one) the 31st.
pub const MAX_DAYS: u32 = 30;

const RECOMMENDATION: &str = "Schedule must be in the format of <number><unit> where unit is d for days. Example: 1d. Max value for d is 30d.";

/// Every N days of each month, restarting on the 1st. Displays, parses and
/// serializes as `Nd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Schedule {
    every_days: u32,
}

/// A `--schedule` that is not `Nd` with 1 ≤ N ≤ 30.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Not digits followed by `d`.
    #[error("Schedule format is invalid. {} Given: {given:?}.", RECOMMENDATION)]
    Format {
        /// The schedule as given.
        given: String,
    },
    /// N outside 1 … 30.
    #[error("Schedule value is invalid. {} Given: {given:?}.", RECOMMENDATION)]
    Value {
        /// The schedule as given.
        given: String,
    },
}

impl Schedule {
    /// Reads `Nd`: ASCII digits (leading zeros allowed, as ACR) then `d`.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let digits = text
            .strip_suffix('d')
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| ScheduleError::Format {
                given: text.to_string(),
            })?;
        match digits.parse::<u32>() {
            Ok(every_days) if (MIN_DAYS..=MAX_DAYS).contains(&every_days) => {
                Ok(Schedule { every_days })
            }
            _ => Err(ScheduleError::Value {
                given: text.to_string(),
            }),
        }
    }

    /// N.
    pub fn every_days(self) -> u32 {
        self.every_days
    }

    /// The cron expression ACR gives its trigger task: `M H */N * *`, at the
    /// minute and hour (UTC) of `created_at`.
    pub fn cron(self, created_at: DateTime<Utc>) -> String {
        format!(
            "{} {} */{} * *",
            created_at.minute(),
            created_at.hour(),
            self.every_days
        )
    }

    /// The days of `month` (1 … 12) of `year` that have a run: 1, 1+N, …;
    /// empty for a month that does not exist.
    pub fn days_of_month(self, year: i32, month: u32) -> Vec<u32> {
        (1..=31)
            .step_by(self.every_days as usize)
            .filter(|&day| NaiveDate::from_ymd_opt(year, month, day).is_some())
            .collect()
    }

    /// Every run of `month` of `year`, at the time of day of `created_at`.
    pub fn occurrences_in_month(
        self,
        created_at: DateTime<Utc>,
        year: i32,
        month: u32,
    ) -> Vec<DateTime<Utc>> {
        self.days_of_month(year, month)
            .into_iter()
            .filter_map(|day| {
                Utc.with_ymd_and_hms(year, month, day, created_at.hour(), created_at.minute(), 0)
                    .single()
            })
            .collect()
    }

    /// The first run strictly after `now` (a run at exactly `now` is not
    /// next), for a workflow created at `created_at`. It is never more than
    /// a month away: the 1st of the next month always has a run.
    ///
    /// # Panics
    /// Only when no later month is representable (past the year 262 000).
    pub fn next_after(self, created_at: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        let this_month = now.date_naive().with_day(1).expect("every month has a 1st");
        let next_month = this_month
            .checked_add_months(Months::new(1))
            .expect("a month after now is representable");
        [this_month, next_month]
            .into_iter()
            .flat_map(|month| self.occurrences_in_month(created_at, month.year(), month.month()))
            .find(|&run| run > now)
            .expect("the 1st of the next month has a run")
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}d", self.every_days)
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Schedule, ScheduleError> {
        Schedule::parse(text)
    }
}

impl TryFrom<String> for Schedule {
    type Error = ScheduleError;

    fn try_from(text: String) -> Result<Schedule, ScheduleError> {
        Schedule::parse(&text)
    }
}

impl From<Schedule> for String {
    fn from(schedule: Schedule) -> String {
        schedule.to_string()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn every(days: u32) -> Schedule {
        Schedule::parse(&format!("{days}d")).unwrap()
    }

    /// Does cron's day-of-month field `*/n` select `date`?
    fn cron_selects_day(n: u32, date: NaiveDate) -> bool {
        (date.day() - 1).is_multiple_of(n)
    }

    /// The next run by walking day by day from `now`'s date.
    fn next_by_day_walk(n: u32, created_at: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        let mut date = now.date_naive();
        loop {
            if cron_selects_day(n, date) {
                let run = date
                    .and_hms_opt(created_at.hour(), created_at.minute(), 0)
                    .unwrap()
                    .and_utc();
                if run > now {
                    return run;
                }
            }
            date = date.succ_opt().unwrap();
        }
    }

    /// The next run by walking minute by minute, matching all cron fields.
    fn next_by_minute_walk(n: u32, created_at: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        let mut minute = now.with_second(0).unwrap().with_nanosecond(0).unwrap();
        loop {
            minute += Duration::minutes(1);
            if minute.minute() == created_at.minute()
                && minute.hour() == created_at.hour()
                && cron_selects_day(n, minute.date_naive())
            {
                return minute;
            }
        }
    }

    fn month_days_by_walk(n: u32, year: i32, month: u32) -> Vec<u32> {
        let mut date = NaiveDate::from_ymd_opt(year, month, 1).unwrap();
        let mut days = Vec::new();
        while date.month() == month {
            if cron_selects_day(n, date) {
                days.push(date.day());
            }
            date = date.succ_opt().unwrap();
        }
        days
    }

    /// Instants around every month's end and start, and around the time of
    /// day of the creation, in a non-leap year, a leap year and a
    /// non-leap century year.
    fn probe_instants(created_at: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut instants = Vec::new();
        for year in [2027, 2028, 2100] {
            for month in 1..=12 {
                let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap();
                let days = (-3..=2).map(|offset| first + Duration::days(offset));
                for day in days {
                    let run = day
                        .and_hms_opt(created_at.hour(), created_at.minute(), 0)
                        .unwrap()
                        .and_utc();
                    instants.extend([
                        day.and_hms_opt(0, 0, 0).unwrap().and_utc(),
                        run - Duration::seconds(1),
                        run,
                        run + Duration::seconds(59),
                        day.and_hms_opt(23, 59, 59).unwrap().and_utc(),
                    ]);
                }
            }
        }
        instants
    }

    #[test]
    fn parse_accepts_1d_to_30d() {
        for n in MIN_DAYS..=MAX_DAYS {
            let schedule = Schedule::parse(&format!("{n}d")).unwrap();
            assert_eq!(schedule.every_days(), n);
            assert_eq!(schedule.to_string(), format!("{n}d"));
        }
        assert_eq!(Schedule::parse("07d").unwrap().every_days(), 7);
        assert_eq!("14d".parse::<Schedule>().unwrap().every_days(), 14);
    }

    #[test]
    fn parse_refuses_other_values_with_acrs_messages() {
        for given in ["0d", "31d", "00d", "99999999999999999999d"] {
            let error = Schedule::parse(given).unwrap_err();
            assert_eq!(
                error,
                ScheduleError::Value {
                    given: given.into()
                }
            );
            assert_eq!(
                error.to_string(),
                format!(
                    "Schedule value is invalid. Schedule must be in the format of <number><unit> where unit is d for days. Example: 1d. Max value for d is 30d. Given: \"{given}\"."
                )
            );
        }
        for given in [
            "", "d", "7", "7h", "7D", " 7d", "7d ", "7d\n", "+7d", "-1d", "1.5d", "٣d", "7dd",
        ] {
            let error = Schedule::parse(given).unwrap_err();
            assert_eq!(
                error,
                ScheduleError::Format {
                    given: given.into()
                },
                "{given:?}"
            );
            assert!(error.to_string().starts_with(
                "Schedule format is invalid. Schedule must be in the format of <number><unit> where unit is d for days. Example: 1d. Max value for d is 30d."
            ));
        }
    }

    #[test]
    fn serializes_as_its_text() {
        let json = serde_json::to_string(&every(7)).unwrap();
        assert_eq!(json, "\"7d\"");
        assert_eq!(serde_json::from_str::<Schedule>(&json).unwrap(), every(7));
        assert!(serde_json::from_str::<Schedule>("\"31d\"").is_err());
        assert!(serde_json::from_str::<Schedule>("7").is_err());
    }

    #[test]
    fn cron_expression_uses_the_creation_time_of_day() {
        let created_at = at("2026-03-14T09:26:53Z");
        assert_eq!(every(7).cron(created_at), "26 9 */7 * *");
        assert_eq!(every(1).cron(at("2026-01-01T00:00:00Z")), "0 0 */1 * *");
        assert_eq!(every(30).cron(at("2026-01-01T23:59:59Z")), "59 23 */30 * *");
    }

    #[test]
    fn reference_examples() {
        // January: 31 days.
        assert_eq!(every(7).days_of_month(2026, 1), [1, 8, 15, 22, 29]);
        assert_eq!(every(14).days_of_month(2026, 1), [1, 15, 29]);
        assert_eq!(every(30).days_of_month(2026, 1), [1, 31]);
        assert_eq!(
            every(1).days_of_month(2026, 1),
            (1..=31).collect::<Vec<_>>()
        );
        // February, non-leap and leap; a 30-day month.
        assert_eq!(every(7).days_of_month(2027, 2), [1, 8, 15, 22]);
        assert_eq!(every(7).days_of_month(2028, 2), [1, 8, 15, 22, 29]);
        assert_eq!(every(14).days_of_month(2027, 2), [1, 15]);
        assert_eq!(every(30).days_of_month(2028, 2), [1]);
        assert_eq!(every(30).days_of_month(2026, 4), [1]);
        assert_eq!(every(1).days_of_month(2027, 2).len(), 28);
        assert_eq!(every(1).days_of_month(2028, 2).len(), 29);
        assert!(every(7).days_of_month(2026, 13).is_empty());
        assert!(every(7).days_of_month(2026, 0).is_empty());
    }

    #[test]
    fn occurrences_carry_the_creation_time_of_day() {
        let created_at = at("2026-03-14T09:26:53Z");
        assert_eq!(
            every(14).occurrences_in_month(created_at, 2027, 2),
            [at("2027-02-01T09:26:00Z"), at("2027-02-15T09:26:00Z")]
        );
    }

    #[test]
    fn next_after_hand_checked() {
        let created_at = at("2026-01-10T08:30:00Z");
        let next = |days, now| every(days).next_after(created_at, at(now));
        assert_eq!(next(7, "2026-01-10T08:30:00Z"), at("2026-01-15T08:30:00Z"));
        assert_eq!(next(7, "2026-01-29T08:29:59Z"), at("2026-01-29T08:30:00Z"));
        assert_eq!(next(7, "2026-01-29T08:30:00Z"), at("2026-02-01T08:30:00Z"));
        assert_eq!(next(30, "2026-01-02T00:00:00Z"), at("2026-01-31T08:30:00Z"));
        assert_eq!(next(30, "2026-02-02T00:00:00Z"), at("2026-03-01T08:30:00Z"));
        assert_eq!(next(30, "2026-12-31T08:30:00Z"), at("2027-01-01T08:30:00Z"));
        assert_eq!(next(1, "2028-02-28T09:00:00Z"), at("2028-02-29T08:30:00Z"));
        assert_eq!(next(1, "2027-02-28T09:00:00Z"), at("2027-03-01T08:30:00Z"));
        assert_eq!(next(14, "2028-02-15T08:31:00Z"), at("2028-02-29T08:30:00Z"));
        assert_eq!(next(14, "2027-02-15T08:31:00Z"), at("2027-03-01T08:30:00Z"));
    }

    #[test]
    fn days_of_month_match_the_cron_rule_for_every_schedule() {
        for n in MIN_DAYS..=MAX_DAYS {
            for year in [2000, 2027, 2028, 2100] {
                for month in 1..=12 {
                    assert_eq!(
                        every(n).days_of_month(year, month),
                        month_days_by_walk(n, year, month),
                        "{n}d in {year}-{month:02}"
                    );
                }
            }
        }
    }

    #[test]
    fn next_after_matches_a_day_walk_for_every_schedule() {
        for created_at in [
            at("2026-03-14T09:26:53Z"),
            at("2026-05-01T00:00:00Z"),
            at("2026-05-31T23:59:00Z"),
        ] {
            let instants = probe_instants(created_at);
            for n in MIN_DAYS..=MAX_DAYS {
                for &now in &instants {
                    let next = every(n).next_after(created_at, now);
                    assert_eq!(
                        next,
                        next_by_day_walk(n, created_at, now),
                        "{n}d created {created_at} now {now}"
                    );
                    assert!(next > now && next - now <= Duration::days(31));
                    assert_eq!(next.second(), 0);
                }
            }
        }
    }

    #[test]
    fn next_after_matches_a_minute_walk() {
        let created_at = at("2026-03-14T09:26:53Z");
        let instants = [
            "2027-01-31T09:26:00Z",
            "2027-02-28T23:59:59Z",
            "2028-02-28T09:27:00Z",
            "2028-02-29T09:25:59Z",
            "2028-04-30T12:00:00Z",
            "2028-12-31T09:26:30Z",
            "2100-02-28T00:00:00Z",
        ];
        for n in [1, 2, 7, 14, 15, 28, 29, 30] {
            for now in instants {
                let now = at(now);
                assert_eq!(
                    every(n).next_after(created_at, now),
                    next_by_minute_walk(n, created_at, now),
                    "{n}d now {now}"
                );
            }
        }
    }
}
