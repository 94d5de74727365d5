"""CPT (Level I): a licensed CPT file supplied by the user, and the project's starter lexicon.

CPT descriptors belong to the AMA and are not part of this project. A site with a CPT licence
points the knowledge-base build at its own file (:func:`read_cpt_file`); without one, the
product uses the starter lexicon in ``resources/cpt_starter.json``: the CPT code numbers an
outpatient, emergency or clinic coder needs most, each with a title in the project's own plain
words, the phrases that signal it in a note, and the features that separate codes that share a
phrase (views, contrast, wound size and site...). Leveled E/M codes carry no phrases (their
level is computed from decision making or time) but an ``em`` block and ``cues`` (setting,
new or established patient).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field, model_validator

from pipeline.errors import DataFileError
from pipeline.kb.model import CodeRecord
from pipeline.rulefile import (
    OptionalPhrases,
    Phrase,
    PositiveInt,
    RuleFile,
    RuleModel,
    Text,
    entry_error,
    load_rules,
    read_rule_text,
    schema_field,
)

logger = logging.getLogger(__name__)

# Category I codes are five digits; Category II end in F, Category III in T, proprietary lab
# analyses in U and multianalyte assays (MAAA) in M (licensed files list those too).
CPT_CODE_RE = re.compile(r"^[0-9]{4}[0-9FTUM]$")

STARTER_RESOURCE = "cpt_starter.json"
# Must equal the "version" of resources/cpt_starter.json (checked by the loader).
STARTER_VERSION = "2026.2"
STARTER_SOURCE = "codesuggest starter lexicon"

StarterCategory = Literal[
    "em",
    "counseling",
    "radiology",
    "cardiology",
    "lab",
    "injection",
    "vaccine",
    "procedure",
    "pulmonary",
    "endoscopy",
    "rehab",
    "psychiatry",
    "medicine",
]
STARTER_CATEGORIES: tuple[str, ...] = get_args(StarterCategory)
StarterFeature = Literal[
    "modality",  # x-ray, ct, cta, mri, ultrasound, duplex, mammography, dxa
    "body_part",
    "views",  # "1", "2", "3+", "1-2"...
    "contrast",  # without | with | without and with
    "laterality",  # unilateral | bilateral
    "extent",  # complete | limited | screening | diagnostic...
    "guidance",  # with/without ultrasound or imaging
    "size_cm",  # summed wound length or lesion size band, e.g. "<=2.5", "2.6-7.5"
    "site_group",  # anatomic group of a repair or excision
    "complexity",  # simple | intermediate | complicated | low | moderate | high...
    "method",
    "specimen",
    "analyte",
    "minutes",
    "count",
    "age",
    "route",
    "component",  # global | professional | technical
    "manipulation",  # with | without
    "anesthesia",
    "length",  # short-arm, long-leg...
    "vaccine",
]
STARTER_FEATURES: tuple[str, ...] = get_args(StarterFeature)
EmSetting = Literal[
    "office",
    "emergency",
    "hospital-initial",
    "hospital-subsequent",
    "hospital-same-day",
    "hospital-discharge",
    "consult-office",
    "preventive",
    "prolonged",
    "critical-care",
    "transitional-care",
    "online",
]
EM_SETTINGS: tuple[str, ...] = get_args(EmSetting)

# CPT sections by code range (public numbering, not descriptor text).
_SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("00100", "01999", "Anesthesia"),
    ("10004", "69990", "Surgery"),
    ("70010", "79999", "Radiology"),
    ("80047", "89398", "Pathology and Laboratory"),
    ("90281", "99199", "Medicine"),
    ("99202", "99499", "Evaluation and Management"),
    ("99500", "99607", "Medicine"),
)
_SUFFIX_SECTIONS = {
    "F": "Category II (performance measurement)",
    "T": "Category III (emerging technology)",
    "U": "Proprietary Laboratory Analyses",
    "M": "Multianalyte Assays with Algorithmic Analyses",
}


def cpt_section(code: str) -> str | None:
    """Return the CPT section a code number falls in (``"Radiology"``...).

    Args:
        code: a five-character CPT code.

    Returns:
        The section name, or None for a number outside every section.
    """
    if code[-1:] in _SUFFIX_SECTIONS:
        return _SUFFIX_SECTIONS[code[-1]]
    for start, end, name in _SECTIONS:
        if start <= code <= end:
            return name
    return None


# ---------------------------------------------------------------------------------------------
# Licensed CPT file


def read_cpt_file(path: Path) -> list[CodeRecord]:
    """Read a licensed CPT file: one ``code<TAB>descriptor`` per line.

    Blank lines and lines starting with ``#`` are skipped; the first remaining line may be a
    header (its first field is not a code, e.g. ``code<TAB>description``). The file may be
    UTF-8 (with or without BOM) or latin-1.

    Args:
        path: the licensed file the user configured.

    Returns:
        One billable ``CPT`` record per line, in file order, with the file's descriptor as
        title and ``meta["source"] = "licensed CPT file"``.

    Raises:
        DataFileError: missing or unreadable file, a line without exactly one tab, a malformed
            code, an empty descriptor, a code listed twice, or no codes; the message names the
            file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file (the licensed CPT file the configuration points to)")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    records: list[CodeRecord] = []
    seen: dict[str, int] = {}
    header_allowed = True
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{path}, line {lineno}"
        fields = line.split("\t")
        first = fields[0].strip().upper()
        if header_allowed and not CPT_CODE_RE.match(first) and not any(ch.isdigit() for ch in first):
            header_allowed = False
            continue
        header_allowed = False
        if len(fields) != 2:
            raise DataFileError(f"{where}: expected 'code<TAB>descriptor', found {len(fields)} tab-separated fields")
        if not CPT_CODE_RE.match(first):
            raise DataFileError(f"{where}: {fields[0].strip()!r} is not a CPT code (5 digits, or 4 digits and F/T/U/M)")
        descriptor = " ".join(fields[1].split())
        if not descriptor:
            raise DataFileError(f"{where}: code {first} has an empty descriptor")
        if first in seen:
            raise DataFileError(f"{where}: code {first} already listed on line {seen[first]}")
        seen[first] = lineno
        records.append(
            CodeRecord(
                code=first,
                system="CPT",
                title=descriptor,
                billable=True,
                chapter=cpt_section(first),
                meta={"source": "licensed CPT file", "file": path.name},
            )
        )
    if not records:
        raise DataFileError(f"{path}: no CPT codes found")
    logger.info("read %d CPT codes from a licensed file", len(records))
    return records


# ---------------------------------------------------------------------------------------------
# Starter lexicon


@dataclass(frozen=True, slots=True)
class EmLevel:
    """What places a leveled E/M code.

    Attributes:
        setting: where the visit happens (see ``EM_SETTINGS``).
        patient: ``new``, ``established`` or ``any``.
        mdm: the medical decision making level the code needs, or None when it does not apply.
        minutes: the total time on the date that also qualifies, or None when time does not.
        age: the age band of a preventive visit, or None.
    """

    setting: str
    patient: str
    mdm: str | None
    minutes: int | None
    age: str | None = None


@dataclass(frozen=True, slots=True)
class StarterEntry:
    """One code of the starter lexicon, as written in the resource file.

    Attributes:
        code: the CPT code number.
        title: the project's own plain-language title.
        category: see ``STARTER_CATEGORIES``.
        phrases: lower-case phrases that signal the code (empty for leveled E/M codes).
        features: feature -> value (see ``STARTER_FEATURES``).
        add_on: True when the code is only reported with a primary code.
        em: the E/M placement of a leveled E/M code, else None.
        cues: words of the setting or patient status (E/M), lower case.
    """

    code: str
    title: str
    category: str
    phrases: tuple[str, ...]
    features: dict[str, str]
    add_on: bool = False
    em: EmLevel | None = None
    cues: tuple[str, ...] = ()

    def to_record(self) -> CodeRecord:
        """Return the knowledge-base record of this entry.

        ``meta`` holds ``source``, ``category``, ``add_on`` (``"true"``/``"false"``), each
        feature as ``feature.<name>``, the E/M fields as ``em.<field>`` and the cues joined
        with ``"|"`` under ``cues``.
        """
        meta = {
            "source": STARTER_SOURCE,
            "category": self.category,
            "add_on": str(self.add_on).lower(),
        }
        meta.update({f"feature.{key}": value for key, value in self.features.items()})
        if self.em is not None:
            meta["em.setting"] = self.em.setting
            meta["em.patient"] = self.em.patient
            if self.em.mdm is not None:
                meta["em.mdm"] = self.em.mdm
            if self.em.minutes is not None:
                meta["em.minutes"] = str(self.em.minutes)
            if self.em.age is not None:
                meta["em.age"] = self.em.age
        if self.cues:
            meta["cues"] = "|".join(self.cues)
        return CodeRecord(
            code=self.code,
            system="CPT",
            title=self.title,
            billable=True,
            chapter=cpt_section(self.code),
            block=self.category,
            synonyms=self.phrases,
            meta=meta,
        )


class _Em(RuleModel):
    setting: EmSetting
    patient: Literal["new", "established", "any"]
    mdm: Literal["none", "straightforward", "low", "moderate", "high"] | None
    minutes: PositiveInt | None
    age: Text | None = None


class _StarterCode(RuleModel):
    code: Annotated[str, Field(pattern=CPT_CODE_RE.pattern)]
    title: Text
    category: StarterCategory
    phrases: OptionalPhrases
    features: dict[StarterFeature, Phrase] = {}
    add_on: bool = False
    em: _Em | None = None
    cues: OptionalPhrases = ()

    @model_validator(mode="after")
    def _em_or_phrases(self) -> _StarterCode:
        if self.category == "em":
            if self.em is None:
                raise ValueError("an 'em' code needs an 'em' block (setting, patient, mdm, minutes)")
            if self.phrases:
                raise ValueError("leveled E/M codes take no phrases (the level is computed); use 'cues'")
        elif self.em is not None:
            raise ValueError("only category 'em' takes an 'em' block")
        elif not self.phrases:
            raise ValueError(f"'phrases' must not be empty for a {self.category} code")
        return self

    def entry(self) -> StarterEntry:
        em = self.em
        level = EmLevel(em.setting, em.patient, em.mdm, em.minutes, em.age) if em is not None else None
        return StarterEntry(
            self.code,
            self.title,
            self.category,
            self.phrases,
            {str(k): v for k, v in self.features.items()},
            self.add_on,
            level,
            self.cues,
        )


class StarterFile(RuleFile):
    """``cpt_starter.json`` (schema ``codesuggest.cpt-starter/1``)."""

    schema_id: Literal["codesuggest.cpt-starter/1"] = schema_field()
    version: str
    codes: tuple[_StarterCode, ...]


def load_starter_entries(path: Path | None = None) -> list[StarterEntry]:
    """Load and validate the starter lexicon.

    Args:
        path: read this file instead of the packaged ``resources/cpt_starter.json``.

    Returns:
        The entries in file order.

    Raises:
        RuleFileError: wrong schema or version, unknown keys, a malformed code, an unknown
            category or feature, bad phrases, phrases on a leveled E/M code (or none on any
            other), a missing or invalid ``em`` block, or a code listed twice; the message
            names the file, line and entry.
    """
    text, source = read_rule_text(STARTER_RESOURCE, path)
    f = load_rules(StarterFile, text, source)
    if f.version != STARTER_VERSION:
        raise entry_error(
            text, source, ("version",), f"{f.version!r} does not match STARTER_VERSION {STARTER_VERSION!r}"
        )
    entries: list[StarterEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(f.codes):
        if item.code in seen:
            raise entry_error(text, source, ("codes", i), f"code {item.code} is listed twice")
        seen.add(item.code)
        entries.append(item.entry())
    logger.debug("loaded %d starter CPT entries", len(entries))
    return entries


def load_starter_lexicon(path: Path | None = None) -> list[CodeRecord]:
    """Return the starter lexicon as knowledge-base records.

    Args:
        path: read this file instead of the packaged ``resources/cpt_starter.json``.

    Returns:
        ``CodeRecord(system="CPT", billable=True, synonyms=phrases, meta={"source":
        "codesuggest starter lexicon", "category": ..., ...})`` per code, in file order.

    Raises:
        RuleFileError: see :func:`load_starter_entries`.
    """
    return [entry.to_record() for entry in load_starter_entries(path)]
