"""GPU benchmark helpers (run on a GPU machine; see docs/gpu.md)."""
