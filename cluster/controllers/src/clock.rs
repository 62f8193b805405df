//! The time the controllers that schedule by the clock read (the CronJob controller).
//!
//! kube-controller-manager reads its machine's clock; a [`Clock`] is that clock, optionally
//! running ahead of the wall clock by a fixed amount, as the clock of a controller manager on
//! a machine whose time is ahead would. A cluster started with a clock ahead by a minute or
//! more finds a `*/1 * * * *` CronJob's first run already due when the CronJob is created,
//! which is how a tutorial or a test sees a CronJob fire without waiting for the minute.

use jiff::{SignedDuration, Timestamp};

/// The controllers' clock: the wall clock plus a fixed offset (zero by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    ahead: SignedDuration,
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock running `ahead` of the wall clock.
    pub fn ahead_by(ahead: SignedDuration) -> Clock {
        Clock { ahead }
    }

    /// The time now, as this clock reads it.
    pub fn now(&self) -> Timestamp {
        let wall = Timestamp::now();
        wall.checked_add(self.ahead).unwrap_or(wall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_ahead_reads_later_than_the_wall_clock() {
        let before = Timestamp::now();
        let ahead = Clock::ahead_by(SignedDuration::from_mins(5)).now();
        assert!(ahead >= before + SignedDuration::from_mins(5));
        assert!(Clock::system().now() < ahead);
    }
}
