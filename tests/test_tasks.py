"""Data tasks: shapes, balance, determinism, leak-free splits and missing-data messages."""

from pathlib import Path

import numpy as np
import pytest

from conftest import unavailable
from harness.tasks import (
    TASKS,
    DataError,
    DataMissingError,
    TaskData,
    default_data_root,
    expected_location,
    load_task,
    task_names,
)

N_FEATURES = {"synthetic": 512, "fan-damage1": 512, "fan-damage2": 512, "har": 390}
# Smallest allowed ratio of the rarest to the most common class in every split.
MIN_BALANCE = {"synthetic": 1.0, "fan-damage1": 0.98, "fan-damage2": 0.98, "har": 0.6}
SPLITS = ("pre", "ft", "test")


def _require_data(name):
    """Skip when a real data set is missing on a developer machine; under CI=true it is a failure."""
    path = expected_location(name, default_data_root())
    if not path.exists():
        unavailable(f"{name}: data set not found at {path} (set SKIP2BENCH_DATA to the shared datasets directory)")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("task-cache")


@pytest.fixture(scope="module")
def tasks(cache_dir):
    """Loads each task at most once per module."""
    loaded = {}

    def get(name):
        if name not in loaded:
            if TASKS[name].needs_files:
                _require_data(name)
            loaded[name] = load_task(name, cache_dir=cache_dir)
        return loaded[name]

    return get


def _rows(x):
    return {row.tobytes() for row in x}


def test_task_names():
    assert task_names() == ["synthetic", "fan-damage1", "fan-damage2", "har"]
    assert not TASKS["synthetic"].needs_files
    assert all(TASKS[n].needs_files for n in ("fan-damage1", "fan-damage2", "har"))


def test_unknown_task_names_known_tasks():
    known = "known tasks: synthetic, fan-damage1, fan-damage2, har"
    with pytest.raises(ValueError, match=f"unknown task 'nope'; {known}"):
        load_task("nope")
    with pytest.raises(ValueError, match=known):
        expected_location("nope", Path("/data"))


@pytest.mark.parametrize("name", list(N_FEATURES))
def test_shapes_dtypes_labels_and_balance(tasks, name):
    data = tasks(name)
    assert data.name == name
    assert data.n_features == N_FEATURES[name]
    n_classes = len(data.classes)
    for split in SPLITS:
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        assert x.dtype == np.float32 and x.shape == (len(y), N_FEATURES[name]), split
        assert y.dtype == np.int32, split
        assert np.isfinite(x).all(), split
        counts = np.bincount(y, minlength=n_classes)
        assert len(counts) == n_classes, f"{split}: labels outside 0..{n_classes - 1}"
        assert counts.min() / counts.max() >= MIN_BALANCE[name], f"{split}: class counts {counts.tolist()}"
    assert len(data.y_pre) > len(data.y_ft) > 100 and len(data.y_test) > 100


@pytest.mark.parametrize("name", list(N_FEATURES))
def test_loading_is_deterministic(tasks, name, tmp_path):
    first = tasks(name)
    # A fresh cache: for the fan tasks this compares freshly parsed zips with the cached arrays.
    again = load_task(name, cache_dir=tmp_path)
    assert again.sha256() == first.sha256()
    assert load_task(name, cache_dir=tmp_path).sha256() == first.sha256()
    assert again.sources == first.sources


def test_sha256_depends_on_content(tasks):
    data = tasks("synthetic")
    x_test = data.x_test.copy()
    x_test[0, 0] += 1.0
    fields = {f: getattr(data, f) for f in TaskData.__dataclass_fields__}
    assert TaskData(**{**fields, "x_test": x_test}).sha256() != data.sha256()
    assert TaskData(**{**fields, "classes": ("a", "b")}).sha256() != data.sha256()


def test_task_data_rejects_bad_arrays(tasks):
    data = tasks("synthetic")
    fields = {f: getattr(data, f) for f in TaskData.__dataclass_fields__}
    with pytest.raises(ValueError, match="x_ft must be float32"):
        TaskData(**{**fields, "x_ft": data.x_ft.astype(np.float64)})
    with pytest.raises(ValueError, match="labels outside"):
        TaskData(**{**fields, "y_test": data.y_test + 1})


@pytest.mark.parametrize("name", ["synthetic", "fan-damage1", "fan-damage2"])
def test_target_domain_is_drifted(tasks, name):
    """Class centroids from pre-training fit the target test set clearly worse than those from fine-tuning."""
    data = tasks(name)
    mean, std = data.x_pre.mean(0), data.x_pre.std(0) + 1e-6

    def centroid_accuracy(x, y):
        centroids = np.stack([((x[y == c] - mean) / std).mean(0) for c in range(len(data.classes))])
        z = (data.x_test - mean) / std
        return ((((z[:, None, :] - centroids) ** 2).sum(2)).argmin(1) == data.y_test).mean()

    assert centroid_accuracy(data.x_ft, data.y_ft) - centroid_accuracy(data.x_pre, data.y_pre) >= 0.1


def test_synthetic_needs_no_files(tmp_path):
    assert expected_location("synthetic", tmp_path) is None
    assert load_task("synthetic", data_root=tmp_path).n_features == 512


@pytest.mark.parametrize("name", ["fan-damage1", "fan-damage2"])
def test_fan_splits_are_disjoint_recordings(tasks, name):
    data = tasks(name)
    files = data.sources["files"]
    by_split = {s: {z for z, f in files.items() if f["split"] == s} for s in SPLITS}
    assert by_split["ft"] and by_split["test"] and not by_split["ft"] & by_split["test"]
    assert all("_silent" in z for z in by_split["pre"])
    assert all("_noisy_" in z for z in by_split["ft"] | by_split["test"])
    for split in SPLITS:
        assert sum(files[z]["kept"] for z in by_split[split]) == len(getattr(data, f"y_{split}"))
        assert {files[z]["label"] for z in by_split[split]} == set(data.classes)
    assert not _rows(data.x_ft) & _rows(data.x_test)
    assert all(len(f["sha256"]) == 64 for f in files.values())


def test_fan_drops_stopped_fan_spectra(tasks):
    """About a quarter of each hmlo recording is at 0 rpm and is dropped, the rest kept."""
    for f in tasks("fan-damage1").sources["files"].values():
        assert f["spectra"] == 235 and 170 <= f["kept"] <= 185


def test_har_target_subjects_unseen_and_windows_not_shared(tasks):
    data = tasks("har")
    recordings = data.sources["recordings"]
    subjects = {s: {r["subject"] for r in recordings if r["split"] == s} for s in SPLITS}
    assert subjects["pre"] and not subjects["pre"] & (subjects["ft"] | subjects["test"])
    assert subjects["ft"] == subjects["test"]
    keys = {s: {(r["subject"], r["experiment"]) for r in recordings if r["split"] == s} for s in SPLITS}
    assert not keys["ft"] & keys["test"]
    for split in SPLITS:
        assert sum(r["windows"] for r in recordings if r["split"] == split) == len(getattr(data, f"y_{split}"))
    assert not _rows(data.x_ft) & _rows(data.x_test)


@pytest.mark.parametrize(
    ("name", "missing"),
    [("fan-damage1", "cooling-fan/DATA"), ("fan-damage2", "cooling-fan/DATA"), ("har", "hapt/hapt_raw.npz")],
)
def test_missing_data_names_path_and_fix(tmp_path, name, missing):
    with pytest.raises(DataMissingError) as err:
        load_task(name, data_root=tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / missing) in message
    assert "--data-root" in message and "SKIP2BENCH_DATA" in message
    assert expected_location(name, tmp_path) == tmp_path / missing


def test_missing_fan_zip_is_named(tmp_path):
    (tmp_path / "cooling-fan" / "DATA").mkdir(parents=True)
    with pytest.raises(DataMissingError, match="12cm_hmlo_normal_silentA_1.zip"):
        load_task("fan-damage2", data_root=tmp_path)


@pytest.mark.parametrize("name, damaged", [("fan-damage1", "12cm_hmlo_damage1_noisy_2.zip"),
                                            ("har", "hapt_raw.npz")])
def test_damaged_data_file_is_a_one_line_error(tmp_path, name, damaged):
    _require_data(name)
    real = expected_location(name, default_data_root())
    copy = expected_location(name, tmp_path)
    if real.is_dir():  # the fan zips: link every original, then damage one of them
        copy.mkdir(parents=True)
        for z in real.iterdir():
            (copy / z.name).symlink_to(z)
        (copy / damaged).unlink()
        (copy / damaged).write_bytes((real / damaged).read_bytes()[:5000])
    else:
        copy.parent.mkdir(parents=True)
        copy.write_bytes(real.read_bytes()[:5000])
    with pytest.raises(DataError, match=f"{name}: cannot read its data set under .*{damaged}.*--data-root") as err:
        load_task(name, data_root=tmp_path)
    assert "\n" not in str(err.value)


def test_default_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("SKIP2BENCH_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    monkeypatch.delenv("SKIP2BENCH_DATA")
    repo = Path(__file__).resolve().parents[1]
    assert default_data_root() == repo.parent / "shared" / "datasets"


def test_fan_cache_survives_a_corrupt_file(tasks, tmp_path):
    data = tasks("fan-damage1")
    load_task("fan-damage1", cache_dir=tmp_path)
    cached = sorted((tmp_path / "cooling-fan").glob("*.npy"))
    assert len(cached) == 12
    cached[0].write_bytes(b"not an array")
    assert load_task("fan-damage1", cache_dir=tmp_path).sha256() == data.sha256()


def test_an_edited_fan_cache_file_is_not_trusted(tasks, tmp_path):
    data = tasks("fan-damage1")
    load_task("fan-damage1", cache_dir=tmp_path)
    cached = sorted((tmp_path / "cooling-fan").glob("*.npy"))[0]
    # A valid array of the right shape, but not what the zip holds: only its hash gives it away.
    np.save(cached, np.zeros_like(np.load(cached)))
    assert load_task("fan-damage1", cache_dir=tmp_path).sha256() == data.sha256()


# -- tasks the user shapes ---------------------------------------------------------------------
def _experiment(tmp_path, text):
    from harness.config import load_experiment
    path = tmp_path / "exp.toml"
    path.write_text('name = "x"\nmethods = ["ft-all"]\n' + text)
    return load_experiment(path)


def test_fan_split_from_the_experiment_file(tasks, tmp_path):
    exp = _experiment(tmp_path, 'tasks = ["fan-damage1", "one-room"]\n[task.one-room]\nkind = "fan-damage1"\n'
                                'pretrain = ["silentA_1", "silentA_2"]\n')
    default, one_room = (load_task(n, spec=exp.task_spec(n)) for n in exp.tasks)
    assert default.sha256() == tasks("fan-damage1").sha256()  # the built-in split is the default
    assert len(one_room.y_pre) < len(default.y_pre) and one_room.name == "one-room"
    np.testing.assert_array_equal(one_room.x_ft, default.x_ft)
    assert one_room.sources["split"].startswith("12 cm fan, hmlo recordings; pre-train = silentA_1, silentA_2")


def test_har_subjects_and_stratified_split(tasks, tmp_path):
    exp = _experiment(tmp_path, 'tasks = ["har"]\n[task.har]\npretrain_subjects = [1, 2, 3]\n'
                                'target_subjects = [26, 27]\nsplit = "stratified"\nfinetune_fraction = 0.25\n')
    d = load_task("har", spec=exp.task_spec("har"))
    for c in range(len(d.classes)):  # a quarter of each class fine-tunes, stratified
        ft, test = (d.y_ft == c).sum(), (d.y_test == c).sum()
        assert abs(ft / (ft + test) - 0.25) < 0.02
    assert load_task("har", spec=exp.task_spec("har")).sha256() == d.sha256()  # a fixed draw
    assert len(d.y_pre) < len(tasks("har").y_pre)


@pytest.mark.parametrize("text, message", [
    ('tasks = ["t"]\n[task.t]\nkind = "fan-damage1"\nfinetune = ["noisy_1"]\ntest = ["noisy_1"]\n',
     "finetune and test share ['noisy_1']: a sample would be in both"),
    ('tasks = ["t"]\n[task.t]\nkind = "fan-damage1"\npretrain = ["silentC_1"]\n', "Input should be 'silentA_1'"),
    ('tasks = ["har"]\n[task.har]\ntarget_subjects = [31]\n', "less than or equal to 30"),
    ('tasks = ["har"]\n[task.har]\npretrain_subjects = [1, 2]\ntarget_subjects = [2, 3]\n', "share [2]"),
    ('tasks = ["synthetic"]\n[task.other]\nkind = "synthetic"\n', "[task.other] is defined but not in tasks"),
    ('tasks = ["mine"]\n', "unknown task 'mine'; known tasks: synthetic, fan-damage1, fan-damage2, har, or define it"),
    ('tasks = ["mine"]\n[task.mine]\nkind = "parquet"\n', "task.mine.kind: unknown kind 'parquet'"),
])
def test_bad_task_tables_are_one_line_errors(tmp_path, text, message):
    from harness.errors import UserError
    with pytest.raises(UserError) as err:
        _experiment(tmp_path, text)
    assert message in str(err.value) and "\n" not in str(err.value)


def _own_data(rng, n, d=6, classes=3):
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, classes, n)
    x[:, 0] += y  # learnable
    return x, y


def test_npz_task_reads_a_users_arrays(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("pre", 60), ("ft", 30), ("test", 20)):
        arrays[f"x_{split}"], arrays[f"y_{split}"] = _own_data(rng, n)
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "mine.npz", classes=np.array(["a", "b", "c"]), **arrays)
    exp = _experiment(tmp_path, 'tasks = ["mine"]\n[task.mine]\nkind = "npz"\npath = "data/mine.npz"\n')
    d = load_task("mine", spec=exp.task_spec("mine"))
    assert d.classes == ("a", "b", "c") and d.x_pre.shape == (60, 6) and d.y_test.dtype == np.int32
    np.testing.assert_array_equal(d.y_ft, arrays["y_ft"])
    np.savez(tmp_path / "data" / "mine.npz", x_pre=arrays["x_pre"])
    with pytest.raises(DataError, match=r"mine: cannot read its data set .*arrays \['x_ft'"):
        load_task("mine", spec=exp.task_spec("mine"))


def test_csv_task_reads_a_folder_with_named_labels(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "csvdata"
    folder.mkdir()
    names = np.array(["idle", "run", "walk"])
    for split, n in (("pretrain", 40), ("finetune", 20), ("test", 20)):
        x, y = _own_data(rng, n)
        rows = ["f0,f1,f2,f3,f4,f5,label"] + [",".join(map(str, row)) + f",{names[c]}" for row, c in zip(x, y)]
        (folder / f"{split}.csv").write_text("\n".join(rows) + "\n")
    exp = _experiment(tmp_path, 'tasks = ["mine"]\n[task.mine]\nkind = "csv"\nfolder = "csvdata"\n')
    d = load_task("mine", spec=exp.task_spec("mine"))
    assert d.classes == ("idle", "run", "walk") and d.x_pre.shape == (40, 6) and len(d.y_test) == 20
    (folder / "test.csv").write_text("1,2,idle\n1,2,3,run\n")
    with pytest.raises(DataError, match="row 2 has 4 columns, expected 3"):
        load_task("mine", spec=exp.task_spec("mine"))
    (folder / "test.csv").unlink()
    with pytest.raises(DataMissingError, match=r"mine: .*test.csv not found; fix the path in the experiment's \[task.mine\]"):
        load_task("mine", spec=exp.task_spec("mine"))
