"""The measuring commands: `bench`, `growth` and `overhead` as presets of a run (presets.py), the
epoch bounds the speed report holds the C core against (bounds.py), the harness's own cost
(harness_cost.py) and the MCU firmware's MACs per instruction (mcu_speed.py)."""
