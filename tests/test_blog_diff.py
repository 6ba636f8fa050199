"""tools/blog_diff.py: the committed comparison is current, and --check catches each way it rots.

Each failure case runs the real tool on a copy of the repo with one thing broken, so a pass
here means CI would have failed on that breakage. No TensorFlow: the tool reads text only.
"""
import csv
import io
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, 'tools', 'blog_diff.py')
POST = os.path.join(os.path.dirname(ROOT), 'shared', 'seed', 'blog-post.txt')

sys.path.insert(0, ROOT)
from tools import blog_diff  # noqa: E402


def run(*args):
    return subprocess.run([sys.executable, TOOL] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=60)


@pytest.fixture
def repo(tmp_path):
    """A copy of the repo's text (no .git, .venv or logs) that a test may break."""
    dest = str(tmp_path / 'repo')
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(
        '.git', '.venv', 'logs', '__pycache__', '.pytest_cache', '*.h5', '*.hdf5'))
    return dest


def edit(path, change):
    with io.open(path, encoding='utf-8') as f:
        text = f.read()
    new = change(text)
    assert new != text, 'the edit changed nothing; the test no longer breaks what it means to'
    with io.open(path, 'w', encoding='utf-8', newline='') as f:
        f.write(new)


def edit_reasons(path, listing_startswith, **fields):
    with io.open(path, encoding='utf-8', newline='') as f:
        reader = csv.DictReader(f)
        names, rows = reader.fieldnames, list(reader)
    hits = [r for r in rows if r['listing'].startswith(listing_startswith)]
    assert len(hits) == 1
    hits[0].update(fields)
    with io.open(path, 'w', encoding='utf-8', newline='') as f:
        writer = csv.DictWriter(f, names, lineterminator='\n')
        writer.writeheader()
        writer.writerows(rows)


def check(repo_dir):
    result = run('--check', '--root', repo_dir)
    return result.returncode, result.stdout + result.stderr


def test_committed_documents_are_up_to_date():
    result = run('--check')
    assert result.returncode == 0, (
        'docs/blog-vs-repo.md is out of date or the reasons table is wrong; run '
        '`python tools/blog_diff.py` and read its messages:\n' + result.stderr)


def test_the_copy_passes_before_any_test_breaks_it(repo):
    code, out = check(repo)
    assert code == 0, out


def test_check_fails_when_the_document_is_edited_by_hand(repo):
    edit(os.path.join(repo, 'docs', 'blog-vs-repo.md'), lambda t: t + '\nA hand-written note.\n')
    code, out = check(repo)
    assert code == 1
    assert 'docs/blog-vs-repo.md is stale' in out


def test_check_fails_when_the_code_moves_under_the_document(repo):
    # One new line at the top shifts every line number the document cites.
    edit(os.path.join(repo, 'allconvnet.py'),
         lambda t: t.replace('# Importing the libraries', '#\n# Importing the libraries', 1))
    code, out = check(repo)
    assert code == 1
    assert 'docs/blog-vs-repo.md is stale' in out
    assert 'regenerate with `python tools/blog_diff.py`' in out
    # Regenerating is the whole fix: nothing else was wrong.
    assert run('--root', repo).returncode == 0
    assert check(repo)[0] == 0


def test_check_fails_when_a_listing_line_is_not_accounted_for(repo):
    edit(os.path.join(repo, 'docs', 'blog_listing.txt'),
         lambda t: t + 'model.add(MaxPooling2D(pool_size=(2, 2)))\n')
    code, out = check(repo)
    assert code == 1
    assert re.search(r'listing line 86 is not accounted for: .*MaxPooling2D', out), out


def test_check_fails_when_a_changed_line_has_no_reason(repo):
    edit_reasons(os.path.join(repo, 'docs', 'blog_reasons.csv'), 'print (model.summary())',
                 reason='')
    code, out = check(repo)
    assert code == 1
    assert re.search(r"listing line 70 \('print \(model.summary\(\)\)'\) is changed but has no "
                     r"reason", out), out


def test_check_fails_when_a_change_names_no_known_source(repo):
    edit_reasons(os.path.join(repo, 'docs', 'blog_reasons.csv'), 'print (model.summary())',
                 source='a blog comment')
    code, out = check(repo)
    assert code == 1
    assert "unknown source 'a blog comment'" in out


def test_check_fails_when_a_location_no_longer_matches_the_code(repo):
    edit(os.path.join(repo, 'allconvnet.py'),
         lambda t: t.replace('template.summary()', 'template.summary(line_length=90)'))
    code, out = check(repo)
    assert code == 1
    assert "'template.summary()' is no longer in allconvnet.py (listing line 70)" in out


def test_check_fails_when_a_changed_line_becomes_identical(repo):
    # A row that explains a difference the code no longer has is stale, too.
    edit(os.path.join(repo, 'make_parallel.py'),
         lambda t: t.replace("def make_parallel(model, gpu_count, device='/gpu:%d'):",
                             'def make_parallel(model, gpu_count):'))
    code, out = check(repo)
    assert code == 1
    assert 'is marked changed, but make_parallel.py:' in out


def test_check_fails_when_a_claim_points_at_a_test_that_is_gone(repo):
    edit(os.path.join(repo, 'tests', 'test_make_parallel.py'),
         lambda t: t.replace('def test_ops_really_run_on_each_device(',
                             'def test_ops_run_on_each_device(', 1))
    code, out = check(repo)
    assert code == 1
    assert 'test_ops_really_run_on_each_device, which does not exist' in out


def test_the_document_accounts_for_every_listing_line():
    listing, _ = blog_diff.read_listing(os.path.join(ROOT, 'docs', 'blog_listing.txt'))
    with io.open(os.path.join(ROOT, 'docs', 'blog-vs-repo.md'), encoding='utf-8') as f:
        doc = f.read()
    section = doc.split('## 1. ')[1].split('## 2. ')[0]
    rows = [r for r in section.splitlines() if re.match(r'^\| \[\d+\]\(', r)]
    assert [int(re.match(r'^\| \[(\d+)\]', r).group(1)) for r in rows] == \
        list(range(1, len(listing) + 1))
    for row in rows:
        assert 'NOT ACCOUNTED' not in row
        if '**changed**' in row or '**not used**' in row:
            assert row.rstrip(' |').endswith(')*'), 'a change without reason and source: ' + row


def test_readme_block_is_generated_between_the_markers(repo):
    readme = os.path.join(repo, 'README.md')
    with io.open(readme, 'w', encoding='utf-8') as f:
        f.write('# x\n\n%s\nold table\n%s\n\nrest\n'
                % (blog_diff.GLANCE_BEGIN, blog_diff.GLANCE_END))
    assert check(repo)[0] == 1
    assert run('--root', repo).returncode == 0
    with io.open(readme, encoding='utf-8') as f:
        text = f.read()
    assert 'old table' not in text and text.endswith('\n\nrest\n')
    # Links relative to the README, not to docs/.
    assert re.search(r'\[allconvnet\.py:(\d+)\]\(allconvnet\.py#L\1\)', text)
    assert '](../allconvnet.py' not in text
    assert check(repo)[0] == 0


@pytest.mark.skipif(not os.path.exists(POST), reason='the blog post text is not beside the repo')
def test_listing_and_quotes_are_the_posts_own_text():
    result = run('--check', '--blog', POST)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not os.path.exists(POST), reason='the blog post text is not beside the repo')
def test_a_dropped_code_line_is_caught_against_the_post(repo):
    edit(os.path.join(repo, 'docs', 'blog_listing.txt'),
         lambda t: t.replace("callbacks_list = [checkpoint]\n", '', 1))
    result = run('--check', '--root', repo, '--blog', POST)
    assert result.returncode == 1
    assert ("'callbacks_list = [checkpoint]' looks like code but is not in the listing"
            in result.stderr)


def test_comparison_ignores_whitespace_outside_strings_only():
    squeeze = blog_diff.squeeze
    assert squeeze("print (X_train.shape[1:])") == squeeze("print(X_train.shape[1:])")
    assert squeeze("border_mode = 'same'") == squeeze("border_mode='same'")
    assert squeeze("x = 'a b'") != squeeze("x = 'ab'")


def test_table_cells_escape_pipes_and_backticks():
    assert blog_diff.code('a | b') == '`a \\| b`'
    assert blog_diff.code('x = `y`') == '`` x = `y` ``'
    assert blog_diff.prose('a|b <c> `d|e` 32*32') == 'a\\|b &lt;c> `d\\|e` 32\\*32'
