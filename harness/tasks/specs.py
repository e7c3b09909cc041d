"""How a task's data is split, as an experiment file may state it (`[task.NAME]` tables).

Each kind of task has one model; its defaults are the built-in split, so a built-in task is
its spec with nothing set. Paths of file tasks are relative to the experiment file's folder.
"""
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, ValidationInfo, field_validator, model_validator

from harness.boards import Strict

# A recording of the 12 cm fan's hmlo runs: room and run number.
Recording = Literal["silentA_1", "silentA_2", "silentB_1", "silentB_2", "noisy_1", "noisy_2"]
Subject = Annotated[int, Field(ge=1, le=30)]


class _Spec(Strict):
    # The fine-tuning set repeated this many times (the same samples, more of them): a set that
    # outgrows the caches as a larger one would (`skip2bench growth`).
    repeat_finetune: Annotated[int, Field(ge=1, le=64)] = 1


def _disjoint(**parts) -> None:
    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = sorted(set(parts[a]) & set(parts[b]), key=str)
            if shared:
                raise ValueError(f"{a} and {b} share {shared}: a sample would be in both")


class FanSpec(_Spec):
    """fan-damage1/2: which recordings of each class pre-train, fine-tune and test."""
    kind: Literal["fan-damage1", "fan-damage2"]
    pretrain: list[Recording] = Field(default=["silentA_1", "silentA_2", "silentB_1", "silentB_2"], min_length=1)
    finetune: list[Recording] = Field(default=["noisy_1"], min_length=1)
    test: list[Recording] = Field(default=["noisy_2"], min_length=1)

    @model_validator(mode="after")
    def _split(self):
        _disjoint(pretrain=self.pretrain, finetune=self.finetune, test=self.test)
        return self

    def describe(self) -> str:
        return (f"12 cm fan, hmlo recordings; pre-train = {', '.join(self.pretrain)}, fine-tune = "
                f"{', '.join(self.finetune)}, test = {', '.join(self.test)}")


class HarSpec(_Spec):
    """har: which subjects pre-train, which are the unseen ones, and how those are split."""
    kind: Literal["har"]
    pretrain_subjects: list[Subject] = Field(default=[1, 2, 3, 4, 5], min_length=1)
    target_subjects: list[Subject] = Field(default=[21, 22, 23, 24, 25], min_length=1)
    # recording: a target subject's first recording fine-tunes, the others test.
    # stratified: each target subject's windows are split per class, `finetune_fraction` to
    # fine-tuning, drawn with a fixed seed (overlapping windows may then straddle the two).
    split: Literal["recording", "stratified"] = "recording"
    finetune_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.5

    @model_validator(mode="after")
    def _split(self):
        _disjoint(pretrain_subjects=self.pretrain_subjects, target_subjects=self.target_subjects)
        return self

    def describe(self) -> str:
        how = ("fine-tune = first recording, test = the others" if self.split == "recording" else
               f"stratified per class: {self.finetune_fraction:g} fine-tune, the rest test")
        return f"pre-train = subjects {self.pretrain_subjects}; target subjects {self.target_subjects}: {how}"


class SyntheticSpec(_Spec):
    kind: Literal["synthetic"]

    def describe(self) -> str:
        return "built in: pre-train room, then the target room (weaker gain, noise floor, ventilation peak)"


class _FileSpec(_Spec):
    @field_validator("path", "folder", check_fields=False)
    @classmethod
    def _relative_to_experiment(cls, path: Path, info: ValidationInfo):
        base = (info.context or {}).get("lab_dir")
        path = path.expanduser()
        return path if path.is_absolute() or base is None else Path(base) / path


class NpzSpec(_FileSpec):
    """Your own data: one .npz with x_pre, y_pre, x_ft, y_ft, x_test, y_test (and optional classes)."""
    kind: Literal["npz"]
    path: Annotated[Path, Field(strict=False)]

    def describe(self) -> str:
        return f"{self.path.name}: its pre-train, fine-tune and test arrays"


class CsvSpec(_FileSpec):
    """Your own data: a folder with pretrain.csv, finetune.csv and test.csv, one sample per row,
    features then the class label in the last column (an optional header row is skipped)."""
    kind: Literal["csv"]
    folder: Annotated[Path, Field(strict=False)]

    def describe(self) -> str:
        return f"{self.folder.name}/: pretrain.csv, finetune.csv, test.csv"


TaskSpec = Annotated[Union[FanSpec, HarSpec, SyntheticSpec, NpzSpec, CsvSpec], Field(discriminator="kind")]
KINDS = ("fan-damage1", "fan-damage2", "har", "synthetic", "npz", "csv")
