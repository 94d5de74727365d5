"""Domain errors shared by the CLI, the evaluator and the service.

Every error the product raises on purpose derives from :class:`CodesuggestError`; the CLI turns
them into a one-line message with exit code 2 and the service maps them to HTTP status codes in a
single exception handler (``http_status`` below), so no caller needs to know the concrete class.
"""

from __future__ import annotations


class CodesuggestError(Exception):
    """Base class of all expected, user-facing errors.

    Attributes:
        http_status: the HTTP status the service answers with for this error.
    """

    http_status: int = 400


class InputError(CodesuggestError):
    """The caller's input is unusable (empty note, bad option value...)."""

    http_status = 422


class EmptyNoteError(InputError):
    """The note text is empty or whitespace only."""


class NoteTooLongError(InputError):
    """The note text is over the configured limit."""

    http_status = 413


class MalformedCodeError(InputError):
    """A string that cannot be a code of any supported system."""


class UnknownCodeError(CodesuggestError):
    """A well-formed code that the knowledge base does not contain."""

    http_status = 404


class InvalidSeventhCharacterError(InputError):
    """A 7th character that the code's category does not allow."""


class ArtefactError(CodesuggestError):
    """A model or knowledge-base artefact is missing, corrupt or incompatible."""

    http_status = 503


class DataFileError(CodesuggestError):
    """A source data file (tabular XML, index CSV, HCPCS file, CPT file...) is missing or malformed."""


class CorpusFormatError(CodesuggestError):
    """A corpus file has bad lines; ``problems`` lists every one as ``(line_number, message)``."""

    def __init__(self, path: str, problems: list[tuple[int, str]]):
        self.path = path
        self.problems = problems
        shown = "; ".join(f"line {n}: {m}" for n, m in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"{path}: {len(problems)} bad line(s): {shown}{more}")


class RuleFileError(CodesuggestError):
    """A rule or lexicon data file has unknown keys or bad values."""
