"""blog_diff: the blog's listing beside the repo (docs/blog-vs-repo.md, differences-at-a-glance.md).

The listing (docs/blog_listing.txt) is aligned with the code by its text: difflib over the
lines of each file with the whitespace outside strings removed. The reasons are the code's own
`# blog: <why> [<source>; ...]` comments. One comment explains its block: the lines below it
down to the next blank line, the next `# blog:` comment or the next line the listing has
unchanged, so that a run of changed and added lines needs one comment, however many listing
lines in it are changed. An added or changed line in no block takes the reason of an identical
line that has one. The post's prose claims are docs/blog_claims.csv.

    python -m tools.blog_diff                 regenerate the documents
    python -m tools.blog_diff --check         exit 1 if a document is stale, a listing line is
                                              unmatched, or a change has no reason or source
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
from runkit.errors import exit_code, prepare, say

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
# A `# blog:` comment: its first line's text, then the comment lines that continue it.
TAG = re.compile(r'^[^\S\n]*# blog: ?(.*)((?:\n[^\S\n]*#(?! blog:).*)*)', re.M)
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
ESCAPES = str.maketrans({'\\': '\\\\', '|': '\\|', '<': '&lt;', '*': '\\*'})


def read(rel):
    """The text of a file of the repo; '' when it is gone, which --check then reports."""
    path = os.path.join(ROOT, rel)
    if not os.path.exists(path):
        return ''
    with open(path, encoding='utf-8') as f:
        return f.read()


def squeeze(text):
    """The comparison key: the text without whitespace outside string literals. The post lost
    its indentation in publication, and spaces around `=` carry no meaning."""
    parts = re.split(r"""('(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")""", text)
    return ''.join(p if i % 2 else re.sub(r'\s+', '', p) for i, p in enumerate(parts))


def code_md(text):
    """An inline code span that survives a GitHub table cell."""
    text = text.replace('|', '\\|')
    fence = '`' * (max([len(t) for t in re.findall(r'`+', text)] + [0]) + 1)
    pad = ' ' if text.startswith('`') or text.endswith('`') else ''
    return fence + pad + text + pad + fence


def prose(text):
    """Table-cell text: Markdown code spans kept, pipes and HTML starts escaped elsewhere."""
    parts = re.split(r'(`[^`]*`)', text)
    return ''.join(p.replace('|', '\\|') if i % 2 else p.translate(ESCAPES)
                   for i, p in enumerate(parts))


def link(rel, a, b):
    """A link from docs/ to lines `a` to `b` of `rel`."""
    span = str(a + 1) if a == b else '%d-%d' % (a + 1, b + 1)
    return '[%s:%s](../%s#L%s)' % (rel, span, rel, span.replace('-', '-L'))


class Code:
    """One code file: its lines, the comparison key of each, and its `# blog:` reasons."""

    def __init__(self, rel):
        text = read(rel)
        self.rel, self.lines = rel, text.split('\n')
        self.keys = [squeeze(l) for l in self.lines]
        self.tags = {}  # index of a tag's last line -> (reason, sources)
        self.used = set()  # indexes of the lines that carry a listing line (align fills it)
        self.same = set()  # of those, the lines that carry it unchanged
        prose_lines = set()  # tags and docstrings (Python 3.7 gives a string's last line)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Str):
                end = node.value.lineno
                prose_lines.update(range(end - node.value.s.count('\n') - 1, end))
        for m in TAG.finditer(text):
            a, b = text.count('\n', 0, m.start()), text.count('\n', 0, m.end())
            prose_lines.update(range(a, b + 1))
            more = [l.strip().lstrip('#').strip() for l in m.group(2).split('\n')[1:]]
            reason = ' '.join([m.group(1)] + more)
            why, src = re.match(r'\s*(.*?)\s*(?:\[([^\]]*)\]\s*)?$', reason).groups()
            self.tags[b] = (why[:1].upper() + why[1:], src or '')
        self.code = [k for k, l in enumerate(self.lines) if l.strip() and k not in prose_lines]


def read_listing():
    """[(number, text, block)] of docs/blog_listing.txt (its header gives the format)."""
    lines, block = [], None
    for text in read(LISTING).split('\n'):
        if text.startswith('@@'):
            m = re.match(r'@@ block: (.+)$', text)
            block = m.group(1).strip() if m else block
        elif text.strip():
            lines.append((len(lines) + 1, text, block))
    return lines


def best_window(listing_key, code, candidates, floor=0.):
    """(status, a, b, ratio) of the unused line or run of up to 8 lines in `candidates` closest
    to the listing line, if closer than `floor`: 'same' when joined they have its key."""
    best = (None, None, None, floor)
    matcher = difflib.SequenceMatcher(None, '', listing_key, autojunk=False)
    for a in candidates:
        key = ''
        for b in range(a, min(a + 8, len(code.lines))):
            if b in code.used or (b > a and b not in code.code):
                break
            key += code.keys[b]
            if key == listing_key:
                return 'same', a, b, 1.
            matcher.set_seq1(key)
            # The quick ratios bound the ratio from above, and cost much less.
            if (matcher.real_quick_ratio() > best[3] and matcher.quick_ratio() > best[3]
                    and matcher.ratio() > best[3]):
                best = ('changed', a, b, matcher.ratio())
    return best


def place(i, keys, pairs, code, files, rows):
    """(status, a, b, ratio, Code) of the `i`th line of a listing block whose home is `code`,
    or None; `rows` are the lines placed so far. A line difflib did not pair (`pairs`) is looked
    for between its paired neighbours first, so that the order holds; elsewhere, or in another
    file (the blog recipe's lines are in runkit/recipes.py), only the same line or a close one."""
    k = pairs.get(i)
    if k is not None and k not in code.used:
        return 'same', k, k, 1., code
    before = next((r[6] for r in reversed(rows) if r[4] is code), -1)
    after = min([pairs[j] for j in pairs if j > i] or [len(code.lines)])
    found = best_window(keys[i], code, [k for k in code.code if before < k < after]) + (code,)
    others = [code] + [f for f in files.values() if f is not code]
    exact = [best_window(keys[i], f, f.code, floor=1.) + (f,) for f in others]
    same = next((f for f in [found] + exact if f[0] == 'same'), None)
    if same:
        return same
    if found[3] < 0.4:
        found = max([best_window(keys[i], f, f.code) + (f,) for f in others], key=lambda f: f[3])
        if found[3] < 0.6:
            return None
    status, a, b, ratio, where = found
    key = ''.join(where.keys[a:b + 1])
    # A changed statement is all of its lines: none of them is a line the repo adds.
    while b + 1 < len(where.lines) and sum(map(key.count, '([{')) > sum(map(key.count, ')]}')):
        b += 1
        key += where.keys[b]
    return status, a, b, ratio, where


def align(listing, files):
    """[(number, text, block, status, Code, a, b)], one per listing line; fills each Code's
    `used` and `same`."""
    rows = []
    for block, lines in itertools.groupby(listing, key=lambda line: line[2]):
        lines = list(lines)
        code = files[HOME.get(block, 'allconvnet.py')]
        keys = [squeeze(t) for _, t, _ in lines]
        blocks = difflib.SequenceMatcher(None, keys, [code.keys[k] for k in code.code],
                                         autojunk=False).get_matching_blocks()
        pairs = {i + d: code.code[j + d] for i, j, n in blocks for d in range(n)}
        for i, (number, text, _) in enumerate(lines):
            found = place(i, keys, pairs, code, files, rows)
            status, a, b, _, where = found or ('unmatched', None, None, None, None)
            if where is not None:
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
    twins = (k for k in code.code if k != a and code.keys[k] == code.keys[a] and k not in code.used)
    return next(filter(None, map(above, itertools.chain([a], twins))), None)


def explained(code, a, b, what, glance, problems):
    """The reason cell of lines `a` to `b`, noted in `glance`; else None, reporting `what`."""
    found = reason(code, a)
    if not found:
        problems.append('%s but no `# blog:` comment explains it' % what)
        return None
    where, out = '%s:%d' % (code.rel, a + 1), []
    for part in [p.strip() for p in found[1].split(';') if p.strip()]:
        md = [markdown.format(*m.groups()) for pattern, markdown in SOURCES
              for m in [re.fullmatch(pattern, part)] if m]
        out += md[:1]
        if not md:
            problems.append('%s: unknown source %r' % (where, part))
    if not out:
        problems.append('%s: the reason names no [source]' % where)
    src = ', '.join(out)
    glance.setdefault(found[0], [src, []])[1].append(link(code.rel, a, b))
    return '%s *(%s)*' % (prose(found[0]), src)


def added_runs(files):
    """[(Code, [line])]: the runs of code lines of the explained files that carry no listing
    line, each run ended by a gap or a `# blog:` comment."""
    runs = []
    for code in [files[rel] for rel in EXPLAINED_FILES]:
        for k in code.code:
            if k in code.used or re.match(r'(#|import |from |try:|else:|finally:)',
                                          code.lines[k].strip()):
                continue
            if runs and runs[-1][0] is code and runs[-1][1][-1] == k - 1 and k - 1 not in code.tags:
                runs[-1][1].append(k)
            else:
                runs.append((code, [k]))
    return runs


def read_claims(problems):
    with open(os.path.join(ROOT, CLAIMS), encoding='utf-8', newline='') as f:
        claims = list(csv.DictReader(f))
    for n, claim in enumerate(claims, 1):
        if claim['verdict'] not in VERDICTS:
            problems.append('%s row %d: verdict %r is not one of %s'
                            % (CLAIMS, n, claim['verdict'], ', '.join(VERDICTS)))
        for path, name in re.findall(r'(tests/[\w.-]+\.py)::(\w+)', claim['check']):
            if not re.search(r'^def %s\(' % re.escape(name), read(path), re.M):
                problems.append('%s row %d: the check names %s::%s, which does not exist'
                                % (CLAIMS, n, path, name))
    return claims


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
    out = ['', '## 1. The listing, line by line']
    for block, lines in itertools.groupby(rows, key=lambda row: row[2]):
        out += ['', '### %s' % block, '', '| # | blog listing | repo | status | why / source |',
                '|---:|---|---|---|---|']
        for number, text, _, status, code, a, b in lines:
            if status == 'unmatched':
                problems.append('listing line %d is not accounted for: %r' % (number, text))
                out.append('| %d | %s | | **NOT ACCOUNTED FOR** | |' % (number, code_md(text)))
                continue
            what = 'listing line %d (%r) is changed at %s:%d' % (number, text, code.rel, a + 1)
            cell = '' if status == 'same' else explained(code, a, b, what, glance, problems)
            repo = ' '.join(l.strip() for l in code.lines[a:b + 1])
            out.append('| %d | %s | %s<br>%s | %s | %s |' % (
                number, code_md(text), link(code.rel, a, b), code_md(repo),
                'same' if status == 'same' else '**changed**', cell or ''))
    return out


def added_section(runs, glance, problems):
    """Section 2: the code the listing lacks, with its reason."""
    out = ['', '## 2. Lines the repo adds', '', 'Code the listing lacks, with the reason beside '
           'it in the code.', '', '| repo | first line | why / source |', '|---|---|---|']
    for code, run in runs:
        first = code.lines[run[0]].strip()
        what = '%s:%d-%d (%r) is added' % (code.rel, run[0] + 1, run[-1] + 1, first)
        cell = explained(code, run[0], run[-1], what, glance, problems)
        out.append('| %s | %s | %s |' % (link(code.rel, run[0], run[-1]), code_md(first),
                                         cell or '**NOT EXPLAINED**'))
    return out


def claims_section(claims, problems):
    """Section 3: the post's claims, where the repo honours each and how to check it."""
    out = ['', '## 3. What the post says about its code and results', '',
           'Each factual claim of the post\'s prose (quoted), where the repo honours it, and how '
           'to check it yourself. `LOGDIR` is the run\'s `--logdir`.', '',
           '| the post says | verdict | where | how to check | note |', '|---|---|---|---|---|']
    for n, claim in enumerate(claims, 1):
        rel, find = claim['file'], claim['find']
        lines = read(rel).split('\n') if rel and find else []
        k = next((k for k, line in enumerate(lines) if find in line), None)
        if rel and k is None:
            problems.append('%s row %d: %r is no longer in %s' % (CLAIMS, n, find, rel))
        out.append('| “%s” | %s | %s | %s | %s |' % (
            prose(claim['quote']), claim['verdict'], '—' if k is None else link(rel, k, k),
            prose(claim['check']), prose(claim['note'])))
    return out


SOURCES_SECTION = [
    '', '## Sources', '',
    '- The blog post: "All ConvNet: Striving for Simplicity: Implementation (Code Open '
    'sourced and explained in depth)", Mate Labs, 2017.',
    '- The upstream repository: [getcrest/All-Conv-Keras](%s), `allconv.py` history.' % UPSTREAM,
    '- The paper: Springenberg et al., "Striving for Simplicity: The All Convolutional '
    'Net", [arXiv 1412.6806](https://arxiv.org/abs/1412.6806).',
    '- make_parallel\'s origin: [kuza55/keras-extras](%s) `utils/multi_gpu.py`.' % EXTRAS, '']


def documents():
    """{path: text} of every generated document, and the problems found making them."""
    problems, glance = [], {}  # why -> [sources, [links]], in the order the sections find them
    listing, files = read_listing(), {rel: Code(rel) for rel in CODE_FILES}
    rows = align(listing, files)
    runs, claims = added_runs(files), read_claims(problems)
    doc = (header_section(listing, rows, runs) + listing_section(rows, glance, problems) +
           added_section(runs, glance, problems) + claims_section(claims, problems) +
           SOURCES_SECTION)
    table = ['| difference from the blog\'s listing | decided by | where |', '|---|---|---|']
    for why, (src, links) in glance.items():
        shown = ', '.join(links[:3]) + (', …' if len(links) > 3 else '')
        table.append('| %s | %s | %s |' % (prose(why), src, shown))
    return {DOC: '\n'.join(doc) + '\n', GLANCE_DOC: (
        '# Differences at a glance\n\n<!-- Generated by `make docs`. -->\n\nEvery reason this '
        'repo\'s code differs from the blog\'s listing, once; [blog-vs-repo.md](blog-vs-repo.md)'
        ' has every line.\n\n%s\n' % '\n'.join(table))}, problems


def main(argv=None):
    p = Parser(prog='python -m tools.blog_diff', description=__doc__.split(
        '\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--check', action='store_true', help='write nothing; exit 1 if stale or wrong')
    args = p.parse_args(argv)
    docs, problems = documents()
    stale = [rel for rel, text in docs.items() if read(rel) != text]
    problems += ['%s is stale: regenerate with `make docs`' % rel for rel in stale if args.check]
    for rel in [] if args.check else stale:
        with open(os.path.join(ROOT, rel), 'w', encoding='utf-8') as f:
            f.write(docs[rel])
        print('wrote %s' % rel)
    for problem in problems:
        say('python -m tools.blog_diff', 'error', problem)
    return 1 if problems else 0


if __name__ == '__main__':
    prepare('python -m tools.blog_diff', tensorflow=False)
    sys.exit(exit_code(main, 'python -m tools.blog_diff'))
