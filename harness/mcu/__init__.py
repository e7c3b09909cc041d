"""The MCU path: the firmware build, the model image, and the serial protocol's messages."""
