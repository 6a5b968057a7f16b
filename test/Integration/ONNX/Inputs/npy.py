"""npy.py OUT.npy SHAPE DTYPE [SEED]: writes a random array (SHAPE like 1x2x3, DTYPE numpy name)."""
import sys

import numpy as np

out, shape, dtype = sys.argv[1], sys.argv[2], sys.argv[3]
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
shape = tuple(int(d) for d in shape.split("x")) if shape else ()
rng = np.random.default_rng(seed)
if dtype == "bool":
    a = rng.random(shape) > 0.5
else:
    a = rng.standard_normal(shape).astype(dtype)
np.save(out, a)
