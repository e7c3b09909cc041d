"""Job identity and job.json content (harness/plan.py)."""
import hashlib
import json

from harness.config import FinetuneHP
from harness.plan import Job, job_id, runner_job

OLD_FIELDS = ("epochs", "batch_size", "lr", "rank", "scale", "cache_budget_bytes", "input_format")


def test_a_method_is_identified_by_the_hyper_parameters_it_uses():
    base = FinetuneHP()
    same = {"oselm-head": dict(lr=0.5, epochs=3, rank=8, scale=2.0, far_keep=0.5, bsr_layers=[0]),
            "far": dict(oselm_lambda=1.0, bsr_layers=[2]), "bsr+cache": dict(far_prime=0.5, oselm_passes=2)}
    other = {"oselm-head": dict(oselm_lambda=1.0), "far": dict(far_keep=0.5, lr=0.5), "bsr+cache": dict(bsr_layers=[2])}
    for variant in same:
        assert job_id("m", variant, base.model_copy(update=same[variant])) == job_id("m", variant, base), variant
        assert job_id("m", variant, base.model_copy(update=other[variant])) != job_id("m", variant, base), variant


def test_the_earlier_methods_keep_their_job_ids():
    # Identities from before the methods' own options existed: --resume of an older run still
    # recognises its finished jobs.
    hp = FinetuneHP(lr=0.05, bsr_layers=[1], oselm_lambda=2.0)
    old = {k: v for k, v in hp.model_dump().items() if k in OLD_FIELDS}
    src = json.dumps({"model": "m", "variant": "lora-all", "hp": old}, sort_keys=True)
    assert job_id("m", "lora-all", hp) == hashlib.sha256(src.encode()).hexdigest()[:12]


def test_bsr_layers_travel_as_a_bit_mask():
    job = Job("synthetic", 0, "bsr", "host", "c", 0)
    assert runner_job(job, FinetuneHP(bsr_layers=[0, 2]))["bsr_layers"] == 0b101
    assert runner_job(job, FinetuneHP())["bsr_layers"] == 0  # the upper half
