"""harness.proc.run can write a command's standard output to a file, byte for byte."""

import sys

from harness.proc import run


def test_binary_stdout_reaches_the_file_unchanged(tmp_path):
    out = tmp_path / "out.bin"
    code = "import sys; sys.stdout.buffer.write(bytes(range(256))); sys.stderr.write('done')"
    result = run([sys.executable, "-c", code], timeout=30, stdout_path=out)
    assert out.read_bytes() == bytes(range(256))
    assert result.stdout == ""
    assert result.stderr == "done"


def test_captured_stdout_is_still_text_without_a_path():
    result = run([sys.executable, "-c", "print('é')"], timeout=30)
    assert result.stdout == "é\n"
