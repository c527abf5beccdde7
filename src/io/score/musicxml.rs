//! MusicXML scores (`.musicxml`, `.xml`, and compressed `.mxl`), read with `roxmltree` (and
//! `zip` for `.mxl`) into the same [`Score`] as the other readers.
//!
//! What is read:
//! * partwise and timewise scores; each part's measures in order, `<chord/>`, `<backup>` and
//!   `<forward>` moving the part's time cursor, `<divisions>` changing inside the piece;
//! * ties (`<tie type="start|stop">`) merged into one note per staff and pitch;
//! * grace notes as short notes ([`GRACE_QUARTERS`] each) just before their principal note;
//! * `<transpose>`: notes sound at the written pitch plus the chromatic shift and octaves;
//! * tempo from `<sound tempo>` (quarters per minute) or, in a direction without one, a
//!   `<metronome>` mark; 120 per quarter until the first;
//! * velocity from `<sound dynamics>` or a note's `dynamics` attribute (a percentage of MIDI
//!   velocity 90, as the MusicXML standard defines it); 90 when none is given;
//! * repeats (`<repeat direction="forward|backward" times>`) and first/second endings
//!   (`<ending number type>`) unfolded as written ([`Repeats::Written`]) or ignored
//!   ([`Repeats::None`]: every measure once, in file order);
//! * each note keeps the number of its measure.
//!
//! Labels: a part is an instrument named by its `<part-name>` (its id when the name is empty,
//! made unique by adding the id when two parts share a name). A two-staff part (piano, harp) is
//! split by staff into `rh` (staff 1) and `lh` (staff 2); a part with more staves into `staff N`.
//! With more than one part these are prefixed by the part's label (`Piano rh`). Rests, cue notes
//! and unpitched (percussion) notes are skipped, the latter with a warning.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use roxmltree::{Document, Node};

use crate::error::{Error, Result};
use crate::io::score::{Note, Score};

/// How repeats are read.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Repeats {
    /// Unfolded as written: repeated sections played again, with their first and second endings.
    #[default]
    Written,
    /// Every measure once, in the order of the file.
    None,
}

/// A grace note's length, in quarter notes (a 32nd), taken from the time before its principal.
pub const GRACE_QUARTERS: f64 = 0.125;

/// The largest uncompressed MusicXML document read from an `.mxl` archive.
const MAX_XML_BYTES: u64 = 256 << 20;

/// Most passes through one repeated section (`times` beyond this is refused).
const MAX_REPEAT_TIMES: u32 = 16;

/// Whether `bytes` look like a MusicXML file: a zip archive (`.mxl`) or XML whose root is
/// `score-partwise` or `score-timewise` (looked for in the first 4 KiB).
pub fn is_musicxml(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"PK\x03\x04") {
        return true;
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    head.contains("<score-partwise") || head.contains("<score-timewise")
}

/// Parses a MusicXML (or `.mxl`) file held in `bytes`; `path` names it in errors.
pub fn parse(path: &Path, bytes: &[u8], repeats: Repeats) -> Result<Score> {
    let err = |msg: String| Error::Score {
        path: path.to_path_buf(),
        msg,
    };
    let text = if bytes.starts_with(b"PK\x03\x04") {
        unzip_score(bytes).map_err(err)?
    } else {
        String::from_utf8(bytes.to_vec()).map_err(|e| {
            err(format!(
                "not UTF-8 text at byte {}",
                e.utf8_error().valid_up_to()
            ))
        })?
    };
    // Exports carry the MusicXML DOCTYPE; roxmltree reads internal entity declarations only
    // (no external DTD is fetched) and bounds entity expansion.
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = Document::parse_with_options(&text, options)
        .map_err(|e| err(format!("not well-formed XML: {e}")))?;
    read_document(&doc, repeats).map_err(err)
}

/// The score document inside an `.mxl` archive: the rootfile `META-INF/container.xml` names,
/// else the first `.musicxml`/`.xml` file outside `META-INF/`.
fn unzip_score(bytes: &[u8]) -> std::result::Result<String, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a readable .mxl (zip) archive: {e}"))?;
    let read = |zip: &mut zip::ZipArchive<_>, name: &str| -> std::result::Result<String, String> {
        let file = zip
            .by_name(name)
            .map_err(|e| format!("archive member {name}: {e}"))?;
        let mut text = String::new();
        file.take(MAX_XML_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("archive member {name}: {e}"))?;
        if text.len() as u64 > MAX_XML_BYTES {
            return Err(format!(
                "archive member {name} is larger than {} MiB",
                MAX_XML_BYTES >> 20
            ));
        }
        Ok(text)
    };
    let rootfile = read(&mut zip, "META-INF/container.xml").ok().and_then(|c| {
        let doc = Document::parse(&c).ok()?;
        let path = doc
            .descendants()
            .find(|n| n.has_tag_name("rootfile"))?
            .attribute("full-path")?
            .to_string();
        Some(path)
    });
    let name = match rootfile {
        Some(name) => name,
        None => zip
            .file_names()
            .filter_map(|n| n.ok().map(|n| n.to_string()))
            .filter(|n| !n.starts_with("META-INF/"))
            .find(|n| n.ends_with(".musicxml") || n.ends_with(".xml"))
            .ok_or("the .mxl archive holds no .musicxml or .xml score")?,
    };
    read(&mut zip, &name)
}

/// One measure of one part: its number and the node whose children are its contents.
#[derive(Clone, Copy)]
struct Measure<'a, 'i> {
    number: &'a str,
    node: Node<'a, 'i>,
}

/// One part: id, name and measures in file order.
struct Part<'a, 'i> {
    id: String,
    name: String,
    measures: Vec<Measure<'a, 'i>>,
}

/// Reads the notes of every part, with measure times shared by all parts.
fn read_document(doc: &Document, repeats: Repeats) -> std::result::Result<Score, String> {
    let root = doc.root_element();
    let parts = match root.tag_name().name() {
        "score-partwise" => partwise_parts(root),
        "score-timewise" => timewise_parts(root),
        other => {
            return Err(format!(
                "root element <{other}>: not a MusicXML score-partwise or score-timewise"
            ))
        }
    };
    let n_measures = parts.iter().map(|p| p.measures.len()).max().unwrap_or(0);
    if n_measures == 0 {
        return Err("the score has no measures".into());
    }
    let first = &parts[0];
    let order = match repeats {
        Repeats::Written => unfold(&first.measures)?,
        Repeats::None => (0..first.measures.len()).collect(),
    };
    let contents: Vec<Vec<PartMeasure>> = parts
        .iter()
        .map(|p| read_part_measures(p))
        .collect::<std::result::Result<_, _>>()?;
    let lengths = measure_lengths(&contents, n_measures);
    let mut starts = Vec::with_capacity(order.len());
    let mut t = 0.0;
    for &m in &order {
        starts.push(t);
        t += lengths[m];
    }
    let tempo = TempoMap::new(&contents, &order, &starts);
    let labels = part_labels(&parts, &contents);
    let mut notes = Vec::new();
    let mut warnings = Vec::new();
    for (p, part) in contents.iter().enumerate() {
        let placed = place_notes(part, &order, &starts, &parts[p]);
        for n in merge_ties(placed) {
            notes.push(n.into_note(&tempo, &labels[p]));
        }
        let unpitched: usize = part.iter().map(|m| m.unpitched).sum();
        if unpitched > 0 {
            warnings.push(format!(
                "{unpitched} unpitched (percussion) notes of part {} skipped",
                parts[p].id
            ));
        }
    }
    if notes.is_empty() {
        return Err("the score holds no pitched notes".into());
    }
    Ok(Score::new(notes, warnings))
}

fn partwise_parts<'a, 'i>(root: Node<'a, 'i>) -> Vec<Part<'a, 'i>> {
    let names = part_names(root);
    root.children()
        .filter(|n| n.has_tag_name("part"))
        .map(|part| {
            let id = part.attribute("id").unwrap_or("").to_string();
            Part {
                name: names.get(&id).cloned().unwrap_or_default(),
                id,
                measures: part
                    .children()
                    .filter(|m| m.has_tag_name("measure"))
                    .map(|m| Measure {
                        number: m.attribute("number").unwrap_or(""),
                        node: m,
                    })
                    .collect(),
            }
        })
        .collect()
}

fn timewise_parts<'a, 'i>(root: Node<'a, 'i>) -> Vec<Part<'a, 'i>> {
    let names = part_names(root);
    let mut parts: Vec<Part> = Vec::new();
    for m in root.children().filter(|n| n.has_tag_name("measure")) {
        for p in m.children().filter(|n| n.has_tag_name("part")) {
            let id = p.attribute("id").unwrap_or("");
            let i = match parts.iter().position(|q| q.id == id) {
                Some(i) => i,
                None => {
                    parts.push(Part {
                        id: id.to_string(),
                        name: names.get(id).cloned().unwrap_or_default(),
                        measures: Vec::new(),
                    });
                    parts.len() - 1
                }
            };
            parts[i].measures.push(Measure {
                number: m.attribute("number").unwrap_or(""),
                node: p,
            });
        }
    }
    parts
}

/// `<part-list>`'s names by part id: `<part-name>`, else `<part-abbreviation>`.
fn part_names(root: Node) -> HashMap<String, String> {
    root.descendants()
        .filter(|n| n.has_tag_name("score-part"))
        .map(|sp| {
            let text = |tag: &str| {
                sp.children()
                    .find(|c| c.has_tag_name(tag))
                    .and_then(|c| c.text())
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
            };
            let name = text("part-name")
                .or_else(|| text("part-abbreviation"))
                .unwrap_or_default();
            (sp.attribute("id").unwrap_or("").to_string(), name)
        })
        .collect()
}

/// The play order of measures, repeats unfolded: a backward repeat goes back to the last
/// forward repeat (or the start, or the measure after the previous backward repeat) until its
/// `times` passes are played; a measure under an ending is played only on the passes its
/// `number` lists.
fn unfold(measures: &[Measure]) -> std::result::Result<Vec<usize>, String> {
    let endings = ending_passes(measures);
    let mut order = Vec::new();
    let (mut i, mut section_start, mut pass) = (0usize, 0usize, 1u32);
    while i < measures.len() {
        let m = measures[i];
        if has_repeat(m.node, "forward") && i != section_start {
            section_start = i;
            pass = 1;
        }
        if let Some(passes) = &endings[i] {
            if !passes.contains(&pass) {
                i += 1;
                continue;
            }
        }
        order.push(i);
        if let Some(times) = backward_repeat_times(m.node)? {
            if pass < times {
                pass += 1;
                i = section_start;
                continue;
            }
            pass = 1;
            section_start = i + 1;
        }
        i += 1;
    }
    Ok(order)
}

/// For every measure under an ending bracket, the passes it is played on.
fn ending_passes(measures: &[Measure]) -> Vec<Option<Vec<u32>>> {
    let mut out = Vec::with_capacity(measures.len());
    let mut open: Option<Vec<u32>> = None;
    for m in measures {
        let endings: Vec<Node> = barlines(m.node)
            .flat_map(|b| b.children().filter(|c| c.has_tag_name("ending")))
            .collect();
        for e in &endings {
            if e.attribute("type") == Some("start") {
                open = Some(ending_numbers(e.attribute("number").unwrap_or("1")));
            }
        }
        out.push(open.clone());
        if endings
            .iter()
            .any(|e| matches!(e.attribute("type"), Some("stop" | "discontinue")))
        {
            open = None;
        }
    }
    out
}

/// `"1, 2"` or `"1-3"` → the passes.
fn ending_numbers(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.split([',', ' ']).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
                    out.extend(a..=b.min(a + MAX_REPEAT_TIMES));
                }
            }
            None => out.extend(part.trim().parse::<u32>().ok()),
        }
    }
    if out.is_empty() {
        out.push(1);
    }
    out
}

fn barlines<'a, 'i>(measure: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    measure.children().filter(|c| c.has_tag_name("barline"))
}

fn has_repeat(measure: Node, direction: &str) -> bool {
    barlines(measure)
        .flat_map(|b| b.children())
        .any(|r| r.has_tag_name("repeat") && r.attribute("direction") == Some(direction))
}

/// A backward repeat's number of passes (2 unless `times` says otherwise).
fn backward_repeat_times(measure: Node) -> std::result::Result<Option<u32>, String> {
    let Some(r) = barlines(measure)
        .flat_map(|b| b.children())
        .find(|r| r.has_tag_name("repeat") && r.attribute("direction") == Some("backward"))
    else {
        return Ok(None);
    };
    let times = match r.attribute("times") {
        Some(t) => t
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("repeat times=\"{t}\" is not a whole number"))?,
        None => 2,
    };
    if times > MAX_REPEAT_TIMES {
        return Err(format!(
            "a repeat of {times} times: at most {MAX_REPEAT_TIMES} are unfolded"
        ));
    }
    Ok(Some(times.max(1)))
}

/// A note as read from one measure, times in quarters from the measure's start.
#[derive(Debug, Clone)]
struct RawNote {
    start: f64,
    duration: f64,
    pitch: u8,
    velocity: f64,
    staff: u32,
    tie_start: bool,
    tie_stop: bool,
    /// Grace notes before the principal note: this one is `grace` places before it (0: not a
    /// grace note).
    grace: u32,
}

/// What one part's measure holds.
#[derive(Default)]
struct PartMeasure {
    notes: Vec<RawNote>,
    /// The furthest the time cursor reached, in quarters.
    length: f64,
    /// (position in quarters, quarters per minute).
    tempos: Vec<(f64, f64)>,
    staves: u32,
    unpitched: usize,
}

/// The state carried from one measure of a part to the next.
struct PartState {
    divisions: f64,
    transpose: i32,
    velocity: f64,
    staves: u32,
}

/// Reads every measure of a part (in file order).
fn read_part_measures(part: &Part) -> std::result::Result<Vec<PartMeasure>, String> {
    let mut state = PartState {
        divisions: 1.0,
        transpose: 0,
        velocity: 90.0 / 127.0,
        staves: 1,
    };
    part.measures
        .iter()
        .map(|m| {
            read_measure(m.node, &mut state)
                .map_err(|e| format!("part {} measure {}: {e}", part.id, m.number))
        })
        .collect()
}

/// Reads one measure: a time cursor moved by notes, `<backup>` and `<forward>`.
fn read_measure(node: Node, st: &mut PartState) -> std::result::Result<PartMeasure, String> {
    let mut m = PartMeasure::default();
    let (mut cursor, mut last_start) = (0.0f64, 0.0f64);
    let mut pending_graces: Vec<RawNote> = Vec::new();
    for el in node.children().filter(|c| c.is_element()) {
        // The cursor's furthest point so far (the previous element may have `continue`d).
        m.length = m.length.max(cursor);
        match el.tag_name().name() {
            "attributes" => read_attributes(el, st)?,
            "backup" => cursor = (cursor - duration_of(el, st)?).max(0.0),
            "forward" => cursor += duration_of(el, st)?,
            "direction" => read_direction(el, cursor, st, &mut m),
            "sound" => read_sound(el, cursor, st, &mut m),
            "note" => {
                let Some(note) = read_note(el, st, &mut m)? else {
                    if !is_chord(el) {
                        let d = note_duration(el, st)?;
                        last_start = cursor;
                        cursor += d;
                    }
                    continue;
                };
                let mut note = note;
                if note.grace > 0 {
                    pending_graces.push(note);
                    continue;
                }
                if is_chord(el) {
                    note.start = last_start;
                } else {
                    note.start = cursor;
                    last_start = cursor;
                    cursor += note.duration;
                }
                let n = pending_graces.len() as u32;
                for (k, mut g) in pending_graces.drain(..).enumerate() {
                    g.grace = n - k as u32;
                    g.start = note.start;
                    g.staff = note.staff;
                    m.notes.push(g);
                }
                m.notes.push(note);
            }
            _ => {}
        }
    }
    m.length = m.length.max(cursor);
    m.staves = st.staves;
    Ok(m)
}

fn is_chord(note: Node) -> bool {
    note.children().any(|c| c.has_tag_name("chord"))
}

fn child_text<'a>(node: Node<'a, '_>, tag: &str) -> Option<&'a str> {
    node.children()
        .find(|c| c.has_tag_name(tag))
        .and_then(|c| c.text())
        .map(str::trim)
}

fn number(node: Node, tag: &str) -> std::result::Result<Option<f64>, String> {
    match child_text(node, tag) {
        None => Ok(None),
        Some(t) => t
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| format!("<{tag}>{t}</{tag}> is not a number")),
    }
}

fn read_attributes(el: Node, st: &mut PartState) -> std::result::Result<(), String> {
    if let Some(d) = number(el, "divisions")? {
        if d <= 0.0 {
            return Err(format!("<divisions>{d}</divisions> must be positive"));
        }
        st.divisions = d;
    }
    if let Some(s) = number(el, "staves")? {
        st.staves = (s as u32).clamp(1, 16);
    }
    if let Some(t) = el.children().find(|c| c.has_tag_name("transpose")) {
        let chromatic = number(t, "chromatic")?.unwrap_or(0.0);
        let octaves = number(t, "octave-change")?.unwrap_or(0.0);
        st.transpose = (chromatic + 12.0 * octaves).round() as i32;
    }
    Ok(())
}

/// A `<backup>`'s or `<forward>`'s duration in quarters.
fn duration_of(el: Node, st: &PartState) -> std::result::Result<f64, String> {
    let d = number(el, "duration")?.unwrap_or(0.0);
    if d < 0.0 {
        return Err(format!("negative duration {d}"));
    }
    Ok(d / st.divisions)
}

/// A direction's tempo (`<sound tempo>`, else a metronome mark) and dynamics.
fn read_direction(el: Node, cursor: f64, st: &mut PartState, m: &mut PartMeasure) {
    let offset = number(el, "offset").ok().flatten().unwrap_or(0.0) / st.divisions;
    let at = (cursor + offset).max(0.0);
    let sound = el.children().find(|c| c.has_tag_name("sound"));
    let had_tempo = sound.is_some_and(|s| s.attribute("tempo").is_some());
    if let Some(s) = sound {
        read_sound(s, at, st, m);
    }
    if !had_tempo {
        if let Some(qpm) = el
            .descendants()
            .find(|c| c.has_tag_name("metronome"))
            .and_then(metronome_qpm)
        {
            m.tempos.push((at, qpm));
        }
    }
}

fn read_sound(el: Node, at: f64, st: &mut PartState, m: &mut PartMeasure) {
    if let Some(t) = el
        .attribute("tempo")
        .and_then(|t| t.trim().parse::<f64>().ok())
    {
        if t.is_finite() && t > 0.0 {
            m.tempos.push((at, t.clamp(1.0, 1000.0)));
        }
    }
    if let Some(d) = el
        .attribute("dynamics")
        .and_then(|d| d.trim().parse::<f64>().ok())
    {
        st.velocity = dynamics_velocity(d).unwrap_or(st.velocity);
    }
}

/// MusicXML dynamics are a percentage of MIDI velocity 90.
fn dynamics_velocity(percent: f64) -> Option<f64> {
    (percent.is_finite() && percent > 0.0)
        .then(|| (percent / 100.0 * 90.0 / 127.0).clamp(1.0 / 127.0, 1.0))
}

/// A metronome mark as quarters per minute: `<beat-unit>` (with dots) and `<per-minute>`.
fn metronome_qpm(m: Node) -> Option<f64> {
    let unit = match child_text(m, "beat-unit")? {
        "whole" => 4.0,
        "half" => 2.0,
        "quarter" => 1.0,
        "eighth" => 0.5,
        "16th" => 0.25,
        "32nd" => 0.125,
        _ => return None,
    };
    let dots = m
        .children()
        .filter(|c| c.has_tag_name("beat-unit-dot"))
        .count();
    let unit = unit * (2.0 - 0.5f64.powi(dots as i32));
    let per_minute: f64 = child_text(m, "per-minute")?
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?
        .parse()
        .ok()?;
    (per_minute > 0.0).then(|| (per_minute * unit).clamp(1.0, 1000.0))
}

/// A note's duration in quarters (grace notes have none).
fn note_duration(el: Node, st: &PartState) -> std::result::Result<f64, String> {
    if el.children().any(|c| c.has_tag_name("grace")) {
        return Ok(0.0);
    }
    let d = number(el, "duration")?.unwrap_or(0.0);
    if d < 0.0 {
        return Err(format!("negative note duration {d}"));
    }
    Ok(d / st.divisions)
}

/// A sounding pitched note; `None` for rests, cue and unpitched notes (which still move the
/// cursor).
fn read_note(
    el: Node,
    st: &PartState,
    m: &mut PartMeasure,
) -> std::result::Result<Option<RawNote>, String> {
    if el.children().any(|c| c.has_tag_name("unpitched")) {
        m.unpitched += 1;
        return Ok(None);
    }
    if el.children().any(|c| c.has_tag_name("cue")) {
        return Ok(None);
    }
    let Some(p) = el.children().find(|c| c.has_tag_name("pitch")) else {
        return Ok(None); // a rest
    };
    let step = child_text(p, "step").ok_or("a <pitch> without <step>")?;
    let base = match step {
        "C" => 0,
        "D" => 2,
        "E" => 4,
        "F" => 5,
        "G" => 7,
        "A" => 9,
        "B" => 11,
        _ => return Err(format!("<step>{step}</step> is not a note name")),
    };
    let alter = number(p, "alter")?.unwrap_or(0.0).round() as i32;
    let octave = number(p, "octave")?.ok_or("a <pitch> without <octave>")? as i32;
    let midi = 12 * (octave + 1) + base + alter + st.transpose;
    let pitch = u8::try_from(midi)
        .ok()
        .filter(|&p| p <= 127)
        .ok_or_else(|| format!("pitch {step}{octave} (MIDI {midi}) is outside 0..=127"))?;
    let ties = el.children().filter(|c| c.has_tag_name("tie"));
    let (mut tie_start, mut tie_stop) = (false, false);
    for t in ties {
        match t.attribute("type") {
            Some("start") => tie_start = true,
            Some("stop") => tie_stop = true,
            _ => {}
        }
    }
    let velocity = el
        .attribute("dynamics")
        .and_then(|d| d.trim().parse::<f64>().ok())
        .and_then(dynamics_velocity)
        .unwrap_or(st.velocity);
    let grace = el.children().any(|c| c.has_tag_name("grace"));
    Ok(Some(RawNote {
        start: 0.0,
        duration: note_duration(el, st)?,
        pitch,
        velocity,
        staff: number(el, "staff")?.map_or(1, |s| s.max(1.0) as u32),
        tie_start,
        tie_stop,
        grace: u32::from(grace),
    }))
}

/// Each measure's length in quarters: the longest of the parts' (a pickup is as long as its
/// notes).
fn measure_lengths(contents: &[Vec<PartMeasure>], n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            contents
                .iter()
                .filter_map(|p| p.get(i))
                .map(|m| m.length)
                .fold(0.0, f64::max)
        })
        .collect()
}

/// Quarter positions → seconds through the tempo marks of all parts, in play order.
struct TempoMap {
    /// (quarter position, seconds there, seconds per quarter from there on)
    segments: Vec<(f64, f64, f64)>,
}

impl TempoMap {
    /// Tempo 120 per quarter until the first mark.
    fn new(contents: &[Vec<PartMeasure>], order: &[usize], starts: &[f64]) -> TempoMap {
        let mut marks: Vec<(f64, f64)> = Vec::new();
        for part in contents {
            for (k, &m) in order.iter().enumerate() {
                if let Some(pm) = part.get(m) {
                    marks.extend(pm.tempos.iter().map(|&(at, qpm)| (starts[k] + at, qpm)));
                }
            }
        }
        marks.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut segments = vec![(0.0, 0.0, 0.5)];
        for (q, qpm) in marks {
            let &(q0, s0, spq) = segments.last().expect("non-empty");
            let sec = s0 + (q - q0) * spq;
            if q == q0 {
                segments.pop();
            }
            segments.push((q, sec, 60.0 / qpm));
        }
        TempoMap { segments }
    }

    fn seconds(&self, q: f64) -> f64 {
        let i = self
            .segments
            .partition_point(|s| s.0 <= q)
            .saturating_sub(1);
        let (q0, s0, spq) = self.segments[i];
        s0 + (q - q0) * spq
    }

    /// Seconds per quarter at `q`.
    fn rate(&self, q: f64) -> f64 {
        let i = self
            .segments
            .partition_point(|s| s.0 <= q)
            .saturating_sub(1);
        self.segments[i].2
    }
}

/// The labels of each part's staves (see the module doc).
fn part_labels(parts: &[Part], contents: &[Vec<PartMeasure>]) -> Vec<Vec<String>> {
    let base: Vec<String> = parts
        .iter()
        .map(|p| {
            let dup = parts.iter().filter(|q| q.name == p.name).count() > 1;
            match (p.name.is_empty(), dup) {
                (true, _) => p.id.clone(),
                (false, true) => format!("{} {}", p.name, p.id),
                (false, false) => p.name.clone(),
            }
        })
        .collect();
    contents
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let staves = part.iter().map(|m| m.staves).max().unwrap_or(1);
            let max_staff = part
                .iter()
                .flat_map(|m| m.notes.iter().map(|n| n.staff))
                .max()
                .unwrap_or(1);
            let staves = staves.max(max_staff);
            let names: Vec<String> = match staves {
                1 => vec![String::new()],
                2 => vec!["rh".into(), "lh".into()],
                n => (1..=n).map(|s| format!("staff {s}")).collect(),
            };
            names
                .into_iter()
                .map(|s| match (parts.len() > 1, s.is_empty()) {
                    (false, _) => s,
                    (true, true) => base[i].clone(),
                    (true, false) => format!("{} {s}", base[i]),
                })
                .map(|l| {
                    if l.is_empty() && staves == 1 {
                        label_of_single(&parts[i])
                    } else {
                        l
                    }
                })
                .collect()
        })
        .collect()
}

/// A lone one-staff part is labelled by its name (empty when it has none).
fn label_of_single(p: &Part) -> String {
    p.name.clone()
}

/// A note placed in the unfolded piece, quarters from the start.
struct Placed {
    start: f64,
    duration: f64,
    pitch: u8,
    velocity: f64,
    staff: u32,
    grace: u32,
    tie_start: bool,
    tie_stop: bool,
    measure: String,
}

impl Placed {
    /// Seconds through the tempo map; a grace note takes [`GRACE_QUARTERS`] per place before
    /// its principal (never before 0).
    fn into_note(self, tempo: &TempoMap, labels: &[String]) -> Note {
        let (onset, duration) = if self.grace > 0 {
            let g = GRACE_QUARTERS * tempo.rate(self.start);
            let onset = (tempo.seconds(self.start) - g * self.grace as f64).max(0.0);
            (onset, g)
        } else {
            let onset = tempo.seconds(self.start);
            (onset, tempo.seconds(self.start + self.duration) - onset)
        };
        let staff = (self.staff as usize).clamp(1, labels.len()) - 1;
        Note {
            onset,
            duration,
            pitch: self.pitch,
            velocity: self.velocity,
            instrument: labels[staff].clone(),
            measure: Some(self.measure),
        }
    }
}

/// The part's notes at their places in the unfolded piece.
fn place_notes(part: &[PartMeasure], order: &[usize], starts: &[f64], info: &Part) -> Vec<Placed> {
    let mut out = Vec::new();
    for (k, &m) in order.iter().enumerate() {
        let Some(pm) = part.get(m) else { continue };
        let number = info.measures.get(m).map_or("", |x| x.number);
        out.extend(pm.notes.iter().map(|n| Placed {
            start: starts[k] + n.start,
            duration: n.duration,
            pitch: n.pitch,
            velocity: n.velocity,
            staff: n.staff,
            grace: n.grace,
            tie_start: n.tie_start,
            tie_stop: n.tie_stop,
            measure: number.to_string(),
        }));
    }
    out
}

/// Merges tied notes: a note with `tie stop` extends the open tied note of the same staff and
/// pitch that ends where it starts (within a 64th), instead of starting a note of its own.
fn merge_ties(placed: Vec<Placed>) -> Vec<Placed> {
    let mut out: Vec<Placed> = Vec::with_capacity(placed.len());
    let mut open: HashMap<(u32, u8), usize> = HashMap::new();
    for n in placed {
        let key = (n.staff, n.pitch);
        if n.tie_stop && n.grace == 0 {
            if let Some(&i) = open.get(&key) {
                let head = &mut out[i];
                if (head.start + head.duration - n.start).abs() < 1.0 / 16.0 {
                    head.duration = n.start + n.duration - head.start;
                    if !n.tie_start {
                        open.remove(&key);
                    }
                    continue;
                }
            }
        }
        if n.tie_start && n.grace == 0 {
            open.insert(key, out.len());
        } else {
            open.remove(&key);
        }
        out.push(n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(xml: &str) -> Score {
        parse(Path::new("t.musicxml"), xml.as_bytes(), Repeats::Written).unwrap()
    }

    fn wrap(measures: &str, staves: u32) -> String {
        format!(
            r#"<?xml version="1.0"?><score-partwise><part-list><score-part id="P1"><part-name>Piano</part-name></score-part></part-list>
            <part id="P1"><measure number="1"><attributes><divisions>2</divisions><staves>{staves}</staves></attributes>
            <direction><sound tempo="60"/></direction>{measures}</part></score-partwise>"#
        )
    }

    fn note(step: &str, octave: i32, dur: u32, extra: &str) -> String {
        format!("<note>{extra}<pitch><step>{step}</step><octave>{octave}</octave></pitch><duration>{dur}</duration><staff>1</staff></note>")
    }

    #[test]
    fn chords_backup_ties_and_staves() {
        let m1 = format!(
            "{}{}{}<backup><duration>4</duration></backup><note><pitch><step>C</step><octave>3</octave></pitch><duration>4</duration><tie type=\"start\"/><staff>2</staff></note></measure>\
             <measure number=\"2\"><note><pitch><step>C</step><octave>3</octave></pitch><duration>2</duration><tie type=\"stop\"/><staff>2</staff></note>",
            note("C", 4, 2, ""),
            note("E", 4, 2, "<chord/>"),
            note("G", 4, 2, ""),
        );
        let s = parse_str(&wrap(&format!("{m1}</measure>"), 2));
        let got: Vec<(f64, f64, u8, &str, Option<&str>)> = s
            .notes
            .iter()
            .map(|n| {
                (
                    n.onset,
                    n.duration,
                    n.pitch,
                    n.instrument.as_str(),
                    n.measure.as_deref(),
                )
            })
            .collect();
        // 60 per quarter, 2 divisions per quarter: C3 tied over the bar lasts 3 quarters.
        assert_eq!(
            got,
            [
                (0.0, 3.0, 48, "lh", Some("1")),
                (0.0, 1.0, 60, "rh", Some("1")),
                (0.0, 1.0, 64, "rh", Some("1")),
                (1.0, 1.0, 67, "rh", Some("1")),
            ]
        );
    }

    #[test]
    fn repeats_and_endings_unfold_as_written() {
        // |: m1 | m2 (ending 1) :| m3 (ending 2) | m4
        let body = format!(
            "<barline location=\"left\"><repeat direction=\"forward\"/></barline>{}</measure>\
             <measure number=\"2\"><barline location=\"left\"><ending number=\"1\" type=\"start\"/></barline>{}<barline location=\"right\"><ending number=\"1\" type=\"stop\"/><repeat direction=\"backward\"/></barline></measure>\
             <measure number=\"3\"><barline location=\"left\"><ending number=\"2\" type=\"start\"/></barline>{}<barline location=\"right\"><ending number=\"2\" type=\"discontinue\"/></barline></measure>\
             <measure number=\"4\">{}</measure>",
            note("C", 4, 2, ""),
            note("D", 4, 2, ""),
            note("E", 4, 2, ""),
            note("F", 4, 2, ""),
        );
        let s = parse_str(&wrap(&body, 1));
        let got: Vec<(f64, u8, &str)> = s
            .notes
            .iter()
            .map(|n| (n.onset, n.pitch, n.measure.as_deref().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                (0.0, 60, "1"),
                (1.0, 62, "2"),
                (2.0, 60, "1"),
                (3.0, 64, "3"),
                (4.0, 65, "4")
            ]
        );
        let once = parse(Path::new("t.xml"), wrap(&body, 1).as_bytes(), Repeats::None).unwrap();
        assert_eq!(once.notes.len(), 4);
    }

    #[test]
    fn grace_notes_come_just_before_their_principal() {
        let body = format!(
            "{}{}{}</measure>",
            note("C", 4, 2, ""),
            "<note><grace slash=\"yes\"/><pitch><step>A</step><octave>4</octave></pitch><staff>1</staff></note>",
            note("G", 4, 2, ""),
        );
        let s = parse_str(&wrap(&body, 1));
        let grace = s.notes.iter().find(|n| n.pitch == 69).unwrap();
        assert!(
            (grace.onset - (1.0 - GRACE_QUARTERS)).abs() < 1e-9,
            "{grace:?}"
        );
        assert!((grace.duration - GRACE_QUARTERS).abs() < 1e-9);
        assert_eq!(s.notes.iter().find(|n| n.pitch == 67).unwrap().onset, 1.0);
    }

    #[test]
    fn metronome_marks_and_default_tempo() {
        let xml = format!(
            r#"<score-partwise><part-list><score-part id="P1"><part-name>Fl</part-name></score-part></part-list>
            <part id="P1"><measure number="1"><attributes><divisions>1</divisions></attributes>{}
            <direction><direction-type><metronome><beat-unit>half</beat-unit><beat-unit-dot/><per-minute>40</per-minute></metronome></direction-type></direction>{}</measure></part></score-partwise>"#,
            note("C", 4, 1, ""),
            note("D", 4, 1, "")
        );
        let s = parse_str(&xml);
        // 120 per quarter for the first quarter, then a dotted half = 40: 120 quarters a minute.
        assert_eq!(s.notes[1].onset, 0.5);
        assert!((s.notes[1].duration - 0.5).abs() < 1e-12);
        assert_eq!(s.notes[0].instrument, "Fl");
    }

    #[test]
    fn timewise_reads_like_partwise() {
        let timewise = format!(
            r#"<score-timewise><part-list><score-part id="P1"><part-name>A</part-name></score-part><score-part id="P2"><part-name>B</part-name></score-part></part-list>
            <measure number="1"><part id="P1"><attributes><divisions>1</divisions></attributes>{}</part><part id="P2"><attributes><divisions>1</divisions></attributes>{}</part></measure>
            <measure number="2"><part id="P1">{}</part><part id="P2">{}</part></measure></score-timewise>"#,
            note("C", 4, 2, ""),
            note("E", 3, 2, ""),
            note("D", 4, 1, ""),
            note("F", 3, 1, ""),
        );
        let s = parse_str(&timewise);
        let got: Vec<(f64, u8, &str, &str)> = s
            .notes
            .iter()
            .map(|n| {
                (
                    n.onset,
                    n.pitch,
                    n.instrument.as_str(),
                    n.measure.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (0.0, 52, "B", "1"),
                (0.0, 60, "A", "1"),
                (1.0, 53, "B", "2"),
                (1.0, 62, "A", "2")
            ]
        );
    }

    #[test]
    fn bad_input_is_named() {
        let e = parse(
            Path::new("x.xml"),
            b"<score-partwise><part",
            Repeats::Written,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("x.xml") && e.contains("XML"), "{e}");
        let e = parse(Path::new("x.mxl"), b"PK\x03\x04garbage", Repeats::Written)
            .unwrap_err()
            .to_string();
        assert!(e.contains("zip"), "{e}");
        let bad_step = wrap(&format!("{}</measure>", note("H", 4, 2, "")), 1);
        let e = parse(Path::new("x.xml"), bad_step.as_bytes(), Repeats::Written)
            .unwrap_err()
            .to_string();
        assert!(e.contains("measure 1") && e.contains("<step>H"), "{e}");
    }
}
