use thiserror::Error;

#[derive(Debug, Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Format(#[from] memsleuth_format::FormatError),
    #[error("capture holds no memory samples: nothing to analyse")]
    NoSamples,
    #[error(
        "capture holds no allocation events (it was recorded without allocation tracking, e.g. \
         by `memsleuth watch`); record allocations with `memsleuth run -- python app.py`"
    )]
    NoAllocations,
    #[error(
        "capture holds no object census (it was recorded without the `objects` instrument); \
         `memsleuth run` takes censuses, as does `memsleuth.Tracker(path, census=1.0)` from Python"
    )]
    NoCensus,
    /// A census asked for by number or time that the capture does not have.
    #[error("{0}")]
    CensusChoice(String),
}
