# vmfork's warm CPython runner (docs/runtimes.md). `vmfork template create NAME --rootfs R
# --runtime python3` starts `python3 /.vmfork/runner.py`: it imports the commonly used standard
# library, then opens /dev/vmfork/job, where the template is frozen. Each clone resumes inside
# that open with its own job (argv, environment, working directory, files already in place) and
# runs it the way `python3 ARGV...` would: a script path, `-c CODE` or `-m MODULE`, with the
# same stdout, stderr (tracebacks) and exit status. Single-threaded.
import sys

# Preloaded while the template is made, so clones do not pay for the imports.
import abc, argparse, array, base64, bisect, builtins, calendar, collections, collections.abc  # noqa: F401
import copy, csv, dataclasses, datetime, decimal, enum, fractions, functools, hashlib, heapq  # noqa: F401
import io, itertools, json, math, operator, os, pathlib, pickle, random, re, shutil, statistics  # noqa: F401
import string, struct, subprocess, tempfile, textwrap, time, traceback, types, typing, unicodedata  # noqa: F401
import uuid, zlib  # noqa: F401
import atexit, gc, runpy


def read_job():
    # The freeze point. The file holds "vmfork-job 1", the working directory, argc, argv...,
    # envc, env..., each NUL-terminated (docs/guest-abi.md, "The runtime freeze point").
    with open("/dev/vmfork/job", "rb") as f:
        parts = f.read().split(b"\0")
    if parts[0] != b"vmfork-job 1":
        raise SystemExit("vmfork runner: unknown job format")
    cwd = parts[1]
    argc = int(parts[2])
    argv = parts[3:3 + argc]
    envc = int(parts[3 + argc])
    env = parts[4 + argc:4 + argc + envc]
    return cwd, argv, env


def fresh_process_state():
    # A clone starts from the template's interpreter: give it what a new process would get.
    random.seed()
    tempfile._name_sequence = None  # its random name generator was made before the freeze


def run(argv):
    # Mirrors `python3 ARGV` (Modules/main.c): sys.argv and sys.path[0] as CPython sets them.
    main_globals = {"__name__": "__main__", "__builtins__": builtins, "__doc__": None,
                    "__spec__": None, "__loader__": None, "__package__": None}
    sys.modules["__main__"] = types.ModuleType("__main__")
    if argv and argv[0] == "-c":
        if len(argv) < 2:
            sys.stderr.write("Argument expected for the -c option\n")
            return 2
        sys.argv = ["-c"] + argv[2:]
        sys.path.insert(0, "")
        code = compile(argv[1], "<string>", "exec")
        main_globals = sys.modules["__main__"].__dict__
        main_globals.update({"__name__": "__main__", "__builtins__": builtins})
        exec(code, main_globals)
    elif argv and argv[0] == "-m":
        if len(argv) < 2:
            sys.stderr.write("Argument expected for the -m option\n")
            return 2
        sys.argv = [argv[1]] + argv[2:]
        sys.path.insert(0, os.getcwd())
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        if not argv:
            sys.stderr.write("vmfork runner: no script given\n")
            return 2
        path = argv[0]
        sys.argv = list(argv)
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
        try:
            with open(path, "rb") as f:
                source = f.read()
        except OSError as e:
            sys.stderr.write("%s: can't open file %r: [Errno %d] %s\n"
                             % (sys.executable, path, e.errno, e.strerror))
            return 2
        # Since CPython 3.9 the main script's __file__ (and so its tracebacks) is absolute.
        path = os.path.abspath(path)
        module = sys.modules["__main__"]
        module.__dict__.update({"__file__": path, "__cached__": None, "__builtins__": builtins})
        exec(compile(source, path, "exec"), module.__dict__)
    return 0


def finish(status):
    # A fresh process's memory is thrown away with its VM: skip the interpreter's teardown,
    # which writes to every object (reference counts) and so copies every page of the
    # template's heap into the clone. What a script can observe of the teardown still runs:
    # atexit handlers and the flush of the standard streams.
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            status = 120  # as CPython does when flushing stdout fails at exit
    os._exit(status & 0xff)


def exit_status(e):
    # SystemExit as Py_Exit reports it: None -> 0, an int -> itself, anything else printed, 1.
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    print(e.code, file=sys.stderr)
    return 1


def main():
    # Objects made so far live for good: keep the collector from touching (and so copying)
    # their pages in every clone (gc.freeze exists for exactly this copy-on-write case).
    gc.collect()
    gc.freeze()
    cwd, argv, env = read_job()
    os.chdir(cwd)
    os.environ.clear()
    for e in env:
        k, _, v = e.partition(b"=")
        os.environb[k] = v
    fresh_process_state()
    argv = [os.fsdecode(a) for a in argv]
    try:
        status = run(argv)
    except SystemExit as e:
        status = exit_status(e)
    except BaseException as e:
        # Print as CPython does for an uncaught exception, without this runner's frames.
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        while tb is not None and tb.tb_frame.f_code.co_filename == runpy.__file__:
            tb = tb.tb_next
        # CPython prints the exception's own __traceback__, not the argument: cut it too.
        sys.excepthook(type(e), e.with_traceback(tb), tb)
        status = 1
    finish(status)


main()
