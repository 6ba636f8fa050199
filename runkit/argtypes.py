"""Argument types and the one-line-error parser shared by allconvnet.py, predict.py and tools/.

Kept free of Keras and TensorFlow imports, so that a usage error is instant and quiet.
"""
import argparse
import math
import sys

from runkit.errors import say


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line, `PROG: error: ...`, and exit code 2 (no usage block)."""

    def error(self, message):
        say(self.prog, 'error', message)
        sys.exit(2)


def whole_number(text, ok, rule):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not a whole number' % text)
    if not ok(value):
        raise argparse.ArgumentTypeError('must be %s, got %d' % (rule, value))
    return value


def count_or_all(text):
    """A whole number of 0 or more, or 'all'."""
    if text == 'all':
        return text
    return whole_number(text, lambda v: v >= 0, "0 (CPU), a positive count or all")


def positive_int(text):
    return whole_number(text, lambda v: v >= 1, '1 or more')


def _float(text, ok, rule):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not a number' % text)
    if not math.isfinite(value) or not ok(value):
        raise argparse.ArgumentTypeError('must be a finite number %s, got %s' % (rule, text))
    return value


def seed(text):
    """A seed numpy accepts: 0 to 2**32 - 1."""
    return whole_number(text, lambda v: 0 <= v <= 2 ** 32 - 1, 'from 0 to 4294967295 (2**32 - 1)')


def folder(text):
    if not text.strip():
        raise argparse.ArgumentTypeError('needs a folder, not an empty string')
    return text


def positive_float(text):
    return _float(text, lambda v: v > 0, 'above 0')


def non_negative_float(text):
    return _float(text, lambda v: v >= 0, '0 or more')


def fraction(text):
    """A chance or an accuracy: 0 or more and below 1."""
    return _float(text, lambda v: 0 <= v < 1, '0 or more and below 1')


def comma_list(choices):
    """A type for 'a,b,c' with every item one of `choices`; it returns the list."""
    def parse(text):
        items = [item.strip() for item in text.split(',') if item.strip()]
        if not items or set(items) - set(choices):
            raise argparse.ArgumentTypeError('%r: give a comma-separated list of %s'
                                             % (text, ', '.join(choices)))
        return items
    return parse


def assignment(value_type, keys=None):
    """A type for KEY=VALUE, KEY one of `keys` when given; it returns (KEY, value_type(VALUE))."""
    def parse(text):
        key, sep, value = text.partition('=')
        if not sep or not key or (keys and key not in keys):
            raise argparse.ArgumentTypeError('%r: write KEY=VALUE%s' % (
                text, ' with KEY one of ' + ', '.join(keys) if keys else ''))
        return key, value_type(value)
    return parse
