//! Resource quantities as Kubernetes writes them (`"500m"`, `"1Gi"`, `"1.5"`, `"1e3"`), read
//! as exact fractions, as apimachinery's `resource.Quantity` holds them: so that `"1"` and
//! `"1000m"` compare equal (what QoS classes need) and sizes round up (what volume capacity
//! needs).

/// An exact non-negative value: `numerator / denominator`, kept in lowest terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    numerator: u128,
    denominator: u128,
}

impl Quantity {
    pub const ZERO: Quantity = Quantity {
        numerator: 0,
        denominator: 1,
    };

    /// Parses a quantity; `None` if it is not one (or too large to hold).
    pub fn parse(text: &str) -> Option<Quantity> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(split);
        let number = number.trim_start_matches('+');
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let digits = format!("{whole}{fraction}");
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut numerator: u128 = digits.parse().ok()?;
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
            "u" => denominator = denominator.checked_mul(1_000_000)?,
            "n" => denominator = denominator.checked_mul(1_000_000_000)?,
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
        let divisor = gcd(numerator, denominator);
        Some(Quantity {
            numerator: numerator / divisor,
            denominator: denominator / divisor,
        })
    }

    /// The value rounded up to a whole number (bytes of a size).
    pub fn ceil(self) -> u128 {
        self.numerator.div_ceil(self.denominator)
    }

    /// The value in thousandths rounded up (apimachinery's `MilliValue`: CPU in millicores).
    pub fn milli_ceil(self) -> u128 {
        self.numerator
            .saturating_mul(1000)
            .div_ceil(self.denominator)
    }

    pub fn is_zero(self) -> bool {
        self.numerator == 0
    }

    /// The exact sum; `None` if it is too large to hold.
    pub fn checked_add(self, other: Quantity) -> Option<Quantity> {
        let numerator = self
            .numerator
            .checked_mul(other.denominator)?
            .checked_add(other.numerator.checked_mul(self.denominator)?)?;
        let denominator = self.denominator.checked_mul(other.denominator)?;
        let divisor = gcd(numerator, denominator);
        Some(Quantity {
            numerator: numerator / divisor,
            denominator: denominator / divisor,
        })
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ceil(text: &str) -> Option<u128> {
        Quantity::parse(text).map(Quantity::ceil)
    }

    #[test]
    fn suffixes_round_up_to_whole_units() {
        assert_eq!(ceil("1Gi"), Some(1 << 30));
        assert_eq!(ceil("512Mi"), Some(512 << 20));
        assert_eq!(ceil("1G"), Some(1_000_000_000));
        assert_eq!(ceil("2k"), Some(2000));
        assert_eq!(ceil("100"), Some(100));
        assert_eq!(ceil("1.5Gi"), Some(3 << 29));
        assert_eq!(ceil("1e3"), Some(1000));
        assert_eq!(ceil("1500m"), Some(2));
        assert_eq!(ceil("Gi"), None);
        assert_eq!(ceil("1Xi"), None);
        assert_eq!(ceil("-1Gi"), None);
    }

    #[test]
    fn millis_round_up() {
        let milli = |text: &str| Quantity::parse(text).map(Quantity::milli_ceil);
        assert_eq!(milli("500m"), Some(500));
        assert_eq!(milli("1.5"), Some(1500));
        assert_eq!(milli("2"), Some(2000));
        assert_eq!(milli("100u"), Some(1));
        assert_eq!(milli("0"), Some(0));
    }

    #[test]
    fn equal_values_in_other_units_are_equal() {
        assert_eq!(Quantity::parse("1"), Quantity::parse("1000m"));
        assert_eq!(Quantity::parse("0.5"), Quantity::parse("500m"));
        assert_eq!(Quantity::parse("64Mi"), Quantity::parse("67108864"));
        assert_eq!(Quantity::parse("1k"), Quantity::parse("1e3"));
        assert_ne!(Quantity::parse("1Ki"), Quantity::parse("1k"));
        assert!(Quantity::parse("0m").unwrap().is_zero());
        let half = Quantity::parse("500m").unwrap();
        assert_eq!(half.checked_add(half), Quantity::parse("1"));
    }
}
