"""Host side of devices: transports, presets of emulated devices, the device handles."""
