"""Reading a bash command line as bash does: which simple commands it runs, with what words.

The approval policy matches patterns against commands, so it must see the commands bash will
run, not a text match of the line: comments (`# '` hides nothing from bash), ANSI-C quotes
(`$'\\''` is one word), backslash escapes (`\\rm` is `rm`), here-documents, redirections,
substitutions (`$( )`, backticks, `<( )`), subshells and every list operator. What cannot be
read for sure (an unclosed quote, a command name that is computed) is reported, so that the
policy asks instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Words that open or close a compound command; the command proper follows them.
RESERVED = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}",
                      "time"})
_OPERATORS = (";;&", ";;", ";&", "&&", "||", "|&", ";", "&", "|", "(", ")")
_REDIRECT = re.compile(r"(\d*|&)(>>|>&|>\||<<<|<<-|<<|<>|<&|>|<)")
_WORD_END = frozenset(" \t\n;&|()<>")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-]")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")


@dataclass
class Command:
    """One simple command: its words with quotes removed, and its redirections."""

    words: list[str] = field(default_factory=list)
    computed: list[bool] = field(default_factory=list)  # per word: holds an expansion or a glob
    redirects: list[tuple[str, str]] = field(default_factory=list)  # (operator, target)

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def without_assignments(self) -> tuple[list[str], list[bool]]:
        """Words and flags after the leading `NAME=value` words ([] for `p=$!`, which runs nothing)."""
        skip = 0
        while skip < len(self.words) and _ASSIGNMENT.match(self.words[skip]):
            skip += 1
        return self.words[skip:], self.computed[skip:]


@dataclass
class Parsed:
    commands: list[Command]
    problems: list[str]  # why the line cannot be read for sure; [] when it can


def parse(line: str) -> Parsed:
    """The simple commands of a bash command line; commands inside substitutions come first."""
    lexer = _Lexer(line)
    lexer.command_list("")
    return Parsed(lexer.commands, lexer.problems)


class _Lexer:
    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.commands: list[Command] = []
        self.problems: list[str] = []
        self._heredocs: list[tuple[str, bool, bool]] = []  # delimiter, quoted, strip tabs

    def _peek(self, k: int = 0) -> str:
        return self.s[self.i + k] if self.i + k < len(self.s) else ""

    def command_list(self, closer: str) -> None:
        """Commands up to `closer` (")" or "`"; "" for the end of the text), which is consumed."""
        current = Command()

        def end() -> None:
            nonlocal current
            words = current.words
            while words and words[0] in RESERVED and not current.computed[0]:
                words.pop(0)
                current.computed.pop(0)
            if words or current.redirects:
                self.commands.append(current)
            current = Command()

        while True:
            while self._peek() in (" ", "\t") or (self._peek() == "\\" and self._peek(1) == "\n"):
                self.i += 2 if self._peek() == "\\" else 1
            char = self._peek()
            if not char:
                if closer:
                    self.problems.append(f"unclosed {'$(' if closer == ')' else '`'}")
                end()
                return
            if char == closer:
                self.i += 1
                end()
                return
            if char == "#":
                while self._peek() not in ("", "\n"):
                    self.i += 1
                continue
            if char == "\n":
                self.i += 1
                end()
                self._read_heredocs()
                continue
            process_substitution = self.s.startswith(("<(", ">("), self.i)
            redirect = None if process_substitution else _REDIRECT.match(self.s, self.i)
            if redirect:
                self.i = redirect.end()
                op = redirect.group(1).lstrip("0123456789") + redirect.group(2)
                self._skip_blanks()
                start = self.i
                target, computed = self._word()
                if not target and start == self.i:
                    self.problems.append(f"redirection {op!r} without a target")
                if op in ("<<", "<<-"):
                    raw = self.s[start:self.i]
                    self._heredocs.append((target, any(q in raw for q in "'\"\\"), op == "<<-"))
                current.redirects.append((op, target))
                continue
            operator = next((op for op in _OPERATORS if self.s.startswith(op, self.i)), "")
            if operator:
                self.i += len(operator)
                end()
                continue
            word, computed = self._word()
            current.words.append(word)
            current.computed.append(computed)

    def _skip_blanks(self) -> None:
        while self._peek() in (" ", "\t"):
            self.i += 1

    def _read_heredocs(self) -> None:
        """Skip the bodies of the here-documents whose line just ended; they are data, not commands."""
        for delimiter, quoted, strip_tabs in self._heredocs:
            while self.i < len(self.s):
                end = self.s.find("\n", self.i)
                end = len(self.s) if end < 0 else end
                line = self.s[self.i:end]
                self.i = min(end + 1, len(self.s))
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    break
                if not quoted and ("$(" in line or "`" in line):
                    self.problems.append("a here-document runs commands ($( ) or backticks)")
        self._heredocs.clear()

    def _word(self) -> tuple[str, bool]:
        """One word with its quoting removed; substitutions keep their source text. Whether it
        holds an expansion or an unquoted glob (its value is only known when it runs)."""
        out: list[str] = []
        computed = False
        while self.i < len(self.s):
            char, after = self.s[self.i], self._peek(1)
            if char in "<>" and after == "(":  # process substitution
                start = self.i
                self.i += 2
                self.command_list(")")
                out.append(self.s[start:self.i])
                computed = True
            elif char in _WORD_END:
                break
            elif char == "\\":
                if after != "\n":
                    out.append(after)
                self.i += 2
            elif char == "'":
                end = self.s.find("'", self.i + 1)
                if end < 0:
                    self.problems.append("unclosed single quote")
                    end = len(self.s)
                out.append(self.s[self.i + 1:end])
                self.i = end + 1
            elif char == "$" and after == "'":
                out.append(self._ansi_c())
            elif char == '"' or (char == "$" and after == '"'):
                self.i += 1 if char == '"' else 2
                text, expanded = self._double_quoted()
                out.append(text)
                computed = computed or expanded
            elif char == "$" or char == "`":
                out.append(self._expansion())
                computed = True
            else:
                computed = computed or char in "*?" or (char == "[" and self._closes_bracket())
                out.append(char)
                self.i += 1
        return "".join(out), computed

    def _closes_bracket(self) -> bool:
        """Whether the `[` at the cursor opens a glob class (a `]` follows in the word): `[` alone
        is the test command."""
        end = self.i + 1
        while end < len(self.s) and self.s[end] not in _WORD_END:
            if self.s[end] == "]":
                return True
            end += 1
        return False

    def _ansi_c(self) -> str:
        """`$'…'`, where a backslash escapes the next character (so `\\'` does not close it)."""
        self.i += 2
        out: list[str] = []
        while self.i < len(self.s):
            char = self.s[self.i]
            if char == "'":
                self.i += 1
                return "".join(out)
            if char == "\\" and self.i + 1 < len(self.s):
                out.append(self.s[self.i:self.i + 2])
                self.i += 2
                continue
            out.append(char)
            self.i += 1
        self.problems.append("unclosed $'")
        return "".join(out)

    def _double_quoted(self) -> tuple[str, bool]:
        out: list[str] = []
        expanded = False
        while self.i < len(self.s):
            char, after = self.s[self.i], self._peek(1)
            if char == '"':
                self.i += 1
                return "".join(out), expanded
            if char == "\\" and after in ('"', "\\", "$", "`", "\n"):
                if after != "\n":
                    out.append(after)
                self.i += 2
            elif char in "$`" and (char == "`" or after in "({" or _VARIABLE.match(after)):
                out.append(self._expansion())
                expanded = True
            else:
                out.append(char)
                self.i += 1
        self.problems.append("unclosed double quote")
        return "".join(out), expanded

    def _expansion(self) -> str:
        """`$name`, `${…}`, `$(( ))`, `$( )` or a backtick substitution; returns its source text.
        The commands of a substitution are added to the line's commands."""
        start = self.i
        char, after = self.s[self.i], self._peek(1)
        if char == "`":
            end = self.i + 1
            while end < len(self.s) and self.s[end] != "`":
                end += 2 if self.s[end] == "\\" else 1
            if end >= len(self.s):
                self.problems.append("unclosed backtick")
            inner = re.sub(r"\\([`\\$])", r"\1", self.s[self.i + 1:end])
            nested = parse(inner)
            self.commands.extend(nested.commands)
            self.problems.extend(nested.problems)
            self.i = min(end + 1, len(self.s))
        elif self.s.startswith("$((", self.i):
            self._skip_balanced("(", ")", arithmetic=True)
        elif after == "(":
            self.i += 2
            self.command_list(")")
        elif after == "{":
            self._skip_balanced("{", "}")
        else:
            variable = _VARIABLE.match(self.s, self.i + 1)
            self.i = variable.end() if variable else self.i + 1
        return self.s[start:self.i]

    def _skip_balanced(self, opener: str, closer: str, *, arithmetic: bool = False) -> None:
        """Skip `${…}` or `$((…))`; a command substitution inside them is not read, so it is a problem."""
        depth = 0
        start = self.i
        self.i += 1
        while self.i < len(self.s):
            char = self.s[self.i]
            depth += char == opener
            depth -= char == closer
            self.i += 1
            if depth == 0:
                break
        else:
            self.problems.append(f"unclosed {'$((' if arithmetic else '${'}")
        body = self.s[start + 2:self.i]
        if "$(" in body or "`" in body:
            self.problems.append(f"a command substitution inside {'$((' if arithmetic else '${'} … ")
