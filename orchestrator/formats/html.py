"""index.html: a static, self-contained page (no scripts, no external files) with the
run's verdict, a matrix overview (one row per job: build, boot, each workload, reports,
links to the job's console, build and workload logs; a job that did not complete is red
whatever else it has), every test in a table with the failing ones first (the passing
ones folded), and the unexpected kernel reports grouped by title: one block per title
with the jobs and arches that had it, the symbolized stack and the console text of its
first report file, and links to every report file. Reports a workload provoked on
purpose are listed by title only, folded."""
from __future__ import annotations

from collections import Counter
from html import escape

from orchestrator.formats import clean_text, report_excerpt

_BAD = ("fail", "timeout", "error", "crash")

CSS = """
body{font:14px/1.4 system-ui,-apple-system,'DejaVu Sans',sans-serif;margin:0;color:#1d232a;
 background:#f5f6f8}
header{padding:18px 28px;color:#fff}
header.clean{background:#1f7a3f} header.failed{background:#b3261e} header.infra{background:#b3261e}
header h1{margin:0 0 4px;font-size:22px} header p{margin:2px 0;opacity:.92}
main{padding:8px 28px 40px}
h2{font-size:17px;margin:26px 0 10px;border-bottom:1px solid #d5d9de;padding-bottom:4px}
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px rgba(0,0,0,.08)}
th,td{border:1px solid #dde1e6;padding:6px 10px;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}
.ok{background:#dff3e4;color:#14532d} .bad{background:#fbe0de;color:#7f1d1d}
.warn{background:#fff0c7;color:#6b4500} .skip{background:#eceff3;color:#4b5563}
.small{font-size:12px;color:#5b6470}
.report{background:#fff;border-left:5px solid #b3261e;margin:14px 0;padding:10px 16px;
 box-shadow:0 1px 2px rgba(0,0,0,.08)}
.report h3{margin:2px 0 6px;font-size:16px;font-family:'DejaVu Sans Mono',monospace}
.meta span{display:inline-block;margin-right:14px}
.tag{display:inline-block;padding:1px 7px;border-radius:9px;background:#eef1f4;font-size:12px}
pre{background:#0f1720;color:#e6edf3;padding:10px 12px;overflow-x:auto;font-size:12px;
 line-height:1.35;margin:6px 0}
pre.stack{background:#f3f5f8;color:#1d232a;border:1px solid #dde1e6}
details{margin:8px 0} summary{cursor:pointer;font-weight:600}
"""

_CELL = {"pass": "ok", "xfail": "ok", "fail": "bad", "timeout": "bad", "error": "bad",
         "skip": "skip", "crash": "bad", "stopped": "skip"}


def _verdict(result) -> tuple[str, str]:
    code = result.exit_code()
    if code == 2:
        return "infra", "INFRASTRUCTURE ERROR"
    if code == 1:
        return "failed", "FAILED"
    return "clean", "CLEAN"


def _td(text: str, cls: str = "", title: str = "") -> str:
    t = f' title="{escape(title)}"' if title else ""
    c = f' class="{cls}"' if cls else ""
    return f"<td{c}{t}>{text}</td>"


def _link(result, rel: str, label: str) -> str:
    """A relative link to a file of the results directory, if it is there."""
    from orchestrator.results import inside
    p = inside(result.directory, rel)
    if p is None or not p.is_file():
        return ""
    return f'<a href="{escape(rel)}">{escape(label)}</a>'


def _logs(result, j) -> str:
    links = [_link(result, j.console_log or f"{j.id}/console.log", "console"),
             _link(result, f"{j.id}/build.log", "build"),
             _link(result, f"{j.id}/build-metadata.json", "build metadata")]
    links += [_link(result, f"{j.id}/workloads/{w.workload}.txt", w.workload)
              for w in j.workloads]
    return " · ".join(x for x in links if x) or "—"


def render(result) -> str:
    cls, verdict = _verdict(result)
    workloads: list[str] = []
    for j in result.jobs:
        for w in j.workloads:
            if w.workload not in workloads:
                workloads.append(w.workload)
    n_unexp = sum(len(j.unexpected_reports()) for j in result.jobs)
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>kto {escape(result.run)}: {verdict}</title><style>{CSS}</style></head>",
           "<body>", f'<header class="{cls}"><h1>kto run {escape(result.run)}: {verdict}</h1>',
           f"<p>{escape(result.source or '')}</p>",
           f"<p>{len(result.jobs)} job(s), {n_unexp} unexpected kernel report(s) · started "
           f"{escape(result.started)} · finished {escape(result.finished or '(running)')}"
           + (f" · shard {escape(result.shard)}" if result.shard else "")
           + (f" · merged from {len(result.merged_from)} shard(s)" if result.merged_from else "")
           + "</p></header><main>"]

    # -- matrix overview --
    out.append("<h2>Matrix</h2><table><tr><th>job</th><th>arch</th><th>variant</th>"
               "<th>series</th><th>build</th><th>boot</th>"
               + "".join(f"<th>{escape(w)}</th>" for w in workloads)
               + "<th>reports</th><th>logs</th></tr>")
    for j in result.jobs:
        b = j.build or {}
        if b:
            ok = b.get("status") in ("ok", "cached")
            build = _td(f"{escape(str(b.get('status')))} <span class=small>"
                        f"{float(b.get('seconds') or 0):.0f}s</span>", "ok" if ok else "bad")
        else:
            build = _td("—", "bad" if j.outcome != "ok" else "skip")
        if j.boot:
            ok = j.boot.get("outcome") == "ready"
            boot = _td(f"{escape(str(j.boot.get('outcome')))} <span class=small>"
                       f"{float(j.boot.get('seconds') or 0):.0f}s {escape(j.boot.get('accel', ''))}"
                       "</span>", "ok" if ok else "bad")
        else:
            boot = _td("—", "skip")
        cells = []
        by_name = {w.workload: w for w in j.workloads}
        for name in workloads:
            w = by_name.get(name)
            if w is None:
                cells.append(_td("—", "skip"))
                continue
            counts = " ".join(f"{k} {v}" for k, v in w.counts().items())
            cells.append(_td(f"{escape(w.status)}<br><span class=small>{escape(counts)}"
                             f"</span>", _CELL.get(w.status, "warn"), w.reason))
        unexp, exp = len(j.unexpected_reports()), len(j.reports) - len(j.unexpected_reports())
        rep = (f'<a href="#reports">{unexp} unexpected</a>' if unexp
               else "0 unexpected") + (f"<br><span class=small>{exp} expected</span>"
                                       if exp else "")
        done = j.outcome == "ok"
        if not done:            # an infra error or a failed build/boot checked nothing
            rep = f"not checked<br><span class=small>job {escape(j.outcome)}</span>"
        job = _td(escape(j.id) + ("" if done else f"<br><span class=small>"
                                  f"{escape(j.outcome)}</span>"), "" if done else "bad")
        out.append(f"<tr>{job}{_td(escape(j.arch))}"
                   f"{_td(escape(j.variant or 'default'))}{_td(escape(j.series or '—'))}"
                   f"{build}{boot}{''.join(cells)}"
                   f"{_td(rep, 'bad' if unexp or not done else 'ok')}"
                   f"{_td(_logs(result, j), 'small')}</tr>")
    out.append("</table>")

    # -- job errors and notes --
    problems = [j for j in result.jobs if j.error or j.notes]
    if problems:
        out.append("<h2>Errors and notes</h2>")
        for j in problems:
            if j.error:
                out.append(f"<p><b>{escape(j.id)}</b>: {escape(j.outcome)}</p>"
                           f"<pre>{escape(clean_text(j.error))}</pre>")
            for n in j.notes:
                out.append(f"<p class=small><b>{escape(j.id)}</b>: {escape(n)}</p>")

    # -- reports, grouped by title --
    out.append('<h2 id="reports">Kernel reports</h2>')
    if not any(j.reports for j in result.jobs):
        out.append("<p>No kernel reports.</p>")
    groups: dict[str, list] = {}
    for j in result.jobs:
        for r in j.unexpected_reports():
            groups.setdefault(r.title, []).append((j, r))
    for title, occ in groups.items():
        j, r = occ[0]
        jobs = list(dict.fromkeys(x.id for x, _ in occ))
        arches = list(dict.fromkeys(x.arch for x, _ in occ))
        excerpt = report_excerpt(result.directory, r.file)
        files = " ".join(_link(result, rr.file, rr.file) or escape(rr.file) for _, rr in occ)
        out.append('<div class="report">'
                   f"<h3>{escape(title)}</h3><div class=meta>"
                   f"<span class=tag>{escape(r.type)}</span>"
                   f"<span>arches <b>{escape(', '.join(arches))}</b></span>"
                   f"<span>jobs <b>{escape(', '.join(jobs))}</b></span>"
                   f"<span>{len(occ)} report(s)</span>"
                   f"<span>during <b>{escape(r.workload or 'boot')}</b></span>"
                   + (f"<span>frame <b>{escape(r.frame)}</b></span>" if r.frame else "")
                   + ("<span><b>corrupted</b></span>" if r.corrupted else "")
                   + f"</div><div class=small>report files: {files}</div>")
        if r.stack:
            out.append(f"<div class=small>symbolized stack ({escape(j.id)})</div>"
                       f'<pre class="stack">{escape(chr(10).join(r.stack))}</pre>')
        out.append(f"<div class=small>console ({escape(j.id)})</div>" + (
            f"<pre>{escape(excerpt)}</pre>" if excerpt is not None else
            f"<pre>{escape(r.first_line)}\n(report file not in this results "
            "directory)</pre>"))
        out.append("</div>")
    for j in result.jobs:
        expected = [r for r in j.reports if r.expected]
        if expected:
            titles = Counter(r.title for r in expected)
            out.append(f"<details><summary>{escape(j.id)}: {len(expected)} expected report(s) "
                       "provoked by a workload</summary><table><tr><th>title</th><th>count"
                       "</th></tr>" + "".join(f"<tr>{_td(escape(t))}{_td(str(c))}</tr>"
                                              for t, c in titles.most_common())
                       + "</table></details>")
    # -- tests: failing first, passing folded --
    rows = [(j, w, t) for j in result.jobs for w in j.workloads for t in w.tests]
    rows += [(j, w, None) for j in result.jobs for w in j.workloads
             if not w.tests or (w.status in _BAD and all(t.status not in _BAD for t in w.tests))]
    order = {"fail": 0, "timeout": 0, "error": 0, "crash": 0, "skip": 1}

    def status(row):
        return row[2].status if row[2] else row[1].status

    rows.sort(key=lambda r: order.get(status(r), 2))
    bad = [r for r in rows if status(r) in _BAD]
    out.append(f"<h2>Tests</h2><p>{len(rows)} test(s): {len(bad)} failing"
               f"{', listed first' if bad else ''}.</p>")

    def test_rows(rs):
        return "".join(
            f"<tr>{_td(escape(j.id))}{_td(escape(w.workload))}"
            f"{_td(escape(t.name) if t else '<i>(whole workload)</i>')}"
            f"{_td(escape(status((j, w, t))), _CELL.get(status((j, w, t)), 'warn'))}"
            f"{_td(escape(clean_text(t.detail if t else w.reason)))}"
            f"{_td(_link(result, f'{j.id}/workloads/{w.workload}.txt', 'output') or '—')}"
            "</tr>" for j, w, t in rs)
    head = ("<table><tr><th>job</th><th>workload</th><th>test</th><th>status</th>"
            "<th>detail</th><th>log</th></tr>")
    shown = [r for r in rows if status(r) in _BAD or status(r) == "skip"]
    rest = [r for r in rows if status(r) not in _BAD and status(r) != "skip"]
    if shown:
        out.append(head + test_rows(shown) + "</table>")
    if rest:
        out.append(f"<details><summary>{len(rest)} passing test(s)</summary>{head}"
                   f"{test_rows(rest)}</table></details>")
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"
