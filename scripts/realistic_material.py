#!/usr/bin/env python3
"""Piano material like real music, with exact ground truth, for the accuracy table.

Each piece is written in score time (beats), played by a performance model and rendered with
fluidsynth and the FluidR3 GM piano:

  * a tempo curve (two slow random sinusoids, ±18 %), a ritardando at every phrase end and at
    the end, fermatas held where the notation has them;
  * the melody 15-25 ms ahead of its chord, the other chord notes N(0, 8 ms) apart; rolled
    chords spread bottom-up by 25-50 ms per note where a piece rolls them;
  * dynamics: a level per voice times a slow ±30 % curve and N(0, 0.04) noise, so the notes
    span the soundfont's velocity layers (a soft inner voice at 0.2 under a melody at 0.8);
  * articulation: legato (key up 30 ms after the next note) or detached (key up at 85 % of the
    written length);
  * sustain pedal (CC64), released 10 ms after each harmony change and pressed again 150 ms
    after it (legato pedalling), in the pieces that use it.

The pieces: `prelude_pedal` (repeated soft left-hand chords under a melody, pedalled, in the
texture of Chopin's Op. 28 No. 4), `rolled_chords` (4-6-note chords, half of them rolled,
pedalled), `fast_runs` (sixteenth-note scales and arpeggios over an Alberti bass, about 7 notes
per second, half-bar pedal), `voicing` (a loud melody, a soft inner voice in eighths, a bass;
pedalled), `bach_chorales` (BWV 66.6 and 269 from music21's corpus, four voices, detached, no
pedal, fermatas held) and `joplin` (Maple Leaf Rag bars 1-32 from music21's corpus, detached,
no pedal).

For each piece NAME, OUT holds:
  NAME.wav          the rendering (22050 Hz, mono);
  NAME.truth.csv    the notes as they sound: onsets as played, offsets where the sound is
                    stopped (the key's release, or the pedal's release when the pedal holds the
                    note, or the next strike of the same key), as MAESTRO's annotations do;
  NAME.score.csv    the exact score: the same onsets with the keys' release as offsets
                    (what a score aligned to the recording holds; it knows nothing of the pedal);
  NAME.mid          the performance rendered (notes and CC64).

Usage: realistic_material.py [OUT]   (default target/realistic; run by scripts/accuracy.sh
--realistic). Pieces already in OUT are kept.
"""
import os
import sys

import numpy as np

from material import render, write_csv, write_midi

OUT = sys.argv[1] if len(sys.argv) > 1 else "target/realistic"


# ---------------------------------------------------------------- performance model

class Event:
    """A written note: onset and length in beats, pitch, voice level 0..1, instrument."""

    def __init__(self, beat, length, pitch, level, inst, melody=False, fermata=False):
        self.beat, self.length, self.pitch, self.level = beat, length, pitch, level
        self.inst, self.melody, self.fermata = inst, melody, fermata


def tempo_map(events, bpm, rng, phrase_beats):
    """Beat → seconds: the integral of the local seconds-per-beat (tempo curve, ritardandi,
    fermata holds)."""
    end = max(e.beat + e.length for e in events) + 1
    grid = np.arange(0, end + 0.01, 0.01)
    ph = rng.uniform(0, 2 * np.pi, 2)
    spb = 60.0 / bpm * np.exp(0.12 * np.sin(2 * np.pi * grid / 13 + ph[0])
                              + 0.06 * np.sin(2 * np.pi * grid / 5.3 + ph[1]))
    spb *= 1 + 0.3 * np.clip(((grid % phrase_beats) / phrase_beats - 0.85) / 0.15, 0, 1)
    spb *= 1 + 0.6 * np.clip((grid - (end - 5)) / 4, 0, 1)
    for b in sorted({e.beat for e in events if e.fermata}):
        length = max(e.length for e in events if e.fermata and e.beat == b)
        spb[(grid >= b) & (grid < b + length)] *= 1.0 + rng.uniform(0.8, 1.4)
    secs = np.concatenate([[0], np.cumsum(spb[:-1] * 0.01)])
    return lambda b: float(np.interp(b, grid, secs)) + 0.5


def perform(events, bpm, seed, legato, pedal_changes=(), roll=0.0, phrase_beats=16):
    """Written events → (keys: performed notes with key-up offsets, truth: notes with sounding
    offsets, pedal: CC64 events)."""
    rng = np.random.default_rng(seed)
    t = tempo_map(events, bpm, rng, phrase_beats)
    dyn = rng.uniform(0, 2 * np.pi)
    rolled = {b for b in {e.beat for e in events} if roll and rng.random() < roll}
    keys = []
    for e in events:
        on = t(e.beat)
        if e.melody:
            on -= rng.uniform(0.015, 0.025)
        else:
            on += float(np.clip(rng.normal(0, 0.008), -0.02, 0.02))
        if e.beat in rolled:
            chord = sorted(x.pitch for x in events if x.beat == e.beat)
            on += chord.index(e.pitch) * rng.uniform(0.025, 0.05)
        end_beat = e.beat + e.length
        if legato:
            off = t(end_beat) + 0.03
        else:
            off = on + 0.85 * (t(end_beat) - t(e.beat))
        vel = e.level * (1 + 0.3 * np.sin(2 * np.pi * e.beat / 24 + dyn)) + rng.normal(0, 0.04)
        keys.append([max(on, 0.0), max(off - on, 0.06), e.pitch, float(np.clip(vel, 0.08, 1.0)), e.inst])
    keys.sort(key=lambda n: (n[0], n[2]))
    # A key struck again while it still sounds stops its previous note.
    last = {}
    for n in keys:
        prev = last.get(n[2])
        if prev is not None and prev[0] + prev[1] > n[0] - 0.01:
            prev[1] = max(n[0] - 0.01 - prev[0], 0.03)
        last[n[2]] = n
    pedal = []
    ups = []
    for c in pedal_changes:
        tc = t(c)
        if pedal:
            pedal.append((tc + 0.01, 0))
            ups.append(tc + 0.01)
        pedal.append((tc + 0.15, 127))
    if pedal:
        end = max(n[0] + n[1] for n in keys) + 0.3
        pedal.append((end, 0))
        ups.append(end)
    downs = [p for p, v in pedal if v == 127]
    truth = []
    for n in keys:
        on, d, p, v, inst = n
        off = on + d
        held = [u for u, dn in zip(ups, downs) if dn <= off < u]
        if held:
            off = held[0]
        truth.append([on, off - on, p, v, inst])
    # Under the pedal, too, a new strike of the key ends the note that still rings.
    last = {}
    for n in truth:
        prev = last.get(n[2])
        if prev is not None and prev[0] + prev[1] > n[0]:
            prev[1] = n[0] - prev[0]
        last[n[2]] = n
    return [tuple(n) for n in keys], [tuple(n) for n in truth], pedal


# ---------------------------------------------------------------- written pieces

def voice_lead(rng, chord, lo, hi):
    """The next chord: one or two of its notes move by one or two semitones, within [lo, hi]."""
    c = list(chord)
    for k in rng.choice(len(c), size=rng.integers(1, 3), replace=False):
        step = int(rng.choice([-2, -1, 1, 2]))
        if lo <= c[k] + step <= hi and c[k] + step not in c:
            c[k] += step
    return sorted(c)


def melody_line(rng, bars, beats_per_bar, lo, hi, lengths, level, inst="rh"):
    out, b, p = [], 0.0, int(rng.integers(lo + 4, hi - 4))
    while b < bars * beats_per_bar:
        d = float(rng.choice(lengths))
        out.append(Event(b, d, p, level, inst, melody=True))
        p = int(np.clip(p + rng.choice([-3, -2, -1, 1, 2, 3, 5, -5]), lo, hi))
        b += d
    return out


def prelude_pedal(rng):
    bars, ev, changes = 30, [], []
    chord = [52, 57, 60]
    for bar in range(bars):
        for half in range(2):
            b0 = bar * 4 + half * 2
            changes.append(b0)
            inner = int(rng.integers(0, 3))
            for k in range(4):
                for j, p in enumerate(chord):
                    level = 0.22 if j == inner else 0.34
                    ev.append(Event(b0 + 0.5 * k, 0.5, p, level, "lh"))
            chord = voice_lead(rng, chord, 47, 66)
    ev += melody_line(rng, bars, 4, 64, 79, [1, 2, 2, 3, 4], 0.75)
    return ev, dict(bpm=60, legato=True, pedal_changes=changes)


def rolled_chords(rng):
    bars, ev, changes = 22, [], []
    lh, rh = [43, 50], [60, 64, 67]
    for k in range(bars * 2):
        b0 = 2.0 * k
        changes.append(b0)
        top = max(rh)
        for p in lh:
            ev.append(Event(b0, 2, p, 0.45, "lh"))
        for p in rh:
            ev.append(Event(b0, 2, p, 0.7 if p == top else 0.45, "rh", melody=p == top))
        lh = voice_lead(rng, lh, 36, 55)
        rh = voice_lead(rng, rh, 57, 81)
        if len(rh) < 4 and rng.random() < 0.4:
            extra = max(rh) + int(rng.choice([3, 4, 5]))
            rh = sorted(rh + [extra]) if extra <= 84 else rh
        elif len(rh) > 3 and rng.random() < 0.4:
            rh = rh[1:]
    return ev, dict(bpm=60, legato=True, pedal_changes=changes, roll=0.5)


def fast_runs(rng):
    bars, ev, changes = 22, [], []
    root = 48
    for bar in range(bars):
        b0 = 4.0 * bar
        changes += [b0, b0 + 2]
        third = 4 if rng.random() < 0.6 else 3
        for k, iv in enumerate([0, 7, third + 12, 7] * 2):
            ev.append(Event(b0 + 0.5 * k, 0.5, root + iv, 0.35, "lh"))
        # a run of 16 sixteenths: a scale or an arpeggio, up or down
        start = int(rng.integers(62, 74))
        steps = [2, 2, 1, 2, 2, 2, 1] if rng.random() < 0.6 else [third, 7 - third, 5]
        p, seq = start, []
        for k in range(16):
            seq.append(p)
            p += steps[k % len(steps)]
        if rng.random() < 0.5:
            seq = seq[::-1]
        for k, p in enumerate(seq):
            ev.append(Event(b0 + 0.25 * k, 0.25, int(np.clip(p, 55, 96)), 0.6, "rh", melody=k % 4 == 0))
        root = int(np.clip(root + rng.choice([-5, -2, 2, 5, 7, -7]), 41, 55))
    return ev, dict(bpm=88, legato=True, pedal_changes=changes, phrase_beats=32)


def voicing(rng):
    bars, ev, changes = 24, [], []
    bass, inner = 45, [57, 60]
    for bar in range(bars):
        for half in range(2):
            b0 = bar * 4 + half * 2
            changes.append(b0)
            ev.append(Event(b0, 2, bass, 0.45, "lh"))
            for k in range(4):
                ev.append(Event(b0 + 0.5 * k, 0.5, inner[k % 2], 0.2, "rh"))
            bass = int(np.clip(bass + rng.choice([-5, -3, -2, 2, 3, 5]), 36, 52))
            inner = voice_lead(rng, inner, 55, 66)
    ev += melody_line(rng, bars, 4, 69, 84, [1, 1, 2, 2, 3], 0.8)
    return ev, dict(bpm=72, legato=True, pedal_changes=changes)


def corpus_events(names, inst_names, bpm_levels):
    """music21 corpus scores, one after the other (2 beats apart), as written events."""
    import music21
    ev, offset = [], 0.0
    for name in names:
        s = music21.corpus.parse(name).stripTies()
        end = 0.0
        for part, inst in zip(s.parts, inst_names):
            for n in part.flatten().notes:
                b = offset + float(n.offset)
                d = float(n.quarterLength)
                ferm = any(isinstance(x, music21.expressions.Fermata) for x in n.expressions)
                pitches = [p.midi for p in n.pitches]
                for p in pitches:
                    ev.append(Event(b, d, p, bpm_levels[inst], inst, melody=inst in ("S", "rh") and p == max(pitches), fermata=ferm))
                end = max(end, b + d)
        offset = end + 2.0
    return ev


def bach_chorales(rng):
    ev = corpus_events(["bach/bwv66.6", "bach/bwv269"], ["S", "A", "T", "B"],
                       {"S": 0.6, "A": 0.45, "T": 0.45, "B": 0.5})
    return ev, dict(bpm=76, legato=False)


def joplin(rng):
    import music21
    ev = []
    s = music21.corpus.parse("joplin/maple_leaf_rag").measures(1, 32).stripTies()
    for part, inst, level in zip(s.parts, ["rh", "lh"], [0.6, 0.45]):
        for n in part.flatten().notes:
            pitches = [p.midi for p in n.pitches]
            for p in pitches:
                ev.append(Event(float(n.offset), float(n.quarterLength), p, level, inst,
                                melody=inst == "rh" and p == max(pitches)))
    return ev, dict(bpm=80, legato=False, phrase_beats=16)


PIECES = [("prelude_pedal", prelude_pedal), ("rolled_chords", rolled_chords),
          ("fast_runs", fast_runs), ("voicing", voicing), ("bach_chorales", bach_chorales),
          ("joplin", joplin)]


def main():
    os.makedirs(OUT, exist_ok=True)
    for seed, (name, make) in enumerate(PIECES):
        wav = os.path.join(OUT, f"{name}.wav")
        if os.path.exists(wav):
            continue
        rng = np.random.default_rng(100 + seed)
        events, style = make(rng)
        bpm = style.pop("bpm")
        keys, truth, pedal = perform(events, bpm, 200 + seed, **style)
        mid = os.path.join(OUT, f"{name}.mid")
        write_midi(mid, keys, pedal)
        write_csv(os.path.join(OUT, f"{name}.score.csv"), keys)
        write_csv(os.path.join(OUT, f"{name}.truth.csv"), truth)
        render(mid, wav)
        print(f"{name}: {len(keys)} notes, {max(n[0] + n[1] for n in truth):.0f} s, "
              f"{len({n[2] for n in keys})} pitches, pedal {'yes' if pedal else 'no'}")


if __name__ == "__main__":
    main()
