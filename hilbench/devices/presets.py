"""Built-in emulated devices: topology, DVFS levels and speed model of each."""

from __future__ import annotations

from dataclasses import dataclass

from hilbench.agents.emulated_board import PowerModel
from hilbench.core.errors import DeviceError
from hilbench.devices.accelerator import PeArray


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
    battery_mah: int = 4500  # design capacity, when there is a battery
    power: PowerModel | None = None
    trip_c: float = 95.0  # thermal_zone0's first trip point: throttling above it
    gpu_devfreq: tuple[str, tuple[int, ...]] | None = None  # (devfreq id, levels in Hz)
    # A Jetson's nvpmodel power modes: (id, name, CPU max kHz, GPU max Hz); the first is
    # active. The tree then also carries nvpmodel and jetson_clocks.
    power_modes: tuple[tuple[int, str, int, int], ...] = ()
    accelerator: PeArray | None = None  # a PE array that skips the zero tiles of sparse models

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
            power=PowerModel("battery", static_w=0.9, dynamic_w=3.2, v_min=0.60, v_max=1.05,
                             ambient_c=25.0, thermal_resistance_c_per_w=7.0,
                             time_constant_s=3.0),
            trip_c=70.0,
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
            power=PowerModel("ina3221", static_w=2.8, dynamic_w=7.0, v_min=0.60, v_max=1.00,
                             ambient_c=25.0, thermal_resistance_c_per_w=3.0,
                             time_constant_s=4.0),
            trip_c=90.0,
            gpu_devfreq=("17000000.ga10b", (306000000, 408000000, 510000000, 612000000,
                                             714000000, 816000000, 918000000, 1020000000)),
            thermal_zones=("cpu-thermal", "gpu-thermal", "tj-thermal"),
            power_modes=((0, "15W", 1510000, 1020000000), (1, "10W", 1344000, 612000000),
                         (2, "7W", 1036000, 408000000)),
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
            power=PowerModel("rapl", static_w=35.0, dynamic_w=120.0, v_min=0.80, v_max=1.20,
                             ambient_c=25.0, thermal_resistance_c_per_w=0.25,
                             time_constant_s=5.0),
            trip_c=95.0,
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
            power=PowerModel("hwmon", static_w=1.5, dynamic_w=2.5, v_min=0.85, v_max=1.00,
                             ambient_c=25.0, thermal_resistance_c_per_w=4.0,
                             time_constant_s=3.0),
            trip_c=85.0,
            accelerator=PeArray(rows=16, cols=16, weight_share=0.85),
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
