"""A job's data set as an MCU board gets it (harness/targets/mcu.py places it: in the model slot,
in RAM, or streamed per mini-batch)."""
from pathlib import Path

import numpy as np

from harness.mcu import messages as msg, model_image
import skip2_quant as quant  # (the runners' own quantiser: the same bytes everywhere)

ROW = [slice(None)]  # an input row is one segment: one scale per row


class DataSet:
    """A job's data as the board gets it: labels, and the inputs scaled on the host in float32
    ((x - mean) / std with the backbone's statistics, the same operations as every runner), in the
    job's input format: with int8, the int8 rows for the model slot, and their dequantised values
    wherever floats are sent."""

    def __init__(self, artifacts, input_format: str):
        model, data = Path(artifacts.model_dir), Path(artifacts.data_dir)
        mean, std = np.load(model / "mean.npy"), np.load(model / "std.npy")
        self.x = {s: ((np.load(data / f"x_{s}.npy") - mean) / std).astype("<f4") for s in ("ft", "test")}
        self.y = {s: np.load(data / f"y_{s}.npy").astype("<i4") for s in ("ft", "test")}
        self.d = self.x["ft"].shape[1]
        self.packed = None
        if input_format == "int8":
            self.packed = {s: quant.quantise(x, ROW) for s, x in self.x.items()}
            self.x = {s: quant.dequantise(*packed, ROW) for s, packed in self.packed.items()}

    def slot_section(self) -> bytes:
        """The int8 data set that may follow the model in the slot; empty for float inputs."""
        if self.packed is None:
            return b""
        q, scales = zip(*(self.packed[s] for s in ("ft", "test")))
        return model_image.data_section((self.y["ft"], self.y["test"]), tuple(s[:, 0] for s in scales), q)

    def blob(self, with_inputs: bool) -> bytes:
        parts = [self.y["ft"], self.y["test"], *((self.x["ft"], self.x["test"]) if with_inputs else ())]
        return b"".join(np.ascontiguousarray(p).tobytes() for p in parts)

    def rows(self, split: int, request: msg.RowsRequest) -> bytes:
        x = self.x["ft" if split == 0 else "test"]
        idx = request.indices if request.indices is not None else range(request.first, request.first + request.count)
        return np.ascontiguousarray(x[list(idx)]).tobytes()
