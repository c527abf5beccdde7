//! `report.html`: the figures' SVG axes and overlays around the PNG heatmaps, the notes'
//! table, the players; all inline (one small script sorts the table), nothing from a network.

use std::fmt::Write as _;
use std::path::Path;

use super::{Figures, Page, Reference, Sounds, StemReference, H, H0, PAGE, SPECTROGRAM, W, W0};
use crate::error::Result;
use crate::io::atomic;
use crate::io::score::pitch_name;

/// The figures' drawing width (SVG user units; the page scales them to its width).
pub(super) const FIG_W: f64 = 1000.0;
/// Left margin (axis labels) and right margin (colour bar).
pub(super) const LEFT: f64 = 70.0;
pub(super) const RIGHT: f64 = 70.0;
pub(super) const TOP: f64 = 10.0;
pub(super) const BOTTOM: f64 = 40.0;
/// Instruments' colours (Tableau 10), in the order of the score's labels.
const COLOURS: [&str; 10] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#aec7e8",
];
/// Not played.
pub(super) const RED: &str = "#d62728";
/// Columns of a waveform.
const WAVE_COLUMNS: usize = 800;

/// Writes `root/report.html`: the sections `page` has figures for, then the players.
pub fn write_page(root: &Path, page: &Page) -> Result<()> {
    let mut html = String::with_capacity(1 << 16);
    head(&mut html, page.title);
    if let Some(f) = page.figures {
        summary(&mut html, f);
    }
    if let Some(r) = page.reference {
        against(&mut html, r);
    }
    if let Some(s) = page.stem_reference {
        against_stems(&mut html, s);
    }
    if let Some(a) = page.alignment {
        super::alignment::section(&mut html, a);
    }
    if let Some(f) = page.figures {
        spectrogram(&mut html, f, page.reference);
        factorization(&mut html, f);
        notes_table(&mut html, f);
    }
    players(&mut html, &page.sounds);
    html.push_str(SCRIPT);
    html.push_str("</body></html>\n");
    atomic::write_bytes(&root.join(PAGE), html.as_bytes())
}

fn head(html: &mut String, title: &str) {
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>scorenmf: {t}</title><style>{STYLE}</style></head><body>\
         <h1>scorenmf report: {t}</h1>",
        t = esc(title)
    );
}

fn summary(html: &mut String, f: &Figures) {
    let t = &f.transcription;
    let _ = write!(
        html,
        "<p class=\"summary\"><b>{}</b> of {} score notes played, <b class=\"red\">{}</b> not played; \
         the score's median offset to the recording {:+.0} ms; {:.2} s of audio; \
         NMF: {} components, {} iterations, relative error ‖V − WH‖/‖V‖ = {:.4}.</p>",
        t.events.len(),
        f.score.notes.len(),
        t.not_played.len(),
        1000.0 * t.score_offset,
        f.duration,
        f.component_labels.len(),
        f.iterations,
        f.rel_error
    );
}

/// The x coordinate of time `t` in a figure of plot width `pw`.
pub(super) fn tx(t: f64, duration: f64, pw: f64) -> f64 {
    LEFT + pw * (t / duration.max(1e-9)).clamp(0.0, 1.0)
}

/// A time axis under a plot at `y` of width `pw`.
pub(super) fn time_axis(svg: &mut String, duration: f64, pw: f64, y: f64) {
    let step = nice_step(duration / 10.0);
    let mut t = 0.0;
    while t <= duration + 1e-9 {
        let x = tx(t, duration, pw);
        let _ = write!(
            svg,
            "<line class=\"tick\" x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            y + 5.0,
            y + 18.0,
            trim(t)
        );
        t += step;
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time (s)</text>",
        LEFT + pw / 2.0,
        y + 34.0
    );
}

/// A tick on the left axis at height `y`, labelled.
pub(super) fn y_tick(svg: &mut String, y: f64, label: &str) {
    let _ = write!(
        svg,
        "<line class=\"tick\" x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{LEFT}\" y2=\"{y:.1}\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
        LEFT - 5.0,
        LEFT - 8.0,
        y + 4.0,
        label
    );
}

/// 1, 2 or 5 times a power of ten, at least `x`.
pub(super) fn nice_step(x: f64) -> f64 {
    let p = 10f64.powf(x.max(1e-6).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&s| s >= x)
        .unwrap_or(10.0 * p)
}

pub(super) fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A vertical colour bar (white to black) from 0 to `max` at the right of a plot.
pub(super) fn colour_bar(
    svg: &mut String,
    id: &str,
    x: f64,
    y: f64,
    h: f64,
    max: f32,
    label: &str,
) {
    let _ = write!(
        svg,
        "<defs><linearGradient id=\"{id}\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">\
         <stop offset=\"0\" stop-color=\"#fff\"/><stop offset=\"1\" stop-color=\"#000\"/>\
         </linearGradient></defs>\
         <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"12\" height=\"{h:.1}\" fill=\"url(#{id})\" stroke=\"#444\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\">{}</text><text x=\"{:.1}\" y=\"{:.1}\">0</text>\
         <text class=\"small\" x=\"{:.1}\" y=\"{:.1}\" transform=\"rotate(90 {:.1} {:.1})\">{}</text>",
        x + 16.0,
        y + 10.0,
        trim(max as f64),
        x + 16.0,
        y + h,
        x + 44.0,
        y,
        x + 44.0,
        y,
        esc(label)
    );
}

/// `eval notes`' metrics against the reference.
fn against(html: &mut String, r: &Reference) {
    let row = |name: &str, s: &crate::eval::notes::NoteScores| {
        format!(
            "<tr><td style=\"text-align:left\">{name}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td></tr>",
            s.precision, s.recall, s.f_measure, s.average_overlap_ratio, s.matched
        )
    };
    let _ = write!(
        html,
        "<h2>Against the reference</h2><p>{} ({} notes; {} played notes), as <code>scorenmf eval \
         notes</code> and mir_eval compute it (onsets within 50 ms, pitch within 50 cents; \
         offsets within 20 % of the duration or 50 \
         ms):</p><table><thead><tr><th>metric</th><th>precision</th><th>recall</th><th>F-measure</th><th>average \
         overlap</th><th>matched</th></tr></thead><tbody>{}{}</tbody></table><p>On the \
         spectrogram: <span class=\"key missed-key\"></span>{} reference notes no played note \
         matches (dashed), <span class=\"key wrong-key\"></span>{} played notes that match no \
         reference note (onsets only).</p>",
        esc(&r.path.display().to_string()),
        r.onsets.reference,
        r.onsets.estimated,
        row("onsets", &r.onsets),
        row("onsets and offsets", &r.with_offsets),
        r.missed.len(),
        r.wrong.len()
    );
}

/// `eval stems`' metrics against the reference stems, a table per grouping.
fn against_stems(html: &mut String, r: &StemReference) {
    let _ = write!(
        html,
        "<h2>Stems against the reference</h2><p>{}, as <code>scorenmf eval stems</code> and \
         mir_eval's <code>bss_eval_sources</code> compute it (BSS Eval v3, 512-tap filters, \
         no permutation; mono mix-downs), in dB:</p>",
        esc(&r.path.display().to_string())
    );
    for g in &r.groupings {
        let n = g.scores.len().max(1) as f64;
        let mean = |f: fn(&crate::eval::stems::SourceScores) -> f64| {
            g.scores.iter().map(f).sum::<f64>() / n
        };
        let _ = write!(
            html,
            "<table class=\"stems-eval\"><caption>{}</caption><thead><tr><th>stem</th><th>SDR</th>\
             <th>SIR</th><th>SAR</th><th>SI-SDR</th></tr></thead><tbody>",
            esc(&g.folder)
        );
        for (name, s) in g.names.iter().zip(&g.scores) {
            let _ = write!(
                html,
                "<tr><td style=\"text-align:left\">{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
                esc(name),
                s.sdr,
                s.sir,
                s.sar,
                s.si_sdr
            );
        }
        let _ = write!(
            html,
            "<tr><td style=\"text-align:left\"><b>mean</b></td><td><b>{:.2}</b></td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr></tbody></table>",
            mean(|s| s.sdr),
            mean(|s| s.sir),
            mean(|s| s.sar),
            mean(|s| s.si_sdr)
        );
    }
}

/// The spectrogram figure's geometry: the pitch rows and the time axis.
pub(super) struct Roll {
    pub(super) low: u8,
    pub(super) top: u8,
    /// Height of a semitone.
    pub(super) row: f64,
    /// Plot width.
    pub(super) pw: f64,
    pub(super) duration: f64,
}

impl Roll {
    fn new(f: &Figures) -> Roll {
        let (low, top) = f.pitch_range;
        Roll {
            low,
            top,
            row: (560.0 / (top - low + 1) as f64).clamp(4.0, 12.0),
            pw: FIG_W - LEFT - RIGHT,
            duration: f.duration,
        }
    }

    fn semitones(&self) -> f64 {
        (self.top - self.low + 1) as f64
    }

    /// Plot height.
    pub(super) fn ph(&self) -> f64 {
        self.row * self.semitones()
    }

    /// The centre of pitch `p`'s row.
    fn y(&self, p: u8) -> f64 {
        TOP + (self.top as f64 + 0.5 - p as f64) * self.row
    }

    /// A note's box from `t0` to `t1` on pitch `p`, with its hover text.
    fn rect(
        &self,
        svg: &mut String,
        class: &str,
        style: &str,
        (t0, t1): (f64, f64),
        p: u8,
        title: &str,
    ) {
        let (x0, x1) = (
            tx(t0, self.duration, self.pw),
            tx(t1, self.duration, self.pw),
        );
        let _ = write!(
            svg,
            "<rect class=\"{class}\" style=\"{style}\" x=\"{x0:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\"><title>{}</title></rect>",
            self.y(p) - self.row / 2.0,
            (x1 - x0).max(1.0),
            self.row,
            esc(title)
        );
    }

    /// Note names on the left: every C, or every note when the range is two octaves or less.
    pub(super) fn pitch_axis(&self, svg: &mut String) {
        for p in self.low..=self.top {
            if p % 12 == 0 || self.semitones() <= 24.0 {
                y_tick(svg, self.y(p), &pitch_name(p));
            }
        }
    }
}

/// The instruments' colours, in the order of the score's labels.
pub(super) struct Palette(pub(super) Vec<String>);

impl Palette {
    pub(super) fn colour(&self, label: &str) -> &'static str {
        let i = self.0.iter().position(|x| x == label).unwrap_or(0);
        COLOURS[i % COLOURS.len()]
    }

    /// A colour key per instrument, for the caption.
    fn legend(&self) -> String {
        self.0
            .iter()
            .map(|i| {
                format!(
                    "<span class=\"key\" style=\"background:{}\"></span>{} ",
                    self.colour(i),
                    esc(i)
                )
            })
            .collect()
    }
}

/// Each score note as an outline at its score time.
fn score_outlines(svg: &mut String, roll: &Roll, f: &Figures) {
    for (i, n) in f.score.notes.iter().enumerate() {
        let bar = n
            .measure
            .as_ref()
            .map_or(String::new(), |m| format!(", bar {m}"));
        let title = format!(
            "score note {i}: {} {} at {:.3} s{bar}",
            pitch_name(n.pitch),
            n.instrument,
            n.onset
        );
        roll.rect(svg, "score", "", (n.onset, n.end()), n.pitch, &title);
    }
}

/// Each played note filled from its onset to its offset, in its instrument's colour.
fn played_boxes(svg: &mut String, roll: &Roll, f: &Figures, palette: &Palette) {
    for e in &f.transcription.events {
        let title = format!(
            "{} {}: played {:.3}–{:.3} s, shift {:+.0} ms, velocity {}, confidence {:.2}",
            e.pitch_name,
            e.instrument,
            e.onset,
            e.offset,
            1000.0 * e.onset_shift,
            e.velocity,
            e.confidence
        );
        let c = palette.colour(&e.instrument);
        let style = format!("fill:{c};stroke:{c}");
        roll.rect(svg, "played", &style, (e.onset, e.offset), e.pitch, &title);
    }
}

/// Each note judged not played, in red at its score time.
fn unplayed_boxes(svg: &mut String, roll: &Roll, f: &Figures) {
    let style = format!("fill:{RED};stroke:{RED}");
    for u in &f.transcription.not_played {
        let n = &f.score.notes[u.score_note];
        let title = format!(
            "NOT PLAYED: {} {} at score {:.3} s (confidence {:.2})",
            u.pitch_name, u.instrument, u.score_onset, u.confidence
        );
        let span = (u.score_onset, u.score_onset + n.duration);
        roll.rect(svg, "unplayed", &style, span, u.pitch, &title);
    }
}

/// The reference's missed notes and the played notes it does not have.
fn reference_marks(svg: &mut String, roll: &Roll, r: &Reference) {
    for (class, notes, what) in [
        ("missed", &r.missed, "MISSED reference note"),
        ("wrong", &r.wrong, "WRONG: no reference note"),
    ] {
        for n in notes
            .iter()
            .filter(|n| (roll.low..=roll.top).contains(&n.pitch))
        {
            let title = format!(
                "{what}: {} at {:.3}–{:.3} s",
                pitch_name(n.pitch),
                n.onset,
                n.end()
            );
            roll.rect(svg, class, "", (n.onset, n.end()), n.pitch, &title);
        }
    }
}

/// The spectrogram on a pitch axis with the score and the transcription over it (and, with a
/// reference, its missed and wrong notes). A long recording's ([`Figures::tiles`]) is an
/// overview with the notes not played and the reference's marks only, and a page of it at full
/// resolution with every note ([`super::zoom`]).
fn spectrogram(html: &mut String, f: &Figures, reference: Option<&Reference>) {
    let long = !f.tiles.is_empty();
    let roll = Roll::new(f);
    let (pw, ph) = (roll.pw, roll.ph());
    let palette = Palette(f.score.instruments());
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg id=\"{}\" viewBox=\"0 0 {FIG_W} {:.1}\" role=\"img\">\
         <image href=\"{SPECTROGRAM}\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw:.1}\" height=\"{ph:.1}\" preserveAspectRatio=\"none\"/>",
        if long { "overview" } else { "spectrogram" },
        TOP + ph + BOTTOM
    );
    roll.pitch_axis(&mut svg);
    if !long {
        score_outlines(&mut svg, &roll, f);
        played_boxes(&mut svg, &roll, f, &palette);
    }
    unplayed_boxes(&mut svg, &roll, f);
    if let Some(r) = reference {
        reference_marks(&mut svg, &roll, r);
    }
    if long {
        super::zoom::window_mark(&mut svg, &roll, &f.tiles[0]);
    }
    time_axis(&mut svg, f.duration, pw, TOP + ph);
    let bar_x = FIG_W - RIGHT + 8.0;
    colour_bar(
        &mut svg,
        "g-spec",
        bar_x,
        TOP,
        ph,
        f.spectrogram_max,
        &f.magnitude_label,
    );
    svg.push_str("</svg>");
    let legend = palette.legend();
    if long {
        let zoom = super::zoom::zoom_figure(f, reference, &roll, &palette);
        let _ = write!(
            html,
            "<h2>Spectrogram and transcription</h2><figure>{svg}<figcaption>Overview: the \
             recording's log-magnitude spectrogram ({}) on a pitch axis (dark: loud), with the \
             notes judged not played in <span class=\"key\" style=\"background:{RED}\"></span>red \
             at their score time. Click it to show that part below.</figcaption></figure>\
             <figure>{zoom}<figcaption>{} s of the spectrogram at full resolution: each score note \
             as an outline at its score time; each played note filled from its detected onset to \
             its offset, coloured by instrument: {legend}; notes not played in red. Hover a note \
             for its figures; ◀ ▶ (or the arrow keys) turn the page.</figcaption></figure>",
            esc(&f.magnitude_label),
            trim(super::TILE_SECONDS)
        );
        return;
    }
    let _ = write!(
        html,
        "<h2>Spectrogram and transcription</h2><figure>{svg}<figcaption>The recording's \
         log-magnitude spectrogram ({}) on a pitch axis (dark: loud). Over it: each score note as \
         an outline at its score time; each played note filled from its detected onset to its \
         offset, coloured by instrument: {legend}; notes judged not played in \
         <span class=\"key\" style=\"background:{RED}\"></span>red at their score time. Hover a \
         note for its figures.</figcaption></figure>",
        esc(&f.magnitude_label),
    );
}

/// W₀ and W, H₀ and H, as FMP's figure: templates over frequency, activations over time, one
/// row or column per component.
fn factorization(html: &mut String, f: &Figures) {
    let w0 = "initial templates: harmonic combs and onset templates";
    let w_svgs = [
        templates_figure(f, "W₀", W0, f.w0_max, w0),
        templates_figure(f, "W", W, f.w_max, "learned templates"),
    ]
    .concat();
    let h0 = "score-constrained initial activations";
    let h_svgs = [
        activations_figure(f, "H₀", H0, f.h0_max, h0),
        activations_figure(f, "H", H, f.h_max, "learned activations"),
    ]
    .concat();
    let curve = error_curve(&f.errors, f.iterations);
    let _ = write!(
        html,
        "<h2>Factorization</h2><figure><div class=\"pair\">{w_svgs}</div>{h_svgs}{curve}<figcaption>The \
         constrained NMF V ≈ WH, as in FMP's notebook C8S3: W₀ and H₀ from the score (zeros stay \
         zero under the multiplicative updates), W and H after {} iterations (relative error {:.4}). \
         One column of W and one row of H per component: per pitch, an onset component (a broadband \
         template active around the note's onset) and a harmonic one (a comb at the pitch's \
         partials, active over the note). Dark: large.</figcaption></figure>",
        f.iterations, f.rel_error
    );
}

/// One of W₀ and W: frequency up (Hz), one column per component (labelled below).
fn templates_figure(f: &Figures, name: &str, file: &str, max: f32, what: &str) -> String {
    let (tw, th) = (420.0, 300.0);
    let col = tw / (f.component_labels.len().max(1) as f64);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg viewBox=\"0 0 {:.1} {:.1}\" role=\"img\"><text x=\"{:.1}\" y=\"14\" text-anchor=\"middle\">{name} ({what})</text>\
         <image href=\"{file}\" x=\"{LEFT}\" y=\"22\" width=\"{tw:.1}\" height=\"{th:.1}\" preserveAspectRatio=\"none\"/>",
        LEFT + tw + 90.0,
        th + 22.0 + 110.0,
        LEFT + tw / 2.0
    );
    let step = nice_step(f.template_top_hz / 6.0);
    let mut hz = 0.0;
    while hz <= f.template_top_hz + 1e-9 {
        let y = 22.0 + th * (1.0 - hz / f.template_top_hz);
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y + 4.0,
            trim(hz)
        );
        hz += step;
    }
    let _ = write!(
        svg,
        "<text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">frequency (Hz)</text>",
        22.0 + th / 2.0,
        22.0 + th / 2.0
    );
    for (i, l) in f.component_labels.iter().enumerate() {
        let x = LEFT + (i as f64 + 0.5) * col;
        let y = 22.0 + th + 6.0;
        let _ = write!(
            svg,
            "<text class=\"small\" x=\"{x:.1}\" y=\"{y:.1}\" transform=\"rotate(60 {x:.1} {y:.1})\">{}</text>",
            esc(l)
        );
    }
    colour_bar(
        &mut svg,
        &format!("g-{file}"),
        LEFT + tw + 8.0,
        22.0,
        th,
        max,
        "",
    );
    svg.push_str("</svg>");
    format!("<div class=\"half\">{svg}</div>")
}

/// One of H₀ and H: one row per component (labelled left), time across.
fn activations_figure(f: &Figures, name: &str, file: &str, max: f32, what: &str) -> String {
    let r = f.component_labels.len().max(1) as f64;
    let row = (420.0 / r).clamp(3.0, 14.0);
    let hh = row * r;
    let pw = FIG_W - LEFT - RIGHT - 40.0;
    let left = LEFT + 40.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg viewBox=\"0 0 {FIG_W} {:.1}\" role=\"img\"><text x=\"{:.1}\" y=\"14\" text-anchor=\"middle\">{name} ({what})</text>\
         <image href=\"{file}\" x=\"{left}\" y=\"22\" width=\"{pw:.1}\" height=\"{hh:.1}\" preserveAspectRatio=\"none\"/>",
        22.0 + hh + BOTTOM,
        left + pw / 2.0
    );
    for (i, l) in f.component_labels.iter().enumerate() {
        let _ = write!(
            svg,
            "<text class=\"small\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            22.0 + (i as f64 + 0.5) * row + 3.0,
            esc(l)
        );
    }
    // The time axis is drawn for the spectrogram's margin, then moved to this plot's.
    let mut axis = String::new();
    time_axis(&mut axis, f.duration, pw, 22.0 + hh);
    svg.push_str(&shift_x(&axis, left - LEFT));
    colour_bar(
        &mut svg,
        &format!("g-{file}"),
        left + pw + 8.0,
        22.0,
        hh,
        max,
        "",
    );
    svg.push_str("</svg>");
    svg
}

/// The NMF's relative error ‖V − WH‖/‖V‖ by iteration, as a line through the traced points
/// (nothing when not traced).
fn error_curve(errors: &[(usize, f64)], iterations: usize) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let (w, h) = (FIG_W - LEFT - RIGHT, 160.0);
    let (lo, hi) = errors
        .iter()
        .fold((f64::INFINITY, 0f64), |(l, m), &(_, e)| {
            (l.min(e), m.max(e))
        });
    let span = (hi - lo).max(1e-12);
    let y = |e: f64| 22.0 + h * (hi - e) / span;
    let last = iterations.max(2) as f64;
    let x = |i: f64| LEFT + w * (i - 1.0) / (last - 1.0);
    let points: String = errors
        .iter()
        .map(|&(i, e)| format!("{:.1},{:.1} ", x(i as f64), y(e)))
        .collect();
    let dots: String = errors
        .iter()
        .map(|&(i, e)| {
            format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#1f77b4\"><title>iteration {i}: {e:.5}</title></circle>",
                x(i as f64),
                y(e)
            )
        })
        .collect();
    let mut svg = format!(
        "<svg id=\"nmf-error\" viewBox=\"0 0 {FIG_W} {:.1}\" role=\"img\"><text x=\"{:.1}\" y=\"14\" text-anchor=\"middle\">NMF error by iteration</text>\
         <polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"{points}\"/>{dots}",
        22.0 + h + BOTTOM,
        LEFT + w / 2.0
    );
    for e in [hi, lo] {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{e:.4}</text>",
            LEFT - 6.0,
            y(e) + 4.0
        );
    }
    let step = nice_step(last / 10.0).max(1.0);
    let mut ticks = vec![1.0];
    let mut t = step;
    while t <= last + 1e-9 {
        ticks.push(t);
        t += step;
    }
    for t in ticks {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x(t),
            22.0 + h + 18.0,
            t
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">iteration</text>\
         <text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">‖V − WH‖ / ‖V‖</text></svg>",
        LEFT + w / 2.0,
        22.0 + h + 34.0,
        22.0 + h / 2.0,
        22.0 + h / 2.0
    );
    svg
}

/// A fragment of SVG moved right by `dx` (a group with a transform).
fn shift_x(fragment: &str, dx: f64) -> String {
    format!("<g transform=\"translate({dx:.1} 0)\">{fragment}</g>")
}

/// The notes as a sortable table: the notes not played first, then by score onset.
fn notes_table(html: &mut String, f: &Figures) {
    let t = &f.transcription;
    let mut event_of = vec![None; f.score.notes.len()];
    for e in &t.events {
        event_of[e.score_note] = Some(e);
    }
    let mut unplayed_of = vec![None; f.score.notes.len()];
    for u in &t.not_played {
        unplayed_of[u.score_note] = Some(u);
    }
    let mut order: Vec<usize> = (0..f.score.notes.len()).collect();
    order.sort_by(|&a, &b| {
        (event_of[a].is_some(), f.score.notes[a].onset)
            .partial_cmp(&(event_of[b].is_some(), f.score.notes[b].onset))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    html.push_str(
        "<h2>Notes</h2><p>Click a column's heading to sort by it.</p><table id=\"notes\"><thead><tr>\
         <th data-type=\"n\">score note</th><th>bar</th><th data-type=\"n\">pitch</th><th>instrument</th>\
         <th data-type=\"n\">score onset (s)</th><th data-type=\"n\">played onset (s)</th>\
         <th data-type=\"n\">shift (ms)</th><th data-type=\"n\">offset (s)</th>\
         <th data-type=\"n\">velocity</th><th data-type=\"n\">gain</th><th>played</th>\
         <th data-type=\"n\">confidence</th></tr></thead><tbody>",
    );
    for i in order {
        let n = &f.score.notes[i];
        let bar = esc(n.measure.as_deref().unwrap_or(""));
        let common = format!(
            "<td>{i}</td><td>{bar}</td><td data-v=\"{}\">{}</td><td>{}</td><td>{:.3}</td>",
            n.pitch,
            pitch_name(n.pitch),
            esc(&n.instrument),
            n.onset
        );
        match (event_of[i], unplayed_of[i]) {
            (Some(e), _) => {
                let _ = write!(
                    html,
                    "<tr>{common}<td>{:.3}</td><td>{:+.0}</td><td>{:.3}</td><td>{}</td><td>{:.4}</td><td>yes</td><td>{:.2}</td></tr>",
                    e.onset,
                    1000.0 * e.onset_shift,
                    e.offset,
                    e.velocity,
                    e.gain,
                    e.confidence
                );
            }
            (None, u) => {
                let _ = write!(
                    html,
                    "<tr class=\"unplayed\">{common}<td></td><td></td><td></td><td></td><td></td><td>no</td><td>{}</td></tr>",
                    u.map_or(String::new(), |u| format!("{:.2}", u.confidence))
                );
            }
        }
    }
    html.push_str("</tbody></table>");
}

/// An audio player with its waveform for the recording and each stem (per-note stems folded
/// away: there can be hundreds).
fn players(html: &mut String, sounds: &Sounds) {
    html.push_str("<h2>Recording and stems</h2>");
    if let Some((mix, recording)) = &sounds.mix {
        let src = mix.to_string_lossy().replace('\\', "/");
        let wave = waveform_svg(&recording_envelope(recording));
        let _ = write!(
            html,
            "<div class=\"player\"><div class=\"name\">the recording (mix)</div>{wave}<audio controls preload=\"metadata\" src=\"{}\"></audio></div>",
            esc_attr(&src)
        );
    }
    if sounds.stems.is_empty() {
        html.push_str(
            "<p>No stems in this run (<code>separate</code> and <code>run</code> write them).</p>",
        );
        return;
    }
    // The stems' waveforms (not the per-note ones), read in parallel.
    let waves: Vec<String> = {
        use rayon::prelude::*;
        sounds
            .stems
            .par_iter()
            .map(|s| match s.kind {
                "note" => String::new(),
                _ => waveform_of(&sounds.dir.join(&s.file)),
            })
            .collect()
    };
    let mut notes = String::new();
    let mut count_notes = 0;
    for (s, wave) in sounds.stems.iter().zip(waves) {
        if s.kind == "note" {
            count_notes += 1;
            let _ = write!(
                notes,
                "<li>{} <audio controls preload=\"none\" src=\"{}\"></audio></li>",
                esc(&s.file),
                esc_attr(&s.file)
            );
            continue;
        }
        let _ = write!(
            html,
            "<div class=\"player\"><div class=\"name\">{} <span class=\"small\">({})</span></div>{wave}<audio controls preload=\"metadata\" src=\"{}\"></audio></div>",
            esc(&s.file),
            esc(s.kind),
            esc_attr(&s.file)
        );
    }
    if count_notes > 0 {
        let _ = write!(
            html,
            "<details><summary>{count_notes} per-note stems</summary><ul>{notes}</ul></details>"
        );
    }
    html.push_str(
        "<p class=\"small\">Each stem is the recording through a soft mask from the factorization \
         (Wiener-like, on every channel); the residual is what no component explains.</p>",
    );
}

/// The min and max of each of [`WAVE_COLUMNS`] equal spans of the recording's samples
/// (channels averaged).
fn recording_envelope(a: &crate::io::audio::Audio) -> Vec<(f32, f32)> {
    let n = a.len();
    let ch = a.channels.len().max(1) as f32;
    let mut cols = vec![(0f32, 0f32); WAVE_COLUMNS];
    let mut mono = Vec::with_capacity(65536);
    for start in (0..n).step_by(65536) {
        let end = (start + 65536).min(n);
        mono.clear();
        mono.extend((start..end).map(|i| a.channels.iter().map(|c| c[i]).sum::<f32>() / ch));
        fold_envelope(&mut cols, start, n, &mono);
    }
    cols
}

/// The envelope of a WAV file the run wrote (channels averaged): hound reads the header, then
/// the sample data is read in blocks and decoded in bulk (hound's per-sample reader takes
/// seconds for an hour of stems).
fn wav_envelope(path: &Path) -> std::result::Result<Vec<(f32, f32)>, String> {
    use std::io::Read;
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let r = hound::WavReader::open(path).map_err(|e| fail(&e))?;
    let spec = r.spec();
    let ch = spec.channels.max(1) as usize;
    let frames = r.duration() as usize;
    let width = spec.bits_per_sample.div_ceil(8) as usize;
    let decode: fn(&[u8]) -> f32 = match (spec.sample_format, width) {
        (hound::SampleFormat::Float, 4) => |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        (hound::SampleFormat::Int, 1) => |b| (b[0] as f32 - 128.0) / 128.0,
        (hound::SampleFormat::Int, 2) => |b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0,
        (hound::SampleFormat::Int, 3) => {
            |b| (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 / 8_388_608.0
        }
        (hound::SampleFormat::Int, 4) => {
            |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0
        }
        _ => return Err(fail(&"an encoding the stems never have")),
    };
    let mut data = r.into_inner().take((frames * ch * width) as u64);
    let frame_bytes = ch * width;
    let mut block = vec![0u8; frame_bytes * 65536];
    let mut mono = Vec::with_capacity(65536);
    let mut cols = vec![(0f32, 0f32); WAVE_COLUMNS];
    let mut at = 0usize;
    loop {
        let mut got = 0;
        while got < block.len() {
            match data.read(&mut block[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => return Err(fail(&e)),
            }
        }
        if got < frame_bytes {
            break;
        }
        mono.clear();
        mono.extend(
            block[..got - got % frame_bytes]
                .chunks_exact(frame_bytes)
                .map(|f| f.chunks_exact(width).map(decode).sum::<f32>() / ch as f32),
        );
        fold_envelope(&mut cols, at, frames, &mono);
        at += mono.len();
        if got < block.len() {
            break;
        }
    }
    Ok(cols)
}

/// Folds the mono samples `x`, the first at sample `at` of `frames`, into the columns' min and
/// max.
fn fold_envelope(cols: &mut [(f32, f32)], at: usize, frames: usize, x: &[f32]) {
    let n = cols.len();
    for (i, &v) in x.iter().enumerate() {
        let c = ((at + i) * n / frames.max(1)).min(n - 1);
        let (lo, hi) = &mut cols[c];
        *lo = lo.min(v);
        *hi = hi.max(v);
    }
}

/// An envelope as an SVG waveform, scaled to its peak.
fn waveform_svg(cols: &[(f32, f32)]) -> String {
    let peak = cols
        .iter()
        .fold(0f32, |m, &(lo, hi)| m.max(-lo).max(hi))
        .max(1e-9);
    let (w, h) = (FIG_W, 60.0);
    let n = cols.len().max(1) as f64;
    let mut top = String::new();
    let mut bottom = Vec::with_capacity(cols.len());
    for (c, &(lo, hi)) in cols.iter().enumerate() {
        let x = w * c as f64 / n;
        let _ = write!(
            top,
            "{}{x:.1},{:.1} ",
            if c == 0 { "M" } else { "L" },
            h / 2.0 - (hi / peak) as f64 * h / 2.0
        );
        bottom.push(format!(
            "L{x:.1},{:.1} ",
            h / 2.0 - (lo / peak) as f64 * h / 2.0
        ));
    }
    bottom.reverse();
    format!(
        "<svg class=\"wave\" viewBox=\"0 0 {w} {h}\" preserveAspectRatio=\"none\"><path d=\"{top}{}Z\"/></svg>",
        bottom.concat()
    )
}

/// A stem file's waveform, or a note saying why there is none.
fn waveform_of(path: &Path) -> String {
    match wav_envelope(path) {
        Ok(cols) => waveform_svg(&cols),
        Err(e) => format!("<p class=\"small\">no waveform: {}</p>", esc(&e)),
    }
}

pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub(super) fn esc_attr(s: &str) -> String {
    esc(s).replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;color:#222;padding:0 1em}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}\
svg{width:100%;height:auto;font-size:12px}svg text{fill:#222}.small{font-size:10px}\
.tick{stroke:#444}rect.score{fill:none;stroke:#00bcd4;stroke-width:1;opacity:.9}\
rect.played{fill-opacity:.45;stroke-width:1}rect.missed{fill:none;stroke:#e91e63;stroke-width:2;stroke-dasharray:4 3}\
rect.wrong{fill:none;stroke:#ff9800;stroke-width:3}.missed-key{border:2px dashed #e91e63}.wrong-key{border:3px solid #ff9800}rect.unplayed{fill-opacity:.5;stroke-width:2}\
figure{margin:0}figcaption{font-size:.9em;color:#444;margin:.4em 0 1em}\
.pair{display:flex;gap:1em}.half{flex:1}.key{display:inline-block;width:.9em;height:.9em;margin:0 .25em 0 .5em;vertical-align:middle}\
table{border-collapse:collapse;font-size:.85em}th,td{border:1px solid #ddd;padding:2px 6px;text-align:right}\
th{cursor:pointer;background:#f3f3f3}tr.unplayed td{background:#fde2e2}.red{color:#d62728}\
.player{margin:.6em 0}.player .name{font-weight:600}.wave{height:50px;display:block}.wave path{fill:#607d8b}\
audio{width:100%}.summary{font-size:1.05em}\
.zoom-controls{margin:.3em 0}.zoom-controls button{font-size:1em;padding:0 .6em}#overview{cursor:pointer}";

/// Sorts the notes' table by the clicked column (numbers as numbers; again reverses).
const SCRIPT: &str = "<script>\n\
(function(){var t=document.getElementById('notes');if(!t)return;var hs=t.tHead.rows[0].cells;\n\
for(var i=0;i<hs.length;i++){(function(c){var up=true;hs[c].addEventListener('click',function(){\n\
var num=hs[c].dataset.type==='n';var rows=Array.prototype.slice.call(t.tBodies[0].rows);\n\
var key=function(r){var d=r.cells[c];var v=d.dataset.v!==undefined?d.dataset.v:d.textContent;\n\
if(!num)return v;var x=parseFloat(v);return isNaN(x)?Infinity:x;};\n\
rows.sort(function(a,b){var x=key(a),y=key(b);return (x<y?-1:x>y?1:0)*(up?1:-1);});up=!up;\n\
rows.forEach(function(r){t.tBodies[0].appendChild(r);});});})(i);}})();\n\
</script>\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_are_one_two_five() {
        assert_eq!(nice_step(0.8), 1.0);
        assert_eq!(nice_step(1.1), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(60.0), 100.0);
        assert_eq!(trim(2.50), "2.5");
        assert_eq!(esc_attr("a<b\"&"), "a&lt;b&quot;&amp;");
    }
}
