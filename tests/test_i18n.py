"""guide.i18n: which comments are prose, and how many of a translation's are still the original's."""
from __future__ import annotations

import pytest

from guide.i18n import comments, identical_share, prose_comment_lines

pytestmark = pytest.mark.guide

ENGLISH = '''\
# On Colab, uncomment the next line and run it once:
# %pip install keras jax matplotlib
x = f(x)  # (batch, 28, 8)
y = g(x)  # (batch, 8): the last time step
z = "# not a comment, a string"  # "jax", "tensorflow" or "torch"
loss = criterion(logits, labels)  # torch losses take (prediction, target)
out = x.squeeze(1)  # ToTensor, then Normalize
keep = True  # one line per epoch
'''
SPANISH = ENGLISH.replace("On Colab, uncomment the next line and run it once:",
                          "En Colab, descomenta la línea siguiente y ejecútala una vez:") \
                 .replace("the last time step", "el último paso de tiempo") \
                 .replace("torch losses take", "las pérdidas de torch reciben")


def test_comments_come_from_the_tokenizer_and_skip_strings():
    assert comments(ENGLISH)[:3] == ["On Colab, uncomment the next line and run it once:",
                                     "%pip install keras jax matplotlib", "(batch, 28, 8)"]
    assert len(comments(ENGLISH)) == 8 and not any("not a comment" in c for c in comments(ENGLISH))
    assert comments("def broken(:\n    pass  # a comment in code that does not parse\n") == [
        "a comment in code that does not parse"]


def test_prose_sets_aside_shapes_quoted_literals_identifiers_and_magics():
    assert prose_comment_lines(ENGLISH) == [
        "On Colab, uncomment the next line and run it once:",
        "(batch, 8): the last time step",
        "torch losses take (prediction, target)",
        "one line per epoch",
    ]  # not: the pip line, a bare shape, three quoted names, "ToTensor, then Normalize" (two words)


def test_identical_share_counts_the_spanish_lines_left_in_english():
    assert identical_share(ENGLISH, ENGLISH) == 1.0
    assert identical_share(ENGLISH, SPANISH) == 1 / 4  # "one line per epoch" is left
    assert identical_share(ENGLISH, SPANISH.replace("one line per epoch", "una línea por época")) == 0.0
    assert identical_share(ENGLISH, "x = 1  # (batch, 10)\n") == 0.0  # no prose at all


def python_code(path) -> str:
    """Every ```python block of a guide page (shown-only ones too), joined."""
    from guide.runner import fenced_blocks
    return "\n\n".join(body for _, info, body, _ in fenced_blocks(path.read_text(encoding="utf-8"))
                       if info.split()[:1] == ["python"])


def test_spanish_pages_comment_in_spanish():
    """Issue 18: at most 1 in 10 prose comment lines of the Spanish pages is the English one.
    Each es page is paired with its en page; measured on 2026-12-04: 0 of 186."""
    from tests.conftest import ROOT
    guide = ROOT / "guide"
    spanish_pages = sorted((guide / "es").rglob("*.md"))
    left, total, examples = 0, 0, []
    for es_page in spanish_pages:
        en_page = guide / "en" / es_page.relative_to(guide / "es")
        english = set(prose_comment_lines(python_code(en_page)))
        spanish = prose_comment_lines(python_code(es_page))
        same = [line for line in spanish if line in english]
        left, total = left + len(same), total + len(spanish)
        examples += [f"{es_page.relative_to(guide)}: # {line}" for line in same[:2]]
    assert len(spanish_pages) >= 40
    assert total >= 150, f"only {total} prose comment lines in the Spanish pages: the measure means little"
    assert left / total <= 0.1, f"{left} of {total} Spanish prose comments are the English ones, e.g. {examples[:5]}"
