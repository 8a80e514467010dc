"""The report's stylesheet, inlined in the page (one file, opens offline, prints)."""

CSS = """
#environment-header, #environment { display: none; }
.drill-report { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans",
  "Noto Sans CJK JP", sans-serif; color: #1f2328; max-width: 1200px; }
.drill-report h2 { margin: 1.2em 0 .4em; font-size: 1.35em; }
.drill-report h3 { margin: 0 0 .3em; font-size: 1.2em; }
.drill-report h4 { margin: 1em 0 .3em; font-size: 1em; color: #424a53; }
.drill-report table { border-collapse: collapse; margin: .2em 0 .6em; font-size: 13px; }
.drill-report th, .drill-report td { border: 1px solid #d0d7de; padding: 3px 8px;
  text-align: left; vertical-align: top; }
.drill-report th { background: #f6f8fa; font-weight: 600; }
.drill-report td.num { text-align: right; font-variant-numeric: tabular-nums; }
.drill-report code, .drill-report .hash { font-family: ui-monospace, SFMono-Regular, Menlo,
  Consolas, monospace; font-size: 12px; word-break: break-all; }
.verdict { font-size: 1.3em; font-weight: 700; padding: .6em .9em; border-radius: 6px;
  margin: .3em 0 .5em; }
.verdict-pass { background: #dafbe1; color: #116329; border: 1px solid #4ac26b; }
.verdict-fail { background: #ffebe9; color: #a40e26; border: 2px solid #cf222e; }
.verdict-none { background: #fff8c5; color: #7d4e00; border: 1px solid #d4a72c; }
ul.failures { margin: .2em 0 .8em; padding-left: 1.3em; }
ul.failures li { color: #a40e26; margin: .25em 0; font-size: 1.05em; }
ul.failures a { color: #a40e26; font-weight: 600; }
.badge { display: inline-block; min-width: 4.5em; text-align: center; border-radius: 4px;
  padding: 1px 6px; font-size: 12px; font-weight: 700; color: #fff; }
.badge-passed { background: #1a7f37; }
.badge-failed, .badge-error { background: #cf222e; }
.badge-skipped { background: #6e7781; }
.run-facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr));
  gap: 0 1.5em; }
.run-facts table { width: 100%; }
.run-facts th { width: 11em; }
tr.row-failed td, tr.row-error td { background: #fff5f5; }
td.bad, span.bad { color: #a40e26; font-weight: 600; }
td.good, span.good { color: #116329; }
figure.chart-box { margin: .4em 0 1em; overflow-x: auto; }
figure.chart-box figcaption { font-size: 12px; color: #57606a; }
section.drill { border: 1px solid #d0d7de; border-left: 6px solid #1a7f37;
  border-radius: 6px; padding: .7em 1em; margin: 1em 0; page-break-inside: avoid; }
section.drill-failed, section.drill-error { border-left-color: #cf222e; }
section.drill-skipped { border-left-color: #6e7781; }
section.drill p.failure { color: #a40e26; font-weight: 600; font-size: 1.05em; }
section.drill p.test-id { color: #57606a; font-size: 12px; margin: 0 0 .4em; }
.pair { display: flex; flex-wrap: wrap; gap: 0 2em; }
details > summary { cursor: pointer; font-weight: 600; margin: .3em 0; }
pre.diff { background: #f6f8fa; border: 1px solid #d0d7de; padding: .5em; max-height: 24em;
  overflow: auto; font-size: 12px; white-space: pre-wrap; }
.muted { color: #57606a; }
a.back { font-size: 12px; }
@media print { .controls, .filters, .collapse { display: none; }
  details > *:not(summary) { display: block !important; } }
"""
