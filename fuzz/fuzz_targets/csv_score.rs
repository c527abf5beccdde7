//! The CSV score reader on any bytes: a score or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = scorenmf::io::score::csv::parse(std::path::Path::new("fuzz.csv"), data);
});
