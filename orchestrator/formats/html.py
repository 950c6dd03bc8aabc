"""index.html: a static, self-contained page (no scripts, no external files) with the
run's verdict, a matrix overview (one row per job: build, boot, each workload, reports)
and every unexpected kernel report with its title, type, arch, workload, symbolized stack
and an excerpt of the console text from its report file. Reports a workload provoked on
purpose are listed by title only, folded."""
from __future__ import annotations

from collections import Counter
from html import escape

from orchestrator.formats import clean_text, report_excerpt

CSS = """
body{font:14px/1.4 system-ui,-apple-system,'DejaVu Sans',sans-serif;margin:0;color:#1d232a;
 background:#f5f6f8}
header{padding:18px 28px;color:#fff}
header.clean{background:#1f7a3f} header.failed{background:#b3261e} header.infra{background:#8a5a00}
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
               + "<th>reports</th></tr>")
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
        rep = (f'<a href="#job-{escape(j.id)}">{unexp} unexpected</a>' if unexp
               else "0 unexpected") + (f"<br><span class=small>{exp} expected</span>"
                                       if exp else "")
        out.append(f"<tr>{_td(escape(j.id))}{_td(escape(j.arch))}"
                   f"{_td(escape(j.variant or 'default'))}{_td(escape(j.series or '—'))}"
                   f"{build}{boot}{''.join(cells)}{_td(rep, 'bad' if unexp else 'ok')}</tr>")
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

    # -- reports --
    out.append("<h2>Kernel reports</h2>")
    if not any(j.reports for j in result.jobs):
        out.append("<p>No kernel reports.</p>")
    for j in result.jobs:
        unexpected = j.unexpected_reports()
        if unexpected:
            out.append(f'<h3 id="job-{escape(j.id)}">{escape(j.id)}</h3>')
        for r in unexpected:
            excerpt = report_excerpt(result.directory, r.file)
            out.append('<div class="report">'
                       f"<h3>{escape(r.title)}</h3><div class=meta>"
                       f"<span class=tag>{escape(r.type)}</span>"
                       f"<span>arch <b>{escape(j.arch)}</b></span>"
                       f"<span>job <b>{escape(j.id)}</b></span>"
                       f"<span>during <b>{escape(r.workload or 'boot')}</b></span>"
                       + (f"<span>frame <b>{escape(r.frame)}</b></span>" if r.frame else "")
                       + ("<span><b>corrupted</b></span>" if r.corrupted else "")
                       + f'<span class=small><a href="{escape(r.file)}">{escape(r.file)}</a>'
                       "</span></div>")
            if r.stack:
                out.append("<div class=small>symbolized stack</div>"
                           f'<pre class="stack">{escape(chr(10).join(r.stack))}</pre>')
            out.append("<div class=small>console</div>" + (
                f"<pre>{escape(excerpt)}</pre>" if excerpt is not None else
                f"<pre>{escape(r.first_line)}\n(report file not in this results "
                "directory)</pre>"))
            out.append("</div>")
        expected = [r for r in j.reports if r.expected]
        if expected:
            titles = Counter(r.title for r in expected)
            out.append(f"<details><summary>{escape(j.id)}: {len(expected)} expected report(s) "
                       "provoked by a workload</summary><table><tr><th>title</th><th>count"
                       "</th></tr>" + "".join(f"<tr>{_td(escape(t))}{_td(str(c))}</tr>"
                                              for t, c in titles.most_common())
                       + "</table></details>")
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"
