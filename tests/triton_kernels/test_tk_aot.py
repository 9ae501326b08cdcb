"""Ahead-of-time compile every kernel for sm_80 and sm_90 and run the resource gate (no GPU).

All compilations run once per session in two worker subprocesses (kernels imported here
are interpreter objects, which Triton cannot compile); each kernel x arch is one case.
"""

import dataclasses

import numpy as np
import pytest

import triton_kernels
from triton_kernels import aot, copy, matmul, optim

pytestmark = pytest.mark.aot
ARCHS = (80, 90)
SPECS = (
    triton_kernels.all_aot_specs("bfloat16")
    + matmul.aot_specs(np.float32)
    + matmul.aot_specs(np.float16)
    + optim.aot_specs(np.float32)  # fp32 parameters: the common case of fused optimizers
)


def _key(spec):
    return f"{spec.name}-{spec.types.get('a_ptr', spec.types.get(next(iter(spec.types))))[1:]}"


# 128x256 tiles with 8 warps and the full epilogue spill (why CONFIGS stops at 128x128)
SPILLS = matmul.aot_specs("bfloat16", {"spills": matmul.MatmulConfig(128, 256, 64, 8, 8, 3)})


@pytest.fixture(scope="session")
def reports():
    """Compile all specs for all archs once; map (key, arch) -> ResourceReport."""
    out = aot.check_specs(SPECS + SPILLS, ARCHS, check=False, workers=2)
    keys = [(_key(s), cap) for s in SPECS + SPILLS for cap in ARCHS]
    return dict(zip(keys, out))


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"sm_{a}")
@pytest.mark.parametrize("spec", SPECS, ids=_key)
def test_kernel_fits(reports, spec, arch):
    report = reports[(_key(spec), arch)]
    assert report.ok, f"{report.name} sm_{arch}: {report.violations()}"
    assert report.registers > 0 and report.spill_stores == 0


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"sm_{a}")
def test_gate_catches_spills(reports, arch):
    report = reports[("matmul[spills]-bf16", arch)]
    assert report.stack > 0 and report.spill_stores > 0 and not report.ok
    with pytest.raises(aot.ResourceError, match=r"matmul\[spills\] \(sm_.*register spills"):
        aot._gate(report, True)


def test_gate_names_failing_kernel(reports):
    report = reports[("matmul[large]-bf16", 90)]
    tight = dataclasses.replace(report, shared_limit=1024, spill_stores=8)
    assert len(tight.violations()) == 2
    with pytest.raises(aot.ResourceError, match=r"matmul\[large\] \(sm_90.*shared memory .*spills"):
        aot._gate(tight, True)
    too_many_regs = dataclasses.replace(report, registers=255, num_warps=16)
    assert "registers 255 x 512 threads" in too_many_regs.violations()[0]


def test_single_kernel_check_in_subprocess():
    """KernelSpec.check -> compile_and_check, isolated automatically under the interpreter."""
    spec = next(s for s in copy.aot_specs("bfloat16") if s.name == "copy[cast]")
    report = spec.check(80, spills=False)
    assert report.shared > 0 and report.compiled is None
    with pytest.raises(aot.ResourceError, match=r"copy\[cast\] \(sm_80"):
        spec.check(80, shared_limit=report.shared - 1, spills=False)


def test_signature_helpers():
    from triton_kernels.copy_kernels import copy_kernel

    sig = aot.make_signature(
        copy_kernel, {"src_ptr": "*fp16", "dst_ptr": aot.pointer_type(np.float32)}, {"BLOCK": 1024}
    )
    assert sig == {"src_ptr": "*fp16", "dst_ptr": "*fp32", "N": "i32", "BLOCK": "constexpr"}
    with pytest.raises(ValueError, match="dst_ptr"):
        aot.make_signature(copy_kernel, {"src_ptr": "*fp16"}, {"BLOCK": 1024})
