"""``repr(tensor)`` laid out as PyTorch's ``_tensor_str``: values per line, bool widths,
summarization and the scientific-notation decision on the shown values."""

import framework as fw


def test_values_per_line_follow_linewidth_minus_indent():
    # 1-D: (80 - 7) // (2 + 2) = 18 two-digit ints per line
    assert repr(fw.arange(30)) == (
        "tensor([ 0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14, 15, 16, 17,\n"
        "        18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29])")
    # 2-D rows are indented one more: (80 - 8) // (7 + 2) = 8 floats per line
    r = repr(fw.full((1, 10), -0.5))
    assert r == ("tensor([[-0.5000, -0.5000, -0.5000, -0.5000, -0.5000, -0.5000, -0.5000, "
                 "-0.5000,\n         -0.5000, -0.5000]])")


def test_bools_are_padded_to_the_widest_shown_value():
    assert repr(fw.tensor([True, True])) == "tensor([True, True])"
    assert repr(fw.tensor([True, False])) == "tensor([ True, False])"
    assert repr(fw.tensor([[True], [True]])) == "tensor([[True],\n        [True]])"


def test_empty_tensors():
    assert repr(fw.tensor([])) == "tensor([])"
    assert repr(fw.zeros(2, 0)) == "tensor([], size=(2, 0))"


def test_summarized_rows_and_scientific_notation_decided_on_shown_values():
    assert repr(fw.arange(5000)) == "tensor([   0,    1,    2,  ..., 4997, 4998, 4999])"
    r = repr(fw.ones(10, 200, dtype=fw.int64))
    assert r.splitlines()[0] == "tensor([[1, 1, 1,  ..., 1, 1, 1]," and r.count("...") == 7
    # a tiny value that is not shown does not switch the print to scientific notation
    x = fw.full((2000,), 0.5)
    x[1000] = 1e-6
    assert repr(x) == "tensor([0.5000, 0.5000, 0.5000,  ..., 0.5000, 0.5000, 0.5000])"
    # a wide range of integral values does (PyTorch's int mode also uses sci past 1000x)
    assert repr(fw.tensor([1.0, 2000.0])) == "tensor([1.0000e+00, 2.0000e+03])"
    assert repr(fw.tensor([1.0, 200.0])) == "tensor([  1., 200.])"
