//! Note-level transcription metrics with the definitions of `mir_eval.transcription` and
//! `mir_eval.transcription_velocity` (Raffel et al., "mir_eval", ISMIR 2014), so that the
//! numbers are the same numbers.
//!
//! An estimated note matches a reference note when
//! * |onset_ref − onset_est| ≤ `onset_tolerance` (distances rounded to 4 decimals, as mir_eval);
//! * 1200·|log₂ f_ref − log₂ f_est| ≤ `pitch_tolerance` cents;
//! * optionally |offset_ref − offset_est| ≤ max(`offset_ratio` · duration_ref,
//!   `offset_min_tolerance`) (rounded likewise);
//!
//! (`<` instead of `≤` with `strict`). Each note is matched at most once, by a maximum-cardinality
//! bipartite matching (Hopcroft–Karp, in mir_eval's exact traversal order, so the *same* pairs are
//! chosen and the average overlap ratio agrees too). Precision = matches / estimated notes,
//! recall = matches / reference notes, F = 2PR/(P+R), and the average overlap ratio is the mean
//! over matched pairs of (min offset − max onset) / (max offset − min onset). Either side empty
//! gives all zeros, as mir_eval.
//!
//! The velocity variant first matches as above, then rescales the reference velocities to [0, 1]
//! by their min and max (range at least 1), fits est → ref velocities of the matched pairs by
//! least squares, and keeps the pairs whose rescaled velocities differ by less than
//! `velocity_tolerance`. Velocities are taken as MIDI velocities (the score's [0, 1] × 127).

use serde::Serialize;

use crate::io::score::Note;

/// Matching tolerances (mir_eval's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NoteTolerances {
    /// Seconds.
    pub onset_tolerance: f64,
    /// Cents.
    pub pitch_tolerance: f64,
    /// Fraction of the reference duration; `None` ignores offsets.
    pub offset_ratio: Option<f64>,
    /// Seconds.
    pub offset_min_tolerance: f64,
    /// Use `<` instead of `≤`.
    pub strict: bool,
    /// Of rescaled velocities, in [0, 1].
    pub velocity_tolerance: f64,
}

impl Default for NoteTolerances {
    fn default() -> Self {
        NoteTolerances {
            onset_tolerance: 0.05,
            pitch_tolerance: 50.0,
            offset_ratio: Some(0.2),
            offset_min_tolerance: 0.05,
            strict: false,
            velocity_tolerance: 0.1,
        }
    }
}

/// Precision, recall, F-measure and average overlap ratio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NoteScores {
    pub precision: f64,
    pub recall: f64,
    pub f_measure: f64,
    pub average_overlap_ratio: f64,
    pub matched: usize,
    pub reference: usize,
    pub estimated: usize,
}

/// A note as the metrics see it: interval, pitch in Hz, velocity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalNote {
    pub onset: f64,
    pub offset: f64,
    pub hz: f64,
    pub velocity: f64,
}

impl EvalNote {
    /// From a score note: pitch 440·2^((p − 69)/12) Hz, velocity × 127.
    pub fn from_note(n: &Note) -> EvalNote {
        EvalNote {
            onset: n.onset,
            offset: n.end(),
            hz: 440.0 * 2f64.powf((n.pitch as f64 - 69.0) / 12.0),
            velocity: n.velocity * 127.0,
        }
    }
}

/// numpy's `around(x, 4)`: round half to even at 4 decimals.
fn around4(x: f64) -> f64 {
    (x * 1e4).round_ties_even() / 1e4
}

/// The (ref, est) pairs that mir_eval's `match_notes` returns, sorted by ref index.
pub fn match_notes(r: &[EvalNote], e: &[EvalNote], t: &NoteTolerances) -> Vec<(usize, usize)> {
    let cmp = |d: f64, tol: f64| if t.strict { d < tol } else { d <= tol };
    // G: est → refs, keys in order of first appearance in a ref-major scan (np.where order).
    let mut order: Vec<usize> = Vec::new();
    let mut graph: Vec<Vec<usize>> = vec![Vec::new(); e.len()];
    for (i, rn) in r.iter().enumerate() {
        let offset_tol = t
            .offset_ratio
            .map(|ratio| (ratio * (rn.offset - rn.onset)).max(t.offset_min_tolerance));
        for (j, en) in e.iter().enumerate() {
            let onset_hit = cmp(around4((rn.onset - en.onset).abs()), t.onset_tolerance);
            let pitch_hit = cmp(
                (1200.0 * (rn.hz.log2() - en.hz.log2())).abs(),
                t.pitch_tolerance,
            );
            let offset_hit =
                offset_tol.is_none_or(|tol| cmp(around4((rn.offset - en.offset).abs()), tol));
            if onset_hit && pitch_hit && offset_hit {
                if graph[j].is_empty() {
                    order.push(j);
                }
                graph[j].push(i);
            }
        }
    }
    let ordered: Vec<(usize, Vec<usize>)> = order
        .into_iter()
        .map(|j| (j, std::mem::take(&mut graph[j])))
        .collect();
    let matching = bipartite_match(&ordered, r.len(), e.len());
    matching
        .iter()
        .enumerate()
        .filter_map(|(v, u)| u.map(|u| (v, u)))
        .collect()
}

/// Marks in `pred` (mir_eval's Eppstein-derived Hopcroft–Karp).
#[derive(Clone, Copy, PartialEq)]
enum Pred {
    /// First layer (Python's `unmatched` flag value).
    Root,
    V(usize),
}

/// Maximum-cardinality matching of the bipartite graph `graph` (left vertex u → right vertices
/// v, in the order the dict was built), following mir_eval's `_bipartite_match` step for step
/// so that the same matching comes out. Returns, per right vertex, its left match.
fn bipartite_match(
    graph: &[(usize, Vec<usize>)],
    n_right: usize,
    n_left: usize,
) -> Vec<Option<usize>> {
    let mut position: Vec<Option<usize>> = vec![None; n_left];
    for (i, (u, _)) in graph.iter().enumerate() {
        position[*u] = Some(i);
    }
    let mut matching: Vec<Option<usize>> = vec![None; n_right];
    for (u, vs) in graph {
        if let Some(&v) = vs.iter().find(|&&v| matching[v].is_none()) {
            matching[v] = Some(*u);
        }
    }
    loop {
        let mut preds: Vec<Option<Vec<usize>>> = vec![None; n_right];
        let mut unmatched: Vec<usize> = Vec::new();
        let mut pred: Vec<Option<Pred>> = vec![None; n_left];
        for (u, _) in graph {
            pred[*u] = Some(Pred::Root);
        }
        for u in matching.iter().flatten() {
            pred[*u] = None;
        }
        let adjacency = |u: usize| -> &[usize] { position[u].map_or(&[], |i| &graph[i].1) };
        let mut layer: Vec<usize> = graph
            .iter()
            .map(|(u, _)| *u)
            .filter(|&u| pred[u].is_some())
            .collect();
        while !layer.is_empty() && unmatched.is_empty() {
            let mut new_layer: Vec<(usize, Vec<usize>)> = Vec::new();
            let mut slot: Vec<Option<usize>> = vec![None; n_right];
            for &u in &layer {
                for &v in adjacency(u) {
                    if preds[v].is_none() {
                        match slot[v] {
                            Some(s) => new_layer[s].1.push(u),
                            None => {
                                slot[v] = Some(new_layer.len());
                                new_layer.push((v, vec![u]));
                            }
                        }
                    }
                }
            }
            layer.clear();
            for (v, us) in new_layer {
                preds[v] = Some(us);
                match matching[v] {
                    Some(m) => {
                        layer.push(m);
                        pred[m] = Some(Pred::V(v));
                    }
                    None => unmatched.push(v),
                }
            }
        }
        if unmatched.is_empty() {
            return matching;
        }
        fn recurse(
            v: usize,
            preds: &mut [Option<Vec<usize>>],
            pred: &mut [Option<Pred>],
            matching: &mut [Option<usize>],
        ) -> bool {
            if let Some(us) = preds[v].take() {
                for u in us {
                    if let Some(pu) = pred[u].take() {
                        let found = match pu {
                            Pred::Root => true,
                            Pred::V(pv) => recurse(pv, preds, pred, matching),
                        };
                        if found {
                            matching[v] = Some(u);
                            return true;
                        }
                    }
                }
            }
            false
        }
        for v in unmatched {
            recurse(v, &mut preds, &mut pred, &mut matching);
        }
    }
}

fn f_measure(p: f64, r: f64) -> f64 {
    if p == 0.0 && r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

fn scores(r: &[EvalNote], e: &[EvalNote], matching: &[(usize, usize)]) -> NoteScores {
    let m = matching.len();
    let precision = m as f64 / e.len() as f64;
    let recall = m as f64 / r.len() as f64;
    let ratios: Vec<f64> = matching
        .iter()
        .map(|&(i, j)| {
            let (a, b) = (r[i], e[j]);
            (a.offset.min(b.offset) - a.onset.max(b.onset))
                / (a.offset.max(b.offset) - a.onset.min(b.onset))
        })
        .collect();
    NoteScores {
        precision,
        recall,
        f_measure: f_measure(precision, recall),
        // numpy's mean: pairwise summation differs from a plain sum by far less than 1e-12 here.
        average_overlap_ratio: if ratios.is_empty() {
            0.0
        } else {
            ratios.iter().sum::<f64>() / ratios.len() as f64
        },
        matched: m,
        reference: r.len(),
        estimated: e.len(),
    }
}

fn empty(r: &[EvalNote], e: &[EvalNote]) -> NoteScores {
    NoteScores {
        precision: 0.0,
        recall: 0.0,
        f_measure: 0.0,
        average_overlap_ratio: 0.0,
        matched: 0,
        reference: r.len(),
        estimated: e.len(),
    }
}

/// `mir_eval.transcription.precision_recall_f1_overlap`.
pub fn evaluate(r: &[EvalNote], e: &[EvalNote], t: &NoteTolerances) -> NoteScores {
    if r.is_empty() || e.is_empty() {
        return empty(r, e);
    }
    scores(r, e, &match_notes(r, e, t))
}

/// `mir_eval.transcription_velocity.precision_recall_f1_overlap`.
pub fn evaluate_velocity(r: &[EvalNote], e: &[EvalNote], t: &NoteTolerances) -> NoteScores {
    if r.is_empty() || e.is_empty() {
        return empty(r, e);
    }
    let matching = match_notes(r, e, t);
    if matching.is_empty() {
        return scores(r, e, &matching);
    }
    let (lo, hi) = r
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), n| {
            (a.min(n.velocity), b.max(n.velocity))
        });
    let range = (hi - lo).max(1.0);
    let y: Vec<f64> = matching
        .iter()
        .map(|&(i, _)| (r[i].velocity - lo) / range)
        .collect();
    let x: Vec<f64> = matching.iter().map(|&(_, j)| e[j].velocity).collect();
    let (slope, intercept) = least_squares_line(&x, &y);
    let kept: Vec<(usize, usize)> = matching
        .iter()
        .zip(x.iter().zip(&y))
        .filter(|(_, (xv, yv))| (slope * **xv + intercept - **yv).abs() < t.velocity_tolerance)
        .map(|(m, _)| *m)
        .collect();
    scores(r, e, &kept)
}

/// The minimum-norm least-squares solution (s, c) of s·x + c ≈ y (numpy's `lstsq` on [x 1]).
fn least_squares_line(x: &[f64], y: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let (sx, sy) = (x.iter().sum::<f64>(), y.iter().sum::<f64>());
    let sxx: f64 = x.iter().map(|v| v * v).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| a * b).sum();
    let det = n * sxx - sx * sx;
    if det.abs() > 1e-12 * (n * sxx).max(1e-300) {
        let slope = (n * sxy - sx * sy) / det;
        (slope, (sy - slope * sx) / n)
    } else {
        // All x equal (= x₀): rank one; the minimum-norm solution of x₀·s + c = mean(y).
        let x0 = sx / n;
        let m = sy / n;
        (x0 * m / (x0 * x0 + 1.0), m / (x0 * x0 + 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(onset: f64, offset: f64, midi: f64) -> EvalNote {
        EvalNote {
            onset,
            offset,
            hz: 440.0 * 2f64.powf((midi - 69.0) / 12.0),
            velocity: 100.0,
        }
    }

    #[test]
    fn optimal_not_greedy_matching() {
        // A greedy matcher pairing est 0 with ref 0 would leave ref 1 unmatched.
        let r = [note(0.00, 1.0, 60.0), note(0.06, 1.0, 60.0)];
        let e = [note(0.03, 1.0, 60.0), note(-0.01, 1.0, 60.0)];
        let t = NoteTolerances {
            offset_ratio: None,
            ..Default::default()
        };
        assert_eq!(match_notes(&r, &e, &t).len(), 2);
    }

    #[test]
    fn tolerance_edges() {
        let t = NoteTolerances::default();
        let r = [note(1.0, 2.0, 60.0)];
        // exactly 50 ms late (after rounding) still matches; 50.1 ms does not
        assert_eq!(evaluate(&r, &[note(1.05, 2.0, 60.0)], &t).matched, 1);
        assert_eq!(evaluate(&r, &[note(1.0501, 2.0, 60.0)], &t).matched, 0);
        // offset tolerance is max(0.2·1 s, 50 ms) = 0.2 s
        assert_eq!(evaluate(&r, &[note(1.0, 2.2, 60.0)], &t).matched, 1);
        assert_eq!(evaluate(&r, &[note(1.0, 2.2001, 60.0)], &t).matched, 0);
        // a semitone is 100 cents
        assert_eq!(evaluate(&r, &[note(1.0, 2.0, 61.0)], &t).matched, 0);
        assert_eq!(evaluate(&r, &[], &t).f_measure, 0.0);
    }
}
