"""Name the machine a benchmark ran on: CPU model, vector extensions, cores, load, versions."""
from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import time
from pathlib import Path

VECTOR_FLAGS = ("avx", "avx2", "fma")  # and every avx512* flag
PACKAGES = ("numpy", "torch", "keras", "jax", "jaxlib", "tensorflow")


def cpu_model() -> str:
    """The model name, with family, model and clock from /proc/cpuinfo: a VM may name only the brand
    ("AMD EPYC"), and the family says the generation (AMD family 25 = Zen 3 or Zen 4)."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if not key.strip():
                break  # the first processor only
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    details = [f"{k} {fields[k]}" for k in ("cpu family", "model") if k in fields]
    if "cpu MHz" in fields:
        details.append(f"{float(fields['cpu MHz']):.0f} MHz")
    return f"{name} ({', '.join(details)})" if details else name


def cpu_flags() -> list[str]:
    """The CPU's vector extensions, from /proc/cpuinfo: avx, avx2, fma and any avx512*."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f in VECTOR_FLAGS or f.startswith("avx512"))
    except OSError:
        pass
    return []


def load_average() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def package_versions() -> dict:
    """Installed versions, read from the packages' metadata (nothing is imported)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name if name != "tensorflow" else "tensorflow-cpu")
        except importlib.metadata.PackageNotFoundError:
            try:
                out[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                pass
    return out


def machine() -> dict:
    return {"cpu": cpu_model(), "vector_extensions": cpu_flags(), "cores": os.cpu_count(),
            "platform": platform.platform(), "load_average": load_average(), "versions": package_versions()}


def machine_line(m: dict) -> str:
    """One line that names the machine: CPU, vector extensions, cores, load at start and end, versions."""
    flags = ", ".join(m.get("vector_extensions") or []) or "none found"
    text = f"machine: {m['cpu']}, vector extensions {flags}, {m['cores']} cores, {m['platform']}"
    load, end = m.get("load_average"), m.get("load_average_end")
    if load:
        text += f"; load average {load[0]:.2f} at start"
        if end:
            text += f", {end[0]:.2f} at end"
    if m.get("versions"):
        text += "; " + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    return text


def finish(report: dict, json_path: Path | None, started: float) -> dict:
    """Record the machine's load and the benchmark's own time, print the machine line, write the JSON."""
    report["machine"]["load_average_end"] = load_average()
    report["wall_seconds"] = time.perf_counter() - started
    print(machine_line(report["machine"]), flush=True)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {json_path}")
    print(f"benchmark took {report['wall_seconds']:.0f} s")
    return report
