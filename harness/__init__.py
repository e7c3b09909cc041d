"""skip2bench: the host-side harness."""
import os

# Single-threaded BLAS for host pre-training and for the runners the host starts: these small
# matrices gain nothing from threads, and timings stay steady when other work shares the cores.
# Set before NumPy is first imported; an explicit setting in the environment wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from harness import runner_modules  # noqa: E402  (after the BLAS settings: it may import NumPy later)

runner_modules.install()
