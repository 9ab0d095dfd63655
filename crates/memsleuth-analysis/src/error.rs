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
}
