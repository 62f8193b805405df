//! Durations as Go prints a `time.Duration` (`1.234567s`, `512.3ms`), the form of the
//! kubelet's `Pulled` event ("Successfully pulled image … in 1.2s").

use std::time::Duration;

/// `duration` as Go's `Duration.String()` writes it, to the millisecond (the kubelet's events
/// carry nanoseconds; nobody reads past milliseconds).
pub fn go_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return format!("{}µs", duration.as_micros());
    }
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let seconds = duration.as_secs();
    let fraction = trim_zeros(format!("{:03}", millis % 1000));
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let seconds = if fraction.is_empty() {
        format!("{seconds}s")
    } else {
        format!("{seconds}.{fraction}s")
    };
    match (hours, minutes) {
        (0, 0) => seconds,
        (0, minutes) => format!("{minutes}m{seconds}"),
        (hours, minutes) => format!("{hours}h{minutes}m{seconds}"),
    }
}

fn trim_zeros(digits: String) -> String {
    digits.trim_end_matches('0').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_go_does() {
        assert_eq!(go_duration(Duration::from_micros(250)), "250µs");
        assert_eq!(go_duration(Duration::from_millis(512)), "512ms");
        assert_eq!(go_duration(Duration::from_millis(1200)), "1.2s");
        assert_eq!(go_duration(Duration::from_secs(2)), "2s");
        assert_eq!(go_duration(Duration::from_millis(61_050)), "1m1.05s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }
}
