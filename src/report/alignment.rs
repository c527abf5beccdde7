//! The alignment's figures: the local cost matrix of the score's against the recording's
//! features with the warping path over it (the figure of FMP's notebooks C3S2 and C3S3), and
//! the local tempo the path implies.

use std::fmt::Write as _;
use std::path::Path;

use super::image::{self, Raster};
use super::page::{
    colour_bar, esc, nice_step, time_axis, trim, tx, y_tick, BOTTOM, FIG_W, LEFT, RIGHT,
};
use crate::align::{features::Features, local_cost, AlignedFeatures, Alignment};
use crate::error::Result;

/// The cost matrix' image, relative to the page.
pub const COST: &str = "report/alignment.png";
/// The most columns (recording frames) and rows (score frames) of the cost matrix' image;
/// longer sequences are averaged onto it (chroma renormalized, as the alignment's own coarse
/// levels are).
const MAX_COLUMNS: usize = 1000;
const MAX_ROWS: usize = 600;
/// The local tempo at an anchor is the path's slope over this many score seconds each side.
const TEMPO_HALF_WINDOW: f64 = 2.0;
/// Points of the tempo curve and of the drawn path.
const TEMPO_POINTS: usize = 600;
const PATH_POINTS: usize = 2000;
/// The plot's height, SVG units.
const PLOT_H: f64 = 420.0;
const TEMPO_H: f64 = 160.0;

/// The alignment's figures, rendered, and what the page draws around them.
#[derive(Debug, Clone)]
pub struct AlignmentFigure {
    /// Seconds of the score (nominal tempo) and of the recording.
    pub score_duration: f64,
    pub recording_duration: f64,
    /// The cost image's largest value (the colour bar's top).
    pub cost_max: f32,
    /// The warping path as (recording, score) seconds, at most `PATH_POINTS` (2000).
    pub path: Vec<(f64, f64)>,
    /// (recording seconds, local tempo as a share of the score's): the path's slope.
    pub tempo: Vec<(f64, f64)>,
    pub confidence: f64,
    pub path_cost: f64,
    pub baseline_cost: f64,
    pub shift: i32,
    pub a4: f64,
    /// Which ends were free, as run.json names them.
    pub ends: String,
    /// Score notes aligned, and outside the aligned part.
    pub aligned_notes: usize,
    pub outside: usize,
}

impl AlignmentFigure {
    /// Renders the cost matrix into `root/report/` and keeps the path and the tempo.
    pub fn render(
        root: &Path,
        features: &AlignedFeatures,
        a: &Alignment,
        aligned_notes: usize,
        outside: usize,
    ) -> Result<AlignmentFigure> {
        let dir = root.join(super::IMAGE_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| crate::Error::write(&dir, e))?;
        let score = features.score.shifted(a.shift.rem_euclid(12) as usize);
        let mut raster = cost_raster(&score, &features.audio);
        let cost_max = raster.max();
        raster.normalize(cost_max);
        image::write_png(&root.join(COST), &raster)?;
        let rate = crate::align::features::FEATURE_RATE;
        Ok(AlignmentFigure {
            score_duration: a.score_frames as f64 / rate,
            recording_duration: a.audio_frames as f64 / rate,
            cost_max,
            path: decimated(&a.anchors, PATH_POINTS)
                .into_iter()
                .map(|(s, r)| (r, s))
                .collect(),
            tempo: local_tempo(&a.anchors, TEMPO_HALF_WINDOW, TEMPO_POINTS),
            confidence: a.confidence,
            path_cost: a.path_cost,
            baseline_cost: a.baseline_cost,
            shift: a.shift,
            a4: a.a4,
            ends: serde_json::to_value(a.ends)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            aligned_notes,
            outside,
        })
    }
}

/// The chroma cost 1 − ⟨c_s(i), c_a(j)⟩ (the alignment's coarse levels' local cost) on a grid
/// of at most [`MAX_COLUMNS`] × [`MAX_ROWS`] cells: recording time across, score time up.
fn cost_raster(score: &Features, audio: &Features) -> Raster {
    let fs = image::pooling(score.len(), MAX_ROWS);
    let fa = image::pooling(audio.len(), MAX_COLUMNS);
    let (s, r) = (score.coarsen(fs), audio.coarsen(fa));
    let mut raster = Raster::new(r.len(), s.len());
    for i in 0..s.len() {
        let y = s.len() - 1 - i;
        for j in 0..r.len() {
            raster.values[y * r.len() + j] = local_cost(&s, &r, i, j, 0.0).max(0.0);
        }
    }
    raster
}

/// At most `n` of `points`, evenly spaced, the last one kept.
fn decimated(points: &[(f64, f64)], n: usize) -> Vec<(f64, f64)> {
    let step = points.len().div_ceil(n.max(1)).max(1);
    let mut out: Vec<(f64, f64)> = points.iter().step_by(step).copied().collect();
    if let Some(&last) = points.last() {
        if out.last() != Some(&last) {
            out.push(last);
        }
    }
    out
}

/// The local tempo along the path: at about `n` anchors (score time s, recording time r), the
/// slope Δs / Δr between the first anchor at or after s − `half` and the last at or before
/// s + `half` (1: the score's tempo; 2: twice as fast). Anchors are strictly increasing in both.
fn local_tempo(anchors: &[(f64, f64)], half: f64, n: usize) -> Vec<(f64, f64)> {
    let step = anchors.len().div_ceil(n.max(1)).max(1);
    (0..anchors.len())
        .step_by(step)
        .filter_map(|k| {
            let (s, r) = anchors[k];
            let lo = anchors.partition_point(|a| a.0 < s - half);
            let hi = anchors
                .partition_point(|a| a.0 <= s + half)
                .saturating_sub(1);
            let (a, b) = (anchors[lo], anchors[hi.max(lo)]);
            (b.1 > a.1).then(|| (r, (b.0 - a.0) / (b.1 - a.1)))
        })
        .collect()
}

/// The page's alignment section: the cost matrix with the path, the tempo curve, a caption.
pub(super) fn section(html: &mut String, a: &AlignmentFigure) {
    let cost = cost_figure(a);
    let tempo = tempo_figure(a);
    let shift = match a.shift {
        0 => String::new(),
        s => format!(
            " The recording sounds {s:+} semitones from the score; the score was transposed to it."
        ),
    };
    let ends = match a.ends.as_str() {
        "recording_in_score" => "the recording holds part of the score",
        _ => "the whole score, anywhere in the recording",
    };
    let _ = write!(
        html,
        "<h2>Alignment</h2><figure>{cost}{tempo}<figcaption>Top: the local cost of each score \
         frame (up, seconds at the score's nominal tempo) against each recording frame (across): \
         1 − the cosine of their chroma vectors (white: alike), with the warping path found by \
         multiresolution DTW in red (its finest level adds the onset features' distance). Bottom: \
         the local tempo the path implies, the path's slope over ±{} score seconds (100 %: the \
         score's tempo). Confidence {:.2} (1 − path cost {:.3} / {:.3}, the cost of the score's \
         other transpositions); A4 = {:.1} Hz; ends: {ends}; {} score notes aligned, {} outside \
         the recording.{shift}</figcaption></figure>",
        trim(TEMPO_HALF_WINDOW),
        a.confidence,
        a.path_cost,
        a.baseline_cost,
        a.a4,
        a.aligned_notes,
        a.outside
    );
}

/// The cost matrix' image with the path, a score-time axis and a colour bar.
fn cost_figure(a: &AlignmentFigure) -> String {
    let pw = FIG_W - LEFT - RIGHT;
    let (top, ph) = (10.0, PLOT_H);
    let sy = |s: f64| top + ph * (1.0 - (s / a.score_duration.max(1e-9)).clamp(0.0, 1.0));
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg id=\"alignment\" viewBox=\"0 0 {FIG_W} {:.1}\" role=\"img\">\
         <image href=\"{COST}\" x=\"{LEFT}\" y=\"{top}\" width=\"{pw:.1}\" height=\"{ph:.1}\" preserveAspectRatio=\"none\"/>",
        top + ph + BOTTOM
    );
    let points: String = a
        .path
        .iter()
        .map(|&(r, s)| format!("{:.1},{:.1} ", tx(r, a.recording_duration, pw), sy(s)))
        .collect();
    let _ = write!(
        svg,
        "<polyline class=\"path\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.5\" points=\"{points}\"/>"
    );
    let step = nice_step(a.score_duration / 8.0);
    let mut s = 0.0;
    while s <= a.score_duration + 1e-9 {
        y_tick(&mut svg, sy(s), &trim(s));
        s += step;
    }
    let _ = write!(
        svg,
        "<text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">score time (s)</text>",
        top + ph / 2.0,
        top + ph / 2.0
    );
    time_axis(&mut svg, a.recording_duration, pw, top + ph);
    colour_bar(
        &mut svg,
        "g-align",
        FIG_W - RIGHT + 8.0,
        top,
        ph,
        a.cost_max,
        "chroma cost",
    );
    svg.push_str("</svg>");
    svg
}

/// The local tempo over recording time, in % of the score's, with a line at 100 %.
fn tempo_figure(a: &AlignmentFigure) -> String {
    let pw = FIG_W - LEFT - RIGHT;
    let (top, ph) = (22.0, TEMPO_H);
    let hi = a.tempo.iter().fold(1.5f64, |m, &(_, t)| m.max(t)).min(4.0);
    let ty = |t: f64| top + ph * (1.0 - (t / hi).clamp(0.0, 1.0));
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg id=\"tempo\" viewBox=\"0 0 {FIG_W} {:.1}\" role=\"img\"><text x=\"{:.1}\" y=\"14\" text-anchor=\"middle\">local tempo</text>\
         <line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>",
        top + ph + BOTTOM,
        LEFT + pw / 2.0,
        LEFT + pw,
        y = ty(1.0)
    );
    let points: String = a
        .tempo
        .iter()
        .map(|&(r, t)| format!("{:.1},{:.1} ", tx(r, a.recording_duration, pw), ty(t)))
        .collect();
    let _ = write!(
        svg,
        "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"{points}\"/>"
    );
    let step = nice_step(hi / 4.0);
    let mut t = 0.0;
    while t <= hi + 1e-9 {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} %</text>",
            LEFT - 6.0,
            ty(t) + 4.0,
            trim(100.0 * t)
        );
        t += step;
    }
    time_axis(&mut svg, a.recording_duration, pw, top + ph);
    let _ = write!(
        svg,
        "<text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">{}</text></svg>",
        top + ph / 2.0,
        top + ph / 2.0,
        esc("tempo")
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_tempo_is_the_paths_slope() {
        // The score played at half its tempo for 10 s, then at its tempo.
        let mut anchors = Vec::new();
        for k in 1..=250 {
            anchors.push((k as f64 * 0.02, k as f64 * 0.04));
        }
        for k in 1..=250 {
            anchors.push((5.0 + k as f64 * 0.02, 10.0 + k as f64 * 0.02));
        }
        let tempo = local_tempo(&anchors, 1.0, 50);
        let at = |r: f64| {
            tempo
                .iter()
                .min_by(|a, b| (a.0 - r).abs().total_cmp(&(b.0 - r).abs()))
                .unwrap()
                .1
        };
        assert!((at(4.0) - 0.5).abs() < 1e-9, "{}", at(4.0));
        assert!((at(13.0) - 1.0).abs() < 1e-9, "{}", at(13.0));
        assert!(tempo.len() <= 51);
    }

    #[test]
    fn cost_raster_is_light_where_the_chroma_agree() {
        let c = |q: usize| std::array::from_fn(|p| if p == q { 1.0 } else { 0.0 });
        let f = |qs: &[usize]| Features {
            chroma: qs.iter().map(|&q| c(q)).collect(),
            onsets: vec![[0.0; 12]; qs.len()],
        };
        let r = cost_raster(&f(&[0, 4, 7]), &f(&[0, 4, 7, 7]));
        assert_eq!((r.width, r.height), (4, 3));
        // The bottom row is the score's first frame: C against C costs 0, against E 1.
        assert_eq!(r.at(0, 2), 0.0);
        assert_eq!(r.at(1, 2), 1.0);
        assert_eq!(r.at(3, 0), 0.0);
    }

    #[test]
    fn decimation_keeps_the_ends() {
        let p: Vec<(f64, f64)> = (0..10).map(|k| (k as f64, k as f64)).collect();
        let d = decimated(&p, 4);
        assert_eq!(d.first(), Some(&(0.0, 0.0)));
        assert_eq!(d.last(), Some(&(9.0, 9.0)));
        assert!(d.len() <= 5);
    }
}
