"""Check, fix and submit inputs for the Wan image-to-action API (``wan2.2-animate-move``).

Every function answers what the ``wanprep`` CLI prints with ``--json``, as a dict::

    import wanprep
    report = wanprep.check("dance.mp4", role="video")
    if not report["compliant"]:
        wanprep.fix("dance.mp4", "dance-fixed.mp4")

Long calls release the GIL and stop at Ctrl-C (KeyboardInterrupt). Errors are
:class:`WanprepError` subclasses. Video fixes and checks that decode frames need the FFmpeg
helper ``wanprep-av``: the wheel ships it inside the package (``WANPREP_AV`` names another).
"""

import json as _json
import os as _os

_helper = _os.path.join(_os.path.dirname(__file__), "bin", "wanprep-av")
if _os.path.isfile(_helper):
    _os.environ.setdefault("WANPREP_AV", _helper)

from . import _wanprep as _native  # noqa: E402
from ._wanprep import (  # noqa: E402,F401
    AuthError,
    InputError,
    NetworkError,
    SetupError,
    UsageError,
    WanprepError,
)

__all__ = [
    "check", "check_pair", "plan", "fix", "rules", "helper", "Client",
    "WanprepError", "InputError", "UsageError", "SetupError", "NetworkError", "AuthError",
]


def _limits(limits):
    if limits is None:
        return []
    return [(str(k), float(v)) for k, v in dict(limits).items()]


def helper():
    """The FFmpeg helper's path, or ``None`` when it is missing (video fixes then raise SetupError)."""
    found = _os.environ.get("WANPREP_AV")
    return found if found and _os.path.isfile(found) else None


def check(path_or_url, role=None, deep=False, limits=None, quality=False):
    """Probes and checks one input (a path or an http(s) URL): the ``check --json`` document.

    ``role``: ``"image"``, ``"video"`` or ``None`` (judged as what its content is).
    ``limits``: overrides such as ``{"video.max_duration_s": 15}``.
    """
    return _json.loads(_native.check([(_os.fspath(path_or_url), role)], deep, _limits(limits), quality))


def check_pair(image, video, deep=False, limits=None, quality=False):
    """Checks an image and a video in their roles, with the pair warnings (and, with
    ``quality``, the framing comparison): the ``check --json --image I --video V`` document."""
    inputs = [(_os.fspath(image), "image"), (_os.fspath(video), "video")]
    return _json.loads(_native.check(inputs, deep, _limits(limits), quality))


def plan(path, output, **options):
    """What :func:`fix` would do, without writing: the ``fix --dry-run --json`` document."""
    return fix(path, output, dry_run=True, **options)


def fix(input, output, force=False, dry_run=False, aspect=None, start=None, duration=None,
        limits=None, match_framing=None):
    """Makes ``input`` compliant into ``output`` (the format its extension names; ``input`` is
    never modified): the ``fix --json`` document. Raises :class:`InputError` when it cannot be
    fixed, :class:`UsageError` when ``output`` exists (``force=True`` replaces it)."""
    framing = None if match_framing is None else _os.fspath(match_framing)
    return _json.loads(_native.fix(_os.fspath(input), _os.fspath(output), dry_run, force, aspect, start,
                                   duration, _limits(limits), framing))


def rules():
    """The rules and limits: the ``rules --json`` document."""
    return _json.loads(_native.rules())


class Client:
    """A DashScope client with wanprep's task journal: a repeated submit of the same job
    resumes its task instead of paying again.

    The key is ``api_key``, else ``DASHSCOPE_API_KEY`` (or the official SDK's key files);
    ``DASHSCOPE_BASE_URL`` and ``DASHSCOPE_REGION`` are read as the CLI reads them.
    """

    def __init__(self, api_key=None, region=None, state_dir=None):
        self._c = _native.Client(api_key, region, None if state_dir is None else _os.fspath(state_dir))

    def submit(self, image, video, mode="wan-std", wait=False, output=None, new=False, quality=True,
               poll_interval=15.0, timeout=None):
        """Checks the pair, uploads local files, creates (or resumes) the task; with ``wait``,
        polls it and downloads the result to ``output``: the ``submit --json`` document."""
        out = None if output is None else _os.fspath(output)
        return _json.loads(self._c.submit(_os.fspath(image), _os.fspath(video), mode, wait, out, new, quality,
                                          poll_interval, timeout))

    def wait(self, task_id, output=None, poll_interval=15.0, timeout=None, force=False):
        """Polls a task until it ends and downloads its result: the ``wait --json`` document."""
        out = None if output is None else _os.fspath(output)
        return _json.loads(self._c.wait(task_id, out, poll_interval, timeout, force))

    def status(self, task_id):
        """The task as the service reports it now."""
        return _json.loads(self._c.status(task_id))

    def cancel(self, task_id):
        """Cancels a task still PENDING: ``{"task_id", "canceled", "status"}``."""
        return _json.loads(self._c.cancel(task_id))

    def tasks(self):
        """The journal's tasks: the ``tasks --json`` document."""
        return _json.loads(self._c.tasks())
