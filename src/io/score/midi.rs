//! Standard MIDI Files, read and written with `midly`.
//!
//! Reading (formats 0 and 1):
//! * tick times become seconds through one tempo map built from the tempo events of *all* tracks
//!   (notation programs often put them on a track other than the first); SMPTE time division is
//!   honoured too;
//! * running status and note-on with velocity 0 as note-off are handled;
//! * overlapping notes of the same pitch and channel are paired first-in, first-out;
//! * a note still sounding at the end of its track is closed there, with a warning;
//! * channel 10 (drums) is skipped, with a warning;
//! * the instrument label is the track name if present, else `track N` (format 1) or
//!   `channel N` (format 0, where the channel is what tells parts apart).
//!
//! Writing: format 1, a conductor track with the tempo, then one named track per instrument.
//! At 960 ticks per quarter and 120 BPM a tick is 1/1920 s, so times round-trip within 0.27 ms.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;

use midly::num::{u15, u24, u28, u4, u7};
use midly::{
    Format, Header, MetaMessage, MidiMessage, Smf, Timing, Track, TrackEvent, TrackEventKind,
};

use crate::error::{Error, Result};
use crate::io::atomic;
use crate::io::score::{check_times, Note, Score};

/// Tick → seconds conversion for one file.
struct TempoMap {
    /// (tick, seconds at that tick, seconds per tick from there on)
    segments: Vec<(u64, f64, f64)>,
}

impl TempoMap {
    fn new(timing: Timing, mut tempos: Vec<(u64, u32)>) -> TempoMap {
        match timing {
            Timing::Metrical(tpq) => {
                let tpq = tpq.as_int().max(1) as f64;
                tempos.sort_by_key(|&(tick, _)| tick); // stable: file order at equal ticks
                let mut segments = vec![(0u64, 0.0f64, 500_000.0 / 1e6 / tpq)];
                for (tick, us_per_q) in tempos {
                    let &(t0, s0, spt) = segments.last().expect("non-empty");
                    let sec = s0 + (tick - t0) as f64 * spt;
                    let new_spt = us_per_q as f64 / 1e6 / tpq;
                    if tick == t0 {
                        segments.pop();
                    }
                    segments.push((tick, sec, new_spt));
                }
                TempoMap { segments }
            }
            Timing::Timecode(fps, subframe) => {
                let spt = 1.0 / (fps.as_f32() as f64 * subframe.max(1) as f64);
                TempoMap {
                    segments: vec![(0, 0.0, spt)],
                }
            }
        }
    }

    fn seconds(&self, tick: u64) -> f64 {
        let i = self.segments.partition_point(|&(t, _, _)| t <= tick);
        let (t0, s0, spt) = self.segments[i.saturating_sub(1)];
        s0 + (tick - t0) as f64 * spt
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// Checks that every track chunk the header declares is present and whole. midly's lenient
/// reader skips unreadable chunks and reads a cut-off last track as far as it goes; a score
/// missing notes that way would be wrong without a word, so such a file is refused.
fn check_chunks(bytes: &[u8]) -> std::result::Result<(), (Option<usize>, String)> {
    let Some(start) = bytes.windows(4).position(|w| w == b"MThd") else {
        return Ok(()); // midly accepted it; nothing more to check
    };
    let file = &bytes[start..];
    let be32 = |at: usize| {
        file.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let declared = file
        .get(10..12)
        .map_or(0, |n| u16::from_be_bytes([n[0], n[1]]) as usize);
    let mut at = 8 + be32(4).unwrap_or(6);
    let mut tracks = 0;
    while tracks < declared {
        let truncated = |what: &str| {
            Err((
                Some(tracks + 1),
                format!("truncated or corrupt: {what} (the header declares {declared} tracks)"),
            ))
        };
        let Some(len) = be32(at + 4) else {
            return truncated("the track is missing");
        };
        let id = &file[at..at + 4];
        if at + 8 + len > file.len() {
            return truncated(&format!(
                "the chunk needs {len} bytes, the file holds {}",
                file.len() - at - 8
            ));
        }
        if id == b"MTrk" {
            tracks += 1;
        } else if !id.iter().all(u8::is_ascii_alphanumeric) {
            return truncated("a track chunk is missing or damaged");
        }
        at += 8 + len;
    }
    Ok(())
}

/// Checks that every event of every track reads. midly's lenient reader ends a track silently
/// at the first event it cannot read (an undefined status byte such as 0xF4, a meta event
/// whose length runs past the track), which would drop the rest of its notes without a word.
fn check_events(bytes: &[u8]) -> std::result::Result<(), (usize, String)> {
    let Ok((_, tracks)) = midly::parse(bytes) else {
        return Ok(()); // Smf::parse accepted it, so this cannot fail
    };
    for (index, track) in tracks.enumerate() {
        let Ok(mut events) = track else {
            continue;
        };
        let mut read = 0usize;
        loop {
            let left = events.unread().len();
            if overruns(events.unread()) {
                return Err((
                    index + 1,
                    format!(
                        "event {}: its length runs past the end of the track",
                        read + 1
                    ),
                ));
            }
            match events.next() {
                Some(Ok(_)) => read += 1,
                Some(Err(e)) => return Err((index + 1, format!("event {}: {e}", read + 1))),
                None if left > 0 => {
                    return Err((
                        index + 1,
                        format!(
                            "event {} cannot be read ({left} bytes before the track's end): corrupt track",
                            read + 1
                        ),
                    ))
                }
                None => break,
            }
        }
    }
    Ok(())
}

/// Whether the event at the start of `raw` (delta time first) is a meta or system-exclusive
/// event whose declared length is longer than what is left of the track (midly's lenient reader
/// then takes the rest of the track as its data).
fn overruns(raw: &[u8]) -> bool {
    let varlen = |at: &mut usize| -> Option<usize> {
        let mut v = 0usize;
        for _ in 0..4 {
            let b = *raw.get(*at)?;
            *at += 1;
            v = (v << 7) | (b & 0x7f) as usize;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    };
    let mut at = 0;
    let mut check = || -> Option<bool> {
        varlen(&mut at)?;
        match *raw.get(at)? {
            0xff => at += 2,
            0xf0 | 0xf7 => at += 1,
            _ => return Some(false),
        }
        let len = varlen(&mut at)?;
        Some(at + len > raw.len())
    };
    check().unwrap_or(false)
}

/// Parses a Standard MIDI File held in `bytes`; `path` only names the file in errors.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Score> {
    let smf = Smf::parse(bytes)
        .map_err(|e| Error::midi(path, None, format!("not a valid MIDI file: {e}")))?;
    if smf.header.format == Format::Sequential {
        return Err(Error::midi(
            path,
            None,
            "format 2 (sequential) MIDI files are not supported; export as format 0 or 1",
        ));
    }
    check_chunks(bytes).map_err(|(track, msg)| Error::midi(path, track, msg))?;
    check_events(bytes).map_err(|(track, msg)| Error::midi(path, Some(track), msg))?;
    let single_track = smf.header.format == Format::SingleTrack;
    let map = tempo_map(&smf);
    let mut notes = Vec::new();
    let mut warnings = Vec::new();
    for (index, track) in smf.tracks.iter().enumerate() {
        let label = track_labeller(track, index + 1, single_track);
        let read = read_track(track, &map, &label, &mut notes);
        warnings.extend(read.warnings(path, index + 1, &map));
    }
    for n in &notes {
        check_times(n.onset, n.duration).map_err(|msg| Error::midi(path, None, msg))?;
    }
    if notes.is_empty() {
        return Err(Error::Score {
            path: path.to_path_buf(),
            msg: "no notes (outside channel 10)".into(),
        });
    }
    Ok(Score::new(notes, warnings))
}

/// One tempo map from the tempo events of every track.
fn tempo_map(smf: &Smf) -> TempoMap {
    let mut tempos = Vec::new();
    for track in &smf.tracks {
        let mut tick = 0u64;
        for ev in track {
            tick += ev.delta.as_int() as u64;
            if let TrackEventKind::Meta(MetaMessage::Tempo(t)) = ev.kind {
                tempos.push((tick, t.as_int().max(1)));
            }
        }
    }
    TempoMap::new(smf.header.timing, tempos)
}

/// The instrument label of the notes of track `number` by channel: the track name, else
/// `track N`; in a format-0 file using several channels, `channel N`.
fn track_labeller(
    track: &[TrackEvent],
    number: usize,
    single_track: bool,
) -> impl Fn(u8) -> String {
    let name = track.iter().find_map(|ev| match ev.kind {
        TrackEventKind::Meta(MetaMessage::TrackName(n)) if !text(n).is_empty() => Some(text(n)),
        _ => None,
    });
    let channels_used: std::collections::BTreeSet<u8> = track
        .iter()
        .filter_map(|ev| match ev.kind {
            TrackEventKind::Midi { channel, .. } => Some(channel.as_int()),
            _ => None,
        })
        .collect();
    let by_channel = single_track && channels_used.len() > 1;
    move |channel: u8| match (&name, by_channel) {
        (Some(n), false) => n.clone(),
        (_, true) => format!("channel {}", channel + 1),
        (None, false) => format!("track {number}"),
    }
}

/// What reading one track left to warn about.
struct TrackRead {
    /// Notes still sounding at the track's end (closed there), and the end's tick.
    closed_at_end: usize,
    end_tick: u64,
    drums: usize,
    unmatched_offs: usize,
}

impl TrackRead {
    fn warnings(&self, path: &Path, number: usize, map: &TempoMap) -> Vec<String> {
        let mut w = Vec::new();
        if self.closed_at_end > 0 {
            w.push(format!(
                "{}: track {number}: {} notes still sounding at the end of the track (at {:.3} s) were closed there",
                path.display(),
                self.closed_at_end,
                map.seconds(self.end_tick)
            ));
        }
        if self.drums > 0 {
            w.push(format!(
                "{}: track {number}: {} notes on channel 10 (drums) skipped",
                path.display(),
                self.drums
            ));
        }
        if self.unmatched_offs > 0 {
            w.push(format!(
                "{}: track {number}: {} note-offs without a sounding note ignored",
                path.display(),
                self.unmatched_offs
            ));
        }
        w
    }
}

/// The notes of one track, appended to `notes`: note-on with velocity 0 as note-off, the
/// sounding notes of one key and channel paired first-in first-out, channel 10 skipped, notes
/// still sounding at the end closed there.
fn read_track(
    track: &[TrackEvent],
    map: &TempoMap,
    label: &dyn Fn(u8) -> String,
    notes: &mut Vec<Note>,
) -> TrackRead {
    // (channel, key) → queue of (start tick, velocity)
    let mut sounding: HashMap<(u8, u8), VecDeque<(u64, u8)>> = HashMap::new();
    let mut tick = 0u64;
    let mut drums = 0usize;
    let mut unmatched_offs = 0usize;
    let close = |ch: u8, key: u8, start: u64, vel: u8, end: u64, notes: &mut Vec<Note>| {
        let onset = map.seconds(start);
        let duration = map.seconds(end) - onset;
        notes.push(Note {
            onset,
            duration,
            pitch: key,
            velocity: vel as f64 / 127.0,
            instrument: label(ch),
            measure: None,
        });
    };
    for ev in track {
        tick += ev.delta.as_int() as u64;
        let TrackEventKind::Midi { channel, message } = ev.kind else {
            continue;
        };
        let ch = channel.as_int();
        let (key, on_vel) = match message {
            MidiMessage::NoteOn { key, vel } => (key.as_int(), vel.as_int()),
            MidiMessage::NoteOff { key, .. } => (key.as_int(), 0),
            _ => continue,
        };
        if ch == 9 {
            drums += usize::from(on_vel > 0);
            continue;
        }
        if on_vel > 0 {
            sounding
                .entry((ch, key))
                .or_default()
                .push_back((tick, on_vel));
        } else if let Some((start, vel)) =
            sounding.get_mut(&(ch, key)).and_then(VecDeque::pop_front)
        {
            close(ch, key, start, vel, tick, notes);
        } else {
            unmatched_offs += 1;
        }
    }
    let mut left: Vec<_> = sounding
        .into_iter()
        .flat_map(|((ch, key), q)| q.into_iter().map(move |(s, v)| (s, ch, key, v)))
        .collect();
    left.sort_unstable();
    let closed_at_end = left.len();
    for (start, ch, key, vel) in left {
        close(ch, key, start, vel, tick, notes);
    }
    TrackRead {
        closed_at_end,
        end_tick: tick,
        drums,
        unmatched_offs,
    }
}

/// Ticks per quarter note of written files.
pub const WRITE_TICKS_PER_QUARTER: u16 = 960;
/// Tempo of written files: 120 BPM, as microseconds per quarter note.
pub const WRITE_TEMPO_US: u32 = 500_000;

/// Renders notes as a format-1 Standard MIDI File: a conductor track (tempo 120 BPM, 960 ticks
/// per quarter), then one track per instrument named by its label, on its own channel (10 is
/// skipped). Velocity = round(127 · velocity), at least 1.
pub fn to_smf_bytes(notes: &[Note]) -> Result<Vec<u8>> {
    let ticks_per_second = WRITE_TICKS_PER_QUARTER as f64 * 1e6 / WRITE_TEMPO_US as f64;
    let to_tick = |t: f64| (t.max(0.0) * ticks_per_second).round() as u64;

    let mut by_instrument: BTreeMap<&str, Vec<&Note>> = BTreeMap::new();
    for n in notes {
        by_instrument.entry(&n.instrument).or_default().push(n);
    }
    let conductor: Track = vec![
        TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(WRITE_TEMPO_US))),
        },
        TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
        },
    ];
    let mut tracks = vec![conductor];
    for (i, (label, track_notes)) in by_instrument.iter().enumerate() {
        let channel = [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15][i % 15];
        // (tick, 0 = off before 1 = on at the same tick, key, velocity)
        let mut events: Vec<(u64, u8, u8, u8)> = Vec::with_capacity(2 * track_notes.len());
        for n in track_notes {
            let vel = (n.velocity * 127.0).round().clamp(1.0, 127.0) as u8;
            let start = to_tick(n.onset);
            // At least one tick long, so the note-off never sorts before its own note-on.
            events.push((start, 1, n.pitch, vel));
            events.push((to_tick(n.end()).max(start + 1), 0, n.pitch, 0));
        }
        events.sort_unstable();
        let mut track: Track = vec![TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::TrackName(label.as_bytes())),
        }];
        let mut last = 0u64;
        for (tick, on, key, vel) in events {
            let delta = tick - last;
            if delta > u28::max_value().as_int() as u64 {
                return Err(Error::Param(format!(
                    "note at {:.1} s is too late for a MIDI file",
                    tick as f64 / ticks_per_second
                )));
            }
            last = tick;
            let message = if on == 1 {
                MidiMessage::NoteOn {
                    key: u7::new(key),
                    vel: u7::new(vel),
                }
            } else {
                MidiMessage::NoteOff {
                    key: u7::new(key),
                    vel: u7::new(0),
                }
            };
            track.push(TrackEvent {
                delta: u28::new(delta as u32),
                kind: TrackEventKind::Midi {
                    channel: u4::new(channel),
                    message,
                },
            });
        }
        track.push(TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
        });
        tracks.push(track);
    }
    let smf = Smf {
        header: Header::new(
            Format::Parallel,
            Timing::Metrical(u15::new(WRITE_TICKS_PER_QUARTER)),
        ),
        tracks,
    };
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes)
        .map_err(|e| Error::Param(format!("cannot encode MIDI: {e}")))?;
    Ok(bytes)
}

/// Writes notes as a Standard MIDI File, atomically.
pub fn write(path: &Path, notes: &[Note]) -> Result<()> {
    atomic::write_bytes(path, &to_smf_bytes(notes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(delta: u32, kind: TrackEventKind<'static>) -> TrackEvent<'static> {
        TrackEvent {
            delta: u28::new(delta),
            kind,
        }
    }
    fn on(ch: u8, key: u8, vel: u8) -> TrackEventKind<'static> {
        TrackEventKind::Midi {
            channel: u4::new(ch),
            message: MidiMessage::NoteOn {
                key: u7::new(key),
                vel: u7::new(vel),
            },
        }
    }
    fn tempo(us: u32) -> TrackEventKind<'static> {
        TrackEventKind::Meta(MetaMessage::Tempo(u24::new(us)))
    }
    fn bytes(format: Format, tracks: Vec<Track<'static>>) -> Vec<u8> {
        let smf = Smf {
            header: Header::new(format, Timing::Metrical(u15::new(480))),
            tracks,
        };
        let mut b = Vec::new();
        smf.write_std(&mut b).unwrap();
        b
    }
    fn parse_bytes(b: &[u8]) -> Result<Score> {
        parse(Path::new("t.mid"), b)
    }

    #[test]
    fn tempo_map_from_a_later_track_and_fifo_pairing() {
        // Conductor track without tempo; the tempo change (to 60 BPM at beat 1) sits on track 3.
        let t1 = vec![ev(0, TrackEventKind::Meta(MetaMessage::EndOfTrack))];
        let t2 = vec![
            ev(0, TrackEventKind::Meta(MetaMessage::TrackName(b"Piano"))),
            ev(0, on(0, 60, 100)),
            ev(240, on(0, 60, 50)), // overlapping same pitch: paired FIFO
            ev(240, on(0, 60, 0)),  // closes the first (velocity-0 note-on)
            ev(480, on(0, 60, 0)),  // closes the second
            ev(0, TrackEventKind::Meta(MetaMessage::EndOfTrack)),
        ];
        let t3 = vec![
            ev(480, tempo(1_000_000)),
            ev(0, TrackEventKind::Meta(MetaMessage::EndOfTrack)),
        ];
        let s = parse_bytes(&bytes(Format::Parallel, vec![t1, t2, t3])).unwrap();
        assert_eq!(s.notes.len(), 2);
        // beat 0..1 at 120 BPM = 0.5 s; then 1 s per beat.
        let a = &s.notes[0];
        assert_eq!((a.onset, a.duration, a.pitch), (0.0, 0.5, 60));
        assert!((a.velocity - 100.0 / 127.0).abs() < 1e-12);
        assert_eq!(a.instrument, "Piano");
        let b = &s.notes[1];
        assert_eq!((b.onset, b.end()), (0.25, 1.5)); // tick 960 = 0.5 s + 1 beat at 60 BPM
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn drums_skipped_hanging_notes_closed_channels_labelled() {
        let t = vec![
            ev(0, on(9, 36, 100)),
            ev(0, on(0, 60, 100)),
            ev(0, on(1, 48, 100)),
            ev(480, on(0, 60, 0)),
            ev(480, TrackEventKind::Meta(MetaMessage::EndOfTrack)),
        ];
        let s = parse_bytes(&bytes(Format::SingleTrack, vec![t])).unwrap();
        assert_eq!(s.notes.len(), 2);
        let labels: Vec<_> = s.notes.iter().map(|n| n.instrument.as_str()).collect();
        assert_eq!(labels, ["channel 2", "channel 1"]);
        assert_eq!(s.notes[0].duration, 1.0); // closed at the track end
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        assert!(s.warnings.iter().any(|w| w.contains("channel 10")));
        assert!(s.warnings.iter().any(|w| w.contains("still sounding")));
    }

    #[test]
    fn no_notes_is_an_error() {
        let t = vec![ev(0, on(9, 36, 100)), ev(10, on(9, 36, 0))];
        let e = parse_bytes(&bytes(Format::SingleTrack, vec![t])).unwrap_err();
        assert!(e.to_string().contains("no notes"), "{e}");
    }

    #[test]
    fn writer_round_trips() {
        let n = |onset: f64, duration: f64, pitch, velocity, inst: &str| Note {
            onset,
            duration,
            pitch,
            velocity,
            instrument: inst.into(),
            measure: None,
        };
        let notes = vec![
            n(0.0, 0.5, 60, 0.5, "rh"),
            n(0.5, 0.25, 60, 1.0, "rh"),
            n(0.1234, 1.0, 48, 0.1, "lh"),
            n(1.0, 0.0001, 127, 0.0, "track 9"),
        ];
        let s = parse_bytes(&to_smf_bytes(&notes).unwrap()).unwrap();
        let want = Score::new(notes, vec![]);
        assert_eq!(s.notes.len(), want.notes.len());
        for (a, b) in s.notes.iter().zip(&want.notes) {
            assert_eq!((a.pitch, &a.instrument), (b.pitch, &b.instrument));
            assert!((a.onset - b.onset).abs() < 1e-3);
            assert!((a.end() - b.end()).abs() < 1e-3);
            assert!((a.velocity - b.velocity.max(1.0 / 127.0)).abs() <= 0.5 / 127.0);
        }
    }
}
