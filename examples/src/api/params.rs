//! The services' typed params: each read from a request's `params` object, or refused
//! with a `-32602` error that names it.

use easyraft_client::codes::BAD_REQUEST;
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned};

/// A `-32602` error: the params make no sense for the method.
pub fn bad(msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(BAD_REQUEST, msg, None::<()>)
}

/// The string param `name`, or a `-32602` error naming it.
pub fn str_param(p: &serde_json::Value, name: &str) -> Result<String, ErrorObjectOwned> {
    p.get(name)
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| bad(format!("`{name}` must be a string")))
}

/// The optional string param `name` (absent or `null` is `None`), or a `-32602` error.
pub fn opt_str_param(p: &serde_json::Value, name: &str) -> Result<Option<String>, ErrorObjectOwned> {
    match p.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("`{name}` must be a string or null"))),
    }
}

/// The optional boolean param `name` (absent or `null` is `false`), or a `-32602` error.
pub fn flag_param(p: &serde_json::Value, name: &str) -> Result<bool, ErrorObjectOwned> {
    match p.get(name) {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(format!("`{name}` must be a boolean"))),
    }
}

/// The optional integer param `name` in `1..=max` (absent or `null` is `default`), or
/// a `-32602` error naming it and the range: `-1`, `0`, `2^64` or `1.5` are refused,
/// never clamped.
pub fn count_param(p: &serde_json::Value, name: &str, default: u64, max: u64) -> Result<u64, ErrorObjectOwned> {
    match p.get(name) {
        None | Some(serde_json::Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| bad(format!("`{name}` must be an integer from 1 to {max}"))),
    }
}

/// The param `name` of `p`, typed; an invalid-params error naming it otherwise.
pub fn field<T: serde::de::DeserializeOwned>(p: &serde_json::Value, name: &str) -> Result<T, ErrorObjectOwned> {
    p.get(name)
        .cloned()
        .ok_or_else(|| bad(format!("`{name}` is missing")))
        .and_then(|v| serde_json::from_value(v).map_err(|e| bad(format!("`{name}`: {e}"))))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn params_are_typed_or_refused_with_their_name() {
        let p = json!({"k": "v", "n": null, "t": true, "five": 5});
        assert_eq!(str_param(&p, "k").unwrap(), "v");
        assert_eq!(opt_str_param(&p, "n").unwrap(), None);
        assert_eq!(opt_str_param(&p, "absent").unwrap(), None);
        assert!(flag_param(&p, "t").unwrap());
        assert!(!flag_param(&p, "absent").unwrap());
        assert_eq!(count_param(&p, "five", 9, 10).unwrap(), 5);
        assert_eq!(count_param(&p, "absent", 9, 10).unwrap(), 9);
        let bad_counts =
            json!({"neg": -1, "zero": 0, "huge": 18446744073709551616.0, "big": 11, "half": 1.5, "s": "3"});
        for name in ["neg", "zero", "huge", "big", "half", "s"] {
            let err = count_param(&bad_counts, name, 9, 10).unwrap_err();
            assert_eq!(err.code(), BAD_REQUEST, "{name}");
            assert!(err.message().contains(&format!("`{name}`")), "{}", err.message());
        }
        for err in [
            str_param(&p, "five").unwrap_err(),
            str_param(&p, "absent").unwrap_err(),
            opt_str_param(&p, "five").unwrap_err(),
            flag_param(&p, "k").unwrap_err(),
        ] {
            assert_eq!(err.code(), BAD_REQUEST);
            assert!(err.message().contains('`'), "{}", err.message());
        }
    }
}
