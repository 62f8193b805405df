//! Go's `time.ParseDuration`, with its error messages: kube-apiserver parses `?timeout=` with
//! it and returns its error text in the 400 for a malformed value.

/// Nanoseconds per unit, as Go's `unitMap` (both micro signs included).
const UNITS: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

const LIMIT: u64 = 1 << 63;

/// Parses `300ms`, `-1.5h`, `2h45m`… into signed nanoseconds, or Go's error message.
pub fn parse(text: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", quote(text));
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let mut value: u64 = 0;
        for digit in rest[..digits].bytes() {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                .filter(|v| *v <= LIMIT)
                .ok_or_else(invalid)?;
        }
        rest = &rest[digits..];
        let (fraction, scale, fraction_digits) = match rest.strip_prefix('.') {
            Some(after) => {
                let (fraction, scale, used) = leading_fraction(after);
                rest = &after[used..];
                (fraction, scale, used)
            }
            None => (0, 1.0, 0),
        };
        if digits == 0 && fraction_digits == 0 {
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", quote(text)));
        }
        let unit_name = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some(&(_, unit)) = UNITS.iter().find(|(name, _)| *name == unit_name) else {
            return Err(format!(
                "time: unknown unit {} in duration {}",
                quote(unit_name),
                quote(text)
            ));
        };
        if value > LIMIT / unit {
            return Err(invalid());
        }
        value *= unit;
        if fraction > 0 {
            // Go computes the fraction in float64, accurate to the nanosecond for hours.
            value += (fraction as f64 * (unit as f64 / scale)) as u64;
            if value > LIMIT {
                return Err(invalid());
            }
        }
        total = total
            .checked_add(value)
            .filter(|t| *t <= LIMIT)
            .ok_or_else(invalid)?;
    }
    match (negative, i64::try_from(total)) {
        (false, Ok(positive)) => Ok(positive),
        (true, Ok(positive)) => Ok(-positive),
        (true, Err(_)) => Ok(i64::MIN),
        (false, Err(_)) => Err(invalid()),
    }
}

/// Go's `leadingFraction`: the digits as an integer and their scale, ignoring digits that
/// would overflow; and how many bytes were digits.
fn leading_fraction(text: &str) -> (u64, f64, usize) {
    let (mut value, mut scale, mut overflow) = (0u64, 1.0f64, false);
    let used = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    for digit in text[..used].bytes() {
        if overflow {
            continue;
        }
        match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit - b'0')))
            .filter(|v| *v <= LIMIT)
        {
            Some(next) => {
                value = next;
                scale *= 10.0;
            }
            None => overflow = true,
        }
    }
    (value, scale, used)
}

/// Go's `time.quote`: double quotes, `\"` and `\\` escaped, bytes of non-ASCII or control
/// characters as `\xNN`.
fn quote(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        if c.is_ascii() && c >= ' ' {
            if c == '"' || c == '\\' {
                quoted.push('\\');
            }
            quoted.push(c);
        } else {
            let mut bytes = [0u8; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                quoted.push_str(&format!("\\x{byte:02x}"));
            }
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_what_go_parses() {
        assert_eq!(parse("1s"), Ok(1_000_000_000));
        assert_eq!(parse("300ms"), Ok(300_000_000));
        assert_eq!(parse("-1.5h"), Ok(-5_400_000_000_000));
        assert_eq!(parse("2h45m"), Ok(9_900_000_000_000));
        assert_eq!(parse("1.5\u{b5}s"), Ok(1_500));
        assert_eq!(parse(".5s"), Ok(500_000_000));
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("+0"), Ok(0));
    }

    #[test]
    fn errors_are_go_s() {
        assert_eq!(parse("abc"), Err(r#"time: invalid duration "abc""#.into()));
        assert_eq!(parse(""), Err(r#"time: invalid duration """#.into()));
        assert_eq!(parse(".s"), Err(r#"time: invalid duration ".s""#.into()));
        assert_eq!(
            parse("10"),
            Err(r#"time: missing unit in duration "10""#.into())
        );
        assert_eq!(
            parse("3x"),
            Err(r#"time: unknown unit "x" in duration "3x""#.into())
        );
        assert_eq!(
            parse("9999999999999999999s"),
            Err(r#"time: invalid duration "9999999999999999999s""#.into())
        );
        assert_eq!(
            parse("1é"),
            Err(r#"time: unknown unit "\xc3\xa9" in duration "1\xc3\xa9""#.into())
        );
    }
}
