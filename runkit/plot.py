"""Accuracy and loss against epoch: every run's curves.png, and the overlays of tools/curves.py.

matplotlib is drawn through its Agg canvas, never pyplot, so no display is needed and no
global figure state is left behind in the training process.
"""
import io
import os

import pandas

from runkit.files import write_whole
from runkit.logdir import CURVES, HISTORY, RUN_JSON

PANELS = (('accuracy', 'acc', 'val_acc'), ('loss', 'loss', 'val_loss'))
COLOURS = ['C%d' % i for i in range(10)]
# Up to this many epochs each gets a marker: a line through three points hides them.
MARKED_EPOCHS = 30
# (curve, line, marker face): a one-epoch run has dots and no lines, so the markers differ too.
STYLES = (('validation', '-', None), ('train', '--', 'white'))


def label(name, run):
    """`name` and the settings that shape a curve, from a run.json record (or None)."""
    if not run:
        return name
    args = run.get('args') or {}
    recipe = run.get('recipe_name') or args.get('recipe')
    parts = ['%s recipe' % recipe] if recipe else []
    opt = run.get('optimizer') or {}
    config = opt.get('config') or {}
    if 'lr' in config:
        text = '%s lr=%g' % (opt.get('class_name', 'optimizer'), config['lr'])
        if config.get('momentum'):
            text += ' m=%g%s' % (config['momentum'], ' nesterov' if config.get('nesterov') else '')
        parts.append(text)
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


def formats():
    """{extension: description} of the image formats plot() writes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    return FigureCanvasAgg.get_supported_filetypes()


def figure(curves, reference=None, title=None, band=None):
    """The matplotlib Figure of [(label, frame indexed by epoch)]: accuracy and loss panels.

    Solid lines and filled markers are validation, dashed lines and hollow markers train;
    `reference`, one (label, frame), is drawn thick and grey beneath. `band`, (label, {column:
    frame by epoch with low, high, min and max}), shades a reference set beneath: light grey
    its band, darker the range of its runs.
    """
    # Imported here, so that compare and claim in tools/curves.py stay quick.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    handles, epochs = [], set()

    def draw(name, frame, colour, **style):
        marker = 'o' if len(frame) <= MARKED_EPOCHS else None
        for ax, (_, train, val) in zip(axes, PANELS):
            for column, (_, dash, face) in zip((val, train), STYLES):
                if column in frame.columns:
                    ax.plot(frame.index, frame[column], dash, color=colour, marker=marker,
                            markersize=4, markerfacecolor=face or colour, **style)
        handles.append(Line2D([], [], color=colour, label=name, **style))
        epochs.update(frame.index)

    if band is not None:
        for ax, (_, _, val) in zip(axes, PANELS):
            frame = band[1].get(val)
            if frame is not None:
                ax.fill_between(frame.index, frame['low'], frame['high'], color='grey',
                                alpha=0.2, linewidth=0, zorder=0)
                ax.fill_between(frame.index, frame['min'], frame['max'], color='grey',
                                alpha=0.35, linewidth=0, zorder=0)
                # fill_between leaves a single epoch blank; a bar marks each epoch's band.
                ax.vlines(frame.index, frame['low'], frame['high'], color='grey', alpha=0.4,
                          linewidth=3, zorder=0)
                epochs.update(frame.index)
        handles.append(Patch(color='grey', alpha=0.3, label='reference set %s' % band[0]))
    if reference is not None:
        draw('reference: %s' % reference[0], reference[1], 'black', linewidth=4, alpha=0.35,
             zorder=1)
    for i, (name, frame) in enumerate(curves):
        draw(name, frame, COLOURS[i % len(COLOURS)], linewidth=1.5, zorder=2)
    handles += [Line2D([], [], color='black', linestyle=dash, marker='o', markersize=4,
                       markerfacecolor=face or 'black', label=curve)
                for curve, dash, face in STYLES]
    for ax, (name, _, _) in zip(axes, PANELS):
        ax.set_xlabel('epoch')
        ax.set_ylabel(name)
        ax.set_title('%s (solid: validation, dashed: train)' % name, fontsize='medium')
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if epochs and len(epochs) <= MARKED_EPOCHS:
            # Half an epoch of margin, so a run of one epoch gets one whole-number tick.
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    if title:
        fig.suptitle(title)
    fig.legend(handles=handles, loc='upper center', bbox_to_anchor=(0.5, 0.0), fontsize='small',
               frameon=False)
    fig.tight_layout()
    return fig


def image(fig, fmt):
    """The bytes of `fig` drawn as `fmt` (png, svg, pdf...)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=100, bbox_inches='tight')
    return buffer.getvalue()


def plot(curves, out, reference=None, title=None, band=None):
    """Draw figure(curves, reference, title, band) into the file `out`, whole or not at all;
    return `out`."""
    fmt = os.path.splitext(out)[1].lstrip('.').lower() or 'png'
    write_whole(out, image(figure(curves, reference, title, band), fmt))
    return out


def plot_run(logdir, run=None):
    """Write LOGDIR/curves.png from its history.csv (what allconvnet.py calls after
    training), labelled from `run`, or from its run.json when it is not given."""
    frame = pandas.read_csv(io.BytesIO(logdir.read(HISTORY)), index_col='epoch')
    if run is None and logdir.exists(RUN_JSON):
        run = logdir.read_json()
    name = label(os.path.basename(os.path.abspath(logdir.path)),
                 run if isinstance(run, dict) else None)
    logdir.write(CURVES, image(figure([(name, frame)]), 'png'))
    return logdir.file(CURVES)
