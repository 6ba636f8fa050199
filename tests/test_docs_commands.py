"""Every shell command README.md and docs/*.md show runs as pasted: the commands of each ```sh
block and each inline `make ...` or `.venv/bin/python ...`. Each must parse as the shell reads
it (balanced quotes, no <placeholder>, a|b alternative or [optional] synopsis the shell would
take for a redirection, a pipe or a glob), and name a make target, a file or module and flags
that exist: a flag is looked up in the --help of the program (and subcommand) it goes to."""
import functools
import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

from helpers import ROOT

DOCS = ['README.md'] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(
    os.path.join(ROOT, 'docs', '*.md')))
INLINE = re.compile(r'`((?:[A-Z0-9_]+=\S+ )*(?:make|\.venv/bin/python|python) [^`]*)`')
# Notation of a synopsis or a placeholder, outside quotes: the shell reads it otherwise.
MISREAD = [(re.compile(r'<[^<>\s]*[a-z][^<>]*>'), 'a <placeholder> (a redirection)'),
           (re.compile(r'\w\|\w'), 'a|b alternatives (a pipe)'),
           (re.compile(r'\[-'), 'an [--optional] synopsis'),
           (re.compile(r'\S\.\.\.|\.\.\.\]'), 'a ... synopsis')]
# Programs whose flags are another's: the self-check passes what it does not know on.
PASSES_ON = {('-m', 'tools.selfcheck'): ('allconvnet.py',)}


def commands():
    """[(doc, line number, command)]: sh blocks' logical lines, then inline commands."""
    found = []
    for doc in DOCS:
        with open(os.path.join(ROOT, doc), encoding='utf-8') as f:
            lines = f.read().splitlines()
        block, start = None, 0
        for number, line in enumerate(lines, 1):
            if line.strip().startswith('```'):
                block = [] if block is None and line.strip() == '```sh' else None
                continue
            if block is not None:
                if block and block[-1][1].endswith('\\'):
                    block[-1] = (block[-1][0], block[-1][1][:-1] + ' ' + line.strip())
                else:
                    block.append((number, line.strip()))
                if not line.strip().endswith('\\'):
                    found += [(doc, n, text) for n, text in block[-1:] if text]
                    block = block[:0]
            else:
                found += [(doc, number, m.group(1)) for m in INLINE.finditer(line)]
    return found


def unquoted(text):
    """`text` with quoted parts and comments blanked, as the shell would group them."""
    out, quote = [], None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
            out.append(' ')
        elif ch in '\'"':
            quote = ch
            out.append(' ')
        elif ch == '#' and (not out or out[-1] == ' '):
            break
        else:
            out.append(ch)
    return ''.join(out)


@functools.lru_cache(maxsize=None)
def help_text(program):
    proc = subprocess.run([sys.executable] + list(program) + ['--help'], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=120)
    assert proc.returncode == 0, (program, proc.stdout[-2000:])
    return proc.stdout


@functools.lru_cache(maxsize=None)
def make_targets():
    with open(os.path.join(ROOT, 'Makefile')) as f:
        return set(re.findall(r'^([a-z][\w-]*):', f.read(), re.M))


def check_python(words):
    """Problems of `python PROG ARGS`: PROG exists, its flags are in its --help."""
    if words[0] == '-m':
        if len(words) < 2:
            return ['python -m without a module']
        module = words[1]
        if not os.path.exists(os.path.join(ROOT, *module.split('.')) + '.py'):
            return ['no module %s' % module]
        program, rest = ('-m', module), words[2:]
    else:
        if not os.path.exists(os.path.join(ROOT, words[0])):
            return ['no file %s' % words[0]]
        if not words[0].endswith('.py') or words[0].startswith('tests/'):
            return []
        program, rest = (words[0],), words[1:]
    if rest and not rest[0].startswith('-') and re.search(r'\{([\w,]+)\}', help_text(program)):
        if rest[0] not in re.search(r'\{([\w,]+)\}', help_text(program)).group(1).split(','):
            return ['%s has no subcommand %s' % (' '.join(program), rest[0])]
        program, rest = program + (rest[0],), rest[1:]
    texts = [help_text(program)] + [help_text((p,)) for p in PASSES_ON.get(program, ())]
    return ['%s has no flag %s' % (' '.join(program), flag) for flag in
            sorted({w.split('=')[0] for w in rest if w.startswith('--')})
            if not any(re.search(r'(^|[\s,\[])%s\b' % re.escape(flag), t) for t in texts)]


def problems(command):
    bare = unquoted(command)
    found = [why for pattern, why in MISREAD if pattern.search(bare)]
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split, lexer.commenters = True, '#'
        tokens = list(lexer)
    except ValueError as e:
        return found + ['the shell cannot parse it (%s)' % e]
    # Each simple command of a list, a pipeline or a loop body, its redirections left out.
    parts, ws = [], []
    for token in tokens + [';']:
        if token in (';', '&&', '||', '|', '&', ';;'):
            parts.append(ws)
            ws = []
        elif re.match(r'^[<>&]+$', token) or (ws and re.match(r'^[<>&]+$', ws[-1])):
            ws.append(token)
        else:
            ws.append(token)
    for ws in parts:
        ws = [w for i, w in enumerate(ws) if not re.match(r'^[<>&]+$', w) and not (
            i and re.match(r'^[<>&]+$', ws[i - 1])) and not (
            w.isdigit() and i + 1 < len(ws) and re.match(r'^[<>&]+$', ws[i + 1]))]
        while ws and (re.match(r'^[A-Z_][A-Z0-9_]*=', ws[0]) or ws[0] in (
                'do', 'then', '/usr/bin/time') or ws[0].startswith('-f') and len(ws) > 1):
            ws = ws[2:] if ws[0] == '-f' else ws[1:]
        if not ws:
            continue
        if ws[0] == 'make':
            targets = [w for w in ws[1:] if '=' not in w]
            found += ['no make target %s' % t for t in targets if t not in make_targets()]
            args = [w.split('=', 1)[1] for w in ws[1:] if w.startswith('ARGS=')]
            program = {'train': ['allconvnet.py'], 'check': ['-m', 'tools.selfcheck'],
                       'bench': ['-m', 'tools.bench']}.get((targets or ['train'])[0])
            if args and program:
                found += check_python(program + shlex.split(args[0]))
        elif ws[0] in ('.venv/bin/python', 'python', '../.venv-test-stock/bin/python') and \
                len(ws) > 1:
            found += check_python(ws[1:])
        elif ws[0] == 'docker' and '-f' in ws:
            path = ws[ws.index('-f') + 1]
            found += [] if os.path.exists(os.path.join(ROOT, path)) else ['no file %s' % path]
    return found


CASES = commands()


def test_the_docs_show_commands():
    assert len(CASES) > 40 and any(c.startswith('make test') for _, _, c in CASES)


@pytest.mark.parametrize('doc,line,command', CASES, ids=['%s:%d' % c[:2] for c in CASES])
def test_a_command_runs_as_pasted(doc, line, command):
    assert problems(command) == [], command


@pytest.mark.parametrize('command,why', [
    ('TF_BUILD=stock|mkl|auto make train', 'a pipe'),
    ('make trian', 'no make target trian'),
    ('.venv/bin/python allconvnet.py --epoch 3', 'no flag --epoch'),
    ('.venv/bin/python -m tools.curves compare RUN REF [REF ...]', 'synopsis'),
    ('.venv/bin/python predict.py logs/<run>/x.png', 'placeholder'),
    ('.venv/bin/python -m tools.nope', 'no module tools.nope'),
    ('make check ARGS="--gpu 2"', 'no flag --gpu'),
    ('echo "unbalanced', 'cannot parse'),
])
def test_the_check_finds_what_the_shell_would_misread(command, why):
    assert any(why in p for p in problems(command)), problems(command)
