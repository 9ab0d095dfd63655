use thiserror::Error;

#[derive(Debug, Error)]
pub enum RecorderError {
    #[error(transparent)]
    Platform(#[from] memsleuth_platform::PlatformError),
    #[error("cannot write the capture: {0}")]
    Format(#[from] memsleuth_format::FormatError),
    #[error("the sampler thread stopped unexpectedly")]
    ThreadLost,
}
