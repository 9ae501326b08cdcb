"""The attention kernels compile ahead of time for sm_80 and sm_90 at the tiles the GPU
heuristic picks, within the resource gate (shared memory, registers, no spills). bf16 is
in ``test_tk_aot.py`` (``all_aot_specs``); fp16 and fp32 here, and the gate rejects a
dK/dV tile that spills. No GPU needed."""

import dataclasses

import pytest

from triton_kernels import aot, attention

pytestmark = [pytest.mark.aot, pytest.mark.slow]
ARCHS = (80, 90)
SPECS = attention.aot_specs("float16") + attention.aot_specs("float32")
# 64 queries x 64 keys with 4 warps and D = 64: two fp32 accumulators, K and V spill
SPILLS = dataclasses.replace(
    next(s for s in attention.aot_specs("bfloat16", (64,)) if "dkdv" in s.name),
    constexprs={**next(s for s in attention.aot_specs("bfloat16", (64,))
                       if "dkdv" in s.name).constexprs, "BLOCK_M": 64, "BLOCK_N": 64},
    num_warps=4, label="attention_bwd_dkdv[64x64w4]")


def _key(spec):
    return f"{spec.name}-{spec.types['q_ptr' if 'q_ptr' in spec.types else 'o_ptr'][1:]}"


@pytest.fixture(scope="module")
def reports():
    out = aot.check_specs(SPECS + [SPILLS], ARCHS, check=False, workers=2)
    return dict(zip([(_key(s), a) for s in SPECS + [SPILLS] for a in ARCHS], out))


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"sm_{a}")
@pytest.mark.parametrize("spec", SPECS, ids=_key)
def test_attention_kernel_fits(reports, spec, arch):
    report = reports[(_key(spec), arch)]
    assert report.ok, f"{report.name} sm_{arch}: {report.violations()}"
    assert report.registers > 0 and report.spill_stores == 0


def test_gate_rejects_a_spilling_tile(reports):
    report = reports[(_key(SPILLS), 80)]
    assert report.spill_stores > 0 and not report.ok
    with pytest.raises(aot.ResourceError, match=r"attention_bwd_dkdv\[64x64w4\].*spills"):
        aot._gate(report, True)


def test_every_kernel_and_head_dim_is_specified():
    names = {s.name for s in attention.aot_specs("bfloat16")}
    assert names == {f"attention_{k}[d{d}]" for k in ("fwd", "bwd_pre", "bwd_dkdv", "bwd_dq")
                     for d in (64, 128)}
