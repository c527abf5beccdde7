//! Python and numpy values to the library's types and back.

use std::path::PathBuf;

use nalgebra::DMatrix;
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use scorenmf::io::audio::{self, Audio, AudioFormat, Container};
use scorenmf::io::score::{self, Note, Repeats, Score};

/// A recording as given: a file, or samples (channels × samples, float32) at a rate.
pub enum AudioIn {
    File(PathBuf),
    Samples(Vec<Vec<f32>>, u32),
}

impl AudioIn {
    /// From `audio` (a path, or a 2-D float32 array the Python side made) and `sr`.
    pub fn extract(audio: &Bound<'_, PyAny>, sr: Option<u32>) -> PyResult<AudioIn> {
        if let Ok(path) = audio.extract::<PathBuf>() {
            return Ok(AudioIn::File(path));
        }
        let samples: PyReadonlyArray2<f32> = audio.extract().map_err(|_| {
            PyTypeError::new_err("audio: a path, or a float array (samples, or channels × samples)")
        })?;
        let sr = sr.ok_or_else(|| PyTypeError::new_err("audio as an array needs sr"))?;
        let view = samples.as_array();
        let channels = view.outer_iter().map(|c| c.to_vec()).collect();
        Ok(AudioIn::Samples(channels, sr))
    }

    /// The recording as the library holds it (a file decoded as the command line decodes it).
    pub fn load(self) -> scorenmf::Result<Audio> {
        match self {
            AudioIn::File(path) => audio::read_audio(&path),
            AudioIn::Samples(channels, sample_rate) => {
                let audio = Audio {
                    channels,
                    sample_rate,
                    format: AudioFormat {
                        container: Container::Wav,
                        bits_per_sample: Some(32),
                        float: true,
                    },
                };
                check_samples(&audio)?;
                Ok(audio)
            }
        }
    }

    /// How messages name the recording.
    pub fn name(&self) -> PathBuf {
        match self {
            AudioIn::File(p) => p.clone(),
            AudioIn::Samples(..) => PathBuf::from("<audio array>"),
        }
    }
}

/// Refuses samples the readers would refuse in a file: none, channels of unequal length,
/// non-finite values, a rate of 0.
fn check_samples(a: &Audio) -> scorenmf::Result<()> {
    let bad = |msg: &str| scorenmf::Error::Param(format!("audio array: {msg}"));
    if a.sample_rate == 0 {
        return Err(bad("sr must be positive"));
    }
    let len = a.channels.first().map_or(0, Vec::len);
    if len == 0 {
        return Err(bad("no samples"));
    }
    if a.channels.iter().any(|c| c.len() != len) {
        return Err(bad("channels of unequal length"));
    }
    if a.channels.iter().flatten().any(|x| !x.is_finite()) {
        return Err(bad("NaN or infinite samples"));
    }
    Ok(())
}

/// A score as given: a file, or notes as (start, duration, pitch, velocity, instrument).
pub enum ScoreIn {
    File(PathBuf),
    Notes(Vec<(f64, f64, i64, f64, String)>),
}

impl ScoreIn {
    pub fn extract(score: &Bound<'_, PyAny>) -> PyResult<ScoreIn> {
        if let Ok(path) = score.extract::<PathBuf>() {
            return Ok(ScoreIn::File(path));
        }
        score.extract().map(ScoreIn::Notes).map_err(|_| {
            PyTypeError::new_err(
                "score: a path, a DataFrame, or a list of (start, duration, pitch, velocity, instrument)",
            )
        })
    }

    /// The score as the library holds it; notes are checked as the CSV reader checks a row.
    pub fn load(self, repeats: Repeats) -> scorenmf::Result<Score> {
        match self {
            ScoreIn::File(path) => score::read_score_with(&path, repeats),
            ScoreIn::Notes(rows) => {
                let notes = rows
                    .into_iter()
                    .enumerate()
                    .map(|(i, (onset, duration, pitch, velocity, instrument))| {
                        let bad =
                            |msg: String| scorenmf::Error::Param(format!("score note {i}: {msg}"));
                        if !(0..=127).contains(&pitch) {
                            return Err(bad(format!("pitch {pitch} outside 0..=127")));
                        }
                        score::check_times(onset, duration).map_err(bad)?;
                        if !(0.0..=1.0).contains(&velocity) {
                            return Err(bad(format!("velocity {velocity} outside [0, 1]")));
                        }
                        Ok(Note {
                            onset,
                            duration,
                            pitch: pitch as u8,
                            velocity,
                            instrument,
                            measure: None,
                        })
                    })
                    .collect::<scorenmf::Result<Vec<Note>>>()?;
                if notes.is_empty() {
                    return Err(scorenmf::Error::Param("the score has no notes".into()));
                }
                Ok(Score::new(notes, vec![]))
            }
        }
    }

    pub fn name(&self) -> PathBuf {
        match self {
            ScoreIn::File(p) => p.clone(),
            ScoreIn::Notes(_) => PathBuf::from("<score notes>"),
        }
    }
}

/// A score's notes as (start, duration, pitch, velocity, instrument) rows, as notes.csv holds
/// them.
pub fn note_rows(notes: &[Note]) -> Vec<(f64, f64, u8, f64, String)> {
    notes
        .iter()
        .map(|n| {
            (
                n.onset,
                n.duration,
                n.pitch,
                n.velocity,
                n.instrument.clone(),
            )
        })
        .collect()
}

/// A 2-D numpy array (any layout) as a matrix.
pub fn matrix(a: &PyReadonlyArray2<f64>) -> DMatrix<f64> {
    let v = a.as_array();
    DMatrix::from_fn(v.nrows(), v.ncols(), |i, j| v[(i, j)])
}

/// A matrix as a new C-ordered numpy array.
pub fn array<'py>(py: Python<'py>, m: &DMatrix<f64>) -> Bound<'py, PyArray2<f64>> {
    Array2::from_shape_fn(m.shape(), |(i, j)| m[(i, j)]).into_pyarray(py)
}
