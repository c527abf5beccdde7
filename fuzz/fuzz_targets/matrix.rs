//! The matrix reader (`.npy` and CSV dictionaries for `decompose --init-w`) on any bytes: a
//! matrix or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    use scorenmf::io::matrix;
    let _ = matrix::parse(std::path::Path::new("fuzz.npy"), data);
    let _ = matrix::parse(std::path::Path::new("fuzz.csv"), data);
});
