//! Renderers: each takes an analysis model and writes text, JSON, pictures or HTML.

pub mod allocs;
pub mod collapsed;
pub mod ending;
pub mod escape;
pub mod flamegraph;
pub mod gc;
pub mod growth;
pub mod html;
pub mod hunt;
pub mod instruments;
pub mod labels;
pub mod live;
pub mod objects;
pub mod plot;
pub mod pprof;
pub mod program_seen;
pub mod pymalloc;
pub mod retention;
pub mod summary;
pub mod trend_words;
pub mod units;
pub mod verdict;

pub use plot::RenderError;
