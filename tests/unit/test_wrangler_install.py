"""python -m harness.cli.wrangler_install: npm ci where Node is, a clear note where it is not."""

from harness.cli.wrangler_install import install, package_dir


def test_without_node_nothing_is_installed_and_the_reason_is_printed(monkeypatch, tmp_path, capsys):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert install(tmp_path) == 0
    out = capsys.readouterr().out
    assert "wrangler not installed: Node.js is not installed" in out
    assert "the Cloudflare drills will be skipped" in out


def test_the_package_directory_is_found_from_below_it(tmp_path):
    lock = tmp_path / "cloudflare" / "package-lock.json"
    lock.parent.mkdir()
    lock.write_text("{}")
    (tmp_path / "drills" / "x").mkdir(parents=True)
    assert package_dir(tmp_path / "drills" / "x") == tmp_path / "cloudflare"
    assert package_dir(tmp_path / "cloudflare" / "..") == (tmp_path / "cloudflare").resolve()


def test_outside_a_repository_it_says_where_to_run(tmp_path, capsys):
    assert install(tmp_path) == 2
    assert "no cloudflare/package-lock.json" in capsys.readouterr().out
