"""Crunch's Python runner: one long-lived interpreter per conversation, inside its sandbox.

Started by the local engine (src/engines/local/interpreter.ts) as `python3 -I -B runner.py '<config JSON>'`.
Requests come in on fd 0 and replies go out on fd 3, one JSON object per line. Before any user code runs,
the runner sets its resource limits (memory, processes, file size; CPU time per execution), takes the
protocol pipes for itself, points fd 0 at /dev/null and fds 1 and 2 at a private, unlinked capture file.
Each execution works like a notebook cell: variables persist, the value of a last expression is shown,
matplotlib figures still open afterwards are rendered to PNG (and closed), and output is capped.
"""

import ast
import base64
import builtins
import io
import json
import linecache
import math
import os
import resource
import signal
import sys
import tempfile
import time
import traceback

RUNNER_FILE = os.path.abspath(__file__)
MAIN_PID = os.getpid()

PRELOAD = ('numpy', 'pandas', 'matplotlib.pyplot')


class CpuLimitExceeded(BaseException):
    """Raised inside the cell when it used up its CPU seconds (SIGXCPU)."""


class OutputLimitExceeded(BaseException):
    """Raised inside the cell when it printed more than the output limit."""


class Capture(io.TextIOBase):
    """sys.stdout and sys.stderr during a cell: keeps the head and the tail, stops the cell past `limit`."""

    def __init__(self, head, tail, limit):
        self.head_max, self.tail_max, self.limit = head, tail, limit
        self.reset()

    def reset(self):
        self.head, self.tail, self.total, self.active = '', '', 0, False

    encoding = 'utf-8'

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f'write() argument must be str, not {type(text).__name__}')
        size = len(text)
        self.total += size
        room = self.head_max - len(self.head)
        if room > 0:
            self.head += text[:room]
            text = text[room:]
        if text:
            self.tail = (self.tail + text[-self.tail_max:])[-self.tail_max:]
        if self.active and self.total > self.limit:
            self.active = False
            raise OutputLimitExceeded()
        return size

    def text(self):
        omitted = self.total - len(self.head) - len(self.tail)
        if omitted <= 0:
            return self.head + self.tail
        return f'{self.head}\n[... {omitted} characters omitted ...]\n{self.tail}'


def set_limit(kind, value):
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))


def apply_limits(config):
    set_limit(resource.RLIMIT_AS, config['memoryBytes'])
    set_limit(resource.RLIMIT_NPROC, config['maxProcesses'])
    set_limit(resource.RLIMIT_FSIZE, config['maxFileBytes'])
    set_limit(resource.RLIMIT_CORE, 0)
    # A file written past the size limit fails with EFBIG instead of killing the interpreter.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.signal(signal.SIGXCPU, on_cpu_limit)


def on_cpu_limit(_signum, _frame):
    if STATE['in_cell']:
        STATE['in_cell'] = False
        raise CpuLimitExceeded()


def take_fds():
    """The protocol pipes become private; user code sees /dev/null on fd 0 and the capture file on 1 and 2."""
    requests = os.fdopen(os.dup(0), 'rb')
    replies = os.fdopen(os.dup(3), 'wb')
    os.close(3)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    fd, path = tempfile.mkstemp(prefix='crunch-output-')
    out = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.unlink(path)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    return requests, replies, fd


def preload():
    loaded = []
    for name in PRELOAD:
        try:
            __import__(name)
            loaded.append(name)
        except Exception:  # a missing package is reported by probe.py; the runner works without it
            pass
    mpl = sys.modules.get('matplotlib.pyplot')
    if mpl is not None:
        from matplotlib.figure import Figure

        original = Figure.savefig

        def savefig(self, *args, **kwargs):
            self._crunch_saved = True
            return original(self, *args, **kwargs)

        Figure.savefig = savefig
        mpl.show = lambda *args, **kwargs: None
    pandas = sys.modules.get('pandas')
    if pandas is not None:
        pandas.set_option('display.width', 120)
        pandas.set_option('display.max_columns', 30)
    return loaded


def run_cell(code, name):
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    tree = ast.parse(code, name)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, name, 'exec'), NAMESPACE)
    if last is None:
        return None
    value = eval(compile(last, name, 'eval'), NAMESPACE)
    if value is not None:
        NAMESPACE['_'] = value
    return value


def shorten(text, limit, keep_end=False):
    if len(text) <= limit:
        return text
    if keep_end:
        return f'[... {len(text) - limit} characters omitted ...]\n{text[-limit:]}'
    return f'{text[:limit]}\n[... {len(text) - limit} more characters]'


def describe_error(exc):
    summary = traceback.TracebackException.from_exception(exc)
    summary.stack = traceback.StackSummary.from_list([f for f in summary.stack if f.filename != RUNNER_FILE])
    text = ''.join(summary.format())
    return {'type': type(exc).__name__, 'message': str(exc)[:2000], 'traceback': shorten(text, CONFIG['tracebackChars'], keep_end=True)}


def figure_title(fig):
    suptitle = getattr(fig, '_suptitle', None)
    titles = [suptitle.get_text() if suptitle is not None else ''] + [axes.get_title() for axes in fig.axes]
    return next((title.strip() for title in titles if title.strip()), '')


def collect_figures(notes):
    plt = sys.modules.get('matplotlib.pyplot')
    if plt is None:
        return []
    figures = []
    for number in plt.get_fignums():
        fig = plt.figure(number)
        if getattr(fig, '_crunch_saved', False) or not fig.axes:
            continue
        if len(figures) >= CONFIG['maxFigures']:
            notes.append(f'only the first {CONFIG["maxFigures"]} figures were kept')
            break
        buffer = io.BytesIO()
        try:
            fig.savefig(buffer, format='png', dpi=CONFIG['figureDpi'], bbox_inches='tight')
        except Exception as exc:
            notes.append(f'figure {number} could not be rendered: {type(exc).__name__}: {exc}')
            continue
        if buffer.tell() > CONFIG['maxFigureBytes']:
            notes.append(f'figure {number} was too large to keep')
            continue
        figures.append({'title': figure_title(fig), 'png': base64.b64encode(buffer.getvalue()).decode('ascii')})
    plt.close('all')
    return figures


def fd_output(fd):
    """What subprocesses and C code wrote to fds 1 and 2 during the cell (head and tail)."""
    size = os.fstat(fd).st_size
    head = CONFIG['outputHeadChars']
    tail = CONFIG['outputTailChars']
    if size <= head + tail:
        return os.pread(fd, size, 0).decode('utf-8', 'replace')
    first = os.pread(fd, head, 0).decode('utf-8', 'replace')
    last = os.pread(fd, tail, size - tail).decode('utf-8', 'replace')
    return f'{first}\n[... {size - head - tail} bytes omitted ...]\n{last}'


def reap_leftovers():
    """Processes the cell started do not outlive it (only inside the sandbox's own PID namespace)."""
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        return
    while True:  # every child got SIGKILL: wait for each, so none lingers as a zombie (they count as processes)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def execute(request, capture_fd):
    CAPTURE.reset()
    sys.stdout = sys.stderr = CAPTURE
    os.ftruncate(capture_fd, 0)
    used = resource.getrusage(resource.RUSAGE_SELF)
    resource.setrlimit(resource.RLIMIT_CPU, (math.ceil(used.ru_utime + used.ru_stime) + CONFIG['cpuSeconds'], resource.RLIM_INFINITY))
    STATE['cells'] += 1
    status, value, error = 'ok', None, None
    CAPTURE.active = True
    STATE['in_cell'] = True
    try:
        result = run_cell(request['code'], f'<cell {STATE["cells"]}>')
        STATE['in_cell'] = False
        if result is not None:
            try:
                value = shorten(repr(result), CONFIG['valueChars'])
            except Exception as exc:
                value = f'<repr() failed: {type(exc).__name__}>'
    except CpuLimitExceeded:
        status = 'cpu_limit'
    except OutputLimitExceeded:
        status = 'output_limit'
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the session goes on
        status, error = 'error', describe_error(exc)
    finally:
        STATE['in_cell'] = False
        CAPTURE.active = False
        if os.getpid() != MAIN_PID:  # a process the cell forked never returns into the runner
            os._exit(0)
    resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    if CONFIG['reapProcesses']:
        reap_leftovers()
    notes = []
    figures = collect_figures(notes)
    output = {'output': CAPTURE.text(), 'fdOutput': fd_output(capture_fd), 'value': value, 'error': error}
    return {'id': request['id'], 'status': status, **output, 'figures': figures, 'notes': notes}


def main():
    global CONFIG, CAPTURE
    CONFIG = json.loads(sys.argv[1])
    apply_limits(CONFIG)
    requests, replies, capture_fd = take_fds()
    os.chdir(CONFIG['workdir'])
    started = time.monotonic()
    loaded = preload()
    CAPTURE = Capture(CONFIG['outputHeadChars'], CONFIG['outputTailChars'], CONFIG['maxOutputChars'])
    sys.stdout = sys.stderr = CAPTURE
    sys.argv = ['']

    def send(message):
        replies.write(json.dumps(message).encode('utf-8') + b'\n')
        replies.flush()

    send({'type': 'ready', 'preloaded': loaded, 'seconds': round(time.monotonic() - started, 3)})
    for line in requests:
        send({'type': 'result', **execute(json.loads(line), capture_fd)})


NAMESPACE = {'__name__': '__main__', '__builtins__': builtins}
STATE = {'in_cell': False, 'cells': 0}
CONFIG = {}
CAPTURE = None

if __name__ == '__main__':
    main()
