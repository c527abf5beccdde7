//! The whole `inspect` path: the input's first two bytes say where the audio ends and the score
//! begins; both are read as `scorenmf inspect` reads them and the report is formatted.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

use scorenmf::io::{audio, score};
use scorenmf::tasks::inspect::Report;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let split = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let (a, s) = data[2..].split_at(split);
    let audio = audio::decode(Path::new("fuzz.wav"), a.to_vec()).ok();
    let score = score::parse(Path::new("fuzz.csv"), s).ok();
    let report = Report {
        audio: audio.as_ref().map(|a| ("fuzz.wav".to_string(), a)),
        score: score.as_ref().map(|s| ("fuzz.csv".to_string(), s)),
    };
    let _ = report.to_string();
});
