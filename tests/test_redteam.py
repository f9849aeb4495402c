"""The red-team suite: the cases of docs/threat_model.md against the engine, on the mini project.

Each case is the mini reference (``norm.py``: ``Norm``, tests 1-2; ``double``, tests 3-4)
with one hostile change. ``grade_hostile`` checks what must hold whatever the submission
does: results.json valid and under its size cap, no secret marker from the hidden tests or
the reference anywhere in it, no process of the worker user left, the grader's files
unchanged, the run within its time budget. Each case then asserts its own outcome: the
malicious part scores 0 with a clear message, every other test as if the malice were
absent.

The mini project is copied to a world-readable folder with a secret marker in its hidden
test and its reference, so it is the grader (not the folder's permissions) that keeps
workers out. Cases that need root (the user switch) are skipped otherwise, with the reason.
Cases already covered elsewhere: tests/test_isolation.py (exit at import, sys.exit, infinite
loop, ignored signals, patched comparisons, lying tensors, fake results printed, forged
reply bytes and a 10 GB header, runaway memory, honest failures) and tests/test_static_scan.py
(banned-function evasions and the controls).
"""
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from autograder.engine.isolation import privileges
from autograder.engine.formats import gradescope_json
from autograder.engine.runner import grade
from autograder.engine.isolation.workers import WorkerPool
from support import (MINI_PROJECT, MINI_REFERENCE as REFERENCE, MINI_SECRET, ROOT, assert_contained, by_number,
                     file_fingerprint, grader_files, processes_after_teardown, processes_left, replace_def)

pytestmark = pytest.mark.e2e

SECRET = "SECRET-" + uuid.uuid4().hex
NO_SWITCH = privileges.why_no_user_switch()   # None: workers run as a worker user


def needs_root(test):
    """Marked ``root``, and skipped without the worker user switch."""
    return pytest.mark.root(pytest.mark.skipif(
        NO_SWITCH is not None, reason=f"needs the worker user switch ({NO_SWITCH}): without it a worker is the "
        "grader's own user and may read or write what it can")(test))


ALL = {"1", "2", "3", "4"}
BUDGET_S = 90   # far above the mini suite's time limits (10 + 10 + 5 + 5 s) plus start-up


@pytest.fixture(scope="module")
def project():
    """A copy of the mini project, readable by everyone, with a secret marker in hidden material."""
    root = Path(tempfile.mkdtemp(prefix="redteam-project-"))
    os.chmod(root, 0o755)
    shutil.copytree(MINI_PROJECT, root, dirs_exist_ok=True)
    for path in (root / "test_suites" / "mini" / "test_mini.py", root / "reference" / "mini" / "norm.py"):
        path.write_text(path.read_text() + f"\n# {SECRET}\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOGRADER_PROJECT", str(root))
        mp.setenv("AUTOGRADER_REDTEAM_SECRET", SECRET)   # in the grader's environment: workers must not see it
        yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pool(project):
    with WorkerPool() as p:
        p.start()
        yield p


def tree_fingerprint(paths) -> str:
    """Hash of every folder's (path, mtime) under ``paths``: a file created, removed or renamed
    anywhere changes its folder's mtime (cheap enough for all of site-packages)."""
    digest = hashlib.sha256()
    for top in paths:
        for dirpath, dirnames, _ in os.walk(top):
            dirnames.sort()
            digest.update(f"{dirpath}:{os.stat(dirpath).st_mtime_ns}\n".encode())
    return digest.hexdigest()


@pytest.fixture(scope="module", autouse=True)
def python_installation_unchanged(project):
    """Across the whole suite, nothing in the Python installation (stdlib, site-packages) changes."""
    import sysconfig
    paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["stdlib"]]
    before = tree_fingerprint(paths)
    yield
    assert tree_fingerprint(paths) == before, "the Python installation was modified during the red-team suite"


def grade_hostile(tmp_path, pool, project, source, extra_files=None, time_scale=1.0):
    upload = tmp_path / "upload"
    upload.mkdir()
    (upload / "norm.py").write_text(source)
    for name, text in (extra_files or {}).items():
        (upload / name).write_text(text)
    before = file_fingerprint(grader_files(project))
    started = time.monotonic()
    result = grade("mini", upload, device="cpu", pool=pool, time_scale=time_scale)
    assert time.monotonic() - started < BUDGET_S
    assert_contained(result, secrets=(SECRET, MINI_SECRET))
    assert not result.grader_error, result.tests[-1].output
    if pool.user is not None:
        left = processes_after_teardown(pool.user.uid)
        assert left == [], f"processes of the worker user outlived their test: {_describe(left)}"
    assert file_fingerprint(grader_files(project)) == before, "grader files changed"
    return by_number(result)


def _describe(pids):
    out = []
    for pid in pids[:5]:
        try:
            status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status") if ":" in l)
            out.append(f"{pid} {status['State'].strip()} ppid {status['PPid'].strip()}")
        except OSError:
            out.append(f"{pid} gone")
    return "; ".join(out) + f" ({len(pids)} in all)"


def assert_only_failed(tests, failed, *fragments):
    assert {n for n, t in tests.items() if not t.passed} == set(failed), \
        {n: t.output[:300] for n, t in tests.items()}
    for n in failed:
        for fragment in fragments:
            assert fragment in tests[n].output, tests[n].output


def in_double(body):
    return replace_def(REFERENCE, "double", body)


# -- reading what a worker must not read ------------------------------------------------
@needs_root
def test_reading_hidden_tests_reference_and_the_graders_environment(tmp_path, pool, project):
    body = f"""import os
stolen = []
for path in [{str(project / 'test_suites' / 'mini' / 'test_mini.py')!r},
             {str(project / 'reference' / 'mini' / 'norm.py')!r},
             "/proc/%d/environ" % os.getppid(), "/proc/%d/environ" % {os.getpid()}]:
    try:
        stolen.append(open(path, errors="replace").read())
    except OSError as exc:
        print("denied:", exc)
print("".join(stolen))
raise ValueError("".join(stolen)[-3000:] or "nothing could be read")"""
    tests = grade_hostile(tmp_path, pool, project, in_double(body))
    assert_only_failed(tests, {"3", "4"}, "nothing could be read")
    assert "Permission denied" in tests["3"].output


def test_worker_environment_is_minimal(tmp_path, pool, project):
    body = """import os, sys
print(sorted(os.environ))
assert not any(k.startswith(("PYTEST", "CI", "GITHUB", "GRADESCOPE", "AUTOGRADER")) for k in os.environ), sorted(os.environ)
assert sys.flags.isolated and sys.flags.dont_write_bytecode
return 2 * x"""
    tests = grade_hostile(tmp_path, pool, project, in_double(body))
    assert_only_failed(tests, set())


def test_no_network(tmp_path, pool, project):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted = []

    def accept():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not stop.is_set():
            try:
                accepted.append(listener.accept())
            except socket.timeout:
                pass
    stop = threading.Event()
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    body = f"""import socket, subprocess, sys
for family, address in ((socket.AF_INET, ("127.0.0.1", {port})), (socket.AF_INET6, ("::1", {port}))):
    try:
        socket.socket(family).connect(address)
        print("connected!")
    except OSError as exc:
        print("socket:", exc)
child = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('127.0.0.1', {port}))"],
                       capture_output=True, text=True)
print("child:", child.stderr.strip().splitlines()[-1:])
return 2 * x"""
    try:
        tests = grade_hostile(tmp_path, pool, project, in_double(body))
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert accepted == [], "a worker opened a network connection"
    assert_only_failed(tests, set())
    assert "socket: [Errno 13] Permission denied" in tests["3"].output


# -- files that must never be imported ----------------------------------------------------
def test_conftest_sitecustomize_pth_and_shadowing_modules_are_never_imported(tmp_path, pool, project):
    marker = tmp_path / "imported"
    trap = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    files = {name: trap for name in ("conftest.py", "sitecustomize.py", "usercustomize.py", "torch.py",
                                     "numpy.py", "autograder.py", "unittest.py")}
    files["pytest.ini"] = "[pytest]\naddopts = -p no:cacheprovider\n"
    files["evil.pth"] = f"import os; open({str(marker)!r}, 'a').write('pth\\n')\n"
    tests = grade_hostile(tmp_path, pool, project, REFERENCE, files)
    assert_only_failed(tests, set())
    assert not marker.exists(), marker.read_text()


# -- results.json -----------------------------------------------------------------------
def test_results_json_cannot_be_forged_deleted_or_rewritten_later(tmp_path):
    """Through run_autograder: the student writes, chmods and deletes results.json at import,
    leaves a double-forked daemon and an atexit handler that rewrite it later."""
    import subprocess
    assignment = json.loads((ROOT / "autograder" / "deploy.json").read_text())["assignment"]
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    results = root / "results" / "results.json"
    hostile = f"""import atexit, json, os, time
_P = {str(results)!r}
def _forge():
    for attempt in (lambda: open(_P, "w").write(json.dumps({{"score": 1000, "tests": []}})),
                    lambda: os.chmod(_P, 0o444), lambda: os.remove(_P)):
        try:
            attempt()
        except OSError:
            pass
_forge()
atexit.register(_forge)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for _ in range(100):
            _forge()
            time.sleep(0.05)
    os._exit(0)
"""
    for path in (ROOT / "reference" / assignment).glob("*.py"):
        text = path.read_text()
        (root / "submission" / path.name).write_text(hostile + text if path.name == sorted(
            p.name for p in (ROOT / "reference" / assignment).glob("*.py"))[0] else text)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable}
    env.pop("AUTOGRADER_PROJECT")   # the deployed assignment, not the mini copy
    proc = subprocess.run([str(ROOT / "run_autograder")], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    first = results.read_text()
    time.sleep(6)   # the daemon would have rewritten it by now
    assert results.read_text() == first
    data = json.loads(first)
    import jsonschema
    jsonschema.validate(data, gradescope_json.schema())
    assert data["score"] == sum(t["max_score"] for t in data["tests"]) < 1000
    assert not data["extra_data"]["grader_error"], data["tests"][-1]["output"]
    match = re.search(r"workers run as (\S+) \(uid (\d+)\)", data["extra_data"]["sandbox"])
    if NO_SWITCH is None:
        assert match and processes_left(match.group(1), int(match.group(2))) == []


def test_pickle_in_a_reply_frame_is_never_unpickled(tmp_path, pool, project):
    marker = tmp_path / "unpickled"
    body = f"""import json, os, pickle, socket, stat, struct
class Boom:
    def __reduce__(self):
        return (open, ({str(marker)!r}, "w"))
payload = pickle.dumps(Boom())
head = json.dumps({{"ok": True, "value": {{"pickle": 0, "nbytes": len(payload)}}}}).encode()
frame = struct.pack(">4sIQ", b"AGW1", len(head), len(payload)) + head + payload
for fd in range(3, 64):
    try:
        if stat.S_ISSOCK(os.fstat(fd).st_mode):
            socket.socket(fileno=os.dup(fd)).sendall(frame)
    except OSError:
        pass
return 2 * x"""
    tests = grade_hostile(tmp_path, pool, project, in_double(body))
    assert not marker.exists()
    assert_only_failed(tests, {"3", "4"})
    assert "reply" in tests["3"].output


def test_searching_gc_and_frames_finds_no_expected_value(tmp_path, pool, project):
    body = """import gc, inspect, torch
tensors = [o for o in gc.get_objects() if isinstance(o, torch.Tensor)]
frames = [f.frame.f_locals for f in inspect.stack()]
print(f"searched {len(tensors)} tensors and {len(frames)} frames")
best = max((t for t in tensors if t.shape == getattr(x, "shape", None) and t is not x), key=lambda t: t.sum(), default=None)
return best if best is not None else x"""
    tests = grade_hostile(tmp_path, pool, project, in_double(body))
    assert_only_failed(tests, {"3", "4"})


# -- hangs -------------------------------------------------------------------------------
def test_sleeping_forever_while_catching_base_exception(tmp_path, pool, project):
    body = "import time\nwhile True:\n    try:\n        time.sleep(10**6)\n    except BaseException:\n        pass"
    tests = grade_hostile(tmp_path, pool, project, in_double(body), time_scale=0.3)
    assert_only_failed(tests, {"3", "4"}, "time limit of 1.5 s")


# -- exhausting resources ----------------------------------------------------------------
@needs_root
def test_fork_bomb(tmp_path, pool, project):
    body = """import os
forked = 0
try:
    while True:
        if os.fork() == 0:
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
        forked += 1
except OSError as exc:
    raise RuntimeError(f"fork bomb stopped after {forked} processes: {exc}")"""
    tests = grade_hostile(tmp_path, pool, project, in_double(body))
    assert_only_failed(tests, {"3", "4"})
    # stopped by the process limit, or by the memory watchdog when the copies add up first
    assert "fork bomb stopped" in tests["3"].output or "MiB of memory" in tests["3"].output


@needs_root
def test_thread_bomb(tmp_path, pool, project):
    body = """import threading, time
started = 0
try:
    while True:
        threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
        started += 1
except RuntimeError as exc:
    raise RuntimeError(f"thread bomb stopped after {started} threads: {exc}")"""
    tests = grade_hostile(tmp_path, pool, project, in_double(body))
    assert_only_failed(tests, {"3", "4"}, "thread bomb stopped")


def test_printing_gigabytes(tmp_path, pool, project):
    body = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536 + '\\n')"
    tests = grade_hostile(tmp_path, pool, project, in_double(body), time_scale=0.3)
    assert_only_failed(tests, {"3", "4"}, "time limit")
    assert "more bytes of output were cut" in tests["3"].output or "[... cut]" in tests["3"].output


def test_writing_a_huge_file(tmp_path, pool, project):
    body = """import os
with open(os.path.join(os.environ["HOME"], "huge.bin"), "wb") as fh:
    while True:
        fh.write(b"\\0" * 2**20)"""
    tests = grade_hostile(tmp_path, pool, project, in_double(body))
    assert_only_failed(tests, {"3", "4"}, "File too large")


@needs_root
def test_tampering_with_the_grader_and_the_python_installation(tmp_path, pool, project):
    import torch
    targets = [str(Path(torch.__file__)), str(Path(os.__file__)), str(ROOT / "autograder" / "engine" / "runner.py"),
               str(project / "test_suites" / "mini" / "test_mini.py")]
    body = f"""import os, site, sysconfig
done = []
for path in {targets!r}:
    try:
        open(path, "a").write("\\n# tampered\\n")
        done.append(path)
    except OSError as exc:
        print(exc)
try:
    open(os.path.join(sysconfig.get_paths()["purelib"], "evil.pth"), "w").write("import os\\n")
    done.append("evil.pth")
except OSError as exc:
    print(exc)
if done:
    raise RuntimeError(f"tampered with {{done}}")
return 2 * x"""
    tests = grade_hostile(tmp_path, pool, project, in_double(body))
    assert_only_failed(tests, set())
    assert "Permission denied" in tests["3"].output


def test_student_output_is_escaped(tmp_path, pool, project):
    body = "print('\\x1b[2J\\x1b[31mPASSED\\x00\\x07 <script>alert(1)</script>\\r\\nok')\nreturn 2 * x"
    tests = grade_hostile(tmp_path, pool, project, in_double(body))
    assert_only_failed(tests, set())
    out = json.loads(gradescope_json.render(_single(tests)))["tests"][0]["output"]
    assert "\x1b" not in out and "\x00" not in out and "\x07" not in out and "\r" not in out
    assert "PASSED" in out


def _single(tests):
    from autograder.engine.results import GradingResult
    return GradingResult(assignment="mini", tests=[tests["3"]])


@needs_root
def test_gradescope_metadata_with_earlier_results_is_unreadable_to_workers(tmp_path, project, monkeypatch):
    """/autograder/submission_metadata.json holds earlier results (hidden tests included): the
    grader reads what it needs and workers cannot open it."""
    from autograder import cli
    root = tmp_path / "autograder"
    os.makedirs(root / "submission")
    os.chmod(tmp_path, 0o755)
    os.chmod(root, 0o755)
    meta = root / "submission_metadata.json"
    meta.write_text(json.dumps({"created_at": "2024-03-01T10:00:00Z", "previous_submissions": [
        {"submission_time": "2024-02-29T10:00:00Z", "results": {"tests": [{"name": SECRET}]}}]}))
    os.chmod(meta, 0o644)                       # as Gradescope leaves it
    body = (f"try:\n    return open({str(meta)!r}).read()\nexcept OSError:\n    return 2 * x")
    (root / "submission" / "norm.py").write_text(replace_def(REFERENCE, "double", body))
    deploy = tmp_path / "deploy.json"
    deploy.write_text('{"assignment": "mini"}')
    monkeypatch.setattr("autograder.engine.deploy.PATH", deploy)
    monkeypatch.setenv("AUTOGRADER_ROOT", str(root))
    assert cli.main(["gradescope"]) == 0
    text = (root / "results" / "results.json").read_text()
    data = json.loads(text)
    assert SECRET not in text and data["score"] == 4, [t["output"][:200] for t in data["tests"]]
    assert meta.stat().st_mode & 0o777 == 0o600


HOGS = {   # memory no process's RSS shows, 50 MiB at a time (each file under the 64 MiB file size limit)
    "posix shm": "import os, time\nfor i in range(60):\n    with open('/dev/shm/hog-%d-%d' % (os.getpid(), i), 'wb') as f:\n"
                 "        f.write(b'x' * 50 * 2**20)\n    time.sleep(0.05)\ntime.sleep(3)\nreturn 2 * x",
    "sysv shm": "import ctypes, time\nlibc = ctypes.CDLL(None)\n"
                "segment = libc.shmget(0, ctypes.c_size_t(3 * 2**30), 0o1600)\ntime.sleep(30)\nreturn 2 * x",
    "memfd": "import os, time\nfds = []\nfor i in range(60):\n    fds.append(os.memfd_create('hog'))\n"
             "    os.write(fds[-1], b'x' * 50 * 2**20)\n    time.sleep(0.05)\ntime.sleep(3)\nreturn 2 * x",
}


@needs_root
@pytest.mark.parametrize("channel", sorted(HOGS))
def test_memory_held_outside_the_processes_is_counted_and_left_nowhere(tmp_path, project, channel):
    """POSIX and SysV shared memory and memfds count against the worker's memory limit, and what
    the worker user left in /dev/shm, /tmp or SysV IPC is gone once its grading ends."""
    body = HOGS[channel].replace("return 2 * x", f"open('/tmp/leftover-{SECRET}', 'w').close()\nreturn 2 * x")
    with WorkerPool(memory_limit_mib=800) as own:
        own.start()
        tests = grade_hostile(tmp_path, own, project, replace_def(REFERENCE, "double", body))
        uid = own.user.uid
    assert "more than 800 MiB of memory" in tests["3"].output, tests["3"].output
    assert tests["1"].passed and tests["2"].passed
    assert privileges.held_outside_processes(uid) == 0
    assert not privileges._sysv_objects(uid) and not list(privileges._owned_files(uid))


def test_a_hidden_tests_files_never_reach_a_later_visible_test(tmp_path, pool, project):
    """Each worker has a fresh HOME/TMPDIR: what the hidden test 2 (the only one with requires_grad
    inputs) saves there is not found by the visible tests 3 and 4 that run after it."""
    forward = ("import os, glob\nif x.requires_grad:\n"
               "    for d in (os.environ.get('HOME', ''), os.environ.get('TMPDIR', ''), os.path.expanduser('~')):\n"
               "        try:\n            open(os.path.join(d, 'hidden-inputs.txt'), 'w').write('LEAKED %s' % (x.tolist(),))\n"
               "        except OSError:\n            pass\n"
               "mean = x.mean(-1, keepdim=True)\nvar = ((x - mean) ** 2).mean(-1, keepdim=True)\n"
               "return (x - mean) * torch.rsqrt(var + self.eps) * self.weight")
    double = ("import os, glob\nfor d in (os.environ.get('HOME', ''), os.environ.get('TMPDIR', ''), '/tmp'):\n"
              "    for f in glob.glob(os.path.join(d, '**', 'hidden-inputs.txt'), recursive=True):\n"
              "        try:\n            print(open(f).read())\n        except OSError:\n            pass\n"
              "return 2 * x")
    source = replace_def(replace_def(REFERENCE, "forward", forward), "double", double)
    tests = grade_hostile(tmp_path, pool, project, source)
    assert all(t.passed for t in tests.values())
    assert not any("LEAKED" in t.output for t in tests.values()), [t.output[:300] for t in tests.values()]


@needs_root
def test_batch_neighbours_cannot_read_each_others_submissions(tmp_path):
    """Two submissions graded at once by `batch`, the class folder world-readable as instructors
    leave it: the hostile one searches the staged folders of concurrent gradings, the class folder
    (even knowing its path) and the other processes' command lines and environments for its
    neighbour's file, for several seconds; it finds nothing."""
    import io
    from autograder.batch.run import BatchOptions, run_batch
    secret = uuid.uuid4().hex
    marker = "NEIGHBOUR-" + secret          # written split in the hostile file, so only alice's holds it whole
    top = Path(tempfile.mkdtemp(prefix="redteam-class-"))
    try:
        os.chmod(top, 0o755)
        for name in ("alice", "bob"):
            (top / "class" / name).mkdir(parents=True)
            os.chmod(top / "class" / name, 0o755)
        os.chmod(top / "class", 0o755)
        alice = top / "class" / "alice" / "norm.py"
        alice.write_text("import time\ntime.sleep(2)\n" + REFERENCE + f"\n# {marker}\n")   # a slow neighbour
        os.chmod(alice, 0o644)
        scan = (f"import glob, time\nneedle = 'NEIGHBOUR-' + {secret!r}\nfound = []\nend = time.time() + 8\n"
                "while time.time() < end:\n"
                f"    for f in glob.glob('/tmp/autograder-*/submission/*') + [{str(alice)!r}]"
                " + glob.glob('/proc/*/cmdline') + glob.glob('/proc/*/environ'):\n"
                "        try:\n            text = open(f, errors='replace').read()\n        except OSError:\n"
                "            continue\n"
                "        if needle in text:\n            found.append(f + ': ' + text[:200])\n"
                "    time.sleep(0.2)\nprint(found[:5])\n"
                "mean = x.mean(-1, keepdim=True)\nvar = ((x - mean) ** 2).mean(-1, keepdim=True)\n"
                "return (x - mean) * torch.rsqrt(var + self.eps) * self.weight")
        (top / "class" / "bob" / "norm.py").write_text(replace_def(REFERENCE, "forward", scan))
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AUTOGRADER_PROJECT", str(MINI_PROJECT))
            records = run_batch("mini", top / "class", tmp_path / "out",
                                BatchOptions(workers=2, timeout_s=300, plots=False), io.StringIO())
        assert [r.status for r in records] == ["graded", "graded"]
        bob = (tmp_path / "out" / "bob" / "results.json").read_text()
        printed = [t["output"] for t in json.loads(bob)["tests"] if t["output"]]
        assert printed and all(o == "Your code printed:\n[]\n" for o in printed) and marker not in bob, printed
    finally:
        shutil.rmtree(top, ignore_errors=True)


@needs_root
def test_nothing_of_the_checkout_is_readable_by_workers(tmp_path, pool, project):
    """An allowlist, not a list of secrets: the checkout's .git, its project tests and fixtures, its
    README and the grader's own source are out of a worker's reach; its submission, its scratch and
    the Python installation are not."""
    targets = [ROOT / ".git" / "HEAD", ROOT / "tests" / "conftest.py", ROOT / "README.md",
               ROOT / "autograder" / "engine" / "runner.py", project / "test_suites" / "mini" / "test_mini.py"]
    body = ("import os, sys\nread = []\n"
            f"for f in {[str(t) for t in targets]!r}:\n"
            "    try:\n        open(f).read(1)\n        read.append(f)\n    except OSError:\n        pass\n"
            "open(os.path.join(os.environ['HOME'], 'mine.txt'), 'w').write('ok')\n"
            "assert open(os.path.join(os.environ['HOME'], 'mine.txt')).read() == 'ok'\n"
            "assert os.path.exists(os.__file__) and open(__file__).read(1)\n"
            "print('READ', read)\nreturn 2 * x")
    tests = grade_hostile(tmp_path, pool, project, replace_def(REFERENCE, "double", body))
    assert tests["3"].passed and "READ []" in tests["3"].output, tests["3"].output


# -- banned functions: blocked in the whole worker, evidence the student cannot hide ---------
# (issue 11: threads, a patched or flooded op log, near-exact substitutes, the notebook's own
# wrapper; the static scan's containers are in tests/test_static_scan.py)
HAND_WRITTEN = ("mean = x.mean(-1, keepdim=True)\nvar = ((x - mean) ** 2).mean(-1, keepdim=True)\n"
                "return (x - mean) * torch.rsqrt(var + self.eps) * self.weight")


def hidden_from_the_scan(name):
    """``torch.nn.functional.<name>`` looked up so that the static scan cannot tell which."""
    first, second = name.split("_", 1)
    return f'getattr(torch.nn.functional, "_".join(reversed([{second!r}, {first!r}])))'


def assert_banned(tests, *fragments):
    """Only the test with the ban (1) fails, scoring 0, with a message naming the ban."""
    assert_only_failed(tests, {"1"}, "so it scores 0", "write the normalisation by hand", *fragments)
    assert tests["1"].score == 0


def test_banned_call_in_another_thread_is_blocked_and_counted(tmp_path, pool, project):
    """torch's modes are thread-local, the worker's guard (dispatcher kernels) is not: the call
    raises in the thread, and the attempt costs the test although the fallback is hand-written."""
    body = (f"import threading\nfound = []\nfn = {hidden_from_the_scan('layer_norm')}\n"
            "def work():\n    try:\n        found.append(fn(x, x.shape[-1:]))\n    except Exception:\n        pass\n"
            "t = threading.Thread(target=work)\nt.start()\nt.join()\n"
            "if found:\n    return found[0] * self.weight\n" + HAND_WRITTEN)
    assert_banned(grade_hostile(tmp_path, pool, project, replace_def(REFERENCE, "forward", body)),
                  "ran a banned operation", "layer_norm")


def test_flooding_the_op_log_cannot_push_the_banned_name_out(tmp_path, pool, project):
    """6000 student-named functions sort before aten's names; the banned ones are matched in the
    worker over everything and reported apart from the (cut) op list."""
    body = ("import torch.overrides\ndef fake(*args):\n    return None\n"
            "for i in range(6000):\n    fake.__module__, fake.__qualname__ = 'a', '%05d' % i\n"
            "    torch.overrides.handle_torch_function(fake, (x,), x)\n"
            f"try:\n    return {hidden_from_the_scan('layer_norm')}(x, x.shape[-1:]) * self.weight\n"
            "except Exception:\n    pass\n" + HAND_WRITTEN)
    assert_banned(grade_hostile(tmp_path, pool, project, replace_def(REFERENCE, "forward", body)),
                  "ran a banned operation", "layer_norm")


@pytest.mark.parametrize("tampering, fragment", [
    ("while torch._C._len_torch_function_stack():\n    torch._C._pop_torch_function_stack()\n"
     "while torch._C._len_torch_dispatch_stack():\n    torch._C._pop_torch_dispatch_stack()\n",
     "mode stacks changed"),
    ("from torch.utils._python_dispatch import _get_current_dispatch_mode_stack\n"
     "for mode in _get_current_dispatch_mode_stack():\n    mode.seen = set()\n", "record was replaced"),
    ("import gc\ntry:\n    gc.get_objects()\nexcept RuntimeError:\n    pass\n", "garbage collector"),
    ("import subprocess, sys\ntry:\n    subprocess.run([sys.executable, '-c', 'import torch'])\n"
     "except RuntimeError:\n    pass\n", "starting another program"),
], ids=["pop-modes", "swap-record", "gc-walk", "fresh-interpreter"])
def test_tampering_with_the_ban_check_is_treated_as_use(tmp_path, pool, project, tampering, fragment):
    """The op log's modes popped or its record swapped, the garbage collector walked (the way to
    the guard's handles), a fresh interpreter started (no guard there): 0, even with a
    hand-written result."""
    tests = grade_hostile(tmp_path, pool, project, replace_def(REFERENCE, "forward", tampering + HAND_WRITTEN))
    assert_banned(tests, "interfered with the banned-function check", fragment)


SUBSTITUTES = {   # LayerNorm exactly, through a built-in that is not layer_norm
    "batch_norm": "flat = x.reshape(-1, x.shape[-1]).t()\n"
                  "y = fn(flat, None, None, training=True, eps=self.eps).t().reshape(x.shape)",
    "rms_norm": "y = fn(x - x.mean(-1, keepdim=True), x.shape[-1:], eps=self.eps)",
    "group_norm": "y = fn(x.reshape(-1, 1, x.shape[-1]), 1, eps=self.eps).reshape(x.shape)",
    "instance_norm": "y = fn(x.reshape(-1, 1, x.shape[-1]), eps=self.eps).reshape(x.shape)",
}


@pytest.mark.parametrize("name", sorted(SUBSTITUTES))
def test_near_exact_substitutes_for_layer_norm_are_banned(tmp_path, pool, project, name):
    body = f"fn = {hidden_from_the_scan(name)}\n{SUBSTITUTES[name]}\nreturn y * self.weight"
    assert_banned(grade_hostile(tmp_path, pool, project, replace_def(REFERENCE, "forward", body)),
                  "ran a banned operation", name)


UW_WORKER = r'''
import json, sys
import torch
from autograder.worker.worker import Worker
from autograder.wire.codec import Encoder

staged, keep_first, patterns = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
worker = Worker(staged, {"A2S2": {"loader": "notebook", "keep_first": keep_first, "watch": [],
                                  "expected_names": []}}, "cpu", [])

def request(header, values=()):
    encoder = Encoder(lambda obj: None)
    header = dict(header, bans=patterns, args=encoder.encode(list(values)), kwargs={"dict": []})
    return worker.handle(header, encoder.payload())[0]

module = request({"op": "import", "module": "A2S2"})["value"]["ref"]
out = {}
for name in ("self_attention", "attn_softmax"):
    function = request({"op": "getattr", "target": module, "name": name})["value"]["ref"]
    Q = torch.randn(1, 4, 6)
    reply = request({"op": "call", "target": function, "log_ops": True}, [Q, Q, Q] if name == "self_attention" else [Q])
    out[name] = {key: reply.get(key) for key in ("ok", "banned", "tampered", "error")}
print(json.dumps(out, default=str))
'''


def test_uw_notebooks_own_attention_wrapper_cannot_stand_in_for_self_attention(tmp_path):
    """A2S2's given torch_attention (F.multi_head_attention_forward) reached from self_attention
    where the scan cannot see it: the call raises in the worker, which reports the banned name;
    the notebook's own checks that call it at load time are refused without counting, and an
    honest function in the same worker is clean."""
    import importlib.util
    import subprocess
    spec = importlib.util.spec_from_file_location("uw_assignment", ROOT / "test_suites" / "uw_attention" / "assignment.py")
    uw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(uw)
    ban, a2s2 = uw.ASSIGNMENT.ban("attention"), uw.ASSIGNMENT.file("A2S2.py")
    source = (ROOT / "student_template" / "uw_attention" / "A2S2.py").read_text()
    source = source.replace("    # softmax, outputs, merge heads (if n_heads > 1)\n    pass\n",
                            "    return globals()['torch_' + 'attention'](Q, K, V, n_heads=n_heads, causal=causal)\n", 1)
    source = source.replace('"""Softmax over the keys (the last dim)."""\n    # TODO\n    pass',
                            '"""Softmax over the keys (the last dim)."""\n    return torch.softmax(A, -1)', 1)
    (tmp_path / "A2S2.py").write_text(source)
    proc = subprocess.run([sys.executable, "-c", UW_WORKER, str(tmp_path), json.dumps(list(a2s2.keep_first)),
                           json.dumps(list(ban.runtime_ops))], capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    attention, softmax = out["self_attention"], out["attn_softmax"]
    assert attention["ok"] is False and "torch.nn.functional.multi_head_attention_forward" in attention["banned"]
    assert "is banned in this test" in attention["error"]["message"], attention
    assert softmax == {"ok": True, "banned": [], "tampered": [], "error": None}, softmax
