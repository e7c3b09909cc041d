"""The lab: checking boards, and the emulated boards that stand in for hardware here."""
