//! Why the suite could not run ([`SuiteError`]).

/// Why the suite could not run.
#[derive(Debug)]
pub enum SuiteError {
    /// A prerequisite is missing and cannot be installed by this process.
    Missing(String),
    /// An installation or a tool failed.
    Setup(String),
}

impl std::fmt::Display for SuiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SuiteError::Missing(m) | SuiteError::Setup(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for SuiteError {}
