//! The MusicXML score reader (and .mxl unzipping) on any bytes: a score or an error, never a
//! panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    use scorenmf::io::score::{musicxml, Repeats};
    let _ = musicxml::parse(std::path::Path::new("fuzz.musicxml"), data, Repeats::Written);
});
