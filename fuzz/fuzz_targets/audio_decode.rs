//! The audio decoder (WAV, FLAC, MP3, Ogg Vorbis) on any bytes: audio or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = scorenmf::io::audio::decode(std::path::Path::new("fuzz.wav"), data.to_vec());
});
