"""Without Node.js or wrangler the Cloudflare drills skip, naming what is missing."""

import sys

INNER = """
def test_needs_the_stack(cf_stack):
    raise AssertionError("must not run without wrangler")

def test_needs_nothing():
    pass
"""


def _run(pytester, *args):
    pytester.makepyfile(test_inner=INNER)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs", *args)


def test_no_node_skips_the_drill_naming_node(pytester, monkeypatch, tmp_path):
    monkeypatch.delenv("DRILL_REQUIRE_WRANGLER", raising=False)  # CI sets it for the suite
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # python itself is named by its full path
    result = _run(pytester)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*Node.js is not installed (no `node` on PATH)*"])
    assert sys.executable  # the inner session ran on this interpreter


def test_a_missing_wrangler_skips_the_drill_naming_the_remedy(pytester, monkeypatch, tmp_path):
    monkeypatch.delenv("DRILL_REQUIRE_WRANGLER", raising=False)  # CI sets it for the suite
    monkeypatch.setenv("DRILL_WRANGLER", str(tmp_path / "no-wrangler"))
    result = _run(pytester)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*DRILL_WRANGLER=*no-wrangler is not an executable file*"])


def test_ci_can_require_the_drills_to_run(pytester, monkeypatch, tmp_path):
    monkeypatch.setenv("DRILL_WRANGLER", str(tmp_path / "no-wrangler"))
    monkeypatch.setenv("DRILL_REQUIRE_WRANGLER", "1")
    result = _run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*DRILL_REQUIRE_WRANGLER=1: the Cloudflare drills must run*"])
