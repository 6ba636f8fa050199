"""Accuracy and loss against epoch: every run's curves.png, and the overlays of tools/curves.py.

matplotlib is drawn through its Agg canvas, never pyplot, so no display is needed and no
global figure state is left behind in the training process.
"""
import os

import pandas

from runkit.records import read_json, replace_atomically

PANELS = (('accuracy', 'acc', 'val_acc'), ('loss', 'loss', 'val_loss'))
COLOURS = ['C%d' % i for i in range(10)]
# Up to this many epochs each gets a marker: a line through three points hides them.
MARKED_EPOCHS = 30


def label(name, run):
    """`name` and the settings that shape a curve, from a run.json record (or None)."""
    if not run:
        return name
    parts = []
    opt = run.get('optimizer') or {}
    config = opt.get('config') or {}
    if 'lr' in config:
        text = '%s lr=%g' % (opt.get('class_name', 'optimizer'), config['lr'])
        if config.get('momentum'):
            text += ' m=%g%s' % (config['momentum'], ' nesterov' if config.get('nesterov') else '')
        parts.append(text)
    args = run.get('args') or {}
    if args.get('batch_size'):
        parts.append('bs %s' % args['batch_size'])
    if args.get('train_limit'):
        parts.append('%s train' % args['train_limit'])
    if (run.get('towers') or 1) > 1:
        parts.append('%s towers' % run['towers'])
    if run.get('seed') is not None:
        parts.append('seed %s%s' % (run['seed'], ' det' if args.get('deterministic') else ''))
    if run.get('status') not in (None, 'finished'):
        parts.append(run['status'])
    return '%s (%s)' % (name, ', '.join(parts)) if parts else name


def plot(curves, out, reference=None, title=None):
    """Draw [(label, frame indexed by epoch)] into `out`; return `out`.

    Solid lines are validation, dashed train; `reference`, one (label, frame), is drawn thick
    and grey beneath. The file is written whole, so a reader never sees half an image.
    """
    # Imported here, so that compare and claim in tools/curves.py stay quick.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    handles = []

    def draw(name, frame, colour, **style):
        marker = 'o' if len(frame) <= MARKED_EPOCHS else None
        for ax, (_, train, val) in zip(axes, PANELS):
            for column, dash in ((val, '-'), (train, '--')):
                if column in frame.columns:
                    ax.plot(frame.index, frame[column], dash, color=colour, marker=marker,
                            markersize=3, **style)
        handles.append(Line2D([], [], color=colour, label=name, **style))

    if reference is not None:
        draw('reference: %s' % reference[0], reference[1], 'black', linewidth=4, alpha=0.35,
             zorder=1)
    for i, (name, frame) in enumerate(curves):
        draw(name, frame, COLOURS[i % len(COLOURS)], linewidth=1.5, zorder=2)
    for ax, (name, _, _) in zip(axes, PANELS):
        ax.set_xlabel('epoch')
        ax.set_ylabel(name)
        ax.set_title('%s (solid: validation, dashed: train)' % name, fontsize='medium')
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    fig.legend(handles=handles, loc='upper center', bbox_to_anchor=(0.5, 0.0), fontsize='small',
               frameon=False)
    fig.tight_layout()
    # The temporary name hides the format from savefig, so it is passed.
    fmt = os.path.splitext(out)[1].lstrip('.').lower() or 'png'
    replace_atomically(lambda tmp: fig.savefig(tmp, format=fmt, dpi=100, bbox_inches='tight'),
                       out)
    return out


def plot_run(logdir):
    """Write logdir/curves.png from logdir/history.csv (what allconvnet.py calls after training)."""
    frame = pandas.read_csv(os.path.join(logdir, 'history.csv'), index_col='epoch')
    record = os.path.join(logdir, 'run.json')
    run = read_json(record) if os.path.exists(record) else None
    name = label(os.path.basename(os.path.abspath(logdir)), run)
    return plot([(name, frame)], os.path.join(logdir, 'curves.png'))
