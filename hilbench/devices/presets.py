"""Built-in emulated devices: topology, DVFS levels and speed model of each."""

from __future__ import annotations

from dataclasses import dataclass

from hilbench.core.errors import DeviceError


@dataclass(frozen=True)
class Cluster:
    """CPUs that share one frequency (one cpufreq policy)."""

    cores: int
    frequencies_khz: tuple[int, ...]


@dataclass(frozen=True)
class EmulatedPreset:
    """An emulated device. ``slowdown`` is one core of its ``run_cluster`` at top frequency
    against one core of this machine; see hilbench.agents.emulation for the model."""

    name: str
    device_class: str
    description: str
    cpu_model: str
    memory_mb: int
    clusters: tuple[Cluster, ...]
    run_cluster: int
    slowdown: float
    parallel_fraction: float
    memory_bound_fraction: float
    noise_sigma: float
    os_name: str = "Linux (emulated)"
    thermal_zones: tuple[str, ...] = ("cpu-thermal",)
    battery: bool = False

    def first_cpu(self, cluster_index: int) -> int:
        return sum(c.cores for c in self.clusters[:cluster_index])


def _levels(*mhz: int) -> tuple[int, ...]:
    return tuple(f * 1000 for f in mhz)


PRESETS: dict[str, EmulatedPreset] = {
    preset.name: preset
    for preset in (
        EmulatedPreset(
            name="phone",
            device_class="phone",
            description="mid-range phone, big.LITTLE: 4x Cortex-A55 + 4x Cortex-A76",
            cpu_model="ARMv8 Cortex-A55/A76 (emulated)",
            memory_mb=6144,
            clusters=(
                Cluster(4, _levels(300, 576, 998, 1306, 1516, 1805)),
                Cluster(4, _levels(710, 1056, 1401, 1804, 2016, 2419)),
            ),
            run_cluster=1,
            slowdown=3.0,
            parallel_fraction=0.60,
            memory_bound_fraction=0.25,
            noise_sigma=0.03,
            os_name="Android 14 (emulated)",
            thermal_zones=("cpu-big-thermal", "cpu-little-thermal", "battery"),
            battery=True,
        ),
        EmulatedPreset(
            name="jetson",
            device_class="jetson",
            description="Jetson Orin Nano-class board: 6x Cortex-A78AE",
            cpu_model="ARMv8 Cortex-A78AE (emulated)",
            memory_mb=8192,
            clusters=(Cluster(6, _levels(115, 422, 729, 1036, 1344, 1510)),),
            run_cluster=0,
            slowdown=2.4,
            parallel_fraction=0.60,
            memory_bound_fraction=0.30,
            noise_sigma=0.02,
            os_name="Ubuntu 22.04 (L4T R36, emulated)",
            thermal_zones=("cpu-thermal", "gpu-thermal", "tj-thermal"),
        ),
        EmulatedPreset(
            name="server",
            device_class="server",
            description="CPU server: 16-core x86-64 at up to 3.5 GHz",
            cpu_model="x86-64 16-core server (emulated)",
            memory_mb=131072,
            clusters=(Cluster(16, _levels(1000, 1800, 2600, 3500)),),
            run_cluster=0,
            slowdown=1.0,
            parallel_fraction=0.50,
            memory_bound_fraction=0.35,
            noise_sigma=0.015,
            os_name="Ubuntu 24.04 LTS (emulated)",
            thermal_zones=("x86_pkg_temp",),
        ),
        EmulatedPreset(
            name="fpga",
            device_class="fpga",
            description="FPGA board: 4x Cortex-A53 host with a PE-array accelerator in fabric",
            cpu_model="ARMv8 Cortex-A53 + programmable logic (emulated)",
            memory_mb=4096,
            clusters=(Cluster(4, _levels(300, 600, 1200)),),
            run_cluster=0,
            slowdown=1.8,
            parallel_fraction=0.75,
            memory_bound_fraction=0.50,
            noise_sigma=0.01,
            os_name="PetaLinux 2024.1 (emulated)",
        ),
    )
}


def get_preset(name: str) -> EmulatedPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise DeviceError(
            f"unknown emulated preset {name!r}; choose one of: {', '.join(sorted(PRESETS))}"
        ) from None
