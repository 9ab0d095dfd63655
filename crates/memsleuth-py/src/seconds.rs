//! Durations given in seconds from Python, checked before they reach `Duration` (which panics
//! on values it cannot hold, and a panic would surface as an exception `except Exception` does
//! not catch).

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::PyResult;

/// The longest interval accepted: a year, the same bound as the command line's. Longer makes no
/// sense for sampling and keeps every deadline computed from it far from overflow.
const MAX_SECONDS: f64 = memsleuth_cli::MAX_SECONDS as f64;

/// `value` seconds as a duration when it is finite and within `[min, MAX_SECONDS]`.
pub fn checked(name: &str, value: f64, min: f64) -> PyResult<Duration> {
    if value.is_finite() && (min..=MAX_SECONDS).contains(&value) {
        return Ok(Duration::from_secs_f64(value));
    }
    Err(PyValueError::new_err(format!(
        "{name} must be between {min} and {MAX_SECONDS:.0} seconds (a year), got {value:?}"
    )))
}

/// Like [`checked`], with 0 accepted as "off".
pub fn checked_or_off(name: &str, value: f64, min: f64) -> PyResult<Duration> {
    if value == 0.0 {
        return Ok(Duration::ZERO);
    }
    checked(name, value, min)
}
