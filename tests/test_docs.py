"""Every ```python block in docs/*.md and README.md runs, so the docs cannot rot.

Blocks of one page share a namespace and run in order, in a temporary working directory.
A block is skipped when its fence says ```python skip, or when the line before the fence
is ``<!-- skip -->`` (blocks that need a GPU, a network or minutes of time).
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
_FENCE = re.compile(r"^```(\S*)[ \t]*(.*)$")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, source) of each runnable python block of a Markdown page."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, rest = m.group(1), m.group(2)
        prev = lines[i - 1].strip() if i else ""
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        skip = "skip" in rest.split() or prev == "<!-- skip -->"
        if lang == "python" and not skip:
            blocks.append((i + 2, "\n".join(lines[i + 1:j])))
        i = j + 1
    return blocks


def test_the_block_finder_honours_skip_markers():
    text = ("```python\na = 1\n```\n```python skip\nboom\n```\n<!-- skip -->\n```python\n"
            "boom\n```\n```bash\nmake demo\n```\n```python\nb = 2\n```\n")
    assert python_blocks(text) == [(2, "a = 1"), (15, "b = 2")]


def test_every_page_is_listed():
    names = {p.name for p in PAGES}
    for page in ("quick-start.md", "tensors-and-autograd.md", "nn-and-training.md",
                 "compile.md", "gpu.md", "onnx.md", "internals.md", "benchmarks.md",
                 "from-pytorch.md", "README.md"):
        assert page in names, page


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_code_blocks_run(page, tmp_path, monkeypatch):
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FW_LOGS", raising=False)
    ns = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    import framework as fw
    fw.manual_seed(0)
    for line, src in blocks:
        code = compile(src, f"{page.relative_to(ROOT)}:{line}", "exec")
        try:
            exec(code, ns)
        except Exception as e:
            raise AssertionError(f"{page.name}, block at line {line} failed: "
                                 f"{type(e).__name__}: {e}") from e


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_relative_links_resolve():
    bad = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                bad.append(f"{page.name}: {target} (no such file)")
                continue
            if anchor and dest.suffix == ".md":
                heads = re.findall(r"^#+\s+(.*)$", dest.read_text(encoding="utf-8"), re.M)
                if anchor not in {_slug(h) for h in heads}:
                    bad.append(f"{page.name}: {target} (no such heading)")
    assert not bad, bad
