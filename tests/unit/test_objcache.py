"""cosim/objcache.py, verilated.mk's OBJCACHE prefix: an object compiled in one build
directory is reused in another while its source, arguments and every header are the
same, and recompiled when any of them changes. A stand-in compiler counts its runs."""

import os
import subprocess
import sys
import textwrap

from cosim.objcache import main, make_flag

FAKE_CXX = textwrap.dedent("""\
    import hashlib, pathlib, sys
    args = sys.argv[1:]
    log = pathlib.Path(sys.argv[0]).with_name("runs.log")
    log.write_text(log.read_text() + "x" if log.exists() else "x")
    src = pathlib.Path(next(a for a in args if a.endswith(".cpp")))
    out = pathlib.Path(args[args.index("-o") + 1])
    header = src.with_name("lib.h")
    out.write_bytes(hashlib.sha256(src.read_bytes() + header.read_bytes()
                                   + " ".join(args).encode()).digest())
    out.with_suffix(".d").write_text(f"{out.name}: {src} \\\\\\n {header}\\n\\n{header}:\\n")
""")


def _setup(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "lib.h").write_text("#define N 1\n")
    (lib / "lib.cpp").write_text('#include "lib.h"\n')
    cxx = tmp_path / "cxx.py"
    cxx.write_text(FAKE_CXX)
    return lib, cxx


def _compile(tmp_path, cxx, lib, build, *extra):
    build.mkdir(exist_ok=True)
    argv = [sys.executable, str(cxx), "-MMD", "-DX", *extra, "-c", "-o", "lib.o",
            str(lib / "lib.cpp")]
    cwd = os.getcwd()
    os.chdir(build)
    try:
        assert main(argv, str(tmp_path / "cache")) == 0
    finally:
        os.chdir(cwd)
    return (build / "lib.o").read_bytes(), (tmp_path / "runs.log").read_text().count("x")


def test_reused_across_builds_and_invalidated_by_any_input(tmp_path):
    lib, cxx = _setup(tmp_path)
    obj_a, runs = _compile(tmp_path, cxx, lib, tmp_path / "a")
    assert runs == 1
    obj_b, runs = _compile(tmp_path, cxx, lib, tmp_path / "b")         # another build dir
    assert runs == 1 and obj_b == obj_a
    assert (tmp_path / "b" / "lib.d").read_text() == (tmp_path / "a" / "lib.d").read_text()
    (lib / "lib.h").write_text("#define N 2\n")                        # a header changes
    obj_c, runs = _compile(tmp_path, cxx, lib, tmp_path / "c")
    assert runs == 2 and obj_c != obj_a
    _, runs = _compile(tmp_path, cxx, lib, tmp_path / "d", "-DY")      # a flag changes
    assert runs == 3
    (lib / "lib.cpp").write_text('#include "lib.h"\nint x;\n')         # the source changes
    _, runs = _compile(tmp_path, cxx, lib, tmp_path / "e")
    assert runs == 4
    _, runs = _compile(tmp_path, cxx, lib, tmp_path / "f")             # and is cached again
    assert runs == 4


def test_sources_in_the_build_directory_are_not_cached(tmp_path):
    lib, cxx = _setup(tmp_path)
    build = tmp_path / "lib"                                            # cwd holds the source
    for n in (1, 2):
        _, runs = _compile(tmp_path, cxx, lib, build)
        assert runs == n
    assert not (tmp_path / "cache").exists()


def test_make_flag_writes_a_runnable_wrapper(tmp_path):
    flag = make_flag(tmp_path / "cache")
    assert flag == f"OBJCACHE={(tmp_path / 'cache' / 'cxx').resolve()}"
    wrapper = flag.split("=", 1)[1]
    # a command that is not a cacheable compile runs as it is, with its exit status
    assert subprocess.run([wrapper, sys.executable, "-c", "raise SystemExit(3)"]).returncode == 3
    assert make_flag(tmp_path / "with space") is None


def test_an_unwritable_cache_never_fails_a_compile(tmp_path):
    lib, cxx = _setup(tmp_path)
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    for n in (1, 2):                                  # compiled each time, never an error
        obj, runs = _compile(tmp_path, cxx, lib, tmp_path / f"b{n}")
        assert runs == n and obj
