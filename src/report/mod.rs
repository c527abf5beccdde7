//! The visual report: `report.html` and its images in `report/`, a page that opens from disk
//! with no server and no network. What it shows follows the FMP notebook C8S3's figures:
//!
//! 1. the log-magnitude spectrogram on a pitch axis with the transcription over it (score
//!    notes as outlines at their score times, played notes filled from detected onset to
//!    offset, coloured by instrument, notes judged not played in red; each with its figures on
//!    hover);
//! 2. W₀ and W, H₀ and H side by side, with the components' labels, and the NMF's error by
//!    iteration;
//! 3. the notes as a sortable table, the notes not played first;
//! 4. an audio player per stem and for the recording, each with its waveform;
//! 5. with a reference transcription, `eval notes`' metrics, and the missed and wrong notes
//!    marked on the spectrogram; with reference stems, `eval stems`' metrics;
//! 6. with an alignment, the cost matrix with the warping path and the local tempo
//!    ([`alignment`]).
//!
//! A recording longer than [`LONG_SECONDS`] gets an overview of its spectrogram and the
//! spectrogram page by page ([`Tile`]s, drawn by `zoom`). `scorenmf report OUTDIR` makes the
//! page of a finished run again ([`crate::job::rewrite_report`]).
//!
//! The images are written in two steps because the separation may consume V: [`Figures::render`]
//! right after the transcription, [`write_page`] once the stems exist. Heatmaps are PNG
//! ([`image`]); axes, labels and the notes are SVG in the page, so they stay sharp at any zoom.

pub mod alignment;
pub mod image;
mod page;
mod zoom;

use std::path::{Path, PathBuf};

use nalgebra::DMatrix;

use crate::error::Result;
use crate::eval::notes::NoteScores;
use crate::eval::stem_files;
use crate::eval::stems::{bss_eval_sources, SourceScores};
use crate::io::score::{Note, Score};
use crate::model::templates::{Component, Kind};
use crate::tasks::separate::StemFile;
use crate::tasks::transcribe::Transcription;

pub use alignment::AlignmentFigure;
pub use page::write_page;

/// The folder, beside `report.html`, that holds its images.
pub const IMAGE_DIR: &str = "report";
/// The page's file name.
pub const PAGE: &str = "report.html";
/// The widest a heatmap is drawn, in image columns: longer recordings are max-pooled onto it.
pub const MAX_COLUMNS: usize = 4000;
/// Display rows per semitone of the spectrogram.
const ROWS_PER_SEMITONE: usize = 4;
/// The highest frequency of the templates' figures, Hz.
const TEMPLATE_TOP_HZ: f64 = 4000.0;

/// What the report is made from: the analysis' plain data.
pub struct ReportInput<'a> {
    /// The page's title (the recording's file name).
    pub title: String,
    /// V as factorized, K × N.
    pub v: &'a DMatrix<f32>,
    /// γ when V is |X| (the page shows log(1 + γ|X|)); `None` when V is already log(1 + γ|X|).
    pub log_gamma_for_display: Option<f64>,
    pub frame_time: f64,
    pub bin_hz: f64,
    pub a4: f64,
    pub components: &'a [Component],
    pub w0: &'a DMatrix<f64>,
    pub w: &'a DMatrix<f64>,
    pub h0: &'a DMatrix<f64>,
    pub h: &'a DMatrix<f64>,
    /// The NMF's iterations and ‖V − WH‖_F / ‖V‖_F at the end.
    pub iterations: usize,
    pub rel_error: f64,
    /// (iteration, ‖V − WH‖_F / ‖V‖_F) where traced (empty when not).
    pub errors: &'a [(usize, f64)],
    /// The score the transcription followed (aligned, when aligned).
    pub score: &'a Score,
    pub transcription: &'a Transcription,
}

/// The figures' images, written, and what the page needs to draw around them.
#[derive(Debug, Clone)]
pub struct Figures {
    pub title: String,
    /// Seconds covered by the time axis (N frames).
    pub duration: f64,
    /// A long recording's spectrogram at full resolution, page by page (empty for one of
    /// at most [`LONG_SECONDS`]).
    pub tiles: Vec<Tile>,
    /// The spectrogram's pitch range, lowest and highest row.
    pub pitch_range: (u8, u8),
    /// The spectrogram's largest display value (the colour bar's top).
    pub spectrogram_max: f32,
    pub magnitude_label: String,
    /// Component labels in the figures' row order (by pitch; onset above harmonic).
    pub component_labels: Vec<String>,
    pub h_max: f32,
    pub h0_max: f32,
    pub w_max: f32,
    pub w0_max: f32,
    pub template_top_hz: f64,
    pub iterations: usize,
    pub rel_error: f64,
    pub errors: Vec<(usize, f64)>,
    pub score: Score,
    pub transcription: Transcription,
}

/// The image files of [`Figures`], relative to the page.
pub const SPECTROGRAM: &str = "report/spectrogram.png";
pub const W0: &str = "report/w0.png";
pub const W: &str = "report/w.png";
pub const H0: &str = "report/h0.png";
pub const H: &str = "report/h.png";

impl Figures {
    /// Renders the heatmaps into `root/report/` and keeps what the page draws around them.
    pub fn render(root: &Path, r: &ReportInput) -> Result<Figures> {
        let dir = root.join(IMAGE_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| crate::Error::write(&dir, e))?;
        let n = r.v.ncols();
        let factor = image::pooling(n, MAX_COLUMNS);
        let pitch_range = pitch_range(r.score);
        let gamma = r.log_gamma_for_display;
        let mut spec = image::pitch_raster(
            r.v,
            0..n,
            r.bin_hz,
            r.a4,
            pitch_range,
            ROWS_PER_SEMITONE,
            factor,
            |x| match gamma {
                Some(g) => (g as f32 * x).ln_1p(),
                None => x,
            },
        );
        let spectrogram_max = spec.max();
        spec.normalize(spectrogram_max);
        image::write_png(&root.join(SPECTROGRAM), &spec)?;
        let duration = n as f64 * r.frame_time;
        let tiles = if duration > LONG_SECONDS {
            render_tiles(root, r, pitch_range, spectrogram_max)?
        } else {
            Vec::new()
        };

        let order = display_order(r.components);
        let heat = |m: &DMatrix<f64>, file: &str| -> Result<f32> {
            let mut raster = image::rows_raster(m, &order, factor);
            let max = raster.max();
            raster.normalize(max);
            image::write_png(&root.join(file), &raster)?;
            Ok(max)
        };
        let h0_max = heat(r.h0, H0)?;
        let h_max = heat(r.h, H)?;
        let bins = ((TEMPLATE_TOP_HZ / r.bin_hz).ceil() as usize + 1).min(r.w.nrows());
        let columns = |m: &DMatrix<f64>, file: &str| -> Result<f32> {
            let ordered = m.select_columns(&order);
            let mut raster = image::columns_raster(&ordered, bins);
            let max = raster.max();
            raster.normalize(max);
            image::write_png(&root.join(file), &raster)?;
            Ok(max)
        };
        let w0_max = columns(r.w0, W0)?;
        let w_max = columns(r.w, W)?;
        Ok(Figures {
            title: r.title.clone(),
            duration,
            tiles,
            pitch_range,
            spectrogram_max,
            magnitude_label: match gamma {
                Some(g) => format!("log(1 + {g}·|X|)"),
                None => "V = log(1 + γ·|X|)".into(),
            },
            component_labels: order
                .iter()
                .map(|&i| component_label(&r.components[i]))
                .collect(),
            h_max,
            h0_max,
            w_max,
            w0_max,
            template_top_hz: (bins - 1) as f64 * r.bin_hz,
            iterations: r.iterations,
            rel_error: r.rel_error,
            errors: r.errors.to_vec(),
            score: r.score.clone(),
            transcription: r.transcription.clone(),
        })
    }
}

/// Recordings longer than this, in seconds, get an overview and pages of the spectrogram
/// ([`Tile`]s) instead of one figure: the overview's columns would each cover too long a time
/// to tell the notes apart.
pub const LONG_SECONDS: f64 = 60.0;
/// Seconds of one page of a long recording's spectrogram.
pub const TILE_SECONDS: f64 = 30.0;

/// One page of a long recording's spectrogram: every frame of `start..end` seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// The image, relative to the page.
    pub file: String,
    pub start: f64,
    pub end: f64,
}

/// The spectrogram's pages, [`TILE_SECONDS`] each at one image column per frame, drawn in
/// parallel on the overview's grey scale (`max`).
fn render_tiles(
    root: &Path,
    r: &ReportInput,
    pitch_range: (u8, u8),
    max: f32,
) -> Result<Vec<Tile>> {
    use rayon::prelude::*;
    let n = r.v.ncols();
    let per = ((TILE_SECONDS / r.frame_time).round() as usize).max(1);
    let gamma = r.log_gamma_for_display;
    (0..n.div_ceil(per))
        .into_par_iter()
        .map(|k| {
            let cols = k * per..((k + 1) * per).min(n);
            let tile = Tile {
                file: format!("{IMAGE_DIR}/spectrogram-{k:04}.png"),
                start: cols.start as f64 * r.frame_time,
                end: cols.end as f64 * r.frame_time,
            };
            let mut raster = image::pitch_raster(
                r.v,
                cols,
                r.bin_hz,
                r.a4,
                pitch_range,
                ROWS_PER_SEMITONE,
                1,
                |x| match gamma {
                    Some(g) => (g as f32 * x).ln_1p(),
                    None => x,
                },
            );
            raster.normalize(max);
            image::write_png(&root.join(&tile.file), &raster)?;
            Ok(tile)
        })
        .collect()
}

/// The transcription against a reference transcription (`--reference`), as `eval notes`
/// computes it.
#[derive(Debug, Clone)]
pub struct Reference {
    pub path: PathBuf,
    /// mir_eval's note metrics on onsets (and pitch) only.
    pub onsets: NoteScores,
    /// And with offsets (mir_eval's default: within 20 % of the duration or 50 ms).
    pub with_offsets: NoteScores,
    /// Reference notes no played note matches (onsets only).
    pub missed: Vec<Note>,
    /// Played notes that match no reference note (onsets only).
    pub wrong: Vec<Note>,
}

/// The run's stems against reference stems (`--reference-stems`), as `eval stems` computes
/// it (BSS Eval v3, mir_eval's `bss_eval_sources`, and SI-SDR).
#[derive(Debug, Clone)]
pub struct StemReference {
    pub path: PathBuf,
    /// One per grouping compared.
    pub groupings: Vec<StemComparison>,
}

/// One grouping's stems against the reference's files of the same names.
#[derive(Debug, Clone)]
pub struct StemComparison {
    /// The run's folder compared, relative to the output folder (`stems/instrument`).
    pub folder: String,
    /// The stems' file stems, in the scores' order.
    pub names: Vec<String>,
    pub scores: Vec<SourceScores>,
}

impl StemReference {
    /// Compares the stems under `root/stems` with the files of `reference`: a folder of stem
    /// files is matched by name against the first of the run's groupings that has every one of
    /// them; a folder of groupings (`instrument/`, `pitch/`, …), grouping by grouping.
    pub fn measure(reference: &Path, root: &Path) -> Result<StemReference> {
        let stems = root.join("stems");
        let subs = stem_files::subfolders(reference);
        let pairs: Vec<(String, Vec<(PathBuf, PathBuf)>)> = if subs.is_empty() {
            let found = stem_files::subfolders(&stems).into_iter().find_map(|g| {
                stem_files::folder_pairs(reference, &stems.join(&g))
                    .ok()
                    .map(|p| (g, p))
            });
            let Some(found) = found else {
                return Err(crate::Error::Param(format!(
                    "--reference-stems {}: no stems folder of this run has a file of each of its names (the run wrote {})",
                    reference.display(),
                    stem_files::subfolders(&stems).join(", ")
                )));
            };
            vec![found]
        } else {
            subs.into_iter()
                .filter(|g| stems.join(g).is_dir())
                .map(|g| {
                    let p = stem_files::folder_pairs(&reference.join(&g), &stems.join(&g))?;
                    Ok((g, p))
                })
                .collect::<Result<_>>()?
        };
        if pairs.is_empty() {
            return Err(crate::Error::Param(format!(
                "--reference-stems {}: none of its folders is a grouping this run wrote",
                reference.display()
            )));
        }
        let groupings = pairs
            .into_iter()
            .map(|(g, p)| compare(&g, &p))
            .collect::<Result<_>>()?;
        Ok(StemReference {
            path: reference.to_path_buf(),
            groupings,
        })
    }
}

/// BSS Eval of one grouping's pairs.
fn compare(grouping: &str, pairs: &[(PathBuf, PathBuf)]) -> Result<StemComparison> {
    let (_, refs, ests) = stem_files::load_pairs(pairs)?;
    let scores = bss_eval_sources(&refs, &ests)?;
    let names = pairs
        .iter()
        .map(|(r, _)| {
            r.file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    Ok(StemComparison {
        folder: format!("stems/{grouping}"),
        names,
        scores,
    })
}

/// What the page shows, each part when there is one.
pub struct Page<'a> {
    /// The page's title (the recording's file name).
    pub title: &'a str,
    /// The transcription's figures (not for `align`).
    pub figures: Option<&'a Figures>,
    /// The alignment's, when the score was aligned.
    pub alignment: Option<&'a AlignmentFigure>,
    pub reference: Option<&'a Reference>,
    pub stem_reference: Option<&'a StemReference>,
    pub sounds: Sounds<'a>,
}

/// The stems and the recording the page plays.
pub struct Sounds<'a> {
    /// The stems written (paths relative to the output folder).
    pub stems: &'a [StemFile],
    /// The folder the stems' paths are relative to, where their waveforms are read from.
    pub dir: &'a Path,
    /// The recording, to play as the mix: the path the page reaches it by (relative to the
    /// output folder when it can be), and its samples (for its waveform).
    pub mix: Option<(PathBuf, &'a crate::io::audio::Audio)>,
}

/// The spectrogram's pitch range: the score's lowest pitch minus a minor third to its highest
/// plus an octave and a fifth (where the first partials of the top notes lie).
fn pitch_range(score: &Score) -> (u8, u8) {
    let pitches = score.pitches();
    let lo = pitches.first().copied().unwrap_or(60);
    let hi = pitches.last().copied().unwrap_or(72);
    (lo.saturating_sub(3), hi.saturating_add(19).min(127))
}

/// The components in the figures' row order: by pitch (and instrument), the onset component
/// above the harmonic one, top row the highest pitch.
fn display_order(components: &[Component]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..components.len()).collect();
    order.sort_by(|&a, &b| {
        let (ca, cb) = (&components[a], &components[b]);
        (cb.pitch, &cb.instrument, cb.kind == Kind::Onset).cmp(&(
            ca.pitch,
            &ca.instrument,
            ca.kind == Kind::Onset,
        ))
    });
    order
}

/// A component's label: pitch name, `on` or `harm`, and its instrument when per instrument.
pub fn component_label(c: &Component) -> String {
    let kind = match c.kind {
        Kind::Onset => "on",
        Kind::Harmonic => "harm",
    };
    let name = crate::io::score::pitch_name(c.pitch);
    match &c.instrument {
        Some(i) => format!("{name} {kind} ({i})"),
        None => format!("{name} {kind}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_order_puts_high_pitches_on_top_onset_above_harmonic() {
        let c = |pitch, kind| Component {
            pitch,
            instrument: None,
            kind,
        };
        let comps = [
            c(60, Kind::Onset),
            c(60, Kind::Harmonic),
            c(64, Kind::Onset),
            c(64, Kind::Harmonic),
        ];
        let order = display_order(&comps);
        let labels: Vec<String> = order.iter().map(|&i| component_label(&comps[i])).collect();
        assert_eq!(labels, ["E4 on", "E4 harm", "C4 on", "C4 harm"]);
    }
}
