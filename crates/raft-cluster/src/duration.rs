//! Durations as operators write them: `"300ms"`, `"5s"`, `"2m"`, `"1h"`.

use std::time::Duration;

/// Parses `"300ms"`, `"1.5s"`, `"2m"`, `"1h"` (a number and a unit: `ms`, `s`, `m`,
/// `h`). The error says what was expected.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like \"300ms\", \"5s\", \"2m\" or \"1h\""))?;
    let millis = match unit.trim() {
        "ms" => value,
        "s" => value * 1e3,
        "m" => value * 60e3,
        "h" => value * 3600e3,
        other => {
            return Err(format!(
                "{s:?}: unknown unit {other:?} (expected ms, s, m or h, as in \"300ms\")"
            ))
        }
    };
    if !(0.0..=1e15).contains(&millis) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_micros((millis * 1e3).round() as u64))
}

/// Formats a duration the way [`parse`] reads it, in the largest exact unit.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if d.subsec_micros() % 1000 != 0 {
        format!("{}ms", d.as_secs_f64() * 1e3)
    } else if ms % 3_600_000 == 0 && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 && ms > 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// `#[serde(with = "raft_cluster::duration::serde")]` for a `Duration` field.
pub mod serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `"300ms"`.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }

    /// Reads `"300ms"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_print_in_operator_units() {
        for (s, d) in [
            ("300ms", Duration::from_millis(300)),
            ("5s", Duration::from_secs(5)),
            ("1.5s", Duration::from_millis(1500)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
        ] {
            assert_eq!(parse(s), Ok(d), "{s}");
            assert_eq!(parse(&format(d)), Ok(d), "{s}");
        }
        for bad in ["", "5", "5x", "ms", "-1s"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
