//! `--report` end to end: on the bundled example, the page and its images (decoded, and their
//! pixels checked loosely against what the recording holds), a later run without `--report`
//! removing the old page; `--reference` and `--reference-stems` (the same figures as `eval
//! notes` and `eval stems`); an alignment's figures (`align --report`); `scorenmf report OUTDIR`
//! giving the page `run --report` gives; a long recording's overview and pages; and the pages in
//! a real browser (headless Chromium through `tests/browser/check.mjs`: every image and player
//! loads, the table sorts, no console error; a screenshot in `target/report-screenshot.png`).
//!
//! The browser part needs Debian's `chromium` and `npm ci` in `tests/browser` (`.ci/run` does
//! both and sets `SCORENMF_BROWSER_TEST=1`, which makes their absence a failure); elsewhere it
//! says it was skipped.

use std::path::Path;
use std::process::Command;

#[allow(dead_code)]
mod common;
use common::{scorenmf, TempDir, CHOPIN_CSV, CHOPIN_WAV};

/// A PNG decoded: width, height, grey levels (the report writes 8-bit greyscale).
fn decode(path: &Path) -> (usize, usize, Vec<u8>) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(
        info.color_type,
        png::ColorType::Grayscale,
        "{}",
        path.display()
    );
    buf.truncate(info.buffer_size());
    (info.width as usize, info.height as usize, buf)
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn run_with_report_writes_a_page_whose_figures_show_the_recording() {
    let dir = TempDir::new("report-chopin");
    let out = dir.0.join("out");
    let o = out.display().to_string();
    let (code, err) = scorenmf(&["run", CHOPIN_WAV, CHOPIN_CSV, "-o", &o, "--report", "-q"]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let notes: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("notes.json")).unwrap()).unwrap();
    let played = notes["events"].as_array().unwrap().len();
    let unplayed = notes["not_played"].as_array().unwrap().len();
    // One outline per score note, one filled box per played note, one red per note not played.
    assert_eq!(count(&html, "<rect class=\"score\""), played + unplayed);
    assert_eq!(count(&html, "<rect class=\"played\""), played);
    assert_eq!(count(&html, "<rect class=\"unplayed\""), unplayed);
    // The table: a row per score note, the notes not played first.
    let body = html.split("<tbody>").nth(1).unwrap();
    assert_eq!(count(body, "<tr"), played + unplayed);
    assert!(
        body.starts_with("<tr class=\"unplayed\">"),
        "{}",
        &body[..80]
    );
    // Players: the recording (by its path from the output folder) and the three stems.
    assert_eq!(count(&html, "<audio"), 4);
    assert!(html.contains("src=\"stems/instrument/rh.wav\""));
    let mix = html.split("<audio").nth(1).unwrap();
    let src = mix
        .split("src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(
        out.join(src).is_file(),
        "the mix's path {src} does not reach the recording"
    );
    // Nothing from a network.
    assert!(!html.contains("http://") && !html.contains("https://"));

    // The images: sizes follow the factorization (459 frames, 16 components).
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let frames = run["results"]["frames"].as_u64().unwrap() as usize;
    let r = run["results"]["components"].as_u64().unwrap() as usize;
    let (w, h, spec) = decode(&out.join("report/spectrogram.png"));
    assert_eq!(w, frames);
    for name in ["h0", "h"] {
        let (w, h, _) = decode(&out.join(format!("report/{name}.png")));
        assert_eq!((w, h), (frames, r), "{name}");
    }
    for name in ["w0", "w"] {
        let (w, _, _) = decode(&out.join(format!("report/{name}.png")));
        assert_eq!(w, r, "{name}");
    }
    // Pixels, loosely: the melody's B4 row (from the page's pitch range: 4 rows per semitone,
    // top row the highest pitch) is darker while B4 sounds than a row three semitones under
    // the score's lowest pitch, where nothing is played, is anywhere.
    let pitches: Vec<u8> = notes["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pitch"].as_u64().unwrap() as u8)
        .collect();
    let (lo, hi) = (
        *pitches.iter().min().unwrap(),
        *pitches.iter().max().unwrap(),
    );
    let top = (hi as usize + 19).min(127);
    assert_eq!(h, (top - (lo as usize - 3) + 1) * 4);
    let row_of = |p: usize| (top - p) * 4 + 2;
    let b4: Vec<&serde_json::Value> = notes["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["pitch"] == 71)
        .collect();
    let frame_time = 512.0 / 22050.0;
    let mean_at = |row: usize, cols: &mut dyn Iterator<Item = usize>| {
        let v: Vec<f64> = cols.map(|c| spec[row * w + c] as f64).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let e = b4[0];
    let (a, b) = (
        (e["onset"].as_f64().unwrap() / frame_time) as usize + 2,
        (e["offset"].as_f64().unwrap() / frame_time) as usize,
    );
    let melody = mean_at(row_of(71), &mut (a..b));
    let silent = mean_at(row_of(lo as usize - 3), &mut (0..w));
    assert!(
        melody + 60.0 < silent,
        "B4 row {melody:.0} vs empty row {silent:.0} (grey levels)"
    );

    // The report changes no other output: notes as a run without it writes them.
    let plain = dir.0.join("plain");
    let (code, err) = scorenmf(&[
        "run",
        CHOPIN_WAV,
        CHOPIN_CSV,
        "-o",
        &plain.display().to_string(),
        "-q",
    ]);
    assert_eq!(code, 0, "{err}");
    for f in ["notes.csv", "notes.json", "stems/instrument/rh.wav"] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(plain.join(f)).unwrap(),
            "{f}"
        );
    }

    // An input inside the report's image folder, which every run replaces, is refused.
    let inside = out.join("report").join("input.wav");
    std::fs::copy(CHOPIN_WAV, &inside).unwrap();
    let i = inside.display().to_string();
    let (code, err) = scorenmf(&["transcribe", &i, CHOPIN_CSV, "-o", &o, "-q"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("would overwrite the input recording"), "{err}");
    assert!(inside.exists());

    // A later run in the same folder without --report leaves no stale page.
    let (code, err) = scorenmf(&["transcribe", CHOPIN_WAV, CHOPIN_CSV, "-o", &o, "-q"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.join("report.html").exists() && !out.join("report").exists());
}

/// `tests/browser/check.mjs` on `page` (screenshot to `shot`): what it counted, or `None` when
/// Chromium, node or the npm packages are missing (a failure with `SCORENMF_BROWSER_TEST=1`).
fn browser_check(page: &Path, shot: &Path) -> Option<serde_json::Value> {
    let required = std::env::var("SCORENMF_BROWSER_TEST").is_ok_and(|v| v == "1");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = Path::new(&chromium).exists()
        && Path::new("tests/browser/node_modules/playwright-core").exists()
        && Command::new("node").arg("--version").output().is_ok();
    if !ready {
        assert!(
            !required,
            "SCORENMF_BROWSER_TEST=1 but {chromium}, node or tests/browser/node_modules is missing"
        );
        eprintln!("skipped: no {chromium}, node, or `npm ci` in tests/browser (see .ci/run)");
        return None;
    }
    let result = Command::new("node")
        .arg("tests/browser/check.mjs")
        .arg(page)
        .arg(shot)
        .env("CHROMIUM", &chromium)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    Some(serde_json::from_str(stdout.trim()).unwrap())
}

#[test]
fn the_report_opens_in_headless_chromium() {
    let dir = TempDir::new("report-browser");
    let out = dir.0.join("out");
    let o = out.display().to_string();
    let (code, err) = scorenmf(&["run", CHOPIN_WAV, CHOPIN_CSV, "-o", &o, "--report", "-q"]);
    assert_eq!(code, 0, "{err}");
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../report-screenshot.png");
    let Some(found) = browser_check(&out.join("report.html"), &shot) else {
        return;
    };
    assert_eq!(found["images"], 5, "{found}");
    assert_eq!(found["audio"], 4, "{found}");
    assert_eq!(found["table_rows"], 54, "{found}");
    let (w, h, _) = {
        let decoder = png::Decoder::new(std::fs::File::open(&shot).unwrap());
        let reader = decoder.read_info().unwrap();
        let i = reader.info();
        (i.width, i.height, ())
    };
    assert!(w >= 1000 && h > 2000, "screenshot {w}×{h}");

    // An alignment's page: its cost matrix, the path and the recording's player.
    let aligned = dir.0.join("aligned");
    let wav = "data/alignment/FMP_C3S3_Beethoven_Fifth-MM1-21_Sibelius-Piano_Fermata.wav";
    let xml = "data/alignment/FMP_C1_F10_Beethoven_Fifth-MM1-21_Sibelius-Piano.xml";
    let a = aligned.display().to_string();
    let (code, err) = scorenmf(&["align", wav, xml, "-o", &a, "--report", "-q"]);
    assert_eq!(code, 0, "{err}");
    let found = browser_check(&aligned.join("report.html"), &dir.0.join("aligned.png")).unwrap();
    assert_eq!(found["images"], 1, "{found}");
    assert_eq!(found["audio"], 1, "{found}");
    assert!(found["path_points"].as_u64().unwrap() > 100, "{found}");
}

/// The bundled example repeated `times` over, with its score, written into `dir`.
fn repeated_example(dir: &Path, times: usize) -> (String, String, usize) {
    use scorenmf::io::audio::{read_audio, write_wav, WavEncoding};
    let a = read_audio(Path::new(CHOPIN_WAV)).unwrap();
    let seconds = a.duration();
    let channels: Vec<Vec<f32>> = a.channels.iter().map(|c| c.repeat(times)).collect();
    let wav = dir.join("long.wav");
    write_wav(&wav, &channels, a.sample_rate, WavEncoding::Pcm16).unwrap();
    let text = std::fs::read_to_string(CHOPIN_CSV).unwrap();
    let mut lines = text.lines();
    let mut csv = format!("{}\n", lines.next().unwrap());
    let rows: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    for k in 0..times {
        for row in &rows {
            let (start, rest) = row.split_once(';').unwrap();
            let t: f64 = start.parse().unwrap();
            csv += &format!("{};{rest}\n", t + k as f64 * seconds);
        }
    }
    let csv_path = dir.join("long.csv");
    std::fs::write(&csv_path, csv).unwrap();
    (
        wav.display().to_string(),
        csv_path.display().to_string(),
        rows.len() * times,
    )
}

#[test]
fn a_long_recording_gets_an_overview_and_pages() {
    let dir = TempDir::new("report-long");
    let (wav, csv, notes) = repeated_example(&dir.0, 7);
    let out = dir.0.join("out");
    let o = out.display().to_string();
    let (code, err) = scorenmf(&["run", &wav, &csv, "-o", &o, "--report", "-q"]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg id=\"overview\"") && html.contains("<svg id=\"spectrogram\""));
    // The notes are drawn by the page's script from its list, not as elements.
    assert_eq!(count(&html, "<rect class=\"score\""), 0);
    let data = html
        .split("<script type=\"application/json\" id=\"zoom-data\">")
        .nth(1)
        .and_then(|s| s.split("</script>").next())
        .unwrap();
    let data: serde_json::Value = serde_json::from_str(data).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("notes.json")).unwrap()).unwrap();
    assert_eq!(data["score"].as_array().unwrap().len(), notes);
    assert_eq!(
        data["played"].as_array().unwrap().len(),
        json["events"].as_array().unwrap().len()
    );
    // 74.6 s in pages of 30 s: three, each one image column per frame (hop 512 at 22050 Hz).
    let tiles = data["tiles"].as_array().unwrap();
    assert_eq!(tiles.len(), 3);
    let frames = (30.0_f64 * 22050.0 / 512.0).round() as usize;
    for (k, t) in tiles.iter().enumerate() {
        let (w, h, grey) = decode(&out.join(t["file"].as_str().unwrap()));
        if k < 2 {
            assert_eq!(w, frames);
        }
        assert!(h > 100 && grey.iter().any(|&g| g < 128), "tile {k}");
    }
    let shot = dir.0.join("long.png");
    if let Some(found) = browser_check(&out.join("report.html"), &shot) {
        assert_eq!(found["tiles"], 3, "{found}");
        assert!(found["note_rects"].as_u64().unwrap() > 50, "{found}");
        assert_eq!(found["table_rows"].as_u64().unwrap() as usize, notes);
    }
}

#[test]
fn a_reference_adds_eval_notes_metrics_and_marks_the_misses() {
    let dir = TempDir::new("report-reference");
    let out = dir.0.join("out");
    let o = out.display().to_string();
    // The bundled score is the recording's aligned annotation: a reference of its own.
    let args = [
        "run",
        CHOPIN_WAV,
        CHOPIN_CSV,
        "-o",
        &o,
        "--report",
        "--reference",
        CHOPIN_CSV,
    ];
    let (code, err) = scorenmf(&[&args[..], &["-q"]].concat());
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let eval = Command::new(env!("CARGO_BIN_EXE_scorenmf"))
        .args([
            "eval",
            "notes",
            CHOPIN_CSV,
            &format!("{o}/notes.csv"),
            "--json",
        ])
        .output()
        .unwrap();
    let scores: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    let onset = &scores["scores"]["onset"];
    let with_offsets = &scores["scores"]["onset+offset (0.2)"];
    let row = |name: &str, s: &serde_json::Value| {
        format!(
            "<td style=\"text-align:left\">{name}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td>",
            s["precision"].as_f64().unwrap(),
            s["recall"].as_f64().unwrap(),
            s["f_measure"].as_f64().unwrap()
        )
    };
    assert!(
        html.contains(&row("onsets", onset)),
        "{}",
        row("onsets", onset)
    );
    assert!(html.contains(&row("onsets and offsets", with_offsets)));
    // Every reference note unmatched is drawn, and every played note unmatched.
    let matched = onset["matched"].as_u64().unwrap() as usize;
    let missed = onset["reference"].as_u64().unwrap() as usize - matched;
    let wrong = onset["estimated"].as_u64().unwrap() as usize - matched;
    assert_eq!(count(&html, "<rect class=\"missed\""), missed);
    assert_eq!(count(&html, "<rect class=\"wrong\""), wrong);
    assert!(missed > 0, "the not-played note is a miss");

    // --reference without --report, and a reference that is not there: exit 2, one line.
    let (code, _) = scorenmf(&[
        "run",
        CHOPIN_WAV,
        CHOPIN_CSV,
        "-o",
        &o,
        "--reference",
        CHOPIN_CSV,
    ]);
    assert_eq!(code, 2);
    let missing = dir.0.join("missing.csv").display().to_string();
    let (code, err) = scorenmf(&[
        "run",
        CHOPIN_WAV,
        CHOPIN_CSV,
        "-o",
        &o,
        "--report",
        "--reference",
        &missing,
        "-q",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("missing.csv") && err.trim().lines().count() == 1,
        "{err}"
    );
}

/// A two-hand piece rendered hand by hand (`lh` mellow, `rh` bright) into `dir`: the mix, its
/// score and the true stems in `dir/truth/` (named as `stems/instrument/`'s files).
fn rendered_hands(dir: &Path) -> (String, String, std::path::PathBuf) {
    use scorenmf::io::audio::{write_wav, WavEncoding};
    use scorenmf::signal::synth::random_piece;
    let score = random_piece(8.0, 11);
    let sr = 22050;
    let [lh, rh] = common::hands(&score, sr, 9 * sr as usize, 5);
    let truth = dir.join("truth");
    std::fs::create_dir_all(&truth).unwrap();
    let f32wav = WavEncoding::Float32;
    write_wav(&truth.join("lh.wav"), std::slice::from_ref(&lh), sr, f32wav).unwrap();
    write_wav(&truth.join("rh.wav"), std::slice::from_ref(&rh), sr, f32wav).unwrap();
    let mix: Vec<f32> = lh.iter().zip(&rh).map(|(a, b)| a + b).collect();
    let wav = dir.join("mix.wav");
    write_wav(&wav, &[mix], sr, f32wav).unwrap();
    let mut csv = String::from("\"Start\";\"Duration\";\"Pitch\";\"Velocity\";\"Instrument\"\n");
    for n in &score.notes {
        csv += &format!(
            "{};{};{};{};\"{}\"\n",
            n.onset, n.duration, n.pitch, n.velocity, n.instrument
        );
    }
    let csv_path = dir.join("score.csv");
    std::fs::write(&csv_path, csv).unwrap();
    (
        wav.display().to_string(),
        csv_path.display().to_string(),
        truth,
    )
}

#[test]
fn reference_stems_add_eval_stems_metrics() {
    let dir = TempDir::new("report-stems");
    let (wav, csv, truth) = rendered_hands(&dir.0);
    let out = dir.0.join("out");
    let (o, t) = (out.display().to_string(), truth.display().to_string());
    let run = |extra: &[&str]| {
        let args = ["separate", &wav, &csv, "-o", &o, "--report", "-q"];
        scorenmf(&[&args[..], extra].concat())
    };
    let (code, err) = run(&["--reference-stems", &t]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    // The same figures as `eval stems` on the same files.
    let eval = Command::new(env!("CARGO_BIN_EXE_scorenmf"))
        .args([
            "eval",
            "stems",
            &t,
            &format!("{o}/stems/instrument"),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(eval.status.success());
    let scores: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    for hand in ["lh", "rh"] {
        let s = &scores["sources"][hand];
        let row = format!(
            "<td style=\"text-align:left\">{hand}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td>",
            s["sdr"].as_f64().unwrap(),
            s["sir"].as_f64().unwrap(),
            s["sar"].as_f64().unwrap(),
            s["si_sdr"].as_f64().unwrap()
        );
        assert!(html.contains(&row), "{row}");
        assert!(s["sdr"].as_f64().unwrap() > 8.0, "{hand}: {s}");
    }
    assert!(html.contains("<caption>stems/instrument</caption>"));

    // A folder of groupings is compared grouping by grouping.
    let nested = dir.0.join("nested");
    std::fs::create_dir_all(nested.join("instrument")).unwrap();
    for f in ["lh.wav", "rh.wav"] {
        std::fs::copy(truth.join(f), nested.join("instrument").join(f)).unwrap();
    }
    let (code, err) = run(&["--reference-stems", &nested.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let again = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(count(&again, "<table class=\"stems-eval\">"), 1);

    // Names no grouping has, a command without stems, no such folder: exit 2, one line each.
    let other = dir.0.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(truth.join("lh.wav"), other.join("left.wav")).unwrap();
    let (code, err) = run(&["--reference-stems", &other.display().to_string()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("other") && err.trim().lines().count() == 1,
        "{err}"
    );
    let (code, err) = scorenmf(&[
        "transcribe",
        &wav,
        &csv,
        "-o",
        &o,
        "--report",
        "--reference-stems",
        &t,
        "-q",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("writes no stems"), "{err}");
    let missing = dir.0.join("missing").display().to_string();
    let (code, err) = run(&["--reference-stems", &missing]);
    assert_eq!(code, 2);
    assert!(
        err.contains("missing") && err.trim().lines().count() == 1,
        "{err}"
    );
}

#[test]
fn align_with_report_draws_the_path_over_the_cost_matrix() {
    let dir = TempDir::new("report-align");
    let out = dir.0.join("out");
    let o = out.display().to_string();
    let wav = "data/alignment/FMP_C3S3_Beethoven_Fifth-MM1-21_Sibelius-Piano_Fermata.wav";
    let xml = "data/alignment/FMP_C1_F10_Beethoven_Fifth-MM1-21_Sibelius-Piano.xml";
    let (code, err) = scorenmf(&["align", wav, xml, "-o", &o, "--report", "-q"]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg id=\"alignment\"") && html.contains("<svg id=\"tempo\""));
    assert!(!html.contains("id=\"spectrogram\""));
    // The path's points, in SVG units: x from 70 (time 0) to 930 (the end), y from 430 (score
    // time 0) up to 10.
    let points = html
        .split("class=\"path\"")
        .nth(1)
        .and_then(|s| s.split("points=\"").nth(1))
        .and_then(|s| s.split('"').next())
        .unwrap();
    let xy: Vec<(f64, f64)> = points
        .split_whitespace()
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect();
    assert!(xy.len() > 100);
    assert!(xy.windows(2).all(|w| w[1].0 > w[0].0 && w[1].1 < w[0].1));
    // Loosely, in pixels: the cost image is lighter (cheaper) under the path than overall.
    let (w, h, grey) = decode(&out.join("report/alignment.png"));
    assert!(w > 500 && h > 500, "{w}×{h}");
    let at = |x: f64, y: f64| {
        let c = (((x - 70.0) / 860.0) * w as f64).clamp(0.0, w as f64 - 1.0) as usize;
        let r = (((y - 10.0) / 420.0) * h as f64).clamp(0.0, h as f64 - 1.0) as usize;
        grey[r * w + c] as f64
    };
    let on_path = xy.iter().map(|&(x, y)| at(x, y)).sum::<f64>() / xy.len() as f64;
    let overall = grey.iter().map(|&g| g as f64).sum::<f64>() / grey.len() as f64;
    assert!(
        on_path > overall + 40.0,
        "under the path {on_path:.0}, overall {overall:.0}"
    );
    // The rendering plays the score's tempo except at its fermatas, which it holds longer: the
    // tempo runs along the dashed 100 % line and dips under it (larger y).
    let tempo = html.split("<svg id=\"tempo\"").nth(1).unwrap();
    let line_y: f64 = tempo
        .split("y1=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let curve = tempo
        .split("points=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let ys: Vec<f64> = curve
        .split_whitespace()
        .map(|p| p.split_once(',').unwrap().1.parse().unwrap())
        .collect();
    assert!(ys.len() > 50);
    assert!(ys.iter().any(|&y| y > line_y + 10.0), "no slower part");
    let at_score_tempo = ys.iter().filter(|&&y| (y - line_y).abs() < 2.0).count();
    assert!(
        at_score_tempo > ys.len() / 3,
        "{at_score_tempo} of {}",
        ys.len()
    );

    // `run --align --report` shows the alignment above the transcription.
    let (code, err) = scorenmf(&["run", wav, xml, "--align", "-o", &o, "--report", "-q"]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let (a, s) = (
        html.find("<svg id=\"alignment\"").unwrap(),
        html.find("<svg id=\"spectrogram\"").unwrap(),
    );
    assert!(a < s);
    // A later align without --report leaves the report of the run alone.
    let (code, err) = scorenmf(&["align", wav, xml, "-o", &o, "-q"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.join("report.html").exists());
}

#[test]
fn report_of_a_finished_run_is_the_page_run_with_report_writes() {
    let dir = TempDir::new("report-command");
    let (done, direct) = (dir.0.join("done"), dir.0.join("direct"));
    let (d, r) = (done.display().to_string(), direct.display().to_string());
    let (code, err) = scorenmf(&["run", CHOPIN_WAV, CHOPIN_CSV, "-o", &d, "-q"]);
    assert_eq!(code, 0, "{err}");
    let before: Vec<Vec<u8>> = ["notes.csv", "run.json", "stems/instrument/rh.wav"]
        .iter()
        .map(|f| std::fs::read(done.join(f)).unwrap())
        .collect();
    // From another folder: the inputs are found by their absolute paths.
    let out = Command::new(env!("CARGO_BIN_EXE_scorenmf"))
        .args(["report", &d, "--reference"])
        .arg(std::fs::canonicalize(CHOPIN_CSV).unwrap())
        .arg("-q")
        .current_dir(&dir.0)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, err) = scorenmf(&[
        "run",
        CHOPIN_WAV,
        CHOPIN_CSV,
        "-o",
        &r,
        "--report",
        "--reference",
        &std::fs::canonicalize(CHOPIN_CSV)
            .unwrap()
            .display()
            .to_string(),
        "-q",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read(done.join("report.html")).unwrap(),
        std::fs::read(direct.join("report.html")).unwrap()
    );
    for image in ["spectrogram", "w0", "w", "h0", "h"] {
        let f = format!("report/{image}.png");
        assert_eq!(decode(&done.join(&f)), decode(&direct.join(&f)), "{f}");
    }
    // Nothing else in the folder changed.
    for (f, bytes) in ["notes.csv", "run.json", "stems/instrument/rh.wav"]
        .iter()
        .zip(before)
    {
        assert_eq!(std::fs::read(done.join(f)).unwrap(), bytes, "{f}");
    }

    // An input changed since the run, a folder with no run.json: exit 2, one line.
    let wav = dir.0.join("copy.wav");
    std::fs::copy(CHOPIN_WAV, &wav).unwrap();
    let w = wav.display().to_string();
    let (code, err) = scorenmf(&["transcribe", &w, CHOPIN_CSV, "-o", &d, "-q"]);
    assert_eq!(code, 0, "{err}");
    let mut bytes = std::fs::read(&wav).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&wav, bytes).unwrap();
    let (code, err) = scorenmf(&["report", &d, "-q"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("copy.wav")
            && err.contains("changed since the run")
            && err.trim().lines().count() == 1,
        "{err}"
    );
    let (code, err) = scorenmf(&["report", &dir.0.display().to_string(), "-q"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("run.json") && err.trim().lines().count() == 1,
        "{err}"
    );

    // An alignment's report.
    let wav = "data/alignment/FMP_C3S3_Beethoven_Fifth-MM1-21_Sibelius-Piano_Fermata.wav";
    let xml = "data/alignment/FMP_C1_F10_Beethoven_Fifth-MM1-21_Sibelius-Piano.xml";
    let aligned = dir.0.join("aligned").display().to_string();
    let (code, err) = scorenmf(&["align", wav, xml, "-o", &aligned, "-q"]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = scorenmf(&["report", &aligned, "-q"]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(dir.0.join("aligned/report.html")).unwrap();
    assert!(html.contains("<svg id=\"alignment\""));
}

/// The "Against the reference" table of a page.
fn reference_table(html: &str) -> &str {
    let start = html.find("<h2>Against the reference</h2>").unwrap();
    let end = start + html[start..].find("</table>").unwrap();
    &html[start..end]
}

#[test]
fn the_report_of_a_separate_ignores_another_tasks_notes() {
    let dir = TempDir::new("report-stale-notes");
    let out = dir.0.join("out");
    let o = out.display().to_string();
    // notes.csv of a transcription with another threshold (fewer notes played), then stems.
    let (code, err) = scorenmf(&[
        "transcribe",
        CHOPIN_WAV,
        CHOPIN_CSV,
        "-o",
        &o,
        "--threshold",
        "3",
        "-q",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = scorenmf(&["separate", CHOPIN_WAV, CHOPIN_CSV, "-o", &o, "-q"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.join("notes.csv").exists());
    let (code, err) = scorenmf(&["report", &o, "--reference", CHOPIN_CSV, "-q"]);
    assert_eq!(code, 0, "{err}");
    let reported = std::fs::read_to_string(out.join("report.html")).unwrap();
    // The separation's own transcription, as `separate --report --reference` measures it.
    let direct = dir.0.join("direct");
    let d = direct.display().to_string();
    let (code, err) = scorenmf(&[
        "separate",
        CHOPIN_WAV,
        CHOPIN_CSV,
        "-o",
        &d,
        "--report",
        "--reference",
        CHOPIN_CSV,
        "-q",
    ]);
    assert_eq!(code, 0, "{err}");
    let expected = std::fs::read_to_string(direct.join("report.html")).unwrap();
    assert_eq!(reference_table(&reported), reference_table(&expected));
}
