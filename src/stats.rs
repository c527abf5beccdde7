//! Order statistics shared by the stages.

/// The q-quantile of `v` with linear interpolation between order statistics (numpy's default;
/// q = 0.5 is the median); 0 for an empty list. Between two equal order statistics it is that
/// value, infinite ones included (as `np.median([inf, inf])` is inf, where the interpolation
/// inf + (inf − inf)·t would give NaN).
pub fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    if v[lo] == v[hi] {
        return v[lo];
    }
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// The median of `v`; 0 for an empty list.
pub fn median(v: Vec<f64>) -> f64 {
    quantile(v, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_numpy() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!((quantile(vec![1.0, 2.0, 3.0, 4.0, 5.0], 0.9) - 4.6).abs() < 1e-12);
        assert_eq!(quantile(vec![], 0.5), 0.0);
        // A perfect estimate's scores are infinite; their median too.
        assert_eq!(
            median(vec![f64::INFINITY, 1.0, f64::INFINITY, f64::INFINITY]),
            f64::INFINITY
        );
        assert_eq!(median(vec![f64::INFINITY; 2]), f64::INFINITY);
    }
}
