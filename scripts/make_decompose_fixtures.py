#!/usr/bin/env python3
"""Make the scikit-learn / librosa fixtures that tests/decompose_parity.rs compares against.

    python3 -m venv venv && venv/bin/pip install scikit-learn==1.9.1 librosa==0.11.0 numpy
    venv/bin/python scripts/make_decompose_fixtures.py data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.wav tests/data/decompose

Inputs (`.npy`, librosa's (bins, frames) orientation):
- `V.npy`: |librosa.stft(x)| in float64 of the first 3 s (n_fft 1024, hop 512), x in float64;
- `V_next.npy`: the same of the 2 s after them (for the fixed dictionary);
- `S32.npy`: the float32 magnitudes of the same 3 s, as librosa computes them by default
  (for HPSS).
Outputs, per case, in scorenmf's orientation: `<case>_W.npy` (bins × R, librosa's
`components`) and `<case>_H.npy` (R × frames, its `activations`); `cases.json` holds every
case's parameters, scikit-learn's iteration count and reconstruction error, and the versions.
HPSS: `hpss_<case>_mask_h.npy` / `_mask_p.npy`, librosa.decompose.hpss(S32, mask=True, …).
"""
import json, os, sys
import numpy as np, librosa, sklearn
from sklearn.decomposition import NMF

wav, out = sys.argv[1:3]
os.makedirs(out, exist_ok=True)
x, sr = librosa.load(wav, sr=None, mono=True)
x64 = x.astype(np.float64)
n_fft, hop = 1024, 512
a, b = int(3 * sr), int(5 * sr)
V = np.abs(librosa.stft(x64[:a], n_fft=n_fft, hop_length=hop))
V_next = np.abs(librosa.stft(x64[a:b], n_fft=n_fft, hop_length=hop))
S32 = np.abs(librosa.stft(x[:a], n_fft=n_fft, hop_length=hop))
np.save(os.path.join(out, "V.npy"), V)
np.save(os.path.join(out, "V_next.npy"), V_next)
np.save(os.path.join(out, "S32.npy"), S32)

R = 8
common = dict(n_components=R, solver="mu", random_state=0, max_iter=200, tol=1e-4)
cases = [
    dict(name="fro_nndsvda", beta=2, init="nndsvda"),
    dict(name="kl_nndsvda", beta=1, init="nndsvda"),
    dict(name="is_nndsvda", beta=0, init="nndsvda", floor=1e-10),
    dict(name="b15_nndsvda", beta=1.5, init="nndsvda"),
    dict(name="fro_random", beta=2, init="random"),
    dict(name="fro_nndsvd", beta=2, init="nndsvd"),
    dict(name="kl_nndsvdar", beta=1, init="nndsvdar"),
    dict(name="kl_regularized", beta=1, init="nndsvda", alpha_W=0.001, alpha_H=0.002, l1_ratio=0.5),
    # frames > bins: scikit-learn's randomized SVD works on the other side
    dict(name="fro_tall", beta=2, init="nndsvda", bins=100),
]
meta = dict(source=os.path.basename(wav), sample_rate=int(sr), n_fft=n_fft, hop=hop, R=R,
            versions=dict(sklearn=sklearn.__version__, librosa=librosa.__version__,
                          numpy=np.__version__), cases=[])
for c in cases:
    X = V[: c.get("bins", V.shape[0])] + c.get("floor", 0.0)
    model = NMF(beta_loss=c["beta"], init=c["init"], alpha_W=c.get("alpha_W", 0.0),
                alpha_H=c.get("alpha_H", "same"), l1_ratio=c.get("l1_ratio", 0.0), **common)
    Wsk = model.fit_transform(X.T)
    np.save(os.path.join(out, c["name"] + "_W.npy"), model.components_.T)
    np.save(os.path.join(out, c["name"] + "_H.npy"), Wsk.T)
    meta["cases"].append(dict(c, n_iter=int(model.n_iter_), error=float(model.reconstruction_err_)))
    print(c["name"], model.n_iter_, model.reconstruction_err_)

# A fixed dictionary: KL templates learnt on the 3 s, activations fitted to the next 2 s.
model = NMF(beta_loss=1, init="nndsvda", **common).fit(V.T)
Hn = model.transform(V_next.T)
np.save(os.path.join(out, "kl_fixed_dictionary_W.npy"), model.components_.T)
np.save(os.path.join(out, "kl_fixed_dictionary_H.npy"), Hn.T)
meta["cases"].append(dict(name="kl_fixed_dictionary", beta=1, init="nndsvda", fixed_w=True))

# librosa's own call, sorted.
comps, acts = librosa.decompose.decompose(V, n_components=R, sort=True, solver="mu",
                                          beta_loss=1, init="nndsvda", random_state=0)
np.save(os.path.join(out, "librosa_kl_sorted_W.npy"), comps)
np.save(os.path.join(out, "librosa_kl_sorted_H.npy"), acts)
meta["cases"].append(dict(name="librosa_kl_sorted", beta=1, init="nndsvda", sort=True))

hpss = [
    dict(name="default"),
    dict(name="kernel_margin", kernel_size=(17, 31), margin=(1.0, 3.0)),
    dict(name="even_binary", kernel_size=(30, 12), power=np.inf, margin=2.0),
]
meta["hpss"] = []
for c in hpss:
    kw = {k: v for k, v in c.items() if k != "name"}
    mh, mp = librosa.decompose.hpss(S32, mask=True, **kw)
    np.save(os.path.join(out, f"hpss_{c['name']}_mask_h.npy"), mh.astype(np.float32))
    np.save(os.path.join(out, f"hpss_{c['name']}_mask_p.npy"), mp.astype(np.float32))
    meta["hpss"].append({k: (str(v) if v is np.inf else v) for k, v in c.items()})
json.dump(meta, open(os.path.join(out, "cases.json"), "w"), indent=1)

# The command line's own path on the whole example: librosa.load at 22050 Hz, the default STFT
# (2048 / 512), magnitudes in float64, KL, sorted (`scorenmf decompose … --beta 1 --sort`).
y, _ = librosa.load(wav, sr=22050)
S = np.abs(librosa.stft(y)).astype(np.float64)
comps, acts = librosa.decompose.decompose(S, n_components=R, sort=True, solver="mu",
                                          beta_loss=1, init="nndsvda", random_state=0)
np.save(os.path.join(out, "example_kl_sorted_W.npy"), comps)
np.save(os.path.join(out, "example_kl_sorted_H.npy"), acts)
meta["example"] = dict(name="example_kl_sorted", sr=22050, n_fft=2048, hop=512, beta=1,
                       init="nndsvda", sort=True, R=R)
json.dump(meta, open(os.path.join(out, "cases.json"), "w"), indent=1)
