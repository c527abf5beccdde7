//! Keyword parameters, named as the command line's options (`n_fft` for `--n-fft`), onto a
//! preset's [`Config`]: the preset as JSON, each value set at its field's path, read back.

use scorenmf::pipeline::{Config, Preset};
use serde_json::Value;

/// Each keyword and the field of [`Config`] it sets (a dotted path into its JSON).
pub const PARAMETERS: &[(&str, &str)] = &[
    ("sample_rate", "sample_rate"),
    ("n_fft", "stft.n_fft"),
    ("hop", "stft.hop"),
    ("magnitude", "magnitude"),
    ("gamma", "gamma"),
    ("divergence", "nmf.divergence"),
    ("iterations", "nmf.iterations"),
    ("precision", "nmf.precision"),
    ("nmf_tile", "nmf.tile"),
    ("stop_threshold", "nmf.stop_threshold"),
    ("eps", "nmf.eps"),
    ("fixed_w", "nmf.fixed_w"),
    ("normalize", "nmf.normalize"),
    ("per_instrument", "per_instrument"),
    ("tol_pitch", "templates.tol_pitch"),
    ("a4", "templates.a4"),
    ("onset_init", "templates.onset_init"),
    ("tol_note", "activations.tol_note"),
    ("tol_onset", "activations.tol_onset"),
    ("onset_hop", "transcribe.onset.stft.hop"),
    ("search", "transcribe.onset.search"),
    ("prior_sigma", "transcribe.onset.prior_sigma"),
    ("align_median", "transcribe.onset.align_median"),
    ("chord_tol", "transcribe.onset.chord_tol"),
    ("refine_onsets", "transcribe.onset.refine"),
    ("min_gap", "transcribe.min_gap"),
    ("threshold", "transcribe.threshold"),
    ("offset_fraction", "transcribe.offset_fraction"),
    ("mask_power", "separate.mask_power"),
    ("mask_model", "separate.model"),
    ("mask_iterations", "separate.iterations"),
];

/// The configuration of `preset` with `overrides` (a JSON object of keyword → value) set, as
/// the command line sets its options: `stop_threshold` 0 runs every iteration,
/// `refine_onsets=False` skips the refinement. Unknown keywords and values of the wrong type are
/// errors naming them.
pub fn config(preset: &str, overrides: &str) -> scorenmf::Result<Config> {
    let bad = |msg: String| scorenmf::Error::Param(msg);
    let preset = match preset {
        "default" => Preset::Default,
        "fmp" => Preset::Fmp,
        other => return Err(bad(format!("preset '{other}': use 'default' or 'fmp'"))),
    };
    let base = Config::preset(preset);
    let mut json = serde_json::to_value(&base).map_err(|e| bad(e.to_string()))?;
    let overrides: serde_json::Map<String, Value> =
        serde_json::from_str(overrides).map_err(|e| bad(format!("parameters: {e}")))?;
    for (key, value) in overrides {
        let Some(&(_, path)) = PARAMETERS.iter().find(|(k, _)| *k == key) else {
            let names: Vec<&str> = PARAMETERS.iter().map(|(k, _)| *k).collect();
            return Err(bad(format!(
                "unknown parameter '{key}'; the parameters are {}",
                names.join(", ")
            )));
        };
        let value = match (key.as_str(), value) {
            ("stop_threshold", Value::Number(n)) if n.as_f64() == Some(0.0) => Value::Null,
            ("refine_onsets", Value::Bool(false)) => Value::Null,
            ("refine_onsets", Value::Bool(true)) => json["transcribe"]["onset"]["refine"].clone(),
            (_, v) => v,
        };
        let slot = path
            .split('.')
            .try_fold(&mut json, |at, part| at.get_mut(part))
            .expect("every path is a field of Config");
        *slot = value;
    }
    let c: Config = serde_json::from_value(json).map_err(|e| bad(format!("parameters: {e}")))?;
    c.validate()?;
    Ok(c)
}
