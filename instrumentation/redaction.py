"""Redaction rules for secrets in span content, shared by the SDK and the collector.

A rule is a name, a regular expression and a replacement (by default
``[REDACTED:<name>]``). The SDK applies the rules in Python before export; the
collector renders the same rules into a ClickHouse SQL function and applies
them again while it ingests. So every pattern is written in the subset of
regular expressions that Python's ``re`` and RE2 (ClickHouse) read alike:
ASCII classes, no lookaround, no backreferences in the pattern, flags only as
``(?i)`` or ``(?i:...)``. A replacement may refer to the pattern's groups as
``\\1`` to ``\\9`` and holds no other backslash.

Rules run in order, so a specific rule (``sk-ant-``) comes before a general one
(``sk-``). Every replacement is a fixed point: redacting twice (SDK, then
collector) gives the same text as redacting once.

Configuration (``forktrace.init(redact=...)``, ``FORKTRACE_REDACT``, the
collector's ``--redact``) is a list of entries separated by ``;`` or newlines,
applied in order to the default rules:

- ``off`` (the whole value; also ``false``, ``none``, ``0``): no redaction;
- ``-NAME``: disable the rule NAME; ``-all`` disables every rule so far;
- ``+NAME``: enable the built-in rule NAME that is off by default (``+email``);
- ``NAME=REGEX``: add a rule (or replace the rule of that name), replaced by
  ``[REDACTED:NAME]``; ``NAME=REGEX=>REPLACEMENT`` gives the replacement too.
  Write a ``;`` inside a regex as ``\\x3b``.

This module imports only the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

try:  # the parser behind re, to reject what RE2 cannot run (lookaround, backreferences)
    import re._parser as _sre_parse  # type: ignore[import-not-found]  # Python >= 3.11
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse as _sre_parse  # type: ignore[no-redef]

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_REPLACEMENT = re.compile(r"(?:[^\\]|\\[1-9])*\Z", re.DOTALL)
_LEADING_FLAGS = re.compile(r"\(\?([imsU]+)\)")
OFF_VALUES = ("off", "false", "none", "0", "no")
DEFAULT_VALUES = ("on", "true", "default", "1", "yes")


class RedactionConfigError(ValueError):
    """A redaction rule or entry is invalid; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def _re2_problem(pattern: str) -> str | None:
    """Why ``pattern`` will not run on RE2 the way it runs here, or None."""
    try:
        parsed = _sre_parse.parse(pattern, re.ASCII)
    except re.error as exc:
        return f"not a valid regular expression ({exc})"
    unsupported = {
        "ASSERT": "lookaround",
        "ASSERT_NOT": "lookaround",
        "GROUPREF": "a backreference",
        "GROUPREF_EXISTS": "a conditional group",
        "ATOMIC_GROUP": "an atomic group",
        "POSSESSIVE_REPEAT": "a possessive repeat",
    }
    pending = [parsed]
    while pending:
        for op, argument in pending.pop():
            name = str(op)
            if name in unsupported:
                return f"uses {unsupported[name]}, which ClickHouse's RE2 does not support"
            for value in argument if isinstance(argument, tuple | list) else (argument,):
                if isinstance(value, _sre_parse.SubPattern):
                    pending.append(value)
                elif isinstance(value, tuple | list):
                    pending.extend(v for v in value if isinstance(v, _sre_parse.SubPattern))
    if re.compile(pattern, re.ASCII).match(""):
        return "matches the empty string"
    return None


@dataclass(frozen=True)
class Rule:
    """Replace every match of ``pattern`` by ``replacement`` (default ``[REDACTED:<name>]``)."""

    name: str
    pattern: str
    replacement: str = ""
    # Literals, one of which (ignoring case) is in every match: text holding none
    # of them skips the rule's regex. Python's re tries a union of patterns at
    # every position, ~0.4 µs per character for the defaults; a substring test is
    # a hundred times cheaper. A rule without hints runs its regex on all text.
    hints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            problems.append(f"rule name {self.name!r}: use lowercase letters, digits and _")
        if not isinstance(self.pattern, str) or not self.pattern:
            problems.append(f"rule {self.name!r}: the pattern must be a non-empty string")
        else:
            problem = _re2_problem(self.pattern)
            if problem:
                problems.append(f"rule {self.name!r}: pattern {self.pattern!r} {problem}")
        if not isinstance(self.replacement, str) or not _REPLACEMENT.match(self.replacement):
            problems.append(
                f"rule {self.name!r}: the replacement may use \\1 to \\9 and no other backslash"
            )
        if isinstance(self.hints, str) or not all(
            isinstance(hint, str) and hint for hint in self.hints
        ):
            problems.append(f"rule {self.name!r}: hints must be a tuple of non-empty strings")
        if problems:
            raise RedactionConfigError(problems)
        object.__setattr__(self, "hints", tuple(hint.lower() for hint in self.hints))
        if not self.replacement:
            object.__setattr__(self, "replacement", f"[REDACTED:{self.name}]")

    @property
    def scoped_pattern(self) -> str:
        """The pattern with leading ``(?i)`` flags scoped, so it can join a union."""
        flags = _LEADING_FLAGS.match(self.pattern)
        if flags:
            return f"(?{flags[1]}:{self.pattern[flags.end() :]})"
        return f"(?:{self.pattern})"


class Rules(tuple[Rule, ...]):
    """The resolved rules, in order; printed as their names (``forktrace doctor``)."""

    def __str__(self) -> str:
        return ", ".join(rule.name for rule in self) if self else "off"


_TOKEN = r"[A-Za-z0-9_-]"
DEFAULT_RULES = Rules(
    (
        Rule(
            "private_key",
            # a key cut short by truncation still goes, up to the end of the text
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|$)",
            hints=("PRIVATE KEY",),
        ),
        Rule("anthropic_key", rf"\bsk-ant-{_TOKEN}{{20,}}", hints=("sk-ant-",)),
        Rule("openai_key", rf"\bsk-(proj-|svcacct-|admin-)?{_TOKEN}{{20,}}", hints=("sk-",)),
        Rule("google_api_key", rf"\bAIza{_TOKEN}{{35}}", hints=("AIza",)),
        Rule("aws_access_key", r"\b(AKIA|ASIA)[A-Z0-9]{16}\b", hints=("AKIA", "ASIA")),
        Rule(
            "aws_secret_key",
            r"(?i)(aws_?secret_?(access_?)?key[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9/+]{40}",
            r"\1[REDACTED:aws_secret_key]",
            hints=("secret",),
        ),
        Rule(
            "github_token",
            r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
            hints=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        ),
        Rule("slack_token", r"\bxox[a-z]-[A-Za-z0-9-]{10,}", hints=("xox",)),
        Rule("stripe_key", r"\b[rs]k_(live|test)_[A-Za-z0-9]{16,}", hints=("k_live_", "k_test_")),
        Rule("huggingface_token", r"\bhf_[A-Za-z0-9]{30,}", hints=("hf_",)),
        Rule("jwt", rf"\beyJ{_TOKEN}{{8,}}\.eyJ{_TOKEN}{{8,}}\.{_TOKEN}*", hints=("eyJ",)),
        # after the specific rules: "Bearer [REDACTED:jwt]" is left as it is
        Rule(
            "bearer_token",
            r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}",
            r"\1[REDACTED:bearer_token]",
            hints=("bearer",),
        ),
        # scheme://user:PASSWORD@host keeps the scheme, the user and the host
        Rule(
            "url_password",
            r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]+:)[^@/?#\s]+@",
            r"\1[REDACTED:url_password]@",
            hints=("://",),
        ),
    )
)
OPTIONAL_RULES = Rules(
    (
        Rule(
            "email",
            r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
            hints=("@",),
        ),
    )
)
BUILTIN_RULES = {rule.name: rule for rule in (*DEFAULT_RULES, *OPTIONAL_RULES)}

Entry = str | Rule
RedactSpec = bool | str | Iterable[Entry] | None


def _apply_entry(rules: dict[str, Rule], entry: Entry, problems: list[str]) -> None:
    if isinstance(entry, Rule):
        rules[entry.name] = entry
        return
    if not isinstance(entry, str):
        problems.append(f"{entry!r}: an entry is a string or a forktrace.redaction.Rule")
        return
    text = entry.strip()
    if not text:
        return
    if text[0] in "+-" and "=" not in text:
        name = text[1:].strip()
        if text[0] == "-":
            if name == "all":
                rules.clear()
            elif rules.pop(name, None) is None and name not in BUILTIN_RULES:
                problems.append(f"{text!r}: no rule named {name!r} to disable")
        elif name in BUILTIN_RULES:
            rules[name] = BUILTIN_RULES[name]
        else:
            problems.append(
                f"{text!r}: no built-in rule named {name!r} (built-in: {', '.join(BUILTIN_RULES)})"
            )
        return
    name, sep, rest = text.partition("=")
    if not sep:
        problems.append(f"{text!r}: expected -NAME, +NAME or NAME=REGEX")
        return
    pattern, arrow, replacement = rest.rpartition("=>") if "=>" in rest else (rest, "", "")
    try:
        rule = Rule(name.strip(), pattern.strip() if arrow else rest, replacement.strip())
    except RedactionConfigError as exc:
        problems.extend(exc.problems)
        return
    rules[rule.name] = rule


def resolve_rules(spec: RedactSpec = None) -> Rules:
    """The rules a setting asks for; raises :class:`RedactionConfigError` listing every problem.

    ``None`` or ``True``: the default rules; ``False``: none; a string: entries
    in the format above; an iterable: entries as strings or :class:`Rule` objects.
    """
    if spec is None or spec is True:
        return DEFAULT_RULES
    if spec is False:
        return Rules()
    if isinstance(spec, str):
        lowered = spec.strip().lower()
        if lowered in OFF_VALUES:
            return Rules()
        if lowered in DEFAULT_VALUES:
            return DEFAULT_RULES
        entries: Iterable[Entry] = re.split(r"[;\n]", spec)
    elif isinstance(spec, Rule):
        entries = (spec,)
    else:
        try:
            entries = list(spec)
        except TypeError:
            raise RedactionConfigError(
                [f"{spec!r}: expected True, False, a string or a list of entries"]
            ) from None
    rules = {rule.name: rule for rule in DEFAULT_RULES}
    problems: list[str] = []
    for entry in entries:
        _apply_entry(rules, entry, problems)
    if problems:
        raise RedactionConfigError(problems)
    return Rules(rules.values())


HintTest = Callable[[str], bool]


def _hint_test(hints: tuple[str, ...]) -> HintTest | None:
    """Whether lower-cased text holds one of ``hints``; None: no hints, always run the rule.

    One hint is a substring test; several are one regex, which sre searches in
    a single pass when they share a prefix (``gh[pousr]_|github_pat_``): about
    the cost of one substring test instead of one per hint.
    """
    if not hints:
        return None
    if len(hints) == 1:
        hint = hints[0]
        return lambda text: hint in text
    search = re.compile("|".join(map(re.escape, hints))).search
    return lambda text: search(text) is not None


class Redactor:
    """Applies rules to text.

    Clean text (nearly all of it) costs one lower-casing and one hint test per
    rule (about a pass over the text each); a rule's regex runs only on text
    holding one of its hints, or on all text for a rule without hints.
    """

    __slots__ = ("_checks", "_clean_tests", "_unhinted", "rules")

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        self._checks = tuple(
            (re.compile(rule.pattern, re.ASCII), rule.replacement, _hint_test(rule.hints))
            for rule in self.rules
        )
        self._unhinted = any(not rule.hints for rule in self.rules)
        # the first, rule-blind test skips a rule whose every hint holds another
        # rule's single hint ("sk-ant-" holds "sk-"): that test finds them already
        singles = {rule.hints[0] for rule in self.rules if len(rule.hints) == 1}
        self._clean_tests = tuple(
            test
            for rule, (_, _, test) in zip(self.rules, self._checks, strict=True)
            if test is not None
            and not all(any(s != h and s in h for s in singles) for h in rule.hints)
        )

    def __bool__(self) -> bool:
        return bool(self.rules)

    def _candidates(self, text: str) -> list[tuple[re.Pattern[str], str]]:
        if not self.may_match(text):
            return []
        lowered = text.lower()
        return [
            (pattern, replacement)
            for pattern, replacement, test in self._checks
            if test is None or test(lowered)
        ]

    def may_match(self, text: str) -> bool:
        """False only when no rule can match ``text`` (no hint in it): the cheap test."""
        if self._unhinted:
            return True
        if not self.rules:
            return False
        lowered = text.lower()
        return any(test(lowered) for test in self._clean_tests)

    def needed(self, text: str) -> bool:
        """Whether some rule matches somewhere in ``text``."""
        return any(pattern.search(text) for pattern, _ in self._candidates(text))

    def redact(self, text: str) -> str:
        """``text`` with every rule applied in order; the same object when nothing matched."""
        for pattern, replacement in self._candidates(text):
            text = pattern.sub(replacement, text)
        return text
