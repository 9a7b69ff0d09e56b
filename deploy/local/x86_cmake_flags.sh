#!/usr/bin/env bash
# The ggml CMake flags for the x86 vector extensions of the CPU this runs on, beyond the portable AVX2 baseline:
# AVX-512 (F, CD, VL, DQ, BW together, as ggml's GGML_AVX512 compiles them), AVX-512 VNNI/BF16/VBMI and AVX-VNNI.
# For a llama-server built on the machine that runs it (make llama-server): with AVX-512 VNNI, Qwen2.5-Coder-0.5B
# Q4_K_M evaluates a prompt ~1.4x faster than the AVX2 build on 2 cores (see the README's engine section).
#
# Never AMX: ggml's AMX kernels crash on machines whose CPU reports AMX but whose kernel or hypervisor does not
# grant the tile state (SIGILL at tilezero on this project's machines), and -march=native would compile them in.
# Prints nothing on other CPUs (or when /proc/cpuinfo is unreadable), which leaves the AVX2 build.
set -euo pipefail
# CPUINFO: another cpuinfo file to read (the tests give it one).
flags=" $(grep -m1 '^flags' "${CPUINFO:-/proc/cpuinfo}" 2>/dev/null | cut -d: -f2 || true) "
has() { for flag in "$@"; do [[ "$flags" == *" $flag "* ]] || return 1; done; }
out=()
if has avx512f avx512cd avx512vl avx512dq avx512bw; then
  out+=(-DGGML_AVX512=ON)
  has avx512_vnni && out+=(-DGGML_AVX512_VNNI=ON)
  has avx512_bf16 && out+=(-DGGML_AVX512_BF16=ON)
  has avx512vbmi && out+=(-DGGML_AVX512_VBMI=ON)
fi
has avx_vnni && out+=(-DGGML_AVX_VNNI=ON)
echo "${out[*]}"
