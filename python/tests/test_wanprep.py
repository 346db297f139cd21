"""The Python package over the repository's fixtures: the same documents as the CLI's --json,
Python exceptions, the helper inside the wheel, Ctrl-C, and the client without a network."""
import _thread
import os
import subprocess
import threading
import time

import pytest

import wanprep

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "fixtures")


def fx(rel):
    return os.path.join(FIX, rel)


def test_check_answers_the_cli_document():
    r = wanprep.check(fx("image/ok_800x600.jpg"))
    assert r["compliant"] is True
    assert r["inputs"][0]["media"]["width"] == 800
    long = wanprep.check(fx("video/dur_30.5s_10fps.mp4"), role="video")
    assert long["compliant"] is False
    f = [f for f in long["inputs"][0]["findings"] if f["rule"] == "video.duration"][0]
    assert f["fixable"] is True and f["severity"] == "error"
    # A JPEG in the video role is judged in that role.
    wrong = wanprep.check(fx("image/ok_800x600.jpg"), role="video")
    assert any(f["rule"] == "video.format" for f in wrong["inputs"][0]["findings"])
    # Limits override as on the command line.
    strict = wanprep.check(fx("video/ok_640x360_3s.mp4"), limits={"video.max_duration_s": 2})
    assert strict["compliant"] is False


def test_pairs_rules_and_quality():
    pair = wanprep.check_pair(fx("people/chelsea.jpg"), fx("video/ok_640x360_3s.mp4"), quality=True)
    notes = [f for f in pair.get("findings", []) if f["rule"] == "pair.framing"]
    assert notes and notes[0]["severity"] == "note"
    ids = [r["rule"] for r in wanprep.rules()["rules"]]
    assert "video.duration" in ids and "pair.framing" in ids


def test_fix_writes_with_the_bundled_helper_and_raises_python_errors(tmp_path):
    assert wanprep.helper() is not None, "the wheel ships wanprep-av"
    out = tmp_path / "trimmed.mp4"
    plan = wanprep.plan(fx("video/dur_30.5s_10fps.mp4"), out)
    assert plan["dry_run"] is True and not out.exists()
    done = wanprep.fix(fx("video/dur_30.5s_10fps.mp4"), out)
    assert done["compliant"] is True and any("trimmed" in c for c in done["changes"])
    assert wanprep.check(out)["compliant"] is True
    with pytest.raises(wanprep.UsageError, match="force=True"):
        wanprep.fix(fx("video/dur_30.5s_10fps.mp4"), out)
    with pytest.raises(wanprep.InputError):
        wanprep.fix(fx("video/dur_1.9s_10fps.mp4"), tmp_path / "short.mp4")
    with pytest.raises(wanprep.UsageError):
        wanprep.check(fx("image/ok_800x600.jpg"), role="audio")
    assert issubclass(wanprep.InputError, wanprep.WanprepError)


def test_ctrl_c_stops_a_long_fix_at_once_and_writes_nothing(tmp_path):
    wide = tmp_path / "wide.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=2100x1000:rate=30:duration=20", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", str(wide)], check=True)
    out = tmp_path / "scaled.mp4"
    threading.Timer(0.5, _thread.interrupt_main).start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        wanprep.fix(wide, out)
    assert time.monotonic() - start < 3.0
    time.sleep(0.5)
    assert not out.exists()


def test_the_client_keeps_its_journal_and_raises_network_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(wanprep.AuthError):
        wanprep.Client(state_dir=tmp_path)
    # A closed loopback port stands for an unreachable service: nothing leaves the machine.
    monkeypatch.setenv("DASHSCOPE_BASE_URL", "http://127.0.0.1:9")
    c = wanprep.Client(api_key="sk-test-python", state_dir=tmp_path / "state")
    assert c.tasks()["tasks"] == []
    bad = c.submit(fx("image/dims_199x300.png"), fx("video/ok_640x360_3s.mp4"))
    assert bad["submitted"] is False and bad["check"]["compliant"] is False
    with pytest.raises(wanprep.NetworkError) as e:
        c.submit(fx("image/ok_800x600.jpg"), fx("video/ok_640x360_3s.mp4"), quality=False)
    assert "sk-test-python" not in str(e.value)
    with pytest.raises(wanprep.NetworkError):
        c.wait("0385dc79-5ff8-4d82-bcb6-xxxxxx", output=tmp_path / "r.mp4", poll_interval=0.1, timeout=1)
    with pytest.raises(wanprep.UsageError):
        c.wait("../escape")
