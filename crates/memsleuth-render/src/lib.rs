//! Renderers: each takes an analysis model and writes text, JSON, pictures or HTML.

pub mod units;
