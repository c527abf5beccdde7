//! Error types of the library.
//!
//! Every error names the file it concerns and, where it applies, the place in it (CSV line and
//! column, MIDI track, time), so the command line can print it as one line. Errors caused by the
//! user's input (a missing or malformed file, a bad parameter) are told apart from failures of the
//! machine (a disk that cannot be written) by [`Error::is_input_error`]: the CLI exits with code 2
//! for the former.

use std::path::{Path, PathBuf};

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in scorenmf.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An output file could not be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An audio file is not audio, is truncated, empty or in an unsupported encoding.
    #[error("{}: {msg}", path.display())]
    Audio { path: PathBuf, msg: String },
    /// A CSV score has a bad header, row or value.
    #[error("{}: {}{msg}", path.display(), csv_place(*line, column.as_deref()))]
    Csv {
        path: PathBuf,
        /// 1-based line number in the file, when known.
        line: Option<u64>,
        /// Column name, when the error concerns one field.
        column: Option<String>,
        msg: String,
    },
    /// A MIDI file is corrupt or holds something we cannot use.
    #[error("{}: {}{msg}", path.display(), track.map(|t| format!("track {t}: ")).unwrap_or_default())]
    Midi {
        path: PathBuf,
        /// 1-based track number, when the error concerns one track.
        track: Option<usize>,
        msg: String,
    },
    /// A score is readable but unusable as a whole (e.g. it holds no notes).
    #[error("{}: {msg}", path.display())]
    Score { path: PathBuf, msg: String },
    /// A matrix file (a dictionary of templates, `.npy` or CSV) is unreadable or unusable.
    #[error("{}: {msg}", path.display())]
    Matrix { path: PathBuf, msg: String },
    /// An output would replace an input, or cannot be placed where it was asked for.
    #[error("{}: {msg}", path.display())]
    Output { path: PathBuf, msg: String },
    /// A parameter or combination of parameters is invalid.
    #[error("invalid parameter: {0}")]
    Param(String),
}

fn csv_place(line: Option<u64>, column: Option<&str>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("line {l}, column {c}: "),
        (Some(l), None) => format!("line {l}: "),
        (None, Some(c)) => format!("column {c}: "),
        (None, None) => String::new(),
    }
}

impl Error {
    /// True when the error is caused by the user's input rather than by the machine.
    pub fn is_input_error(&self) -> bool {
        !matches!(self, Error::Write { .. })
    }

    pub(crate) fn audio(path: &Path, msg: impl Into<String>) -> Self {
        Error::Audio {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }

    /// A file that could not be read.
    pub fn read(path: &Path, source: std::io::Error) -> Self {
        Error::Read {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn write(path: &Path, source: std::io::Error) -> Self {
        Error::Write {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn midi(path: &Path, track: Option<usize>, msg: impl Into<String>) -> Self {
        Error::Midi {
            path: path.to_path_buf(),
            track,
            msg: msg.into(),
        }
    }
}
