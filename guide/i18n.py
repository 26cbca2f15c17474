"""How much of a translation's code comments is still the original's: a check for the guide.

    prose_comment_lines(code)           the comments of some Python code that are prose
    identical_share(en_code, es_code)   the share of the Spanish prose comments found verbatim in the English

A comment is prose when three or more words remain after setting aside shapes such as
``(batch, 28, 8)``, quoted literals (``"accuracy"``, ```fit```) and identifiers
(``return_sequences``, ``x.squeeze(1)``, ``ToTensor``).  ``# (batch, 10): logits`` is not
prose, so it may stay the same in both languages; ``# the last time step`` is, and must be
translated.  Framework-neutral: the notebooks' tests and the guide pages' tests use it alike.
"""
from __future__ import annotations

import io
import re
import tokenize

SHAPE = re.compile(r"\((?:[\w\s,.*+/:-]|->|…)*\)")   # (batch, 28, 8), (N, 28, 28), (25, 1, 28, 28)
QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|`[^`]*`|«[^»]*»")
WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*")     # letters only, accented ones included
MIN_WORDS = 3


def comments(code: str) -> list[str]:
    """The text of every comment in ``code``, without its ``#``, in order.

    Python's tokenizer finds them, so a ``#`` inside a string is not one; code that does not
    tokenize (a page's fragment, an IPython magic) falls back to every text after a ``#``
    that starts a line or follows two spaces."""
    try:
        return [token.string.lstrip("#").strip()
                for token in tokenize.generate_tokens(io.StringIO(code).readline)
                if token.type == tokenize.COMMENT]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return [m.group(1).strip() for m in re.finditer(r"(?:^|  )#(.*)$", code, re.M)]


def is_identifier(token: str) -> bool:
    """Whether a whitespace-separated token reads as code rather than as a word."""
    token = token.strip(",;:!?¿¡")
    return bool(re.search(r"[_.()\[\]=<>{}@/\\]|\d", token)          # x.squeeze(1), n_epochs, 1e-3, a/b
                or re.search(r"[a-z][A-Z]", token)                  # ToTensor, nn.RNN's camelCase kin
                or (len(token) > 1 and token.isupper()))            # RNN, SEED, GPU


def prose_words(comment: str) -> list[str]:
    """The words of a comment once shapes, quoted literals and identifiers are set aside.
    A commented-out IPython magic or shell line (``%pip install ...``) has none."""
    if comment.startswith(("%", "!", "$ ")):
        return []
    text = QUOTED.sub(" ", SHAPE.sub(" ", comment))
    kept = " ".join(token for token in text.split() if not is_identifier(token))
    return WORD.findall(kept)


def prose_comment_lines(code: str) -> list[str]:
    """The comments of ``code`` that are prose (three or more words), whitespace normalised."""
    return [" ".join(text.split()) for text in comments(code) if len(prose_words(text)) >= MIN_WORDS]


def identical_share(en_code: str, es_code: str) -> float:
    """The share of the Spanish code's prose comment lines that appear verbatim among the
    English code's: 0.0 for a full translation, 1.0 when nothing was translated.
    Code without prose comments gives 0.0."""
    english = set(prose_comment_lines(en_code))
    spanish = prose_comment_lines(es_code)
    if not spanish:
        return 0.0
    return sum(line in english for line in spanish) / len(spanish)
