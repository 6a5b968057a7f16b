"""check_decomposed.py DIR OUTDIR: compares OUTDIR/attn_out.npy with numpy attention."""
import os
import sys

import numpy as np

d, out = sys.argv[1], sys.argv[2]
q, k, v, m = (np.load(os.path.join(d, n + ".npy")) for n in ["q", "k", "v", "mask"])
s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(8.0) + m
p = np.exp(s - s.max(-1, keepdims=True))
p /= p.sum(-1, keepdims=True)
got = np.load(os.path.join(out, "attn_out.npy"))
err = np.abs(got - p @ v).max()
print("max abs err %.3g: %s" % (err, "OK" if err < 1e-5 else "MISMATCH"))
