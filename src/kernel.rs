//! The one matrix product of the NMF that a general GEMM does poorly: C = Aᵀ·B with A and B
//! tall (K ≈ 1000 rows) and few columns each (A: the templates of the rows a time tile keeps,
//! often 4–16; B: the tile's frames of V). GEMM kernels vectorize along C's rows, of which there
//! are only a handful here; this kernel vectorizes along K instead: every entry of C is a dot
//! product of two contiguous columns, computed 4 × 4 entries at a time in 16 AVX-512 registers
//! of partial sums (each loaded chunk of A and B feeds four fused multiply-adds), then summed
//! across lanes. It runs where the CPU has AVX-512F ([`available`]); elsewhere the NMF uses
//! faer's GEMM. `cargo bench --bench pipeline` and `examples/nmf_tiles.rs` measure the gain.

/// Whether this CPU runs the kernel.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

macro_rules! kernel {
    ($name:ident, $t:ty, $lanes:expr, $vec:ty, $zero:ident, $load:ident, $fmadd:ident, $reduce:ident) => {
        /// C (`a.len()` × `b.len()`, column-major) = [a₀ a₁ …]ᵀ·[b₀ b₁ …], all columns of one
        /// length. Panics where [`available`] is false.
        pub fn $name(a: &[&[$t]], b: &[&[$t]], c: &mut [$t]) {
            assert!(available(), "the dot-product kernel needs AVX-512F");
            assert!(c.len() >= a.len() * b.len());
            let k = a.first().map_or(0, |x| x.len());
            assert!(a.iter().chain(b).all(|x| x.len() == k));
            // SAFETY: AVX-512F is present (checked above) and every load stays inside a column:
            // the vector loop reads [p, p + L) only while p + L ≤ k.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                body(a, b, c)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            unsafe fn body(a: &[&[$t]], b: &[&[$t]], c: &mut [$t]) {
                use std::arch::x86_64::*;
                const L: usize = $lanes;
                let na = a.len();
                let k = a.first().map_or(0, |x| x.len());
                let kk = k / L * L;
                let tail = |x: &[$t], y: &[$t]| -> $t {
                    let mut s = 0.0;
                    for q in kk..k {
                        s += x[q] * y[q];
                    }
                    s
                };
                /// The I × 4 block of C at (i0, j0).
                #[inline(always)]
                unsafe fn block<const I: usize>(
                    a: &[&[$t]],
                    b: &[&[$t]],
                    i0: usize,
                    j0: usize,
                    kk: usize,
                    c: &mut [$t],
                    tail: &dyn Fn(&[$t], &[$t]) -> $t,
                ) {
                    let na = a.len();
                    let ap: [*const $t; I] = std::array::from_fn(|i| a[i0 + i].as_ptr());
                    let bp: [*const $t; 4] = std::array::from_fn(|j| b[j0 + j].as_ptr());
                    let mut acc: [[$vec; 4]; I] = [[$zero(); 4]; I];
                    let mut p = 0;
                    while p < kk {
                        let mut av: [$vec; I] = [$zero(); I];
                        for i in 0..I {
                            av[i] = $load(ap[i].add(p));
                        }
                        for j in 0..4 {
                            let bv = $load(bp[j].add(p));
                            for i in 0..I {
                                acc[i][j] = $fmadd(av[i], bv, acc[i][j]);
                            }
                        }
                        p += L;
                    }
                    for i in 0..I {
                        for j in 0..4 {
                            c[(i0 + i) + (j0 + j) * na] =
                                $reduce(acc[i][j]) + tail(a[i0 + i], b[j0 + j]);
                        }
                    }
                }
                let (ma, mb) = (na / 4 * 4, b.len() / 4 * 4);
                for j0 in (0..mb).step_by(4) {
                    for i0 in (0..ma).step_by(4) {
                        block::<4>(a, b, i0, j0, kk, c, &tail);
                    }
                    for i0 in ma..na {
                        block::<1>(a, b, i0, j0, kk, c, &tail);
                    }
                }
                for j in mb..b.len() {
                    for i in 0..na {
                        let (x, y) = (a[i].as_ptr(), b[j].as_ptr());
                        let mut acc = $zero();
                        let mut p = 0;
                        while p < kk {
                            acc = $fmadd($load(x.add(p)), $load(y.add(p)), acc);
                            p += L;
                        }
                        c[i + j * na] = $reduce(acc) + tail(a[i], b[j]);
                    }
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!()
        }
    };
}

kernel!(
    at_b_f32,
    f32,
    16,
    __m512,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_fmadd_ps,
    _mm512_reduce_add_ps
);
kernel!(
    at_b_f64,
    f64,
    8,
    __m512d,
    _mm512_setzero_pd,
    _mm512_loadu_pd,
    _mm512_fmadd_pd,
    _mm512_reduce_add_pd
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_naive_product_for_every_edge_shape() {
        if !available() {
            return;
        }
        for (na, nb, k) in [
            (1, 1, 1),
            (4, 4, 16),
            (5, 7, 37),
            (9, 3, 1025),
            (16, 32, 100),
        ] {
            let a: Vec<Vec<f64>> = (0..na)
                .map(|i| {
                    (0..k)
                        .map(|p| ((i * 31 + p * 7) % 13) as f64 - 6.0)
                        .collect()
                })
                .collect();
            let b: Vec<Vec<f64>> = (0..nb)
                .map(|j| {
                    (0..k)
                        .map(|p| ((j * 17 + p * 5) % 11) as f64 - 5.0)
                        .collect()
                })
                .collect();
            let ar: Vec<&[f64]> = a.iter().map(Vec::as_slice).collect();
            let br: Vec<&[f64]> = b.iter().map(Vec::as_slice).collect();
            let mut c = vec![0.0; na * nb];
            at_b_f64(&ar, &br, &mut c);
            let a32: Vec<Vec<f32>> = a
                .iter()
                .map(|x| x.iter().map(|&v| v as f32).collect())
                .collect();
            let b32: Vec<Vec<f32>> = b
                .iter()
                .map(|x| x.iter().map(|&v| v as f32).collect())
                .collect();
            let ar32: Vec<&[f32]> = a32.iter().map(Vec::as_slice).collect();
            let br32: Vec<&[f32]> = b32.iter().map(Vec::as_slice).collect();
            let mut c32 = vec![0.0f32; na * nb];
            at_b_f32(&ar32, &br32, &mut c32);
            for i in 0..na {
                for j in 0..nb {
                    let want: f64 = (0..k).map(|p| a[i][p] * b[j][p]).sum();
                    // Small integers: exact in both precisions.
                    assert_eq!(c[i + j * na], want, "{na}×{nb}, k {k}: ({i}, {j})");
                    assert_eq!(c32[i + j * na] as f64, want);
                }
            }
        }
    }
}
