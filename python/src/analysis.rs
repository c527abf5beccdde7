//! `transcribe`, `separate` and `align`: the command line's analysis on Python values, through
//! the same library functions (`pipeline::run_transcription`, `pipeline::separate`,
//! `job::align_notation`), so the same inputs and parameters give the same numbers.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use numpy::ndarray::Array2;
use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use scorenmf::align::AlignParams;
use scorenmf::io::audio::{Audio, WavEncoding};
use scorenmf::io::outputs;
use scorenmf::io::score::{Repeats, Score};
use scorenmf::job::{align_notation, AlignRequest, Aligned, Observer};
use scorenmf::pipeline::{self, Config, TranscribeOutput};
use scorenmf::report::component_label;
use scorenmf::tasks::separate::By;

use crate::convert::{array, note_rows, AudioIn, ScoreIn};
use crate::params;
use crate::to_py;

/// The inputs of an analysis, owned (so the work can run without the GIL).
struct Inputs {
    audio: AudioIn,
    score: ScoreIn,
    repeats: Repeats,
}

impl Inputs {
    fn extract(
        audio: &Bound<'_, PyAny>,
        sr: Option<u32>,
        score: &Bound<'_, PyAny>,
        repeats: &str,
    ) -> PyResult<Inputs> {
        let repeats = match repeats {
            "written" => Repeats::Written,
            "none" => Repeats::None,
            other => {
                return Err(to_py(scorenmf::Error::Param(format!(
                    "repeats '{other}': use 'written' or 'none'"
                ))))
            }
        };
        Ok(Inputs {
            audio: AudioIn::extract(audio, sr)?,
            score: ScoreIn::extract(score)?,
            repeats,
        })
    }

    /// The recording, the score and their names (for messages).
    fn load(self) -> scorenmf::Result<(Audio, Score, (PathBuf, PathBuf))> {
        let names = (self.audio.name(), self.score.name());
        let audio = self.audio.load()?;
        let score = self.score.load(self.repeats)?;
        Ok((audio, score, names))
    }
}

/// The warnings a run gives, kept for Python's `warnings.warn`.
#[derive(Default)]
struct Warnings(Mutex<Vec<String>>);

impl Observer for Warnings {
    fn warning(&self, message: &str) {
        self.0
            .lock()
            .expect("not poisoned")
            .push(message.to_string());
    }
}

/// What an analysis gives back before it is turned into Python values.
struct Analysed {
    config: Config,
    score: Score,
    out: TranscribeOutput,
    aligned: Option<Aligned>,
    notes: Vec<scorenmf::io::score::Note>,
    notes_json: String,
    stems: Vec<(String, Audio)>,
    warnings: Vec<String>,
}

/// The stems asked of [`analyse`].
struct StemsAsked {
    by: Vec<By>,
    full_length: bool,
}

/// Reads the inputs, aligns the score (when asked), transcribes, and separates (when asked):
/// `job::run`'s stages, in memory.
fn analyse(
    inputs: Inputs,
    config: Config,
    align: Option<AlignRequest>,
    stems: Option<StemsAsked>,
) -> scorenmf::Result<Analysed> {
    let warnings = Warnings::default();
    let (audio, notation, (audio_name, score_name)) = inputs.load()?;
    for w in &notation.warnings {
        warnings.warning(w);
    }
    let aligned = match &align {
        Some(r) => {
            let names = (audio_name.as_path(), score_name.as_path());
            Some(align_notation(
                &audio, &notation, r, names, false, &warnings,
            )?)
        }
        None => None,
    };
    let score = aligned.as_ref().map_or(notation, |a| a.score.clone());
    let mut out = pipeline::run_transcription(&audio, &score, &config, |_| {})?;
    let (stems, note_stems) = match stems {
        Some(asked) => separate_in_memory(&audio, &score, &config, &mut out, &asked)?,
        None => (Vec::new(), Vec::new()),
    };
    let (notes, notes_json) =
        outputs::transcription_documents(&out.transcription, &score, &note_stems)?;
    Ok(Analysed {
        config,
        score,
        out,
        aligned,
        notes,
        notes_json,
        stems,
        warnings: warnings.0.into_inner().expect("not poisoned"),
    })
}

/// A folder under the system's temporary folder, removed when dropped.
struct TempFolder(PathBuf);

impl TempFolder {
    fn new() -> scorenmf::Result<TempFolder> {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("scorenmf-py-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|source| scorenmf::Error::Write {
            path: dir.clone(),
            source,
        })?;
        Ok(TempFolder(dir))
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The stems, as the command line writes them with `--wav-encoding float32` (the same
/// `pipeline::separate`, into a temporary folder), read back: (label, samples) with labels such
/// as `instrument/rh`, `pitch/64_E4`, `residual`; and the per-note stems' records for
/// notes.json.
#[allow(clippy::type_complexity)]
fn separate_in_memory(
    audio: &Audio,
    score: &Score,
    config: &Config,
    out: &mut TranscribeOutput,
    asked: &StemsAsked,
) -> scorenmf::Result<(
    Vec<(String, Audio)>,
    Vec<scorenmf::tasks::separate::StemFile>,
)> {
    let dir = TempFolder::new()?;
    let written = pipeline::separate(
        &dir.0,
        audio,
        score,
        config,
        out,
        &asked.by,
        asked.full_length,
        WavEncoding::Float32,
        &|_, _| {},
    )?;
    let mut stems = Vec::with_capacity(written.len());
    for w in &written {
        let label = w
            .file
            .strip_prefix("stems/")
            .unwrap_or(&w.file)
            .trim_end_matches(".wav")
            .to_string();
        stems.push((
            label,
            scorenmf::io::audio::read_audio(&dir.0.join(&w.file))?,
        ));
    }
    let note_stems = written.into_iter().filter(|w| w.kind == "note").collect();
    Ok((stems, note_stems))
}

/// The analysis as a dict of Python values.
fn to_dict<'py>(py: Python<'py>, a: &Analysed) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let dec = &a.out.decomposition;
    let f = &dec.factorization;
    d.set_item("notes", note_rows(&a.notes))?;
    d.set_item("notes_json", &a.notes_json)?;
    d.set_item("score", note_rows(&a.score.notes))?;
    d.set_item("W", array(py, &f.w))?;
    d.set_item("H", array(py, &f.h))?;
    d.set_item("W0", array(py, &dec.w0))?;
    d.set_item("H0", array(py, &dec.h0))?;
    d.set_item(
        "components",
        dec.components
            .iter()
            .map(component_label)
            .collect::<Vec<_>>(),
    )?;
    d.set_item("iterations", f.iterations)?;
    d.set_item("rel_error", f.rel_error)?;
    d.set_item("frame_time", a.config.frame_time())?;
    d.set_item(
        "config",
        serde_json::to_string(&a.config)
            .map_err(|e| to_py(scorenmf::Error::Param(e.to_string())))?,
    )?;
    d.set_item(
        "alignment",
        match &a.aligned {
            Some(al) => Some(alignment_dict(py, al)?),
            None => None,
        },
    )?;
    let stems = PyDict::new(py);
    for (label, audio) in &a.stems {
        let (c, n) = (audio.channels.len(), audio.len());
        let samples = Array2::from_shape_fn((c, n), |(i, j)| audio.channels[i][j]);
        stems.set_item(label, samples.into_pyarray(py))?;
    }
    d.set_item("stems", stems)?;
    d.set_item("warnings", &a.warnings)?;
    Ok(d)
}

/// An alignment as a dict: the warping path, the aligned score, the fit's figures.
fn alignment_dict<'py>(py: Python<'py>, a: &Aligned) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let al = &a.alignment;
    let path = Array2::from_shape_fn((al.anchors.len(), 2), |(i, j)| {
        if j == 0 {
            al.anchors[i].0
        } else {
            al.anchors[i].1
        }
    });
    d.set_item("path", path.into_pyarray(py))?;
    d.set_item("score", note_rows(&a.score.notes))?;
    d.set_item("confidence", al.confidence)?;
    d.set_item("path_cost", al.path_cost)?;
    d.set_item("baseline_cost", al.baseline_cost)?;
    d.set_item("shift", al.shift)?;
    d.set_item("a4", al.a4)?;
    d.set_item("outside", a.outside)?;
    Ok(d)
}

/// What `transcribe` and `separate` share: the inputs and the configuration from Python's
/// values, then [`analyse`] without the GIL and its dict.
struct Analysis {
    inputs: Inputs,
    config: Config,
}

impl Analysis {
    fn extract(
        audio: &Bound<'_, PyAny>,
        sr: Option<u32>,
        score: &Bound<'_, PyAny>,
        repeats: &str,
        preset: &str,
        params: &str,
    ) -> PyResult<Analysis> {
        Ok(Analysis {
            inputs: Inputs::extract(audio, sr, score, repeats)?,
            config: params::config(preset, params).map_err(to_py)?,
        })
    }

    fn run<'py>(
        self,
        py: Python<'py>,
        align: Option<AlignRequest>,
        stems: Option<StemsAsked>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let Analysis { inputs, config } = self;
        let done = py
            .detach(|| analyse(inputs, config, align, stems))
            .map_err(to_py)?;
        to_dict(py, &done)
    }
}

/// The alignment's request from Python's keywords.
fn align_request(force: bool, transposition: bool) -> AlignRequest {
    AlignRequest {
        params: AlignParams {
            transposition,
            ..AlignParams::default()
        },
        force,
    }
}

/// Transcribes `audio` against `score`: notes.csv's rows, notes.json's text, the factors.
#[pyfunction]
#[pyo3(signature = (audio, score, sr=None, preset="default", params="{}", align=false, force=false, transposition=true, repeats="written"))]
#[allow(clippy::too_many_arguments)]
pub fn transcribe<'py>(
    py: Python<'py>,
    audio: &Bound<'py, PyAny>,
    score: &Bound<'py, PyAny>,
    sr: Option<u32>,
    preset: &str,
    params: &str,
    align: bool,
    force: bool,
    transposition: bool,
    repeats: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let analysis = Analysis::extract(audio, sr, score, repeats, preset, params)?;
    analysis.run(py, align.then(|| align_request(force, transposition)), None)
}

/// [`transcribe`] and the stems of each grouping in `by`, as channels × samples float32.
#[pyfunction]
#[pyo3(signature = (audio, score, sr=None, by=vec!["instrument".to_string()], full_length=false, preset="default", params="{}", align=false, force=false, transposition=true, repeats="written"))]
#[allow(clippy::too_many_arguments)]
pub fn separate<'py>(
    py: Python<'py>,
    audio: &Bound<'py, PyAny>,
    score: &Bound<'py, PyAny>,
    sr: Option<u32>,
    by: Vec<String>,
    full_length: bool,
    preset: &str,
    params: &str,
    align: bool,
    force: bool,
    transposition: bool,
    repeats: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let analysis = Analysis::extract(audio, sr, score, repeats, preset, params)?;
    let by = by
        .iter()
        .map(|b| {
            serde_json::from_value::<By>(serde_json::Value::String(b.clone())).map_err(|_| {
                to_py(scorenmf::Error::Param(format!(
                    "by '{b}': use 'instrument', 'pitch' or 'note'"
                )))
            })
        })
        .collect::<PyResult<Vec<By>>>()?;
    let asked = StemsAsked { by, full_length };
    analysis.run(
        py,
        align.then(|| align_request(force, transposition)),
        Some(asked),
    )
}

/// Aligns a notation score to the recording: the warping path and the aligned score.
#[pyfunction]
#[pyo3(signature = (audio, score, sr=None, force=false, transposition=true, repeats="written"))]
pub fn align<'py>(
    py: Python<'py>,
    audio: &Bound<'py, PyAny>,
    score: &Bound<'py, PyAny>,
    sr: Option<u32>,
    force: bool,
    transposition: bool,
    repeats: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let inputs = Inputs::extract(audio, sr, score, repeats)?;
    let request = align_request(force, transposition);
    let (aligned, warnings) = py
        .detach(|| -> scorenmf::Result<(Aligned, Vec<String>)> {
            let warnings = Warnings::default();
            let (audio, notation, (a, s)) = inputs.load()?;
            for w in &notation.warnings {
                warnings.warning(w);
            }
            let aligned = align_notation(&audio, &notation, &request, (&a, &s), false, &warnings)?;
            Ok((aligned, warnings.0.into_inner().expect("not poisoned")))
        })
        .map_err(to_py)?;
    let d = alignment_dict(py, &aligned)?;
    d.set_item("warnings", warnings)?;
    Ok(d)
}

/// The keyword parameters `transcribe` and `separate` take, each with the field of the
/// configuration it sets (a dotted path into run.json's `config`).
#[pyfunction]
pub fn parameter_names() -> Vec<(&'static str, &'static str)> {
    params::PARAMETERS.to_vec()
}

/// The configuration `preset` with the keyword parameters `params` (JSON) gives, as run.json's
/// `config` records it.
#[pyfunction]
#[pyo3(signature = (preset="default", params="{}"))]
pub fn config(preset: &str, params: &str) -> PyResult<String> {
    let c = params::config(preset, params).map_err(to_py)?;
    serde_json::to_string(&c).map_err(|e| to_py(scorenmf::Error::Param(e.to_string())))
}
