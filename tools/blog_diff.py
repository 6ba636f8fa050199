"""blog_diff: docs/blog-vs-repo.md (the blog's listing beside this repo, line by line),
docs/differences-at-a-glance.md (each difference once), and a --check that they are still true.

The listing (docs/blog_listing.txt) is aligned with the code by its text: difflib over the
lines of each file with the whitespace outside strings removed. The reasons are the code's own
`# blog: <why> [<source>; ...]` comments. One comment explains its block: the lines below it
down to the next blank line, the next `# blog:` comment or the next line the listing has
unchanged, so that a run of changed and added lines needs one comment, however many listing
lines in it are changed. An added or changed line in no block takes the reason of an identical
line that has one. The post's prose claims are docs/blog_claims.csv. Nothing is typed twice,
so a refactor only needs a regeneration.

    python -m tools.blog_diff                 regenerate the documents
    python -m tools.blog_diff --check         exit 1 if a document is stale, a listing line is
                                              unmatched, or a change has no reason or source
    python -m tools.blog_diff --blog POST     also check the listing against the post's text

Standard library and runkit's light modules (argtypes, errors) only.
"""
import argparse
import ast
import csv
import difflib
import itertools
import os
import re
import sys

from runkit.argtypes import Parser
from runkit.errors import exit_code, prepare

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where each listing block lives; a line not found there is looked for in the others.
HOME = {'Training on multi GPU': 'make_parallel.py'}
CODE_FILES = ('allconvnet.py', 'make_parallel.py', 'runkit/recipes.py')
# The files whose every statement is the listing's or explained (runkit/recipes.py only lends
# the blog recipe's augmentation lines).
EXPLAINED_FILES = ('allconvnet.py', 'make_parallel.py')
DOC, GLANCE_DOC = 'docs/blog-vs-repo.md', 'docs/differences-at-a-glance.md'
LISTING, CLAIMS = 'docs/blog_listing.txt', 'docs/blog_claims.csv'
VERDICTS = ('honoured', 'changed', 'not honoured', 'to check', 'advice')
TAG = re.compile(r'^\s*# blog: ?(.*)$')
UPSTREAM = 'https://github.com/getcrest/All-Conv-Keras'
EXTRAS = 'https://github.com/kuza55/keras-extras'
# Every source a reason may name, as (pattern, Markdown); any other fails --check.
SOURCES = (
    (r'prose', "the blog's prose"),
    (r'upstream ([0-9a-f]{7,40})', '[upstream {0}](%s/commit/{0})' % UPSTREAM),
    (r'upstream PR #(\d+)', '[upstream PR #{0}](%s/pull/{0})' % UPSTREAM),
    (r'upstream issue #(\d+)', '[upstream issue #{0}](%s/issues/{0})' % UPSTREAM),
    (r'paper', '[the paper (arXiv 1412.6806)](https://arxiv.org/abs/1412.6806)'),
    (r'Keras 1\.2\.2 API', '[Keras 1.2.2 API](https://github.com/keras-team/keras/tree/1.2.2)'),
    (r'TF 1\.15 API',
     '[TensorFlow 1.15 API](https://www.tensorflow.org/versions/r1.15/api_docs/python/tf)'),
    (r'keras-extras ([0-9a-f]{7,40})', '[keras-extras {0}](%s/commit/{0})' % EXTRAS),
    (r'keras-extras issue #(\d+)', '[keras-extras issue #{0}](%s/issues/{0})' % EXTRAS),
    (r'Keras (2\.[0-9.]+) multi_gpu_model',
     '[Keras {0} `multi_gpu_model`](https://github.com/keras-team/keras/tree/{0})'),
    (r'repo', "this repo's own choice"),
)


STRING = re.compile(r"""('(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")""")


def squeeze(text):
    """The comparison key: the text without whitespace outside string literals. The post lost
    its indentation in publication, and spaces around `=` carry no meaning."""
    parts = STRING.split(text)
    return ''.join(p if i % 2 else re.sub(r'\s+', '', p) for i, p in enumerate(parts))


def looks_like_prose(text):
    """A line of the post that is English, not Python: the rule blog_listing.txt states.

    Prose does not parse as Python and is mostly plain words; a lone word ("Convolution",
    from a numbered list) parses as a name but is a heading all the same.
    """
    body = re.sub(r'^(\u2022|\d+\.)\s*', '', text.strip()).strip()
    if not body:
        return True
    try:
        tree = ast.parse(body)
    except SyntaxError:
        words = body.split()
        plain = [w for w in words if re.match(r'^\(?[A-Za-z][A-Za-z\'\u2019-]*[,.;:)?!]?$', w)]
        return len(plain) >= 0.6 * len(words)
    return (len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr)
            and isinstance(tree.body[0].value, ast.Name))


def code_md(text):
    """An inline code span that survives a GitHub table cell."""
    text = text.replace('|', '\\|')
    ticks = max([len(t) for t in re.findall(r'`+', text)] + [0]) + 1
    fence = '`' * ticks
    pad = ' ' if text.startswith('`') or text.endswith('`') else ''
    return fence + pad + text + pad + fence


def prose(text):
    """Table-cell text: Markdown code spans kept, pipes and HTML starts escaped elsewhere."""
    parts = re.split(r'(`[^`]*`)', text)
    out = []
    for part in parts:
        if part.startswith('`') and part.endswith('`') and len(part) > 1:
            out.append(part.replace('|', '\\|'))
        else:
            out.append(part.replace('\\', '\\\\').replace('|', '\\|').replace('<', '&lt;')
                       .replace('*', '\\*'))
    return ''.join(out)


class Code:
    """One code file: its lines, the comparison key of each, and its `# blog:` reasons."""

    def __init__(self, rel):
        self.rel = rel
        with open(os.path.join(ROOT, rel), encoding='utf-8') as f:
            self.lines = f.read().split('\n')
        self.keys = [squeeze(l) for l in self.lines]
        self.tags = {}  # index of a tag's last line -> (reason, sources)
        self.code = []  # indexes of code and comment lines: not tags, docstrings, blanks
        self.used = set()  # indexes of the lines that carry a listing line (align fills it)
        self.same = set()  # of those, the lines that carry it unchanged
        docs = set()  # docstring lines: prose, not code (Python 3.7 gives a string's last line)
        for node in ast.walk(ast.parse('\n'.join(self.lines))):
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Str):
                end = node.value.lineno
                docs.update(range(end - node.value.s.count('\n') - 1, end))
        k = 0
        while k < len(self.lines):
            m = TAG.match(self.lines[k])
            if m:
                text, k = [m.group(1)], k + 1
                while (k < len(self.lines) and re.match(r'^\s*#', self.lines[k])
                       and not TAG.match(self.lines[k])):
                    text.append(self.lines[k].strip().lstrip('#').strip())
                    k += 1
                reason = ' '.join(text)
                src = re.search(r'\[([^\]]*)\]\s*$', reason)
                why = (reason[:src.start()] if src else reason).strip()
                why = why[:1].upper() + why[1:]
                self.tags[k - 1] = (why, src.group(1) if src else '')
                continue
            if self.lines[k].strip() and k not in docs:
                self.code.append(k)
            k += 1

    def joined(self, a, b):
        return ' '.join(l.strip() for l in self.lines[a:b + 1])

    def link(self, a, b, from_dir):
        href = os.path.relpath(os.path.join(ROOT, self.rel), os.path.join(ROOT, from_dir))
        if a == b:
            return '[%s:%d](%s#L%d)' % (self.rel, a + 1, href, a + 1)
        return '[%s:%d-%d](%s#L%d-L%d)' % (self.rel, a + 1, b + 1, href, a + 1, b + 1)


def read_listing():
    """[(number, text, block)] of docs/blog_listing.txt (its header gives the format)."""
    lines, block = [], None
    with open(os.path.join(ROOT, LISTING), encoding='utf-8') as f:
        for text in f.read().split('\n'):
            if text.startswith('@@'):
                m = re.match(r'@@ block: (.+)$', text)
                block = m.group(1).strip() if m else block
            elif text.strip():
                lines.append((len(lines) + 1, text, block))
    return lines


def best_window(listing_key, code, candidates, fuzzy=True):
    """(status, a, b, ratio) of the unused line or run of up to 8 lines in `candidates` closest
    to the listing line: 'same' when joined they have its key."""
    windows = []
    for a in candidates:
        key = ''
        for b in range(a, min(a + 8, len(code.lines))):
            if a in code.used or b in code.used or (b > a and b not in code.code):
                break
            key += code.keys[b]
            if key == listing_key:
                return 'same', a, b, 1.
            windows.append((a, b, key))
    best = (None, None, None, 0.)
    if not fuzzy:
        return best
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(listing_key)
    for a, b, key in windows:
        matcher.set_seq1(key)
        if matcher.real_quick_ratio() > best[3] and matcher.quick_ratio() > best[3]:
            ratio = matcher.ratio()
            if ratio > best[3]:
                best = ('changed', a, b, ratio)
    return best


def equal_pairs(keys, code):
    """{index in `keys`: code line} for the listing lines difflib finds unchanged, in order."""
    matcher = difflib.SequenceMatcher(None, keys, [code.keys[k] for k in code.code],
                                      autojunk=False)
    return {i1 + d: code.code[j1 + d] for tag, i1, i2, j1, j2 in matcher.get_opcodes()
            if tag == 'equal' for d in range(i2 - i1)}


def search(key, code, files, gap):
    """(status, a, b, ratio, Code) for a listing line difflib did not pair, or None: between
    its paired neighbours (`gap`) first, so that the order holds; elsewhere, or in another file
    (the blog recipe's lines are in runkit/recipes.py), only the same line or a close one."""
    near = best_window(key, code, gap) + (code,)
    others = [code] + [f for f in files.values() if f is not code]
    exact = [best_window(key, f, f.code, fuzzy=False) + (f,) for f in others]
    found = next((f for f in [near] + exact if f[0] == 'same'), None)
    if found is not None or near[3] >= 0.4:
        return found or near
    best_far = max([best_window(key, f, f.code) + (f,) for f in others], key=lambda f: f[3])
    return best_far if best_far[3] >= 0.6 else None


def statement_end(code, a, b):
    """The last line of the statement that starts on `a` and has reached `b`: a changed
    statement is all of its lines."""
    def unclosed(keys):
        return sum(keys.count(c) for c in '([{') > sum(keys.count(c) for c in ')]}')
    while b + 1 < len(code.lines) and unclosed(''.join(code.keys[a:b + 1])):
        b += 1
    return b


def place(i, keys, pairs, code, files, rows):
    """(status, a, b, ratio, Code) of the `i`th line of a listing block whose home is `code`,
    or None; `rows` are the lines placed so far."""
    k = pairs.get(i)
    if k is not None and k not in code.used:
        return 'same', k, k, 1., code
    before = next((r[6] for r in reversed(rows) if r[4] is code), -1)
    after = min([pairs[j] for j in pairs if j > i] or [len(code.lines)])
    found = search(keys[i], code, files, [k for k in code.code if before < k < after])
    if found and found[0] == 'changed':
        found = found[:2] + (statement_end(found[4], found[1], found[2]),) + found[3:]
    return found


def align(listing, files):
    """[(number, text, block, status, Code, a, b)], one per listing line; fills each Code's
    `used` and `same`."""
    rows = []
    for block, lines in itertools.groupby(listing, key=lambda line: line[2]):
        lines = list(lines)
        code = files[HOME.get(block, 'allconvnet.py')]
        keys = [squeeze(t) for _, t, _ in lines]
        pairs = equal_pairs(keys, code)
        for i, (number, text, _) in enumerate(lines):
            found = place(i, keys, pairs, code, files, rows)
            if found is None:
                rows.append((number, text, block, 'unmatched', None, None, None))
                continue
            status, a, b, _, where = found
            where.used.update(range(a, b + 1))
            if status == 'same':
                where.same.update(range(a, b + 1))
            rows.append((number, text, block, status, where, a, b))
    return rows


def reason(code, a):
    """(why, sources) for the code from line `a` on: the `# blog:` comment whose block holds
    it (see the module's docstring), else the reason of an identical line."""
    def above(k):
        for j in range(k - 1, -1, -1):
            if j in code.tags:
                return code.tags[j]
            if not code.lines[j].strip() or j in code.same:
                return None
    found = above(a)
    for k in code.code:
        if found:
            break
        if k != a and code.keys[k] == code.keys[a] and k not in code.used:
            found = above(k)
    return found


def sources_md(text, problems, where):
    out = []
    for part in [p.strip() for p in text.split(';') if p.strip()]:
        for pattern, markdown in SOURCES:
            m = re.match(pattern + r'$', part)
            if m:
                out.append(markdown.format(*m.groups()))
                break
        else:
            problems.append('%s: unknown source %r' % (where, part))
    if not out:
        problems.append('%s: the reason names no [source]' % where)
    return ', '.join(out)


def added_runs(files):
    """Runs of code lines of the explained files that carry no listing line."""
    runs = []
    for rel in EXPLAINED_FILES:
        code, run = files[rel], []
        for k in code.code:
            if k in code.used or re.match(r'^(#|import |from |try:|else:|finally:)',
                                          code.lines[k].strip()):
                continue
            if run and (k != run[-1] + 1 or k - 1 in code.tags):
                runs.append((code, run))
                run = []
            run.append(k)
        if run:
            runs.append((code, run))
    return runs


def read_claims(problems):
    with open(os.path.join(ROOT, CLAIMS), encoding='utf-8', newline='') as f:
        claims = list(csv.DictReader(f))
    for n, claim in enumerate(claims, 1):
        if claim['verdict'] not in VERDICTS:
            problems.append('%s row %d: verdict %r is not one of %s'
                            % (CLAIMS, n, claim['verdict'], ', '.join(VERDICTS)))
        for path, name in re.findall(r'(tests/[\w.-]+\.py)::(\w+)', claim['check']):
            text = open(os.path.join(ROOT, path)).read() if os.path.exists(
                os.path.join(ROOT, path)) else ''
            if not re.search(r'^def %s\(' % re.escape(name), text, re.M):
                problems.append('%s row %d: the check names %s::%s, which does not exist'
                                % (CLAIMS, n, path, name))
    return claims


def locate(files, rel, find):
    """(Code, a, a) of the first line of `rel` that contains `find`, or None."""
    code = files.get(rel) or (Code(rel) if rel and os.path.exists(os.path.join(ROOT, rel))
                              else None)
    for k, line in enumerate(code.lines if code else []):
        if find and find in line:
            return code, k, k
    return None


def header_section(listing, rows, runs):
    counts = {s: sum(1 for r in rows if r[3] == s) for s in ('same', 'changed', 'unmatched')}
    return [
        '# The blog post beside this repository, line by line', '',
        '<!-- Generated by `make docs` from docs/blog_listing.txt, the code\'s `# blog:` '
        'comments and docs/blog_claims.csv. Do not edit by hand. -->', '',
        'The Keras 1 tutorial "All ConvNet: Striving for Simplicity" prints %d lines of code, '
        '[transcribed verbatim here](blog_listing.txt). This page pairs each with the line of '
        'this repository that carries it and, where the two differ, gives the reason written in '
        'a `# blog:` comment beside the code, with its source.' % len(listing), '',
        '**%d of %d listing lines accounted for:** %d same, %d changed. The repo adds lines the '
        'listing lacks in %d places ([section 2](#2-lines-the-repo-adds)).'
        % (len(listing) - counts['unmatched'], len(listing), counts['same'], counts['changed'],
           len(runs)), '',
        '- **same**: the repo line is the listing line; whitespace outside strings is ignored '
        '(the post lost its indentation), and a statement wrapped over several lines counts.',
        '- **changed**: the repo does that line\'s job differently; the last column says why.',
        '- [Differences at a glance](differences-at-a-glance.md): one row per reason.']


def listing_section(rows, glance, problems):
    """Section 1: each listing line beside the repo's, with the reason where they differ."""
    out, block = ['', '## 1. The listing, line by line'], None
    for number, text, blk, status, code, a, b in rows:
        if blk != block:
            block = blk
            out += ['', '### %s' % blk, '', '| # | blog listing | repo | status | why / source |',
                    '|---:|---|---|---|---|']
        if status == 'unmatched':
            problems.append('listing line %d is not accounted for: %r' % (number, text))
            out.append('| %d | %s | | **NOT ACCOUNTED FOR** | |' % (number, code_md(text)))
            continue
        cell = ''
        if status == 'changed':
            found = reason(code, a)
            if not found:
                problems.append('listing line %d (%r) is changed at %s:%d but no `# blog:` '
                                'comment explains it' % (number, text, code.rel, a + 1))
            else:
                src = sources_md(found[1], problems, '%s:%d' % (code.rel, a + 1))
                cell = '%s *(%s)*' % (prose(found[0]), src)
                glance.setdefault(found[0], [src, []])[1].append(code.link(a, b, '.'))
        out.append('| %d | %s | %s<br>%s | %s | %s |' % (
            number, code_md(text), code.link(a, b, 'docs'), code_md(code.joined(a, b)),
            'same' if status == 'same' else '**changed**', cell))
    return out


def added_section(runs, glance, problems):
    """Section 2: the code the listing lacks, with its reason."""
    out = ['', '## 2. Lines the repo adds', '', 'Code the listing lacks, with the reason beside '
           'it in the code.', '', '| repo | first line | why / source |', '|---|---|---|']
    for code, run in runs:
        found = reason(code, run[0])
        first = code_md(code.lines[run[0]].strip())
        if not found:
            problems.append('%s:%d-%d (%r) is added but no `# blog:` comment explains it'
                            % (code.rel, run[0] + 1, run[-1] + 1, code.lines[run[0]].strip()))
            out.append('| %s | %s | **NOT EXPLAINED** |' % (code.link(run[0], run[-1], 'docs'),
                                                          first))
            continue
        src = sources_md(found[1], problems, '%s:%d' % (code.rel, run[0] + 1))
        glance.setdefault(found[0], [src, []])[1].append(code.link(run[0], run[-1], '.'))
        out.append('| %s | %s | %s *(%s)* |' % (code.link(run[0], run[-1], 'docs'), first,
                                              prose(found[0]), src))
    return out


def claims_section(claims, files, problems):
    """Section 3: the post's claims, where the repo honours each and how to check it."""
    out = ['', '## 3. What the post says about its code and results', '',
           'Each factual claim of the post\'s prose (quoted), where the repo honours it, and how '
           'to check it yourself. `LOGDIR` is the run\'s `--logdir`.', '',
           '| the post says | verdict | where | how to check | note |', '|---|---|---|---|---|']
    for n, claim in enumerate(claims, 1):
        where = '—'
        if claim['file']:
            span = locate(files, claim['file'], claim['find'])
            if span is None:
                problems.append('%s row %d: %r is no longer in %s'
                                % (CLAIMS, n, claim['find'], claim['file']))
            else:
                where = span[0].link(span[1], span[2], 'docs')
        out.append('| “%s” | %s | %s | %s | %s |' % (
            prose(claim['quote']), claim['verdict'], where, prose(claim['check']),
            prose(claim['note'])))
    return out


def sources_section():
    return ['', '## Sources', '',
            '- The blog post: "All ConvNet: Striving for Simplicity: Implementation (Code Open '
            'sourced and explained in depth)", Mate Labs, 2017.',
            '- The upstream repository: [getcrest/All-Conv-Keras](%s), `allconv.py` history.'
            % UPSTREAM,
            '- The paper: Springenberg et al., "Striving for Simplicity: The All Convolutional '
            'Net", [arXiv 1412.6806](https://arxiv.org/abs/1412.6806).',
            '- make_parallel\'s origin: [kuza55/keras-extras](%s) `utils/multi_gpu.py`.' % EXTRAS,
            '']


def glance_table(glance):
    table = ['| difference from the blog\'s listing | decided by | where |', '|---|---|---|']
    for why, (src, links) in glance.items():
        shown = ', '.join(links[:3]) + (', …' if len(links) > 3 else '')
        table.append('| %s | %s | %s |' % (prose(why), src, shown))
    return '\n'.join(table)


def render(listing, rows, runs, claims, files, problems):
    """(blog-vs-repo.md, the glance table) as text, a function per section."""
    glance = {}  # why -> [sources markdown, [links]], filled by the sections in order
    out = (header_section(listing, rows, runs) + listing_section(rows, glance, problems) +
           added_section(runs, glance, problems) + claims_section(claims, files, problems) +
           sources_section())
    return '\n'.join(out), glance_table(glance)


def check_against_post(path, listing, claims, problems):
    """The listing is the post's code lines, verbatim and in order; each claim quotes it."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    post = text.split('\n')
    for n, claim in enumerate(claims, 1):
        if ' '.join(claim['quote'].split()) not in ' '.join(text.split()):
            problems.append('%s row %d: the quote %r is not in the post' % (CLAIMS, n,
                                                                          claim['quote']))
    k = 0
    for number, text, _ in listing:
        while k < len(post) and post[k] != text:
            if not looks_like_prose(post[k]):
                problems.append('post line %d %r looks like code but is not in the listing'
                                % (k + 1, post[k]))
            k += 1
        if k >= len(post):
            problems.append('listing line %d %r is not in the post' % (number, text))
            return
        k += 1


def documents():
    """{path: text} of every generated document, and the problems found making them."""
    problems = []
    files = {rel: Code(rel) for rel in CODE_FILES}
    listing = read_listing()
    rows = align(listing, files)
    doc, table = render(listing, rows, added_runs(files), read_claims(problems), files,
                        problems)
    glance = ('# Differences at a glance\n\n<!-- Generated by `make docs`. -->'
              '\n\nEvery reason this repo\'s code differs from the blog\'s listing, once; '
              '[blog-vs-repo.md](blog-vs-repo.md) has every line.\n\n%s\n' % table)
    glance = glance.replace('](allconvnet.py', '](../allconvnet.py').replace(
        '](make_parallel.py', '](../make_parallel.py').replace('](runkit/', '](../runkit/')
    return {DOC: doc + '\n', GLANCE_DOC: glance}, problems


def main(argv=None):
    p = Parser(prog='python -m tools.blog_diff', description=__doc__.split(
        '\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--check', action='store_true', help='write nothing; exit 1 if stale or wrong')
    p.add_argument('--blog', metavar='POST', help="the post's text, to check the listing against")
    args = p.parse_args(argv)
    docs, problems = documents()
    if args.blog:
        check_against_post(args.blog, read_listing(), read_claims([]), problems)
    stale = []
    for rel, text in docs.items():
        path = os.path.join(ROOT, rel)
        old = open(path, encoding='utf-8').read() if os.path.exists(path) else None
        if old != text:
            if args.check:
                stale.append(rel)
            else:
                with open(path, 'w', encoding='utf-8') as f:
                    f.write(text)
                print('wrote %s' % rel)
    for rel in stale:
        problems.append('%s is stale: regenerate with `make docs`' % rel)
    for problem in problems:
        print('blog_diff: %s' % problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == '__main__':
    prepare('python -m tools.blog_diff', tensorflow=False)
    sys.exit(exit_code(main, 'python -m tools.blog_diff'))
