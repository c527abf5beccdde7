//! Score-informed source separation by soft masks from the factorization (FMP notebook C8S3,
//! "NMF-based audio decomposition"; Ewert & Müller, ICASSP 2012).
//!
//! Each component c contributes W_c·H_c to the model W·H. Its row of H is split among the score
//! notes of its pitch (and instrument) by time: frame n belongs to the latest note whose region
//! has begun (a note's region starts `lead` seconds before its onset, the first note's at frame
//! 0), so the parts of a row add up to the row and successive notes of one pitch separate. A
//! *group* g (an instrument, a pitch, a note) is a set of such parts; its model is
//! S_g = Σ_{parts ∈ g} W_c·H_c^part, and its soft mask is the generalized Wiener filter
//!
//! ```text
//! M_g = S_g^p / Σ_{g'} S_{g'}^p        (p = 1: the FMP notebook's mask)
//! ```
//!
//! over the groups of one grouping (which partition the parts, so the masks add up to 1 wherever
//! the model is non-zero). The mask is laid over the complex STFT of *each original channel* at
//! the recording's own rate — interpolated bilinearly from the analysis grid, 0 above the
//! analysis Nyquist — and inverted to exactly the input's length. The residual is the mixture
//! minus the sum of the stems.

use nalgebra::DMatrix;
use serde::Serialize;

use crate::error::Result;
use crate::io::audio::{Audio, WavStream};
use crate::io::score::Score;
use crate::model::templates::Component;
use crate::signal::stft::{Spectrogram, Stft, StftParams};

/// Which factorization the masks come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum MaskModel {
    /// The transcription's own factorization (the FMP notebook's masks).
    Shared,
    /// A second factorization for the masks: V = |X| (additive, unlike a log magnitude), the
    /// generalized Kullback–Leibler divergence, W₀ anew and H₀ from the score with the played
    /// notes at their detected onsets, a few iterations.
    LinearKl,
}

/// Parameters of the masking.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct SeparateParams {
    /// Exponent p of the generalized Wiener mask.
    pub mask_power: f64,
    /// A note's region of its component rows starts this many seconds before its onset.
    pub lead: f64,
    pub model: MaskModel,
    /// Iterations of the [`MaskModel::LinearKl`] factorization.
    pub iterations: usize,
}

impl Default for SeparateParams {
    /// The FMP notebook's masks (p = 1, from the transcription's factorization).
    fn default() -> Self {
        SeparateParams {
            mask_power: 1.0,
            lead: 0.05,
            model: MaskModel::Shared,
            iterations: 20,
        }
    }
}

/// The factorization on the analysis grid, as the masks need it.
pub struct Model<'a> {
    pub components: &'a [Component],
    /// K × R.
    pub w: &'a DMatrix<f64>,
    /// R × N.
    pub h: &'a DMatrix<f64>,
    pub sample_rate: u32,
    pub stft: StftParams,
}

/// For each component row, for each frame, the index of the score note that owns it (or
/// `usize::MAX` for a row without notes). `onsets[i]` is note i's onset (detected or from the
/// score); notes whose onset is NaN (not played) own nothing.
pub fn frame_owners(model: &Model, score: &Score, onsets: &[f64], lead: f64) -> Vec<Vec<usize>> {
    let n_frames = model.h.ncols();
    let frame_time = model.stft.hop as f64 / model.sample_rate as f64;
    model
        .components
        .iter()
        .map(|c| {
            let mut notes: Vec<(f64, usize)> = score
                .notes
                .iter()
                .enumerate()
                .filter(|(i, n)| c.covers(n.pitch, &n.instrument) && onsets[*i].is_finite())
                .map(|(i, _)| (onsets[i], i))
                .collect();
            notes.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut owner = vec![usize::MAX; n_frames];
            let mut k = 0;
            for (n, o) in owner.iter_mut().enumerate() {
                let t = n as f64 * frame_time;
                while k + 1 < notes.len() && notes[k + 1].0 - lead <= t {
                    k += 1;
                }
                if let Some(&(_, id)) = notes.get(k) {
                    *o = id;
                }
            }
            owner
        })
        .collect()
}

/// A grouping of the model's parts: `group_of(component, note)` names the group a part belongs
/// to (an index below `n_groups`), or `None` to leave it out.
pub struct Grouping<'a> {
    pub n_groups: usize,
    pub group_of: &'a (dyn Fn(usize, usize) -> Option<usize> + Sync),
}

/// Frames per parallel job of [`group_models`] and [`to_masks`].
const MASK_COLUMNS: usize = 64;

/// Column blocks of `MASK_COLUMNS` frames of every matrix in `models` (all K × the same frames):
/// block b holds block b of each, in order.
fn column_blocks(models: &mut [DMatrix<f64>]) -> Vec<Vec<&mut [f64]>> {
    let k = models.first().map_or(0, |m| m.nrows()).max(1);
    let mut parts: Vec<_> = models
        .iter_mut()
        .map(|m| m.as_mut_slice().chunks_mut(k * MASK_COLUMNS))
        .collect();
    std::iter::from_fn(|| {
        let block: Vec<&mut [f64]> = parts.iter_mut().filter_map(|p| p.next()).collect();
        (!block.is_empty()).then_some(block)
    })
    .collect()
}

/// S_g for the frames `from..to` of the analysis grid: `out[g]` is K × (to − from). Frames in
/// parallel; each entry adds its parts in component order, whatever the number of threads.
pub fn group_models(
    model: &Model,
    owners: &[Vec<usize>],
    grouping: &Grouping,
    from: usize,
    to: usize,
) -> Vec<DMatrix<f64>> {
    use rayon::prelude::*;
    let k = model.w.nrows();
    let mut out = vec![DMatrix::zeros(k, to - from); grouping.n_groups];
    column_blocks(&mut out)
        .into_par_iter()
        .enumerate()
        .for_each(|(b, mut block)| {
            let first = from + b * MASK_COLUMNS;
            let frames = block.first().map_or(0, |x| x.len() / k.max(1));
            for_each_part(model, owners, first, frames, |c, i, note, hv, wc| {
                if let Some(g) = (grouping.group_of)(c, note) {
                    for (o, &w) in block[g][i * k..(i + 1) * k].iter_mut().zip(wc) {
                        *o += hv * w;
                    }
                }
            });
        });
    out
}

/// Calls `f(component, i, note, h, w)` for every part of the model in frames
/// `first..first + frames`: component c's activation h at frame first + i, owned by `note`, with
/// its template w; components in order, frames in order within each (the order the sums add).
fn for_each_part(
    model: &Model,
    owners: &[Vec<usize>],
    first: usize,
    frames: usize,
    mut f: impl FnMut(usize, usize, usize, f64, &[f64]),
) {
    for (c, owner) in owners.iter().enumerate() {
        let wc = model.w.column(c);
        let wc = wc.as_slice();
        for i in 0..frames {
            let n = first + i;
            let hv = model.h[(c, n)];
            if hv == 0.0 || owner[n] == usize::MAX {
                continue;
            }
            f(c, i, owner[n], hv, wc);
        }
    }
}

/// Masks M_g = S_g^p / Σ S^p (0 where the sum is 0), in place; frames in parallel. Each
/// entry's sum adds the groups in order; the loops run along the entries, so they vectorize.
pub fn to_masks(models: &mut [DMatrix<f64>], p: f64) {
    use rayon::prelude::*;
    column_blocks(models).into_par_iter().for_each(|mut block| {
        let len = block.first().map_or(0, |x| x.len());
        let mut total = vec![0.0f64; len];
        crate::model::kernel::wide(
            #[inline(always)]
            || {
                for m in block.iter_mut() {
                    for (x, t) in m.iter_mut().zip(total.iter_mut()) {
                        *x = mask_power(*x, p);
                        *t += *x;
                    }
                }
                for m in block.iter_mut() {
                    for (x, &t) in m.iter_mut().zip(&total) {
                        *x = if t > 0.0 { *x / t } else { 0.0 };
                    }
                }
            },
        );
    });
}

/// The analysis grid: the rate and STFT geometry the masks are computed on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    pub sample_rate: u32,
    pub stft: StftParams,
}

impl Model<'_> {
    /// The grid the model lives on.
    pub fn grid(&self) -> Grid {
        Grid {
            sample_rate: self.sample_rate,
            stft: self.stft,
        }
    }
}

/// The STFT geometry at the recording's own rate that covers the same time and frequency
/// spans as the analysis geometry.
pub fn native_geometry(grid: Grid, rate: u32) -> StftParams {
    let ratio = rate as f64 / grid.sample_rate as f64;
    let n_fft = ((grid.stft.n_fft as f64 * ratio / 2.0).round() as usize * 2).max(2);
    let hop = ((grid.stft.hop as f64 * ratio).round() as usize).clamp(1, n_fft);
    StftParams { n_fft, hop }
}

/// Looks up `mask` (K × frames `from..`, analysis grid) at native bin `k` and native frame `n`
/// by bilinear interpolation; 0 above the analysis Nyquist.
fn mask_at(
    mask: &DMatrix<f64>,
    from: usize,
    bin_scale: f64,
    frame_scale: f64,
    k: usize,
    n: usize,
) -> f64 {
    let (rows, cols) = mask.shape();
    let fk = k as f64 * bin_scale;
    if fk > (rows - 1) as f64 || cols == 0 {
        return 0.0;
    }
    let fn_ = (n as f64 * frame_scale - from as f64).clamp(0.0, (cols - 1) as f64);
    let (k0, n0) = (fk.floor() as usize, fn_.floor() as usize);
    let (k1, n1) = ((k0 + 1).min(rows - 1), (n0 + 1).min(cols - 1));
    let (a, b) = (fk - k0 as f64, fn_ - n0 as f64);
    let top = mask[(k0, n0)] * (1.0 - b) + mask[(k0, n1)] * b;
    let bottom = mask[(k1, n0)] * (1.0 - b) + mask[(k1, n1)] * b;
    top * (1.0 - a) + bottom * a
}

/// The recording's channels, transformed block by block at their own rate.
pub struct Native<'a> {
    pub grid: Grid,
    pub stft: Stft,
    pub rate: u32,
    pub len: usize,
    pub n_frames: usize,
    audio: &'a Audio,
}

impl<'a> Native<'a> {
    pub fn new(grid: Grid, audio: &'a Audio) -> Result<Native<'a>> {
        let g = native_geometry(grid, audio.sample_rate);
        Ok(Native {
            grid,
            stft: Stft::single(g)?,
            rate: audio.sample_rate,
            len: audio.len(),
            n_frames: g.n_frames(audio.len()),
            audio,
        })
    }

    /// Native frames whose centre lies in analysis frames `from..to` (as a native frame range).
    pub fn frames_for(&self, from: usize, to: usize) -> (usize, usize) {
        let scale = self.frame_scale();
        let n = self.n_frames;
        let a = ((from as f64 / scale).ceil() as usize).min(n);
        let b = (((to as f64) / scale).ceil() as usize).min(n).max(a);
        (a, b)
    }

    /// The first sample that native frame `n` reaches (clipped to the recording).
    pub fn first_sample(&self, n: usize) -> usize {
        let g = self.stft.params();
        (n * g.hop).saturating_sub(g.n_fft / 2).min(self.len)
    }

    /// Frames `a..b` of every channel's STFT.
    pub fn spectra(&self, (a, b): (usize, usize)) -> Vec<Spectrogram> {
        self.audio
            .channels
            .iter()
            .map(|c| self.stft.forward_range(c, a, b))
            .collect()
    }

    /// Analysis frames per native frame.
    fn frame_scale(&self) -> f64 {
        let g = self.stft.params();
        let a = self.grid;
        (g.hop as f64 / self.rate as f64) / (a.stft.hop as f64 / a.sample_rate as f64)
    }

    /// Applies `mask` (analysis frames `from..`) to the native frames `a..b` of every channel
    /// (`spectra`, from [`Native::spectra`]) and inverts them: returns (first sample, channels),
    /// the samples those frames reach, clipped to the recording (or the whole recording, zeros
    /// elsewhere, with `full_length`).
    pub fn apply(
        &self,
        mask: &DMatrix<f64>,
        from: usize,
        native: (usize, usize),
        spectra: &[Spectrogram],
        full_length: bool,
    ) -> (usize, Vec<Vec<f32>>) {
        let g = self.stft.params();
        let bin_scale = (self.rate as f64 / g.n_fft as f64)
            / (self.grid.sample_rate as f64 / self.grid.stft.n_fft as f64);
        let frame_scale = self.frame_scale();
        let (a, b) = native;
        let n_bins = g.n_bins();
        let weights: Vec<f32> = if bin_scale == 1.0 && frame_scale == 1.0 && mask.nrows() == n_bins
        {
            // The analysis grid itself: the mask's own values, no interpolation.
            let last = mask.ncols().saturating_sub(1);
            let mut w = Vec::with_capacity((b - a) * n_bins);
            for n in a..b {
                let col = mask.column((n.saturating_sub(from)).min(last));
                w.extend(col.iter().map(|&m| m as f32));
            }
            w
        } else {
            (a..b)
                .flat_map(|n| (0..n_bins).map(move |k| (k, n)))
                .map(|(k, n)| mask_at(mask, from, bin_scale, frame_scale, k, n) as f32)
                .collect()
        };
        let channels: Vec<(usize, Vec<f32>)> = spectra
            .iter()
            .map(|spec| {
                let frames: Vec<_> = spec
                    .data
                    .iter()
                    .zip(&weights)
                    .map(|(c, w)| c * *w)
                    .collect();
                self.stft
                    .inverse_frames(&frames, a, self.n_frames, self.len)
            })
            .collect();
        let start = channels.first().map_or(0, |c| c.0);
        let mut out: Vec<Vec<f32>> = channels.into_iter().map(|(_, y)| y).collect();
        if full_length {
            for c in &mut out {
                let mut full = vec![0.0f32; self.len];
                full[start..start + c.len()].copy_from_slice(c);
                *c = full;
            }
            return (0, out);
        }
        (start, out)
    }
}

/// Sums overlapping pieces of one or more multichannel signals and hands out the samples no
/// later piece can reach any more, so a stem is written while it is computed.
struct OverlapAdd {
    /// Sample index of `pending[..][..][0]`.
    at: usize,
    /// Per signal, per channel: samples from `at` on.
    pending: Vec<Vec<Vec<f32>>>,
}

impl OverlapAdd {
    fn new(signals: usize, channels: usize) -> Self {
        OverlapAdd {
            at: 0,
            pending: vec![vec![Vec::new(); channels]; signals],
        }
    }

    /// Adds `piece` (one slice per channel, starting at sample `start` ≥ the last `take`) to
    /// signal `s`.
    fn add(&mut self, s: usize, start: usize, piece: &[Vec<f32>]) {
        debug_assert!(start >= self.at);
        let off = start - self.at;
        for (buf, c) in self.pending[s].iter_mut().zip(piece) {
            if buf.len() < off + c.len() {
                buf.resize(off + c.len(), 0.0);
            }
            for (a, v) in buf[off..off + c.len()].iter_mut().zip(c) {
                *a += v;
            }
        }
    }

    /// Samples `at..upto` of every signal (zeros where nothing was added), removed.
    fn take(&mut self, upto: usize) -> Vec<Vec<Vec<f32>>> {
        let n = upto.saturating_sub(self.at);
        let out = self
            .pending
            .iter_mut()
            .map(|chans| {
                chans
                    .iter_mut()
                    .map(|buf| {
                        if buf.len() < n {
                            buf.resize(n, 0.0);
                        }
                        buf.drain(..n).collect()
                    })
                    .collect()
            })
            .collect();
        self.at = self.at.max(upto);
        out
    }
}

/// The files of one grouping being written: a stem per group and, for the first grouping, the
/// residual (the mixture minus its stems).
struct Stream {
    files: Vec<WavStream>,
    rels: Vec<String>,
    residual: Option<WavStream>,
    ola: OverlapAdd,
}

impl Stream {
    /// Writes every sample before `upto`, now complete.
    fn flush(&mut self, upto: usize, audio: &Audio) -> Result<()> {
        let at = self.ola.at;
        let parts = self.ola.take(upto);
        for (f, chans) in self.files.iter_mut().zip(&parts) {
            let slices: Vec<&[f32]> = chans.iter().map(Vec::as_slice).collect();
            f.write(&slices)?;
        }
        if let Some(r) = self.residual.as_mut() {
            let res: Vec<Vec<f32>> = (0..audio.channels.len())
                .map(|ch| {
                    let mut x = audio.channels[ch][at..upto.max(at)].to_vec();
                    for g in &parts {
                        for (a, v) in x.iter_mut().zip(&g[ch]) {
                            *a -= v;
                        }
                    }
                    x
                })
                .collect();
            let slices: Vec<&[f32]> = res.iter().map(Vec::as_slice).collect();
            r.write(&slices)?;
        }
        Ok(())
    }
}

/// The groupings stems can be made by.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum By {
    /// One stem per instrument label (e.g. `lh`/`rh`, MIDI track names).
    Instrument,
    /// One stem per MIDI pitch.
    Pitch,
    /// One stem per played score note, cropped to its span unless full length is asked for.
    Note,
}

impl By {
    /// The grouping's folder under `stems/`, and the `kind` of its [`StemFile`]s.
    pub fn dir(self) -> &'static str {
        match self {
            By::Instrument => "instrument",
            By::Pitch => "pitch",
            By::Note => "note",
        }
    }
}

/// A written stem.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StemFile {
    pub kind: &'static str,
    /// Path relative to the output folder.
    pub file: String,
    /// Where the file's first sample lies in the recording, seconds.
    pub start: f64,
    /// The score note, for per-note stems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_note: Option<usize>,
}

/// The longest stem file name made from a label, in bytes, before `.wav` (its temporary name
/// while written adds about 20 more; file systems allow 255).
pub const MAX_NAME: usize = 64;

/// Turns a label into a safe, portable file name: letters, digits, `.`, `-` and `_` kept,
/// anything else `_`; no leading or trailing dot; at most [`MAX_NAME`] bytes; never empty; a
/// name Windows reserves for a device (`CON`, `NUL`, `COM1`, …) gets a leading `_`.
pub fn sanitize(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME)
        .collect();
    let s = s.trim_matches('.');
    if s.is_empty() {
        return "unlabeled".into();
    }
    let stem = s.split('.').next().unwrap_or("").to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved {
        format!("_{s}")
    } else {
        s.to_string()
    }
}

/// File names for `labels`, one each, distinct even where the file system ignores case: each
/// label [`sanitize`]d, and a name already taken gets the first free suffix `_2`, `_3`, …
/// (shortening it to stay within [`MAX_NAME`]).
pub fn stem_names(labels: &[String]) -> Vec<String> {
    let mut taken = std::collections::HashSet::new();
    labels
        .iter()
        .map(|label| {
            let base = sanitize(label);
            let mut name = base.clone();
            let mut k = 1;
            while !taken.insert(name.to_ascii_lowercase()) {
                k += 1;
                let suffix = format!("_{k}");
                let keep = base.len().min(MAX_NAME - suffix.len());
                name = format!("{}{suffix}", &base[..keep]);
            }
            name
        })
        .collect()
}

/// Pitch name for file names: `#` written as `s` (F#3 → Fs3).
fn file_pitch_name(p: u8) -> String {
    crate::io::score::pitch_name(p).replace('#', "s")
}

/// Analysis frames per block when building masks (bounds the memory of the group models).
const BLOCK: usize = 256;

/// What `write_stems` needs beyond the model.
pub struct StemRequest<'a> {
    pub audio: &'a Audio,
    pub score: &'a Score,
    /// Per score note: its onset (detected, or the score's), NaN when not played.
    pub onsets: &'a [f64],
    pub by: &'a [By],
    pub params: SeparateParams,
    /// Write per-note stems at full length instead of cropped.
    pub full_length: bool,
    pub encoding: crate::io::audio::WavEncoding,
}

/// A grouping written over the whole recording: its folder under `stems/` (empty for the
/// stand-in that only gives the residual), its stems' file names (without `.wav`), and each
/// score note's group.
struct WholeGrouping {
    dir: &'static str,
    names: Vec<String>,
    group_of_note: Vec<usize>,
}

/// Counts the work done for `progress(done, total)`.
struct Steps<'a> {
    done: usize,
    total: usize,
    progress: &'a dyn Fn(usize, usize),
}

impl Steps<'_> {
    fn tick(&mut self) {
        self.done += 1;
        (self.progress)(self.done, self.total);
    }
}

/// Masks the recording by each requested grouping and writes the stems under `outdir/stems/`,
/// plus `stems/residual.wav` (the mixture minus the sum of the stems). `progress(done, total)`
/// is called as the work advances. Returns what was written: the whole-recording stems, the
/// per-note stems, then the residual.
pub fn write_stems(
    outdir: &std::path::Path,
    model: &Model,
    req: &StemRequest,
    progress: &dyn Fn(usize, usize),
) -> Result<Vec<StemFile>> {
    let native = Native::new(model.grid(), req.audio)?;
    let owners = frame_owners(model, req.score, req.onsets, req.params.lead);
    let groupings = whole_groupings(req);
    let with_notes = req.by.contains(&By::Note);
    let mut steps = Steps {
        done: 0,
        total: model.h.ncols().div_ceil(BLOCK).max(1)
            + if with_notes { req.score.notes.len() } else { 0 },
        progress,
    };
    let mut streams = open_streams(outdir, &groupings, req)?;
    stream_blocks(
        model,
        req,
        &native,
        &owners,
        &groupings,
        &mut streams,
        &mut steps,
    )?;
    let (mut written, residual) = finish_streams(&groupings, streams, &native, req)?;
    if with_notes {
        written.extend(write_note_stems(
            outdir, model, req, &native, &owners, &mut steps,
        )?);
    }
    written.extend(residual);
    Ok(written)
}

/// The groupings over the whole recording, in the order asked; the first also gives the
/// residual (the mixture minus its stems). With only per-note stems, a single group holding
/// everything gives the residual and writes no stem of its own.
fn whole_groupings(req: &StemRequest) -> Vec<WholeGrouping> {
    let notes = &req.score.notes;
    let mut whole = Vec::new();
    for by in req.by {
        match by {
            By::Instrument => {
                let labels = req.score.instruments();
                let group_of_note = notes
                    .iter()
                    .map(|n| {
                        labels
                            .iter()
                            .position(|l| *l == n.instrument)
                            .expect("listed")
                    })
                    .collect();
                let names = stem_names(&labels);
                whole.push(WholeGrouping {
                    dir: By::Instrument.dir(),
                    names,
                    group_of_note,
                });
            }
            By::Pitch => {
                let pitches = req.score.pitches();
                let group_of_note = notes
                    .iter()
                    .map(|n| pitches.iter().position(|p| *p == n.pitch).expect("listed"))
                    .collect();
                let names = pitches
                    .iter()
                    .map(|&p| format!("{p}_{}", file_pitch_name(p)))
                    .collect();
                whole.push(WholeGrouping {
                    dir: By::Pitch.dir(),
                    names,
                    group_of_note,
                });
            }
            By::Note => {}
        }
    }
    if whole.is_empty() {
        whole.push(WholeGrouping {
            dir: "",
            names: Vec::new(),
            group_of_note: vec![0; notes.len()],
        });
    }
    whole
}

/// One output stream per grouping (its stems' files, and for the first the residual's).
fn open_streams(
    outdir: &std::path::Path,
    groupings: &[WholeGrouping],
    req: &StemRequest,
) -> Result<Vec<Stream>> {
    let n_ch = req.audio.channels.len();
    let create =
        |rel: &str| WavStream::create(&outdir.join(rel), n_ch, req.audio.sample_rate, req.encoding);
    let mut streams = Vec::with_capacity(groupings.len());
    for (i, g) in groupings.iter().enumerate() {
        let rels: Vec<String> = g
            .names
            .iter()
            .map(|l| format!("stems/{}/{l}.wav", g.dir))
            .collect();
        streams.push(Stream {
            files: rels.iter().map(|r| create(r)).collect::<Result<Vec<_>>>()?,
            rels,
            residual: if i == 0 {
                Some(create("stems/residual.wav")?)
            } else {
                None
            },
            ola: OverlapAdd::new(g.names.len().max(1), n_ch),
        });
    }
    Ok(streams)
}

/// The whole-recording stems, block by block of [`BLOCK`] analysis frames, all groupings fed
/// from the same blocks of the native spectra. The writing of one block's finished samples
/// (quantizing, the residual, the files) runs alongside the next block's masks and inverse
/// STFTs: the writing needs only samples before `upto` of the block before, which no later
/// block touches.
fn stream_blocks(
    model: &Model,
    req: &StemRequest,
    native: &Native,
    owners: &[Vec<usize>],
    groupings: &[WholeGrouping],
    streams: &mut Vec<Stream>,
    steps: &mut Steps,
) -> Result<()> {
    let n_frames = model.h.ncols();
    let mut pending: Option<usize> = None;
    for from in (0..n_frames).step_by(BLOCK) {
        let to = (from + BLOCK).min(n_frames);
        let flush_pending = |streams: &mut Vec<Stream>| -> Result<()> {
            match pending {
                Some(upto) => streams
                    .iter_mut()
                    .try_for_each(|s| s.flush(upto, req.audio)),
                None => Ok(()),
            }
        };
        let compute = || block_pieces(model, req, native, owners, groupings, from, to);
        let (flushed, (upto, pieces)) = rayon::join(|| flush_pending(streams), compute);
        flushed?;
        for (stream, pieces) in streams.iter_mut().zip(pieces) {
            for (g, (start, chans)) in pieces.iter().enumerate() {
                stream.ola.add(g, *start, chans);
            }
        }
        pending = Some(upto);
        steps.tick();
    }
    Ok(())
}

/// Per grouping and group, the masked and inverted pieces (first sample, channels) of the
/// analysis frames [from, to), and the sample before which every stem is then complete.
#[allow(clippy::type_complexity)]
fn block_pieces(
    model: &Model,
    req: &StemRequest,
    native: &Native,
    owners: &[Vec<usize>],
    groupings: &[WholeGrouping],
    from: usize,
    to: usize,
) -> (usize, Vec<Vec<(usize, Vec<Vec<f32>>)>>) {
    use rayon::prelude::*;
    let n_frames = model.h.ncols();
    let frames = native.frames_for(from, to);
    let spectra = native.spectra(frames);
    // Samples before the first one the next block's frames reach are complete.
    let upto = if to == n_frames {
        native.len
    } else {
        native.first_sample(frames.1)
    };
    let pieces = groupings
        .iter()
        .map(|g| {
            let group_of = |_c: usize, note: usize| Some(g.group_of_note[note]);
            let grouping = Grouping {
                n_groups: g.names.len().max(1),
                group_of: &group_of,
            };
            let mut masks = group_models(model, owners, &grouping, from, (to + 1).min(n_frames));
            to_masks(&mut masks, req.params.mask_power);
            masks
                .par_iter()
                .map(|m| native.apply(m, from, frames, &spectra, false))
                .collect()
        })
        .collect();
    (upto, pieces)
}

/// Flushes the last samples and closes every stream: the stems written, and the residual.
fn finish_streams(
    groupings: &[WholeGrouping],
    streams: Vec<Stream>,
    native: &Native,
    req: &StemRequest,
) -> Result<(Vec<StemFile>, Option<StemFile>)> {
    let mut written = Vec::new();
    let mut residual_file = None;
    for (g, mut stream) in groupings.iter().zip(streams) {
        stream.flush(native.len, req.audio)?;
        for (f, rel) in stream.files.into_iter().zip(stream.rels) {
            f.finish()?;
            written.push(StemFile {
                kind: g.dir,
                file: rel,
                start: 0.0,
                score_note: None,
            });
        }
        if let Some(r) = stream.residual {
            r.finish()?;
            residual_file = Some(StemFile {
                kind: "residual",
                file: "stems/residual.wav".into(),
                start: 0.0,
                score_note: None,
            });
        }
    }
    Ok((written, residual_file))
}

/// Per-note stems: for each played note, the mask of its share among the notes sounding in
/// its frames (those with activation from one frame before its first to one after its last),
/// written cropped to those frames unless `full_length`.
fn write_note_stems(
    outdir: &std::path::Path,
    model: &Model,
    req: &StemRequest,
    native: &Native,
    owners: &[Vec<usize>],
    steps: &mut Steps,
) -> Result<Vec<StemFile>> {
    let n_frames = model.h.ncols();
    let rate = req.audio.sample_rate;
    let span = note_spans(model, owners, req.score.notes.len());
    // Each note's slot among the notes sounding with the one being written (usize::MAX: none).
    let mut slot_of = vec![usize::MAX; req.score.notes.len()];
    let mut written = Vec::new();
    for (id, n) in req.score.notes.iter().enumerate() {
        steps.tick();
        let (first, last) = span[id];
        if !req.onsets[id].is_finite() || first == usize::MAX {
            continue;
        }
        let (from, to) = (first.saturating_sub(1), (last + 2).min(n_frames));
        let local = notes_sounding(model, owners, id, from, to);
        for (g, &note) in local.iter().enumerate() {
            slot_of[note] = g;
        }
        let mask = first_group_mask(
            model,
            owners,
            &slot_of,
            local.len(),
            from,
            to,
            req.params.mask_power,
        );
        for &note in &local {
            slot_of[note] = usize::MAX;
        }
        let frames = native.frames_for(from, to);
        let spectra = native.spectra(frames);
        let (start, chans) = native.apply(&mask, from, frames, &spectra, req.full_length);
        let rel = format!(
            "stems/note/{id:04}_{}_{}_{:.3}s.wav",
            n.pitch,
            file_pitch_name(n.pitch),
            req.onsets[id]
        );
        crate::io::audio::write_wav(&outdir.join(&rel), &chans, rate, req.encoding)?;
        written.push(StemFile {
            kind: By::Note.dir(),
            file: rel,
            start: start as f64 / rate as f64,
            score_note: Some(id),
        });
    }
    Ok(written)
}

/// The mask M_0 = S_0^p / Σ_g S_g^p of group 0 over frames `from..to`, where the part of
/// component c at frame n belongs to group `slot_of[owner]` (below `n_groups`; `usize::MAX`:
/// none). The same numbers as [`group_models`] then [`to_masks`] (each entry's S_g adds its
/// parts in component order, the sum adds the groups in order), but one group at a time on
/// blocks of [`MASK_COLUMNS`] frames: the memory is a few blocks, not one K × frames matrix per
/// group, and no mask but the first is divided out.
fn first_group_mask(
    model: &Model,
    owners: &[Vec<usize>],
    slot_of: &[usize],
    n_groups: usize,
    from: usize,
    to: usize,
    p: f64,
) -> DMatrix<f64> {
    use rayon::prelude::*;
    let k = model.w.nrows();
    let mut mask = DMatrix::zeros(k, to - from);
    mask.as_mut_slice()
        .par_chunks_mut(k * MASK_COLUMNS)
        .enumerate()
        .for_each(|(b, out)| {
            let first = from + b * MASK_COLUMNS;
            let frames = out.len() / k.max(1);
            let mut s = vec![0.0f64; out.len()];
            let mut total = vec![0.0f64; out.len()];
            for g in 0..n_groups {
                s.iter_mut().for_each(|x| *x = 0.0);
                for_each_part(model, owners, first, frames, |_, i, note, hv, wc| {
                    if slot_of[note] == g {
                        for (o, &w) in s[i * k..(i + 1) * k].iter_mut().zip(wc) {
                            *o += hv * w;
                        }
                    }
                });
                for ((x, t), o) in s.iter_mut().zip(total.iter_mut()).zip(out.iter_mut()) {
                    *x = mask_power(*x, p);
                    *t += *x;
                    if g == 0 {
                        *o = *x;
                    }
                }
            }
            for (o, &t) in out.iter_mut().zip(&total) {
                *o = if t > 0.0 { *o / t } else { 0.0 };
            }
        });
    mask
}

/// v^p of a model entry (negative values, from rounding, as 0): x·x is the correctly rounded
/// square, as fast as a multiplication; `powf` takes far longer for the default p = 2.
#[inline(always)]
fn mask_power(v: f64, p: f64) -> f64 {
    match p {
        1.0 => v,
        2.0 => v.max(0.0) * v.max(0.0),
        _ => v.max(0.0).powf(p),
    }
}

/// Each note's first and last frame with activation (`(usize::MAX, 0)` for none).
fn note_spans(model: &Model, owners: &[Vec<usize>], n_notes: usize) -> Vec<(usize, usize)> {
    let mut span = vec![(usize::MAX, 0usize); n_notes];
    for (c, owner) in owners.iter().enumerate() {
        for (f, &id) in owner.iter().enumerate() {
            if id != usize::MAX && model.h[(c, f)] > 0.0 {
                span[id] = (span[id].0.min(f), span[id].1.max(f));
            }
        }
    }
    span
}

/// Note `id` first, then every other note with activation in frames [from, to).
fn notes_sounding(
    model: &Model,
    owners: &[Vec<usize>],
    id: usize,
    from: usize,
    to: usize,
) -> Vec<usize> {
    let mut local: Vec<usize> = vec![id];
    for (c, owner) in owners.iter().enumerate() {
        for (f, &o) in owner.iter().enumerate().take(to).skip(from) {
            if o != usize::MAX && model.h[(c, f)] > 0.0 && !local.contains(&o) {
                local.push(o);
            }
        }
    }
    local
}

/// Stems from masks handed over block by block, for a factorization without a score (the blind
/// decomposition's components, HPSS's parts): each stem's mask is laid over every original
/// channel at its own rate as for the score's stems, and `stems/residual.wav` is the mixture
/// minus the stems.
pub struct MaskStems<'a> {
    pub audio: &'a Audio,
    /// The grid the masks are on.
    pub grid: Grid,
    /// Analysis frames.
    pub n_frames: usize,
    /// Folder under `stems/` (empty: directly in `stems/`).
    pub dir: &'a str,
    /// What the stems are, as run.json and the summary name them.
    pub kind: &'static str,
    /// Each stem's file name, without `.wav`.
    pub names: &'a [String],
    pub encoding: crate::io::audio::WavEncoding,
}

/// The masks of analysis frames `from..to`, one K × (to − from) matrix per stem.
pub type BlockMasks<'a> = dyn Fn(usize, usize) -> Vec<DMatrix<f64>> + Sync + 'a;

/// Writes the stems of [`MaskStems`] under `outdir`, block by block of 256 analysis
/// frames; `progress(done, total)` counts the blocks. Returns the stems, then the residual.
pub fn write_mask_stems(
    outdir: &std::path::Path,
    req: &MaskStems,
    masks: &BlockMasks,
    progress: &dyn Fn(usize, usize),
) -> Result<Vec<StemFile>> {
    use rayon::prelude::*;
    let native = Native::new(req.grid, req.audio)?;
    let n_ch = req.audio.channels.len();
    let create =
        |rel: &str| WavStream::create(&outdir.join(rel), n_ch, req.audio.sample_rate, req.encoding);
    let folder = if req.dir.is_empty() {
        "stems".to_string()
    } else {
        format!("stems/{}", req.dir)
    };
    let rels: Vec<String> = req
        .names
        .iter()
        .map(|l| format!("{folder}/{l}.wav"))
        .collect();
    let mut stream = Stream {
        files: rels.iter().map(|r| create(r)).collect::<Result<Vec<_>>>()?,
        rels,
        residual: Some(create("stems/residual.wav")?),
        ola: OverlapAdd::new(req.names.len().max(1), n_ch),
    };
    let n = req.n_frames;
    let total = n.div_ceil(BLOCK).max(1);
    let mut pending: Option<usize> = None;
    for (b, from) in (0..n).step_by(BLOCK).enumerate() {
        let to = (from + BLOCK).min(n);
        let compute = || {
            let frames = native.frames_for(from, to);
            let spectra = native.spectra(frames);
            let upto = if to == n {
                native.len
            } else {
                native.first_sample(frames.1)
            };
            let pieces: Vec<(usize, Vec<Vec<f32>>)> = masks(from, (to + 1).min(n))
                .par_iter()
                .map(|m| native.apply(m, from, frames, &spectra, false))
                .collect();
            (upto, pieces)
        };
        let flush = |stream: &mut Stream| match pending {
            Some(upto) => stream.flush(upto, req.audio),
            None => Ok(()),
        };
        let (flushed, (upto, pieces)) = rayon::join(|| flush(&mut stream), compute);
        flushed?;
        for (g, (start, chans)) in pieces.iter().enumerate() {
            stream.ola.add(g, *start, chans);
        }
        pending = Some(upto);
        progress(b + 1, total);
    }
    stream.flush(native.len, req.audio)?;
    let mut written = Vec::new();
    for (f, rel) in stream.files.into_iter().zip(stream.rels) {
        f.finish()?;
        written.push(StemFile {
            kind: req.kind,
            file: rel,
            start: 0.0,
            score_note: None,
        });
    }
    if let Some(r) = stream.residual {
        r.finish()?;
        written.push(StemFile {
            kind: "residual",
            file: "stems/residual.wav".into(),
            start: 0.0,
            score_note: None,
        });
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stem_names_are_distinct_bounded_and_portable() {
        let labels: Vec<String> = ["a b", "a_b", "a_b_2", "A_B", "con", "..x..", "", "é"]
            .iter()
            .map(|s| s.to_string())
            .chain(["x".repeat(246), "x".repeat(5_000_000), "x".repeat(MAX_NAME)])
            .collect();
        let names = stem_names(&labels);
        let lower: std::collections::HashSet<String> =
            names.iter().map(|n| n.to_ascii_lowercase()).collect();
        assert_eq!(lower.len(), labels.len(), "{names:?}");
        assert_eq!(&names[..4], ["a_b", "a_b_2", "a_b_2_2", "A_B_3"]);
        assert_eq!(names[4], "_con");
        assert_eq!(names[5], "x");
        assert_eq!(names[6], "unlabeled");
        assert_eq!(names[7], "_");
        for n in &names {
            assert!(n.len() <= MAX_NAME, "{n}");
            assert!(!n.starts_with('.') && !n.ends_with('.'), "{n}");
        }
        assert_eq!(names[8], "x".repeat(MAX_NAME));
        assert_eq!(names[9], format!("{}_2", "x".repeat(MAX_NAME - 2)));
        assert_eq!(names[10], format!("{}_3", "x".repeat(MAX_NAME - 2)));
    }
}
