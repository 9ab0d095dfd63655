//! Analyses over captures. Each analysis turns the record stream into a model; renderers take the
//! model, never the raw stream.

pub mod allocs;
pub mod census;
mod error;
pub mod gcstats;
pub mod growth;
pub mod heap;
pub mod hunt;
pub mod profile;
pub mod pymalloc;
pub mod report;
pub mod timeline;
pub mod trend;
pub mod verdict;

pub use allocs::{
    AllocTable, DiffReport, LeakOptions, LeakPass, LeakReport, PeakReport, ProfileKind,
    TableOptions,
};
pub use error::AnalysisError;
pub use profile::{Location, Profile, ProfileStack, ProfileSubject};
pub use report::{ProcessVerdict, TimelineReport};
pub use timeline::{EndCause, EndInfo, Exit, Point, ProcessSeries, Timeline, TotalPoint, METRICS};
pub use trend::{classify, Verdict, VerdictKind, VerdictOptions, VerdictReason};
pub use verdict::{Finding, FindingKind, ProgramVerdict, State};
