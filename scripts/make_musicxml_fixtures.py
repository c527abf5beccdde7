#!/usr/bin/env python3
"""MusicXML round-trip fixtures from music21's corpus (PyPI music21 9.9.2): each score's .mxl
copied as it is, and music21's MIDI export of the same score with its repeats expanded
(`expandRepeats`) and ties merged (`stripTies`), for tests/score_musicxml.rs.

Usage: make_musicxml_fixtures.py OUT_DIR   (python with music21 installed)
"""
import os
import shutil
import sys

import music21
from music21 import corpus

WORKS = {
    "joplin_maple_leaf_rag": "joplin/maple_leaf_rag",
    "bach_bwv66.6": "bach/bwv66.6",
    "mozart_k155_1": "mozart/k155/movement1",
    "haydn_op74no1_1": "haydn/opus74no1/movement1",
}

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, work in WORKS.items():
    path = str(corpus.getWork(work))
    shutil.copy(path, os.path.join(out, name + ".mxl"))
    score = corpus.parse(work)
    expanded = score.expandRepeats().stripTies()
    expanded.write("midi", fp=os.path.join(out, name + ".music21.mid"))
    print(name, path)
