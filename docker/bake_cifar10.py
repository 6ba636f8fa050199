"""Put CIFAR-10 into the image at build time (`--build-arg BAKE_CIFAR10=1`), where and how Keras
1.2.2 reads it, so that runs of the image need no network. The Dockerfile runs it as the image's
user; with BAKE_CIFAR10=0 (the default) it only creates the empty cache folder.

    python bake_cifar10.py BAKE LOCAL_DIR [URL]

The archive comes from LOCAL_DIR/cifar-10-python.tar.gz when the build context has one there
(docker/cifar10/), otherwise from URL (empty or absent: runkit.dataset's default, the CIFAR-10
page). runkit.dataset.ensure() does the rest, as on a container's first run: the MD5, the
cache path, unpacking and a check of every batch, so that a bad archive fails the build.
"""
import os
import pathlib
import sys

# runkit is copied next to this script, whose folder Python puts first on the path: the same
# code that a first run downloads with.
from runkit import dataset

ARCHIVE_NAME = 'cifar-10-python.tar.gz'


def main(argv):
    if len(argv) not in (2, 3) or argv[0] not in ('0', '1'):
        raise SystemExit('usage: bake_cifar10.py 0|1 LOCAL_DIR [URL] (BAKE_CIFAR10 must be 0 or 1)')
    bake, local_dir = argv[:2]
    url = argv[2] if len(argv) == 3 else ''
    datadir = dataset.cache_dir()
    os.makedirs(datadir, exist_ok=True)
    if bake == '0':
        print('bake_cifar10: BAKE_CIFAR10=0, the image expects the data in a volume at %s'
              % datadir)
        return 0
    local = os.path.join(local_dir, ARCHIVE_NAME)
    hint = '; or put %s in docker/cifar10/ and build again' % ARCHIVE_NAME
    if os.path.isfile(local):
        print('bake_cifar10: using %s from the build context' % ARCHIVE_NAME, flush=True)
        url, hint = pathlib.Path(os.path.abspath(local)).as_uri(), ''
    try:
        folder = dataset.ensure(url=url or None)
    except dataset.DatasetError as e:
        raise SystemExit('bake_cifar10: %s%s' % (e, hint))
    print('bake_cifar10: CIFAR-10 baked into %s' % folder)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
