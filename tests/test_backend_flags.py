"""PyTorch's ``torch.backends`` switches: fw.backends.cuda.matmul, cudnn, mps."""

import framework as fw


def test_allow_tf32_is_the_float32_matmul_precision():
    saved = fw.get_float32_matmul_precision()
    try:
        fw.backends.cuda.matmul.allow_tf32 = True
        assert fw.get_float32_matmul_precision() == "high"
        fw.set_float32_matmul_precision("highest")
        assert fw.backends.cuda.matmul.allow_tf32 is False
        fw.set_float32_matmul_precision("medium")
        assert fw.backends.cuda.matmul.allow_tf32 is True
        fw.backends.cuda.matmul.allow_tf32 = False
        assert fw.get_float32_matmul_precision() == "highest"
    finally:
        fw.set_float32_matmul_precision(saved)


def test_cudnn_and_mps_report_what_is_there():
    assert fw.backends.cudnn.is_available() is False and fw.backends.cudnn.version() is None
    assert fw.backends.mps.is_available() is False and fw.backends.mps.is_built() is False
    saved = fw.backends.cudnn.benchmark
    with fw.backends.cudnn.flags(enabled=True, benchmark=True, deterministic=True):
        assert fw.backends.cudnn.benchmark is True and fw.backends.cudnn.deterministic
    assert fw.backends.cudnn.benchmark is saved and fw.backends.cudnn.deterministic is False
    fw.backends.cudnn.allow_tf32 = True  # scripts set these; accepted


def test_unknown_backend_attribute_is_an_attribute_error():
    import pytest
    with pytest.raises(AttributeError, match="xla"):
        fw.backends.xla
