"""What the GPUs say about themselves: temperature, power, fan, how busy.

One shape for every source (NVIDIA through NVML, AMD through Linux's hwmon), so
that the ledger's energy, the hardware guard's rules, ``doctor`` and the Activity
window read the same figures. A figure a card does not give is None, never zero:
"not available" is said as such, and a rule never acts on a reading it did not get.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One GPU now; each figure None where the card or its driver does not give it."""

    name: str
    temperature_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    fan_percent: float | None = None
    busy_percent: float | None = None


@dataclass(frozen=True, slots=True)
class Readings:
    """Every GPU a source could read, and the source in words ("NVIDIA NVML")."""

    gpus: tuple[GpuReading, ...] = ()
    source: str | None = None

    @property
    def power_w(self) -> float | None:
        """The draw of every card that says it: the model server may use any of them."""
        known = [g.power_w for g in self.gpus if g.power_w is not None]
        return sum(known) if known else None

    @property
    def hottest_c(self) -> float | None:
        known = [g.temperature_c for g in self.gpus if g.temperature_c is not None]
        return max(known) if known else None

    def words(self) -> str:
        """One line for ``doctor`` and the Activity window."""
        if not self.gpus:
            return "not available (no NVIDIA driver and no AMD card's hwmon files)"
        return "; ".join(_gpu_words(g) for g in self.gpus) + f" ({self.source})"


def _gpu_words(gpu: GpuReading) -> str:
    parts = []
    if gpu.temperature_c is not None:
        parts.append(f"{gpu.temperature_c:.0f} °C")
    if gpu.power_w is not None:
        limit = f" of {gpu.power_limit_w:.0f} W" if gpu.power_limit_w is not None else ""
        parts.append(f"{gpu.power_w:.0f} W{limit}")
    if gpu.fan_percent is not None:
        parts.append(f"fan {gpu.fan_percent:.0f} %")
    if gpu.busy_percent is not None:
        parts.append(f"{gpu.busy_percent:.0f} % busy")
    return f"{gpu.name}: {', '.join(parts) if parts else 'no readings'}"


def combined(*sources: Readings) -> Readings:
    """The GPUs of every source that read any, their sources named together."""
    found = [s for s in sources if s.gpus]
    return Readings(tuple(g for s in found for g in s.gpus),
                    " and ".join(s.source for s in found if s.source) or None)
