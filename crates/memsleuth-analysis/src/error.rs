use thiserror::Error;

#[derive(Debug, Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Format(#[from] memsleuth_format::FormatError),
    #[error("capture holds no memory samples: nothing to analyse")]
    NoSamples,
}
