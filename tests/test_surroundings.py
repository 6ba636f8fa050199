"""The surroundings matrix's fast cases (tests/surroundings.py; `make surroundings` runs all):
each entry point under closed and broken streams, limits, another Keras's ~/.keras, a deleted
or odd working folder and links planted in LOGDIR, through the real program."""
import pytest

import surroundings
from conftest import once


@pytest.fixture(scope='session')
def shared(tmp_path_factory, cifar_home, tiny_runs):
    return once(tmp_path_factory, 'surroundings', lambda folder: surroundings.shared_files(
        folder, cifar_home, tiny_runs['single'][0]))


@pytest.mark.parametrize('entry,surrounding', sorted(surroundings.FAST))
def test_entry_point_in_surrounding(shared, entry, surrounding):
    assert surroundings.run_case(entry, surrounding, shared) == []


@pytest.mark.parametrize('entry', ['allconvnet.py', 'runkit.dataset'])
def test_two_at_once(shared, entry):
    assert surroundings.run_twice(entry, shared) == []
