"""tools/blog_diff.py: the committed comparison is current, and --check catches each way it rots.

Each failure case runs the real tool on a copy of the repo with one thing broken, so a pass
here means CI would have failed on that breakage. No TensorFlow: the tool reads text only.
"""
import ast
import os
import re
import shutil
import subprocess
import sys

import pytest

from helpers import ROOT
from tools import blog_diff

POST = os.path.join(os.path.dirname(ROOT), 'shared', 'seed', 'blog-post.txt')


def run(root, *args):
    return subprocess.run([sys.executable, '-m', 'tools.blog_diff'] + list(args), cwd=root,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)


@pytest.fixture(scope='module')
def pristine(tmp_path_factory):
    """A copy of the repo's text (no .git, .venv or logs)."""
    dest = str(tmp_path_factory.mktemp('copy') / 'repo')
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(
        '.git', '.venv*', 'logs', '__pycache__', '.pytest_cache', '*.h5', '*.hdf5'))
    return dest


@pytest.fixture
def repo(pristine, tmp_path):
    """A fresh copy that a test may break."""
    dest = str(tmp_path / 'repo')
    shutil.copytree(pristine, dest)
    return dest


def edit(path, old, new):
    with open(path, encoding='utf-8') as f:
        text = f.read()
    assert old in text, 'the edit changed nothing; the test no longer breaks what it means to'
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text.replace(old, new, 1))


def check(root):
    result = run(root, '--check')
    return result.returncode, result.stdout + result.stderr


def test_committed_documents_are_up_to_date(pristine):
    code, out = check(pristine)
    assert code == 0, out


def test_check_fails_when_the_document_is_edited_by_hand(repo):
    edit(os.path.join(repo, 'docs', 'blog-vs-repo.md'), '| same |', '| sam |')
    code, out = check(repo)
    assert code == 1 and 'docs/blog-vs-repo.md is stale' in out


def test_a_moved_line_needs_only_a_regeneration(repo):
    edit(os.path.join(repo, 'allconvnet.py'), '# Importing the libraries',
         '# Where the listing starts.\n# Importing the libraries')
    code, out = check(repo)
    assert code == 1 and 'regenerate with `make docs`' in out
    assert run(repo).returncode == 0
    assert check(repo)[0] == 0


# Each case removes one `# blog:` comment; then the listing lines it explained have no reason.
# 1: the blank line above the next comment ends the block that could have explained line 14.
# 2: the unchanged `shape = tf.shape(data)` above the tf.concat lines ends the block of the
#    comment on get_slice, so lines 17 and 18 borrow none.
UNEXPLAINED = [
    ("# blog: `device` ('/gpu:%d', the post's placement, by default) lets tests and "
     "--towers-on-cpu\n# put the towers on a session's virtual CPU devices ('/cpu:%d'). "
     "[repo]\n", {14: r'def make_parallel\(model, gpu_count\):'}),
    ("    # blog: TF 1.x takes tf.concat(values, axis); the post's pre-1.0 tf.concat(0, values) "
     "fails\n    # with \"Expected int32, got list containing Tensors\" (keras-extras issue #8). "
     "[TF 1.15 API;\n    # keras-extras 23fb548]\n",
     {17: r'size = tf.concat\(0, .*\)', 18: r'stride = tf.concat\(0, .*\)'}),
]


@pytest.mark.parametrize('comment, lines', UNEXPLAINED, ids=['blank-line', 'unchanged-line'])
def test_check_fails_when_a_changed_line_loses_its_reason(repo, comment, lines):
    edit(os.path.join(repo, 'make_parallel.py'), comment, '')
    code, out = check(repo)
    assert code == 1
    for number, text in lines.items():
        assert re.search(r"listing line %d \('%s'\) is changed at make_parallel.py:\d+ but no "
                         r"`# blog:` comment explains it" % (number, text), out), out


def test_one_comment_explains_its_run_of_changed_and_added_lines():
    files = {rel: blog_diff.Code(rel) for rel in blog_diff.CODE_FILES}
    rows = {r[0]: r for r in blog_diff.align(blog_diff.read_listing(), files)}
    mp = files['make_parallel.py']

    def why(number):
        number, text, block, status, code, a, b = rows[number]
        assert status == 'changed' and code is mp, rows[number]
        return blog_diff.reason(mp, a)[0]
    # Listing lines 17 and 18 (size, stride) are changed one after the other under one comment.
    assert why(17).startswith('TF 1.x takes tf.concat(values, axis)')
    assert why(18) == why(17)
    # Line 42's `return Model(...)` became three lines: one changed, two added after it.
    added = next(run for code, run in blog_diff.added_runs(files)
                 if code is mp and 'callback_model' in mp.lines[run[0]])
    assert rows[42][6] + 1 == added[0]
    assert blog_diff.reason(mp, added[0]) == blog_diff.reason(mp, rows[42][5])


def test_check_fails_when_an_added_line_has_no_reason(repo):
    edit(os.path.join(repo, 'allconvnet.py'), '    template.summary()\n',
         '    template.summary()\n\n    print(K.floatx())\n')
    code, out = check(repo)
    assert code == 1 and "('print(K.floatx())') is added but no `# blog:` comment" in out


def test_check_fails_when_a_reason_names_an_unknown_source(repo):
    edit(os.path.join(repo, 'allconvnet.py'), '[Keras 1.2.2 API]', '[a blog comment]')
    code, out = check(repo)
    assert code == 1 and "unknown source 'a blog comment'" in out


def test_check_fails_when_a_listing_line_is_not_accounted_for(repo):
    with open(os.path.join(repo, 'docs', 'blog_listing.txt'), 'a') as f:
        f.write('model.add(MaxPooling2D(pool_size=(3, 3), strides=(2, 2)))\n')
    code, out = check(repo)
    assert code == 1
    assert re.search(r'listing line 86 is not accounted for: .*MaxPooling2D', out), out


def test_check_fails_when_a_claim_points_at_a_test_that_is_gone(repo):
    edit(os.path.join(repo, 'tests', 'test_make_parallel.py'),
         'def test_ops_really_run_on_each_device(', 'def test_ops_run_on_each_device(')
    code, out = check(repo)
    assert code == 1 and 'test_ops_really_run_on_each_device, which does not exist' in out


def test_every_listing_line_is_accounted_for_with_a_reason():
    with open(os.path.join(ROOT, 'docs', 'blog-vs-repo.md'), encoding='utf-8') as f:
        rows = [l for l in f if re.match(r'^\| \d+ \|', l)]
    assert [int(re.match(r'^\| (\d+) \|', r).group(1)) for r in rows] == list(range(1, 86))
    for row in rows:
        assert 'NOT ACCOUNTED' not in row
        if '**changed**' in row:
            assert row.rstrip(' |\n').endswith(')*'), 'a change without reason and source: ' + row


def looks_like_prose(text):
    """A line of the post that is English, not Python: the rule blog_listing.txt states.
    Prose does not parse as Python and is mostly plain words; a lone word ("Convolution",
    from a numbered list) parses as a name but is a heading all the same."""
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


@pytest.mark.skipif(not os.path.exists(POST), reason='the post text lives beside the repo')
def test_listing_is_the_posts_own_text_and_each_claim_quotes_it():
    """The listing is the post's code lines, verbatim and in order; each claim quotes it."""
    with open(POST, encoding='utf-8') as f:
        text = f.read()
    flat = ' '.join(text.split())
    for claim in blog_diff.read_claims([]):
        assert ' '.join(claim['quote'].split()) in flat, claim['quote']
    post, k = text.split('\n'), 0
    for number, line, _ in blog_diff.read_listing():
        while k < len(post) and post[k] != line:
            assert looks_like_prose(post[k]), 'post line %d looks like code but is not in the ' \
                'listing: %r' % (k + 1, post[k])
            k += 1
        assert k < len(post), 'listing line %d is not in the post: %r' % (number, line)
        k += 1


def test_the_post_check_catches_a_listing_line_it_lacks(tmp_path, monkeypatch):
    """The check above can fail: a listing with a line the post lacks, and one without a code
    line the post has."""
    if not os.path.exists(POST):
        pytest.skip('the post text lives beside the repo')
    with open(os.path.join(ROOT, blog_diff.LISTING), encoding='utf-8') as f:
        listing = f.read()
    for broken in (listing.replace('model = Sequential()', 'model = Sequential() # x', 1),
                   listing.replace('model = Sequential()\n', '', 1)):
        assert broken != listing
        (tmp_path / 'docs').mkdir(exist_ok=True)
        (tmp_path / blog_diff.LISTING).write_text(broken, encoding='utf-8')
        monkeypatch.setattr(blog_diff, 'ROOT', str(tmp_path))
        monkeypatch.setattr(blog_diff, 'read_claims', lambda problems: [])
        with pytest.raises(AssertionError):
            test_listing_is_the_posts_own_text_and_each_claim_quotes_it()


def test_comparison_ignores_whitespace_outside_strings_only():
    squeeze = blog_diff.squeeze
    assert squeeze("print (X_train.shape[1:])") == squeeze("print(X_train.shape[1:])")
    assert squeeze("border_mode = 'same'") == squeeze("border_mode='same'")
    assert squeeze("x = 'a b'") != squeeze("x = 'ab'")


def test_table_cells_escape_pipes_and_backticks():
    assert blog_diff.code_md('a | b') == '`a \\| b`'
    assert blog_diff.code_md('x = `y`') == '`` x = `y` ``'
    assert blog_diff.prose('a|b <c> `d|e` 32*32') == 'a\\|b &lt;c> `d\\|e` 32\\*32'
