//! FMP-style CSV note lists.
//!
//! The format of the FMP notebooks' annotations: a header
//! `"Start";"Duration";"Pitch";"Velocity";"Instrument"` and one note per row, times in seconds,
//! MIDI pitch, velocity in [0, 1]. Accepted variations, all seen in real files:
//! * `;`, `,` or tab as separator (told from the header line);
//! * quoted or bare fields, surrounding spaces, a UTF-8 byte-order mark;
//! * header names in any case; `Label` for `Instrument`, `Onset` for `Start`;
//! * `Velocity` and `Instrument` columns may be missing (velocity 1, empty label);
//! * integral pitches written as reals (`67.0`);
//! * no header at all, when the first row is numeric: the columns are then taken in FMP order.
//!
//! Velocities above 1 and up to 127 are read as MIDI velocities and divided by 127, with a
//! warning.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::atomic;
use crate::io::score::{check_times, Note, Score};

/// Column positions found in the header.
struct Columns {
    start: usize,
    duration: usize,
    pitch: usize,
    velocity: Option<usize>,
    instrument: Option<usize>,
}

fn detect_delimiter(first_line: &str) -> u8 {
    [b';', b',', b'\t']
        .into_iter()
        .max_by_key(|&d| first_line.bytes().filter(|&b| b == d).count())
        .filter(|&d| first_line.as_bytes().contains(&d))
        .unwrap_or(b';')
}

/// The column names of the FMP format, as errors name them.
const NAMES: [&str; 5] = ["Start", "Duration", "Pitch", "Velocity", "Instrument"];

/// Parses a CSV note list held in `bytes`; `path` only names the file in errors.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Score> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        csv_err(
            path,
            None,
            None,
            format!("not a text file (invalid UTF-8: {e})"),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first_line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| Error::Score {
            path: path.to_path_buf(),
            msg: "empty file: no notes".into(),
        })?;
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(detect_delimiter(first_line))
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());

    let mut notes = Vec::new();
    let mut scaled_velocities = 0usize;
    let mut columns: Option<Columns> = None;
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line());
            csv_err(path, line, None, format!("malformed CSV: {e}"))
        })?;
        let line = record.position().map(|p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.iter().any(|f| f.contains(['\n', '\r'])) {
            return Err(csv_err(
                path,
                line,
                None,
                "a quoted field runs past the end of its line (a quote not closed?)".into(),
            ));
        }
        let cols = match &columns {
            Some(c) => c,
            None => {
                let first =
                    first_row_columns(&record).map_err(|msg| csv_err(path, line, None, msg))?;
                let is_header = matches!(first, FirstRow::Header(_));
                columns = Some(first.columns());
                if is_header {
                    continue;
                }
                columns.as_ref().expect("set above")
            }
        };
        let (note, scaled) = read_note(&record, cols, |column, msg| {
            csv_err(path, line, column, msg)
        })?;
        scaled_velocities += usize::from(scaled);
        notes.push(note);
    }
    if notes.is_empty() {
        return Err(Error::Score {
            path: path.to_path_buf(),
            msg: "no notes".into(),
        });
    }
    let mut warnings = Vec::new();
    if scaled_velocities > 0 {
        warnings.push(format!(
            "{}: {scaled_velocities} velocities above 1 read as MIDI velocities (divided by 127)",
            path.display()
        ));
    }
    let has_velocities = columns.is_some_and(|c| c.velocity.is_some());
    Ok(Score::with_velocities(notes, warnings, has_velocities))
}

/// An error at `line` (and `column`) of the CSV file `path`.
fn csv_err(path: &Path, line: Option<u64>, column: Option<&str>, msg: String) -> Error {
    Error::Csv {
        path: path.to_path_buf(),
        line,
        column: column.map(str::to_string),
        msg,
    }
}

/// What the first non-empty row says about the columns.
enum FirstRow {
    /// A header naming them.
    Header(Columns),
    /// A note: the columns are in the FMP order.
    Note(Columns),
}

impl FirstRow {
    fn columns(self) -> Columns {
        match self {
            FirstRow::Header(c) | FirstRow::Note(c) => c,
        }
    }
}

/// A first row whose first field is a number is a note in the FMP column order (velocity and
/// instrument present when the row has them); otherwise it is the header.
fn first_row_columns(record: &::csv::StringRecord) -> std::result::Result<FirstRow, String> {
    let is_numeric = record.get(0).is_some_and(|f| f.parse::<f64>().is_ok());
    if is_numeric {
        Ok(FirstRow::Note(Columns {
            start: 0,
            duration: 1,
            pitch: 2,
            velocity: (record.len() > 3).then_some(3),
            instrument: (record.len() > 4).then_some(4),
        }))
    } else {
        header_columns(record).map(FirstRow::Header)
    }
}

/// One note from a row, and whether its velocity was a MIDI velocity (above 1, divided by
/// 127). `err(column, message)` makes the error of this row.
fn read_note(
    record: &::csv::StringRecord,
    cols: &Columns,
    err: impl Fn(Option<&str>, String) -> Error,
) -> Result<(Note, bool)> {
    let field = |idx: usize, name: &str| -> Result<&str> {
        match record.get(idx) {
            Some(f) if !f.is_empty() => Ok(f),
            _ => Err(err(Some(name), "missing value".into())),
        }
    };
    let number = |idx: usize, name: &str| -> Result<f64> {
        let f = field(idx, name)?;
        f.parse::<f64>()
            .map_err(|_| err(Some(name), format!("'{f}' is not a number")))
    };
    let onset = number(cols.start, NAMES[0])?;
    let duration = number(cols.duration, NAMES[1])?;
    check_times(onset, duration).map_err(|msg| {
        let col = if msg.starts_with("onset") {
            NAMES[0]
        } else {
            NAMES[1]
        };
        err(Some(col), msg)
    })?;
    let p = number(cols.pitch, NAMES[2])?;
    if p.fract() != 0.0 || !(0.0..=127.0).contains(&p) {
        return Err(err(
            Some(NAMES[2]),
            format!("pitch {p} is not a MIDI pitch (an integer in 0..=127)"),
        ));
    }
    let (velocity, scaled) = match cols.velocity {
        Some(idx) if record.get(idx).is_some_and(|f| !f.is_empty()) => {
            let v = number(idx, NAMES[3])?;
            if !v.is_finite() || !(0.0..=127.0).contains(&v) {
                return Err(err(
                    Some(NAMES[3]),
                    format!("velocity {v} is outside [0, 1] (or MIDI 0..=127)"),
                ));
            }
            if v > 1.0 {
                (v / 127.0, true)
            } else {
                (v, false)
            }
        }
        _ => (1.0, false),
    };
    let instrument = cols
        .instrument
        .and_then(|idx| record.get(idx))
        .unwrap_or("")
        .to_string();
    let note = Note {
        onset,
        duration,
        pitch: p as u8,
        velocity,
        instrument,
        measure: None,
    };
    Ok((note, scaled))
}

fn header_columns(record: &::csv::StringRecord) -> std::result::Result<Columns, String> {
    let find = |names: &[&str]| {
        record
            .iter()
            .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
    };
    let required = |names: &[&str]| {
        find(names).ok_or_else(|| {
            format!(
                "missing required column {} (the header has: {})",
                names[0],
                record.iter().collect::<Vec<_>>().join(", ")
            )
        })
    };
    Ok(Columns {
        start: required(&["Start", "Onset"])?,
        duration: required(&["Duration"])?,
        pitch: required(&["Pitch"])?,
        velocity: find(&["Velocity"]),
        instrument: find(&["Instrument", "Label"]),
    })
}

/// Renders notes in the FMP CSV format (`;`-separated, quoted header and labels), so the output
/// can be read back as a score.
pub fn to_csv_string(notes: &[Note]) -> String {
    let mut out = String::from("\"Start\";\"Duration\";\"Pitch\";\"Velocity\";\"Instrument\"\n");
    for n in notes {
        out.push_str(&format!(
            "{};{};{};{};\"{}\"\n",
            n.onset,
            n.duration,
            n.pitch,
            n.velocity,
            n.instrument.replace('"', "\"\"")
        ));
    }
    out
}

/// Writes notes as an FMP CSV file, atomically.
pub fn write(path: &Path, notes: &[Note]) -> Result<()> {
    atomic::write_bytes(path, to_csv_string(notes).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Score> {
        parse(Path::new("t.csv"), text.as_bytes())
    }

    #[test]
    fn reads_fmp_format() {
        let s = p(
            "\"Start\";\"Duration\";\"Pitch\";\"Velocity\";\"Instrument\"\n\
                   2.2;0.75;64;0.99;\"lh\"\n0.5;1;67.0;1;\"rh\"\n",
        )
        .unwrap();
        assert_eq!(s.notes.len(), 2);
        assert_eq!(s.notes[0].pitch, 67);
        assert_eq!(s.notes[0].instrument, "rh");
        assert_eq!(s.notes[1].onset, 2.2);
        assert_eq!(s.notes[1].velocity, 0.99);
    }

    #[test]
    fn accepts_commas_bare_fields_label_and_any_case() {
        let s = p("start, duration ,PITCH,label\n0.5,1,60,left\n").unwrap();
        assert_eq!(s.notes[0].instrument, "left");
        assert_eq!(s.notes[0].velocity, 1.0);
        let s = p("\u{feff}Duration;Pitch;Start\n1;60;0.25\n").unwrap();
        assert_eq!(s.notes[0].onset, 0.25);
        assert_eq!(s.notes[0].instrument, "");
    }

    #[test]
    fn reads_headerless_rows_in_fmp_order() {
        let s = p("0.5;1;60;0.5;rh\n1.5;1;62;0.5;rh\n").unwrap();
        assert_eq!(s.notes.len(), 2);
        assert_eq!(s.notes[1].pitch, 62);
    }

    #[test]
    fn scales_midi_velocities_with_a_warning() {
        let s = p("Start;Duration;Pitch;Velocity\n0;1;60;127\n").unwrap();
        assert_eq!(s.notes[0].velocity, 1.0);
        assert_eq!(s.warnings.len(), 1);
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = p("Start;Duration;Pitch\n0;1;60\n0;x;60\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.csv: line 3, column Duration: 'x' is not a number"
        );
        let e = p("Start;Duration\n0;1\n").unwrap_err().to_string();
        assert!(e.contains("line 1: missing required column Pitch"), "{e}");
        let e = p("Start;Duration;Pitch\n0;1;128\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2, column Pitch: pitch 128"), "{e}");
        let e = p("Start;Duration;Pitch\n0;1;60.5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("column Pitch"), "{e}");
        let e = p("Start;Duration;Pitch\n-1;1;60\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2, column Start: onset -1 s is negative"),
            "{e}"
        );
        let e = p("Start;Duration;Pitch\nNaN;1;60\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("column Start: onset NaN is not a finite time"),
            "{e}"
        );
        let e = p("Start;Duration;Pitch\n0;inf;60\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("column Duration: duration inf"), "{e}");
        let e = p("Start;Duration;Pitch\n0;1\n").unwrap_err().to_string();
        assert!(e.contains("line 2, column Pitch: missing value"), "{e}");
        let e = p("Start;Duration;Pitch\n").unwrap_err().to_string();
        assert_eq!(e, "t.csv: no notes");
        let e = p("").unwrap_err().to_string();
        assert_eq!(e, "t.csv: empty file: no notes");
    }

    #[test]
    fn round_trips_through_the_writer() {
        let s = p("Start;Duration;Pitch;Velocity;Instrument\n\
                   0.1;0.5;60;0.25;\"a \"\"b\"\"\"\n0.123456789012;2;72;1;rh\n")
        .unwrap();
        let back = p(&to_csv_string(&s.notes)).unwrap();
        assert_eq!(back, s);
    }
}
