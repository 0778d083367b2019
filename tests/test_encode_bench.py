"""benchmarks/encode.py records which bf16 CPU features the machine had (issue 18: the encode
ratio differs between Intel with AMX and AMD EPYC with AVX-512 BF16 only)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _encode_bench():
    spec = importlib.util.spec_from_file_location("encode_bench", REPO / "benchmarks" / "encode.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cpu_flags_tell_amx_from_avx512_bf16_only():
    bench = _encode_bench()
    intel = "processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_bf16 amx_tile\n"
    epyc = "processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16\nflags\t: ignored second cpu\n"
    assert bench.cpu_flags(intel) == {"amx_bf16": True, "amx_tile": True, "avx512_bf16": True,
                                      "avx512f": True}
    assert bench.cpu_flags(epyc) == {"amx_bf16": False, "amx_tile": False, "avx512_bf16": True,
                                     "avx512f": True}
    assert not any(bench.cpu_flags("").values())  # no /proc/cpuinfo: every flag unknown = off
