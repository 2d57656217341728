"""``import nas_hw`` holds back nnabla's import-time INFO banner, and nothing else
(nas_hw/quiet_import.py). Fresh interpreters: the banner is printed once per process."""
import subprocess
import sys

BANNER = "Initializing CPU extension"


def python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_no_banner_and_warnings_still_pass():
    done = python("import logging, nas_hw\n"
                  "assert logging.getLogger('nnabla').level == logging.NOTSET  # restored\n"
                  "logging.getLogger('nnabla').warning('a real nnabla warning')\n"
                  "logging.getLogger('nnabla').info('a later nnabla info')\n")
    assert done.returncode == 0, done.stderr
    assert BANNER not in done.stderr
    assert "a real nnabla warning" in done.stderr
    assert "a later nnabla info" in done.stderr  # nnabla's own INFO level, untouched after import


def test_a_level_chosen_by_the_user_is_respected():
    done = python("import logging\nlogging.getLogger('nnabla').setLevel(logging.INFO)\nimport nas_hw\n")
    assert done.returncode == 0, done.stderr
    assert BANNER in done.stderr


def test_nnabla_imported_first_prints_its_banner_as_before():
    done = python("import nnabla, nas_hw\nfrom nas_hw.quiet_import import import_nnabla_quietly\n"
                  "assert import_nnabla_quietly() is False\n")
    assert done.returncode == 0, done.stderr
    assert BANNER in done.stderr
