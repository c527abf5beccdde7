#!/usr/bin/env python3
"""Dump the notes of MIDI files as mido times them, for tests/score_midi.rs.

    venv/bin/pip install mido
    venv/bin/python scripts/make_midi_fixture.py tests/data/midi data/*.mid

Writes `<stem>.notes.csv` per file: start;end;pitch;velocity (0..127), sorted by start, pitch.
Times come from mido's own tempo map (iterating a MidiFile merges the tracks and yields delta
times in seconds); notes are paired first-in, first-out per (channel, key), channel 10 skipped,
the rule the project's reader follows. (pretty_midi instead closes every open note of a key at
its first note-off, which differs where a file overlaps notes of the same key.)
"""
import collections, os, sys
import mido

out = sys.argv[1]
for path in sys.argv[2:]:
    t, rows, open_notes = 0.0, [], collections.defaultdict(collections.deque)
    for msg in mido.MidiFile(path):
        t += msg.time
        if msg.type not in ("note_on", "note_off") or msg.channel == 9:
            continue
        key = (msg.channel, msg.note)
        if msg.type == "note_on" and msg.velocity > 0:
            open_notes[key].append((t, msg.velocity))
        elif open_notes[key]:
            start, vel = open_notes[key].popleft()
            rows.append((start, t, msg.note, vel))
    assert not any(open_notes.values()), "notes left sounding"
    rows.sort(key=lambda r: (r[0], r[2]))
    stem = os.path.splitext(os.path.basename(path))[0]
    with open(os.path.join(out, stem + ".notes.csv"), "w") as f:
        f.write("start;end;pitch;velocity\n")
        for r in rows:
            f.write("%.17g;%.17g;%d;%d\n" % r)
    print(stem, len(rows), "notes")
