//! Storage sizes from resource quantities ("1Gi", "500M", "1.5e3"), to compare a volume's
//! capacity with a claim's request.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The quantity in bytes (rounded up), or `None` if it is not a valid quantity.
pub(crate) fn bytes(quantity: &Quantity) -> Option<u128> {
    let text = quantity.0.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let (whole, fraction) = number
        .trim_start_matches('+')
        .split_once('.')
        .unwrap_or((number.trim_start_matches('+'), ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mantissa: u128 = digits.parse().ok()?;
    // value = mantissa * 10^-fraction.len() * multiplier
    let mut numerator = mantissa;
    let mut denominator: u128 = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    match suffix {
        "" => {}
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let power = "KMGTPE".find(&suffix[..1])? + 1;
            numerator = numerator.checked_mul(1u128 << (10 * power))?;
        }
        "k" | "M" | "G" | "T" | "P" | "E" => {
            let power = "kMGTPE".find(suffix)? + 1;
            numerator =
                numerator.checked_mul(10u128.checked_pow(3 * u32::try_from(power).ok()?)?)?;
        }
        "m" => denominator = denominator.checked_mul(1000)?,
        exponent if exponent.starts_with(['e', 'E']) => {
            let power: i32 = exponent[1..].parse().ok()?;
            let scale = 10u128.checked_pow(power.unsigned_abs())?;
            if power >= 0 {
                numerator = numerator.checked_mul(scale)?;
            } else {
                denominator = denominator.checked_mul(scale)?;
            }
        }
        _ => return None,
    }
    Some(numerator.div_ceil(denominator))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(text: &str) -> Option<u128> {
        bytes(&Quantity(text.to_string()))
    }

    #[test]
    fn suffixes() {
        assert_eq!(b("1Gi"), Some(1 << 30));
        assert_eq!(b("512Mi"), Some(512 << 20));
        assert_eq!(b("1G"), Some(1_000_000_000));
        assert_eq!(b("2k"), Some(2000));
        assert_eq!(b("100"), Some(100));
        assert_eq!(b("1.5Gi"), Some(3 << 29));
        assert_eq!(b("1e3"), Some(1000));
        assert_eq!(b("1500m"), Some(2));
        assert_eq!(b("Gi"), None);
        assert_eq!(b("1Xi"), None);
        assert_eq!(b("-1Gi"), None);
    }
}
