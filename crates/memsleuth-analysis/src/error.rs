use thiserror::Error;

#[derive(Debug, Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Format(#[from] memsleuth_format::FormatError),
    #[error("capture holds no memory samples: nothing to analyse")]
    NoSamples,
    #[error(
        "capture holds no allocation events (it was recorded without allocation tracking, e.g. \
         by `memsleuth watch`); record allocations with `memsleuth run app.py`"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_for_allocations_is_a_command_that_works() {
        // `memsleuth run` runs the script in its own interpreter: `run -- python app.py` takes
        // `python` for the script and fails
        let said = AnalysisError::NoAllocations.to_string();
        assert!(
            said.ends_with("record allocations with `memsleuth run app.py`"),
            "{said}"
        );
        assert!(!said.contains("python app.py"), "{said}");
    }
}
