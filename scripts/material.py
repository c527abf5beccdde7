"""Note lists, MIDI and fluidsynth rendering shared by the material scripts
(alignment_quality.py, realistic_material.py).

A note is a tuple (start s, duration s, MIDI pitch, velocity 0..1, instrument), the columns of
the FMP CSV format that scorenmf reads.
"""
import csv
import os
import subprocess

import numpy as np

SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
SR = 22050


def read_csv(path):
    notes = []
    with open(path) as f:
        for r in csv.DictReader(f, delimiter=";"):
            notes.append((float(r["Start"]), float(r["Duration"]), int(float(r["Pitch"])),
                          float(r.get("Velocity") or 0.7), r.get("Instrument") or ""))
    return sorted(notes, key=lambda n: (n[0], n[2]))


def write_csv(path, notes):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write('"Start";"Duration";"Pitch";"Velocity";"Instrument"\n')
        for s, d, p, v, i in notes:
            f.write(f'{s:.6f};{d:.6f};{p};{v:.6f};"{i}"\n')
    os.replace(tmp, path)


def read_midi(path):
    import pretty_midi
    pm = pretty_midi.PrettyMIDI(path)
    notes = [(n.start, n.end - n.start, n.pitch, n.velocity / 127, inst.name)
             for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    return sorted(notes, key=lambda n: (n[0], n[2]))


def write_midi(path, notes, pedal=()):
    """One piano track; `pedal` holds (time, CC64 value) pairs."""
    import pretty_midi
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(program=0, name="piano")
    for s, d, p, v, _ in notes:
        inst.notes.append(pretty_midi.Note(velocity=int(np.clip(round(v * 127), 1, 127)),
                                           pitch=p, start=s, end=s + max(d, 0.03)))
    for t, value in pedal:
        inst.control_changes.append(pretty_midi.ControlChange(64, value, t))
    pm.instruments.append(inst)
    pm.write(path)


def render(mid, wav, pad=0.0):
    """fluidsynth with the FluidR3 GM piano at SR Hz, mono, 16-bit, `pad` s of silence at both ends."""
    tmp = wav + ".raw.wav"
    subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(SR), "-F", tmp, SF2, mid],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import soundfile as sf
    y, sr = sf.read(tmp)
    if y.ndim > 1:
        y = y.mean(axis=1)
    if pad:
        z = np.zeros(int(pad * sr))
        y = np.concatenate([z, y, z])
    sf.write(wav + ".part.wav", y.astype(np.float32), sr, subtype="PCM_16")
    os.replace(wav + ".part.wav", wav)
    os.remove(tmp)
