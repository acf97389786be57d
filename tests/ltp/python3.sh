#!/bin/bash
# python3: subprocess.run with captured output and return codes, a multiprocessing.Pool(2).map,
# os.fork + waitpid statuses, and os.getpid/os.getppid consistency between a parent and its children
# (forked, and started with subprocess). The checks run in Python and print PASS/FAIL lines.
. "$(dirname "$0")/../lib/tst.sh"
tst_need python3
tst_tmpdir

# a file, not stdin: multiprocessing may start workers that re-import the main module
cat > "$TST_TMP/check.py" <<'END'
import multiprocessing
import os
import signal
import subprocess
import sys
import threading

failures = 0


def check(cond, desc, detail=""):
    global failures
    if cond:
        print("PASS: " + desc, flush=True)
    else:
        failures += 1
        print("FAIL: %s (%s)" % (desc, detail), flush=True)


def square(x):
    return x * x


def worker_pids(_):
    return os.getpid(), os.getppid()


def main():
    r = subprocess.run(["sh", "-c", "echo out; echo err >&2; exit 3"], capture_output=True, text=True)
    check(r.returncode == 3, "subprocess.run returncode", r.returncode)
    check(r.stdout == "out\n" and r.stderr == "err\n", "subprocess.run captures stdout and stderr",
          repr((r.stdout, r.stderr)))
    r = subprocess.run(["tr", "a-z", "A-Z"], input="hello\n", capture_output=True, text=True, check=True)
    check(r.stdout == "HELLO\n", "subprocess.run with input", repr(r.stdout))
    r = subprocess.run(["sh", "-c", "kill -TERM $$"])
    check(r.returncode == -signal.SIGTERM, "a child killed by SIGTERM has returncode -15", r.returncode)
    try:
        subprocess.run(["false"], check=True)
        check(False, "check=True raises CalledProcessError", "no exception")
    except subprocess.CalledProcessError as e:
        check(e.returncode == 1, "check=True raises CalledProcessError with the status", e.returncode)
    out = subprocess.check_output([sys.executable, "-c", "import os; print(os.getppid())"], text=True)
    check(int(out) == os.getpid(), "a subprocess's os.getppid() is our os.getpid()", out.strip())
    p = subprocess.Popen(["sleep", "100"])
    p.terminate()
    check(p.wait() == -signal.SIGTERM, "Popen.terminate + wait", p.returncode)

    with multiprocessing.Pool(2) as pool:
        squares = pool.map(square, range(50))
        pids = pool.map(worker_pids, range(8))
    check(squares == [x * x for x in range(50)], "multiprocessing.Pool(2).map computes the squares",
          squares[:5])
    workers = {pid for pid, _ in pids}
    check(1 <= len(workers) <= 2 and os.getpid() not in workers, "the pool's work runs in 1-2 other processes",
          workers)
    check(all(ppid == os.getpid() for _, ppid in pids), "the pool workers' getppid() is our pid",
          (os.getpid(), pids))

    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        os.write(wfd, ("%d %d" % (os.getpid(), os.getppid())).encode())
        os._exit(7)
    os.close(wfd)
    child_pid, child_ppid = map(int, os.read(rfd, 100).split())
    os.close(rfd)
    wpid, status = os.waitpid(pid, 0)
    check(child_pid == pid and wpid == pid, "os.fork returns the child's os.getpid()", (pid, child_pid, wpid))
    check(child_ppid == os.getpid(), "the forked child's os.getppid() is our os.getpid()", (child_ppid, os.getpid()))
    check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 7, "os.waitpid status of os._exit(7)", status)

    pid = os.fork()
    if pid == 0:
        signal.pause()
        os._exit(0)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    check(os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "os.kill(child, SIGKILL)", status)

    ids = []
    t = threading.Thread(target=lambda: ids.append((os.getpid(), threading.get_native_id())))
    t.start()
    t.join()
    check(ids and ids[0][0] == os.getpid() and ids[0][1] != os.getpid(),
          "a thread has our pid and its own native id", ids)
    check(threading.get_native_id() == os.getpid(), "the main thread's native id is the pid",
          threading.get_native_id())

    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
END

python3 "$TST_TMP/check.py"
st=$?
[ "$st" = 0 ] || [ "$st" = 1 ] || echo "FAIL: python3 exited with status $st"
[ "$st" = 0 ] || exit 1
exit 0
