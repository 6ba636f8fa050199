#!/usr/bin/env python
"""blog_diff.py: writes docs/blog-vs-repo.md (the blog's listing beside this repo, line by line)
and docs/differences-at-a-glance.md, and with --check proves that they are still true.

Inputs, all in the repo:
  docs/blog_listing.txt  the post's code listing, verbatim (format in its header)
  docs/blog_reasons.csv  the only place reasons live: one row per listing line that is not
                         carried unchanged, and one per repo line the listing lacks
  docs/blog_claims.csv   the post's factual claims about its code and results
  allconvnet.py, make_parallel.py   the code the listing is compared with

Repo locations are found by searching the code, never typed as line numbers, so the document
follows the code when lines move, and --check fails when it has not been regenerated.

    python tools/blog_diff.py            regenerate the documents
    python tools/blog_diff.py --check    exit 1 if a document is stale, a listing line is
                                         unaccounted for, a change has no reason, or a
                                         location no longer matches the code

Standard library only, Python 3.7: it runs in CI before anything heavy is installed.
"""
from __future__ import print_function

import argparse
import ast
import csv
import difflib
import io
import os
import re
import sys
import tokenize
from collections import OrderedDict, defaultdict

# Files a listing line may be carried by without a row in the reasons table.
CODE_FILES = ('allconvnet.py', 'make_parallel.py')
STATUSES = ('same', 'changed', 'not used', 'added')
VERDICTS = ('honoured', 'changed', 'not honoured', 'to check', 'advice')
REASON_COLUMNS = ('status', 'listing', 'file', 'find', 'to', 'source', 'reason', 'glance')
CLAIM_COLUMNS = ('quote', 'verdict', 'file', 'find', 'check', 'note')
# Lines that are syntax only; listing them as "repo lines not explained" would be noise.
SYNTAX_ONLY = re.compile(r'^(try|else|finally)\s*:\s*$')
# A logical line longer than this is a bracket the scanner misread, not a statement.
MAX_SPAN = 40
GLANCE_BEGIN = '<!-- blog-diff:glance:begin -->'
GLANCE_END = '<!-- blog-diff:glance:end -->'

UPSTREAM = 'https://github.com/getcrest/All-Conv-Keras'
EXTRAS = 'https://github.com/kuza55/keras-extras'
# Every source a reason may name, as (pattern, Markdown). Anything else fails --check, so a
# reason cannot cite a source that a reader has no way to look up.
SOURCES = (
    (r'blog', "the blog's prose"),
    (r'upstream ([0-9a-f]{7,40})', '[upstream {0}](%s/commit/{0})' % UPSTREAM),
    (r'upstream PR #(\d+)', '[upstream PR #{0}](%s/pull/{0})' % UPSTREAM),
    (r'upstream issue #(\d+)', '[upstream issue #{0}](%s/issues/{0})' % UPSTREAM),
    (r'paper', '[the paper (arXiv 1412.6806)](https://arxiv.org/abs/1412.6806)'),
    (r'Keras 1\.2\.2', '[Keras 1.2.2 API](https://github.com/keras-team/keras/tree/1.2.2)'),
    (r'TF 1\.15',
     '[TensorFlow 1.15 API](https://www.tensorflow.org/versions/r1.15/api_docs/python/tf)'),
    (r'keras-extras ([0-9a-f]{7,40})', '[keras-extras {0}](%s/commit/{0})' % EXTRAS),
    (r'keras-extras issue #(\d+)', '[keras-extras issue #{0}](%s/issues/{0})' % EXTRAS),
    (r'Keras 2\.0\.9 multi_gpu_model',
     '[Keras 2.0.9 `multi_gpu_model`](https://github.com/keras-team/keras/tree/2.0.9)'),
    (r'Keras 2\.1 multi_gpu_model',
     '[Keras 2.1 `multi_gpu_model`](https://github.com/keras-team/keras/tree/2.1.0)'),
    (r'repo', "this repo's own choice"),
)


class Problems(object):
    """Every reason --check fails, collected so that one run reports all of them."""

    def __init__(self):
        self.items = []

    def add(self, message):
        self.items.append(message)

    def __bool__(self):
        return bool(self.items)
    __nonzero__ = __bool__


# ---------------------------------------------------------------- reading Python lines

def scan(text):
    """(code part, comment part, bracket depth change) of one physical line.

    A small scanner instead of tokenize, because listing lines are fragments
    (`datagen = ImageDataGenerator(`) that tokenize refuses.
    """
    depth, quote, i = 0, None, 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == '\\':
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in '\'"':
            quote = c
        elif c == '#':
            return text[:i], text[i:], depth
        elif c in '([{':
            depth += 1
        elif c in ')]}':
            depth -= 1
        i += 1
    return text, '', depth


def squeeze(text):
    """The comparison key: the text without whitespace outside string literals.

    The post lost its indentation in publication and spaces around `=` carry no meaning,
    so two lines that differ only there count as the same line.
    """
    out, quote, i = [], None, 0
    while i < len(text):
        c = text[i]
        if quote:
            out.append(c)
            if c == '\\' and i + 1 < len(text):
                out.append(text[i + 1])
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in '\'"':
            quote = c
            out.append(c)
        elif c == '#':
            out.append(re.sub(r'\s+', '', text[i:]))
            break
        elif not c.isspace():
            out.append(c)
        i += 1
    return ''.join(out)


class RepoFile(object):
    """One code file: its lines, which are docstrings or comments, and its logical lines."""

    def __init__(self, root, rel):
        self.rel = rel
        self.path = os.path.join(root, rel)
        with io.open(self.path, encoding='utf-8') as f:
            self.lines = f.read().split('\n')
        if self.lines and self.lines[-1] == '':
            self.lines.pop()
        self.docstring = self._docstring_lines()

    def _docstring_lines(self):
        """0-based indexes of lines inside a string that is a statement of its own."""
        found = set()
        text = '\n'.join(self.lines) + '\n'
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        except (tokenize.TokenError, SyntaxError, IndentationError):
            return found  # mid-edit code: compare anyway, only without docstring skipping
        starts = (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT,
                  tokenize.COMMENT)
        for n, tok in enumerate(tokens):
            if tok.type != tokenize.STRING:
                continue
            before = tokens[n - 1].type if n else tokenize.NEWLINE
            after = tokens[n + 1].type if n + 1 < len(tokens) else tokenize.NEWLINE
            if before in starts and after in (tokenize.NEWLINE, tokenize.ENDMARKER):
                found.update(range(tok.start[0] - 1, tok.end[0]))
        return found

    def is_code(self, i):
        """A line that does something: not blank, not only a comment, not a docstring."""
        stripped = self.lines[i].strip()
        return bool(stripped) and not stripped.startswith('#') and i not in self.docstring

    def span(self, i):
        """(first, last) line of the logical line that starts at line i."""
        depth, j = 0, i
        while True:
            depth += scan(self.lines[j])[2]
            if depth <= 0 or j + 1 >= len(self.lines) or j - i >= MAX_SPAN:
                return i, j
            j += 1

    def joined(self, first, last, for_key=False):
        """Lines first..last as one line: for display, or for squeeze() when for_key."""
        if not for_key:
            return ' '.join(self.lines[k].strip() for k in range(first, last + 1))
        parts = [scan(self.lines[k])[0] for k in range(first, last + 1)]
        return ' '.join(parts) + scan(self.lines[last])[1]

    def search(self, predicate, after):
        """First line index satisfying predicate, looking after `after`, then from the top.

        The repo keeps the post's order, so searching on from the last match pairs repeated
        lines (two identical Convolution2D calls) with their own counterparts.
        """
        n = len(self.lines)
        for k in list(range(after + 1, n)) + list(range(0, min(after + 1, n))):
            if k not in self.docstring and predicate(k):
                return k
        return None


# ---------------------------------------------------------------- the three inputs

class ListingLine(object):
    def __init__(self, number, file_line, text, block):
        self.number = number        # 1-based among the listing's lines
        self.file_line = file_line  # 1-based line in blog_listing.txt, for links
        self.text = text
        self.block = block


def read_listing(path):
    """(lines, block titles in order) of docs/blog_listing.txt; see its header."""
    lines, blocks, block = [], [], None
    with io.open(path, encoding='utf-8') as f:
        raw = f.read().split('\n')
    for n, text in enumerate(raw, 1):
        if text.startswith('@@'):
            m = re.match(r'@@ block: (.+)$', text)
            if m:
                block = m.group(1).strip()
                blocks.append(block)
            continue
        if not text.strip():
            continue
        lines.append(ListingLine(len(lines) + 1, n, text, block))
    return lines, blocks


def read_csv(path, columns, problems):
    """Rows of a CSV as dicts, each with `row` (its 1-based data row) for messages."""
    rows = []
    name = os.path.basename(path)
    with io.open(path, encoding='utf-8', newline='') as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            problems.add('%s: missing column(s) %s' % (name, ', '.join(missing)))
            return rows
        for n, row in enumerate(reader, 1):
            clean = dict((k, (row.get(k) or '').strip()) for k in columns)
            clean['row'] = n
            clean['where'] = '%s row %d' % (name, n)
            rows.append(clean)
    return rows


def render_sources(text, problems, where):
    """Markdown for a `;`-separated source list; an unknown source is a problem."""
    out = []
    for part in [p.strip() for p in text.split(';') if p.strip()]:
        for pattern, markdown in SOURCES:
            m = re.match(pattern + r'$', part)
            if m:
                out.append(markdown.format(*m.groups()))
                break
        else:
            problems.add('%s: unknown source %r (known: blog, upstream <commit>, upstream PR #N, '
                         'upstream issue #N, paper, Keras 1.2.2, TF 1.15, keras-extras <commit>, '
                         'keras-extras issue #N, Keras 2.0.9 multi_gpu_model, '
                         'Keras 2.1 multi_gpu_model, repo)' % (where, part))
    return ', '.join(out)


def check_sentence(text, problems, where, what='reason'):
    if not text.endswith('.'):
        problems.add('%s: the %s must be one sentence ending in a period: %r' % (where, what, text))
    elif re.search(r'[.!?]\s+[A-Z]', text[:-1]):
        problems.add('%s: the %s must be one sentence, found more: %r' % (where, what, text))


# ---------------------------------------------------------------- matching

class Match(object):
    """Where one listing line (or one added row) lives in the repo, and why it differs."""

    def __init__(self, status, rf=None, first=None, last=None, row=None):
        self.status = status
        self.rf = rf
        self.first = first
        self.last = last
        self.row = row

    def text(self):
        return self.rf.joined(self.first, self.last) if self.rf else ''


def load_files(root, rels, problems):
    files = OrderedDict()
    for rel in rels:
        try:
            files[rel] = RepoFile(root, rel)
        except (IOError, OSError) as e:
            problems.add('cannot read %s: %s' % (rel, e))
    return files


def locate(rf, pattern, after):
    """(first, last) of the logical line whose first line contains `pattern`, or None."""
    k = rf.search(lambda i: pattern in rf.lines[i], after)
    return None if k is None else rf.span(k)


def match_listing(listing, rows, files, problems):
    """One Match per listing line, in order; every problem --check cares about is recorded."""
    by_key = defaultdict(list)
    for row in rows:
        if row['status'] not in STATUSES:
            problems.add('%s: status %r is not one of %s'
                         % (row['where'], row['status'], ', '.join(STATUSES)))
        elif row['status'] != 'added':
            if not row['listing']:
                problems.add('%s: a %s row needs the listing line it explains'
                             % (row['where'], row['status']))
            by_key[squeeze(row['listing'])].append(row)
    used = set()
    seen = defaultdict(int)
    cursor = dict((rel, -1) for rel in files)
    current = CODE_FILES[0]
    matches = []
    for line in listing:
        key = squeeze(line.text)
        balanced = scan(line.text)[2] == 0

        def same_as(rf, k):
            if squeeze(rf.lines[k]) == key:
                return True
            if balanced and scan(rf.lines[k])[2] > 0:
                first, last = rf.span(k)
                return squeeze(rf.joined(first, last, for_key=True)) == key
            return False

        def where(rf, k):
            first, last = rf.span(k)
            if squeeze(rf.lines[k]) == key or not balanced:
                last = k
            return first, last

        candidates = by_key.get(key)
        if candidates:
            row = candidates[min(seen[key], len(candidates) - 1)]
            seen[key] += 1
            used.add(row['row'])
            matches.append(match_row(line, row, files, cursor, same_as, problems))
            if matches[-1].rf:
                current = matches[-1].rf.rel
                cursor[current] = matches[-1].last
            continue
        found = None
        for rel in [current] + [r for r in files if r != current]:
            rf = files.get(rel)
            if rf is None:
                continue
            k = rf.search(lambda i: same_as(rf, i), cursor[rel])
            if k is not None:
                found = (rf, k)
                break
        if found is None:
            problems.add('listing line %d is not accounted for: %r is in none of %s and has no '
                         'row in the reasons table' % (line.number, line.text.strip(),
                                                       ', '.join(files)))
            matches.append(Match('unaccounted'))
            continue
        rf, k = found
        first, last = where(rf, k)
        matches.append(Match('same', rf, first, last))
        current, cursor[rf.rel] = rf.rel, last
    for row in rows:
        if row['status'] in ('same', 'changed', 'not used') and row['row'] not in used:
            problems.add('%s: names listing line %r, which the listing does not have'
                         % (row['where'], row['listing']))
    return matches


def match_row(line, row, files, cursor, same_as, problems):
    """The Match for a listing line that has a row in the reasons table."""
    status, where = row['status'], row['where']
    if status in ('changed', 'not used'):
        if not row['reason']:
            problems.add('listing line %d (%r) is %s but has no reason (%s)'
                         % (line.number, line.text.strip(), status, where))
        if not row['source']:
            problems.add('listing line %d (%r) is %s but names no source (%s)'
                         % (line.number, line.text.strip(), status, where))
    if row['reason']:
        check_sentence(row['reason'], problems, where)
    if not row['file'] and status == 'not used':
        return Match(status, row=row)
    rf = files.get(row['file'])
    if rf is None:
        problems.add('%s: file %r does not exist under the repo root' % (where, row['file']))
        return Match(status, row=row)
    if not row['find']:
        problems.add('%s: no `find` text to locate listing line %d in %s'
                     % (where, line.number, rf.rel))
        return Match(status, row=row)
    found = locate(rf, row['find'], cursor[rf.rel])
    if found is None:
        problems.add('%s: %r is no longer in %s (listing line %d); the code moved on, so update '
                     'the row' % (where, row['find'], rf.rel, line.number))
        return Match(status, row=row)
    first, last = found
    if scan(line.text)[2] != 0:
        last = first
    identical = same_as(rf, first)
    if status == 'same' and not identical:
        problems.add('%s: listing line %d is marked same, but %s:%d differs: %r'
                     % (where, line.number, rf.rel, first + 1, rf.lines[first].strip()))
    if status in ('changed', 'not used') and identical:
        problems.add('%s: listing line %d is marked %s, but %s:%d carries it unchanged; mark it '
                     'same or drop the row' % (where, line.number, status, rf.rel, first + 1))
    return Match(status, rf, first, last, row)


def match_added(rows, files, problems):
    """(row, [(file, first, last), ...]) for each `added` row: every line its text matches."""
    out = []
    for row in rows:
        if row['status'] != 'added':
            continue
        where = row['where']
        if not row['reason']:
            problems.add('%s: an added line needs a reason' % where)
        else:
            check_sentence(row['reason'], problems, where)
        if not row['source']:
            problems.add('%s: an added line needs a source' % where)
        rf = files.get(row['file'])
        if rf is None:
            problems.add('%s: file %r does not exist under the repo root'
                         % (where, row['file']))
            continue
        spans = []
        for k, text in enumerate(rf.lines):
            if row['find'] and row['find'] in text and rf.is_code(k):
                first, last = rf.span(k)
                if row['to']:
                    end = rf.search(lambda i: i >= k and row['to'] in rf.lines[i], k - 1)
                    if end is None or end < k:
                        problems.add('%s: end text %r not found after %s:%d'
                                     % (where, row['to'], rf.rel, k + 1))
                        continue
                    last = rf.span(end)[1]
                spans.append((rf, first, last))
        if not spans:
            problems.add('%s: %r matches no code line in %s; the code moved on, so update the row'
                         % (where, row['find'], rf.rel))
        out.append((row, spans))
    return out


def match_claims(claims, files, root, problems):
    """(claim, (file, first, last) or None) per claim; a claim must say how to check it."""
    out = []
    for claim in claims:
        where = claim['where']
        if claim['verdict'] not in VERDICTS:
            problems.add('%s: verdict %r is not one of %s'
                         % (where, claim['verdict'], ', '.join(VERDICTS)))
        if not claim['quote']:
            problems.add('%s: no quote' % where)
        if not claim['check']:
            problems.add('%s: say how a user can check the claim' % where)
        if claim['verdict'] != 'honoured' and not claim['note']:
            problems.add('%s: a claim that is not simply honoured needs a note' % where)
        if claim['note']:
            check_sentence(claim['note'], problems, where, 'note')
        # A user told to run a test must find it: a renamed test makes the advice false.
        for path, name in re.findall(r'(tests/[\w.-]+\.py)::(\w+)', claim['check']):
            text = read_text(os.path.join(root, path)) or ''
            if not re.search(r'^def %s\(' % re.escape(name), text, re.M):
                problems.add('%s: the check names %s::%s, which does not exist'
                             % (where, path, name))
        span = None
        if claim['file']:
            rf = files.get(claim['file'])
            if rf is None:
                problems.add('%s: file %r does not exist under the repo root'
                             % (where, claim['file']))
            else:
                found = locate(rf, claim['find'], -1) if claim['find'] else None
                if found is None:
                    problems.add('%s: %r is no longer in %s; update the row'
                                 % (where, claim['find'], rf.rel))
                else:
                    span = (rf,) + found
        out.append((claim, span))
    return out


def uncovered(files, matches, added):
    """Code lines of the compared files that neither carry a listing line nor have a row."""
    covered = defaultdict(set)
    for m in matches:
        if m.rf is not None:
            covered[m.rf.rel].update(range(m.first, m.last + 1))
    for _, spans in added:
        for rf, first, last in spans:
            covered[rf.rel].update(range(first, last + 1))
    out = []
    for rel, rf in files.items():
        run = []
        for k in range(len(rf.lines)):
            if (rf.is_code(k) and k not in covered[rel]
                    and not SYNTAX_ONLY.match(rf.lines[k].strip())):
                if run and k != run[-1] + 1 and any(rf.is_code(j) for j in range(run[-1] + 1, k)):
                    out.append((rf, run))
                    run = []
                run.append(k)
        if run:
            out.append((rf, run))
    return out


# ---------------------------------------------------------------- checking the transcription

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


def check_against_post(post_path, listing, blocks, claims, problems):
    """The listing is exactly the post's code lines, and every quoted claim is in the post."""
    with io.open(post_path, encoding='utf-8') as f:
        post = f.read()
    lines = post.split('\n')
    texts = [line.text for line in listing]
    k = 0
    for line in listing:
        while k < len(lines) and lines[k] != line.text:
            if not looks_like_prose(lines[k]):
                problems.add('post line %d %r looks like code but is not in the listing (before '
                             'listing line %d)' % (k + 1, lines[k], line.number))
            k += 1
        if k >= len(lines):
            problems.add('listing line %d %r is not in the post (in order, verbatim)'
                         % (line.number, line.text))
            return
        k += 1
    for n in range(k, len(lines)):
        if lines[n] not in texts and not looks_like_prose(lines[n]):
            problems.add('post line %d %r looks like code but is not in the listing (after its '
                         'last line)' % (n + 1, lines[n]))
    for title in blocks:
        if title not in post:
            problems.add('block title %r is not in the post' % title)
    for claim in claims:
        if claim['quote'] and ' '.join(claim['quote'].split()) not in ' '.join(post.split()):
            problems.add('%s: the quote %r is not in the post' % (claim['where'], claim['quote']))


# ---------------------------------------------------------------- Markdown

def code(text):
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


def link_path(target, from_dir):
    return os.path.relpath(target, from_dir).replace(os.sep, '/')


def repo_link(rf, first, last, from_dir):
    href = link_path(rf.path, from_dir)
    if last > first:
        return '[%s:%d-%d](%s#L%d-L%d)' % (rf.rel, first + 1, last + 1, href, first + 1, last + 1)
    return '[%s:%d](%s#L%d)' % (rf.rel, first + 1, href, first + 1)


def reason_cell(row, problems):
    if row is None or not row['reason']:
        return ''
    text = prose(row['reason'])
    sources = render_sources(row['source'], problems, row['where'])
    return text + (' *(%s)*' % sources if sources else '')


def coming(root, rel, from_dir, label):
    target = os.path.join(root, rel)
    link = '[%s](%s)' % (label, link_path(target, from_dir))
    return link if os.path.exists(target) else link + ' (coming)'


def render_doc(root, doc_dir, listing_path, listing, blocks, matches, added, claims,
               leftovers, problems):
    counts = defaultdict(int)
    for m in matches:
        counts[m.status] += 1
    accounted = len(listing) - counts['unaccounted']
    listing_href = link_path(listing_path, doc_dir)
    out = []
    w = out.append
    w('# The blog post beside this repository, line by line')
    w('')
    w('<!-- Generated by tools/blog_diff.py from docs/blog_listing.txt, docs/blog_reasons.csv, '
      'docs/blog_claims.csv and the code. Do not edit by hand: change those files, then run '
      '`python tools/blog_diff.py`. CI runs `python tools/blog_diff.py --check`. -->')
    w('')
    w('The Keras 1 tutorial "All ConvNet: Striving for Simplicity" prints %d lines of code, '
      '[transcribed verbatim here](%s). This page pairs each with the line of this repository '
      'that carries it, and says why where the two differ.' % (len(listing), listing_href))
    w('')
    w('**%d of %d listing lines accounted for:** %d same, %d changed, %d not used. '
      'The repo adds lines the listing lacks in %d places ([section 2](#2-lines-the-repo-adds)).'
      % (accounted, len(listing), counts['same'], counts['changed'], counts['not used'],
         len(added)))
    if counts['unaccounted']:
        w('')
        w('**%d listing line(s) are not accounted for** (marked below); `--check` fails until '
          'each has a row in docs/blog_reasons.csv.' % counts['unaccounted'])
    w('')
    w('- %s: the short version.' % coming(root, 'docs/differences-at-a-glance.md', doc_dir,
                                          'Differences at a glance'))
    w('- %s: the blog\'s settings next to the upstream repository\'s and the paper\'s.'
      % coming(root, 'docs/recipes.md', doc_dir, 'Recipes'))
    w('')
    w('How to read the table:')
    w('')
    w('- **same**: the repo line is the listing line. Whitespace outside strings is ignored: the '
      'post lost its indentation when it was published (its few indented lines are indented '
      'wrongly), and the repo spaces `=` and commas the PEP 8 way. A statement the repo wraps '
      'over several lines still counts as the same line.')
    w('- **changed**: the repo does that line\'s job differently; the last column says why and '
      'which source decided it.')
    w('- **not used**: the repo has no counterpart; the last column says why.')
    w('- Line numbers are found by searching the code, so they are right for the commit this '
      'file was generated at; `--check` in CI fails when they drift.')
    w('')
    w('## 1. The listing, line by line')
    for block in blocks:
        rows = [(line, m) for line, m in zip(listing, matches) if line.block == block]
        if not rows:
            continue
        w('')
        w('### %s' % prose(block))
        w('')
        w('| # | blog listing | repo | status | why / source |')
        w('|---:|---|---|---|---|')
        for line, m in rows:
            number = '[%d](%s#L%d)' % (line.number, listing_href, line.file_line)
            if m.rf is not None:
                repo = '%s<br>%s' % (repo_link(m.rf, m.first, m.last, doc_dir), code(m.text()))
            else:
                repo = '—'
            status = {'same': 'same', 'changed': '**changed**', 'not used': '**not used**',
                      'unaccounted': '**NOT ACCOUNTED FOR**'}[m.status]
            w('| %s | %s | %s | %s | %s |' % (number, code(line.text.strip()), repo, status,
                                              reason_cell(m.row, problems)))
    w('')
    w('## 2. Lines the repo adds')
    w('')
    w('Lines with no counterpart in the listing. Some restore what the listing lost, some come '
      'from the upstream repository or the paper, the rest make a 1000-epoch run safe to leave '
      'alone.')
    w('')
    w('| repo | line | why / source |')
    w('|---|---|---|')
    for row, spans in sorted(added, key=in_code_order):
        if not spans:
            w('| — | %s | %s |' % (code(row['find']), reason_cell(row, problems)))
            continue
        links = ', '.join(repo_link(rf, a, b, doc_dir) for rf, a, b in spans)
        rf, a, b = spans[0]
        more = ' …' if b > a else ''
        times = ' (×%d)' % len(spans) if len(spans) > 1 else ''
        w('| %s | %s%s%s | %s |' % (links, code(rf.joined(a, a)), more, times,
                                    reason_cell(row, problems)))
    w('')
    w('## 3. What the post says about its code and results')
    w('')
    w('Each factual claim of the post\'s prose (quoted), where the repo honours it, and how to '
      'check it yourself. `LOGDIR` is the run\'s `--logdir` (default `logs/<UTC time>`).')
    w('')
    w('| the post says | verdict | where | how to check | note |')
    w('|---|---|---|---|---|')
    for claim, span in claims:
        where = repo_link(span[0], span[1], span[2], doc_dir) if span else '—'
        check = prose(claim['check'])
        for path in sorted(set(re.findall(r'\b((?:tools|docs|tests)/[\w.-]+\.(?:py|md))\b',
                                          claim['check']))):
            if not os.path.exists(os.path.join(root, path)):
                check += ' (`%s` is coming.)' % path
        w('| “%s” | %s | %s | %s | %s |' % (prose(claim['quote']), claim['verdict'], where,
                                           check, prose(claim['note'])))
    w('')
    w('## 4. Repo lines not explained here')
    w('')
    if not leftovers:
        w('None: every code line of %s either carries a listing line or has a row in section 2.'
          % ' and '.join(CODE_FILES))
    else:
        w('Code lines of %s that carry no listing line and have no row in '
          'docs/blog_reasons.csv yet (comments, docstrings and bare `try:`/`else:` lines '
          'aside). `--check` does not require them; `--strict` does.' % ' and '.join(CODE_FILES))
        w('')
        w('<details><summary>%d line(s)</summary>' % sum(len(r) for _, r in leftovers))
        w('')
        w('| repo | line |')
        w('|---|---|')
        for rf, run in leftovers:
            w('| %s | %s%s |' % (repo_link(rf, run[0], run[-1], doc_dir),
                                 code(rf.lines[run[0]].strip()), ' …' if len(run) > 1 else ''))
        w('')
        w('</details>')
    w('')
    w('## Sources')
    w('')
    w('- The blog post: "All ConvNet: Striving for Simplicity: Implementation (Code Open sourced '
      'and explained in depth)", Mate Labs, 2017; its listing is [docs/blog_listing.txt](%s).'
      % listing_href)
    w('- The upstream repository the post publishes: [getcrest/All-Conv-Keras](%s) '
      '(formerly MateLabs), `allconv.py` history.' % UPSTREAM)
    w('- The paper: Springenberg, Dosovitskiy, Brox, Riedmiller, "Striving for Simplicity: The '
      'All Convolutional Net", [arXiv 1412.6806](https://arxiv.org/abs/1412.6806).')
    w('- make_parallel\'s origin: [kuza55/keras-extras](%s) `utils/multi_gpu.py`; its successor '
      'is Keras 2.0.9+ `keras.utils.multi_gpu_model`.' % EXTRAS)
    w('- API changes: Keras 1.2.2 and TensorFlow 1.15, the versions this repo pins.')
    w('')
    return '\n'.join(out)


def in_code_order(item):
    """Sort key for (row, spans): by file (the script first), then line; unlocated last."""
    spans = item[1]
    if not spans:
        return (len(CODE_FILES) + 1, 0, item[0]['row'])
    rf, first = spans[0][0], spans[0][1]
    rank = CODE_FILES.index(rf.rel) if rf.rel in CODE_FILES else len(CODE_FILES)
    return (rank, first, item[0]['row'])


def render_glance(matches, added, from_dir, full_doc, problems):
    """The short table: every row of the reasons table that has a `glance` text.

    Reasons stay in the full document; here each difference names what decided it.
    """
    rows = []
    for m in matches:
        taken = [r['row'] for r, _ in rows]
        if m.row is not None and m.row['glance'] and m.row['row'] not in taken:
            rows.append((m.row, [(m.rf, m.first, m.last)] if m.rf else []))
    for row, spans in added:
        if row['glance']:
            rows.append((row, spans))
    rows.sort(key=in_code_order)
    out = ['| difference from the blog\'s listing | decided by | where |',
           '|---|---|---|']
    for row, spans in rows:
        where = ', '.join(repo_link(rf, a, b, from_dir) for rf, a, b in spans[:2])
        if len(spans) > 2:
            where += ', …'
        out.append('| %s | %s | %s |' % (prose(row['glance']),
                                         render_sources(row['source'], problems, row['where']),
                                         where))
    out.append('')
    out.append('Why each differs, every line of the listing and the post\'s claims: [%s](%s).'
               % (os.path.basename(full_doc), link_path(full_doc, from_dir)))
    return '\n'.join(out)


def render_glance_doc(table):
    return '\n'.join([
        '# Differences at a glance',
        '',
        '<!-- Generated by tools/blog_diff.py from docs/blog_reasons.csv; do not edit by hand. -->',
        '',
        'The main ways this repository departs from the code listing of the blog post "All '
        'ConvNet: Striving for Simplicity", and the source that decided each.',
        '',
        table,
        ''])


def splice_readme(text, table):
    """README with the generated table between the glance markers (unchanged if none)."""
    begin, end = text.find(GLANCE_BEGIN), text.find(GLANCE_END)
    if begin < 0 or end < begin:
        return text
    return (text[:begin + len(GLANCE_BEGIN)] + '\n' + table + '\n' + text[end:])


# ---------------------------------------------------------------- main

def build(args):
    """{path: generated text}, problems."""
    problems = Problems()
    root = args.root
    listing_path = args.listing or os.path.join(root, 'docs', 'blog_listing.txt')
    reasons_path = args.reasons or os.path.join(root, 'docs', 'blog_reasons.csv')
    claims_path = args.claims or os.path.join(root, 'docs', 'blog_claims.csv')
    doc_path = args.doc or os.path.join(root, 'docs', 'blog-vs-repo.md')
    glance_path = args.glance or os.path.join(root, 'docs', 'differences-at-a-glance.md')
    readme_path = args.readme or os.path.join(root, 'README.md')

    listing, blocks = read_listing(listing_path)
    rows = read_csv(reasons_path, REASON_COLUMNS, problems)
    claims = read_csv(claims_path, CLAIM_COLUMNS, problems)
    rels = list(CODE_FILES)
    for row in rows + claims:
        if (row['file'] and row['file'] not in rels
                and os.path.exists(os.path.join(root, row['file']))):
            rels.append(row['file'])
    files = load_files(root, rels, problems)
    if not listing:
        problems.add('%s holds no listing line' % listing_path)
    if args.blog:
        check_against_post(args.blog, listing, blocks, claims, problems)

    matches = match_listing(listing, rows, files, problems)
    added = match_added(rows, files, problems)
    located_claims = match_claims(claims, files, root, problems)
    leftovers = uncovered(OrderedDict((r, files[r]) for r in CODE_FILES if r in files),
                          matches, added)
    if args.strict:
        for rf, run in leftovers:
            problems.add('--strict: %s:%d-%d has no row in the reasons table: %r'
                         % (rf.rel, run[0] + 1, run[-1] + 1, rf.lines[run[0]].strip()))

    doc_dir = os.path.dirname(os.path.abspath(doc_path))
    outputs = OrderedDict()
    outputs[doc_path] = render_doc(root, doc_dir, os.path.abspath(listing_path), listing, blocks,
                                   matches, added, located_claims, leftovers, problems)
    glance_dir = os.path.dirname(os.path.abspath(glance_path))
    outputs[glance_path] = render_glance_doc(render_glance(matches, added, glance_dir,
                                                           os.path.abspath(doc_path), problems))
    if os.path.exists(readme_path):
        with io.open(readme_path, encoding='utf-8') as f:
            readme = f.read()
        if GLANCE_BEGIN in readme:
            table = render_glance(matches, added, os.path.dirname(os.path.abspath(readme_path)),
                                  os.path.abspath(doc_path), problems)
            outputs[readme_path] = splice_readme(readme, table)
    return outputs, problems


def read_text(path):
    # Universal newlines: a checkout with CRLF line ends is not a stale document.
    try:
        with io.open(path, encoding='utf-8') as f:
            return f.read()
    except (IOError, OSError):
        return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--check', action='store_true',
                   help='write nothing; exit 1 if a document is stale or the tables are wrong')
    p.add_argument('--strict', action='store_true',
                   help='also fail when a code line of %s has no listing line and no row'
                        % ' or '.join(CODE_FILES))
    p.add_argument('--root', default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   help='the repository (default: the one holding this tool)')
    p.add_argument('--listing', help='default: ROOT/docs/blog_listing.txt')
    p.add_argument('--reasons', help='default: ROOT/docs/blog_reasons.csv')
    p.add_argument('--claims', help='default: ROOT/docs/blog_claims.csv')
    p.add_argument('--doc', help='default: ROOT/docs/blog-vs-repo.md')
    p.add_argument('--glance', help='default: ROOT/docs/differences-at-a-glance.md')
    p.add_argument('--readme', help='default: ROOT/README.md; its table is refreshed only '
                                    'between %s and %s' % (GLANCE_BEGIN, GLANCE_END))
    p.add_argument('--blog', metavar='POST',
                   help='the blog post as text: also check that the listing is exactly its code '
                        'lines and that every quoted claim is in it')
    args = p.parse_args(argv)
    args.root = os.path.abspath(args.root)

    outputs, problems = build(args)
    stale = []
    for path, text in outputs.items():
        old = read_text(path)
        if old == text:
            continue
        if args.check:
            stale.append(path)
            diff = list(difflib.unified_diff((old or '').splitlines(), text.splitlines(),
                                             'committed', 'generated', lineterm='', n=0))
            problems.add('%s is stale (regenerate with `python tools/blog_diff.py`); first '
                         'differences:\n    %s' % (os.path.relpath(path, args.root),
                                                   '\n    '.join(diff[2:12])))
        else:
            with io.open(path, 'w', encoding='utf-8', newline='\n') as f:
                f.write(text)
            print('wrote %s' % os.path.relpath(path, args.root))
    if problems:
        for item in problems.items:
            print('blog_diff: %s' % item, file=sys.stderr)
        print('blog_diff: %d problem(s)%s' % (len(problems.items), '' if args.check else
                                                '; the documents were written anyway'),
              file=sys.stderr)
        return 1
    if args.check:
        print('blog_diff: %s up to date' % ', '.join(os.path.relpath(p, args.root)
                                                       for p in outputs))
    return 0


if __name__ == '__main__':
    sys.exit(main())
