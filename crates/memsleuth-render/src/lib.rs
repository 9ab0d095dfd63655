//! Renderers: each takes an analysis model and writes text, JSON, pictures or HTML.

pub mod units;
pub mod summary;
pub mod html;
pub mod plot;

pub use plot::RenderError;
