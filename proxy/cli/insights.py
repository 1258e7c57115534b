"""`loopwise report` (is feedback improving, which lessons help) and `loopwise export`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from policies import PolicyError, PolicySet, load_policies, shipped_policies_dir
from proxy.cli.options import ConfigOption, DataDirOption, JsonOption, fail, repo_or_exit, settings_or_exit
from proxy.learning.export import ExportFormat, preference_record, sft_record
from proxy.learning.report import build_report
from proxy.storage.export_queries import accepted, corrections, preferences


def _policies(policies_dir: Path | None) -> PolicySet | None:
    from injectors import load_registry

    try:
        return load_policies(policies_dir or shipped_policies_dir(), load_registry())
    except PolicyError:
        return None  # the report still shows counts; retire flags then use default thresholds


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _series(title: str, rows: list[dict[str, Any]], last: int = 8) -> list[str]:
    buckets = sorted({row["bucket"] for row in rows})[-last:]
    if not buckets:
        return []
    keys = sorted({row["key"] for row in rows})
    cell = {(row["bucket"], row["key"]): row for row in rows}
    width = max(len(k) for k in keys) + 2
    lines = [f"{title}:", " " * width + "".join(f"{b:>14}" for b in buckets)]
    for key in keys:
        values = []
        for b in buckets:
            row = cell.get((b, key))
            values.append(f"{_pct(row['negative_rate'])} ({row['interactions']})" if row else "-")
        lines.append(f"{key:<{width}}" + "".join(f"{v:>14}" for v in values))
    return [*lines, ""]


def render_report(report: dict[str, Any]) -> str:
    t = report["totals"]
    lines = [
        f"Last {report['days']:g} days: {t['interactions']} interactions, "
        f"{t['with_feedback']} with feedback, {t['negative']} negative "
        f"({_pct(t['negative_rate'])} of interactions)",
        "",
    ]
    arms = [a for a in report["treatment_vs_control"] if a["control"]]
    if arms:
        lines.append("Treatment vs control (negative-feedback rate, 95% CI of the difference):")
        for a in arms:
            lines.append(
                f"  {a['policy']}: treated {_pct(a['treated_rate'])} (n={a['treated']}) vs control "
                f"{_pct(a['control_rate'])} (n={a['control']}): {a['difference']:+.1%} "
                f"[{a['low']:+.1%} .. {a['high']:+.1%}]  {a['verdict']}"
            )
        lines.append("")
    else:
        lines += ["No control arm yet: set `holdout` in a policy to measure lessons against one.", ""]
    rates = report["negative_rate"]
    named = (
        *(("By app", "app"), ("By model", "requested_model"), ("By policy", "policy")),
        *(("By environment", "environment"), ("By model version", "model_version")),
    )
    for title, key in named:
        lines += _series(f"{title} (negative rate per {report['bucket']}, interactions)", rates[key])
    asked = report["feedback_wanted"]
    if asked:
        lines.append(
            "Feedback wanted (lesson decisions: made, joined, grown, verdicts on an injected lesson):"
        )
        for row in asked:
            lines.append(
                f"  {row['reason']:<24} asked {row['asked']:>6}, answered {row['answered']:>5}, "
                f"decisions {row['decisions']:>5} ({row['decisions_per_request'] or 0:.3f} a request)"
            )
        lines.append("")
    lines += _series(f"By category (share of interactions per {report['bucket']})", rates["category"])
    candidates = report["retire_candidates"]
    lines.append(f"Lessons judged: {len(report['lessons'])}; candidates to retire: {len(candidates)}")
    for item in candidates:
        mode = (
            "retired automatically"
            if item["retired_automatically"]
            else "retire with `loopwise lessons retire`"
        )
        lines.append(f"  {item['id']}  {item['question'][:60]!r}: {item['retire']} ({mode})")
    return "\n".join(lines)


def report(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
    days: Annotated[float, typer.Option(min=0.01, max=3650, help="how far back")] = 30,
    bucket: Annotated[str, typer.Option(help="hour, day or week")] = "day",
    environment: Annotated[str | None, typer.Option(help="only the turns of this environment")] = None,
    model_version: Annotated[str | None, typer.Option(help="only the turns of this model version")] = None,
) -> None:
    """Negative-feedback rates over time, treatment vs control, and lessons that do not help."""
    settings = settings_or_exit(config, data_dir=data_dir)
    repo = repo_or_exit(settings)
    only = {
        k: v for k, v in (("environment", environment), ("model_version", model_version)) if v is not None
    }
    try:
        built = build_report(repo, _policies(settings.policies_dir), days, bucket, only=only)
    except ValueError as exc:
        fail(exc, 2)
    typer.echo(json.dumps(built, indent=2) if as_json else render_report(built))


def export(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    kind: Annotated[
        ExportFormat,
        typer.Option("--format", help="sft: chat JSONL; preference: DPO pairs in OpenAI's preference format"),
    ] = "sft",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="JSONL file (default: stdout)")] = None,
    include_unreviewed: Annotated[
        bool, typer.Option(help="also lessons no person approved (auto-reviewed policies)")
    ] = False,
    app_name: Annotated[str | None, typer.Option("--app", help="only this app")] = None,
) -> None:
    """Fine-tuning data from corrections, and from answers accepted with a lesson injected (sft:
    the accepted answer; preference: it over the answer that failed when the lesson was made);
    for preference also every `preferred_over` pair: explicit feedback, and regenerations the
    user accepted (the second answer chosen over the first)."""
    repo = repo_or_exit(settings_or_exit(config, data_dir=data_dir))
    count, rows = corrections(repo, reviewed_only=not include_unreviewed, app=app_name)
    successes = accepted(repo, reviewed_only=not include_unreviewed, app=app_name)
    pairs = preferences(repo, app_name) if kind == "preference" else []
    target = out.open("w", encoding="utf-8") if out else sys.stdout
    written = 0

    def emit(record: dict[str, object] | None) -> None:
        nonlocal written
        if record is not None:
            target.write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1

    try:
        with typer.progressbar(rows, length=count, label="exporting", file=sys.stderr) as progress:
            for row in progress:
                if kind == "sft":
                    emit(sft_record(row))
                else:
                    emit(preference_record(row["messages"], row["correction"], row["bad_answer"]))
        for success in successes:
            if kind == "sft" and success["chosen"]:
                emit(sft_record({"messages": success["messages"], "correction": success["chosen"]}))
            elif kind == "preference":
                emit(preference_record(success["messages"], success["chosen"], success["rejected"]))
        for pair in pairs:
            emit(preference_record(pair["messages"], pair["chosen"], pair["rejected"]))
    finally:
        if out:
            target.close()
    where = str(out) if out else "stdout"
    typer.secho(f"wrote {written} {kind} records to {where}", err=True)
    if not written and not include_unreviewed:
        typer.secho("no reviewed corrections yet; --include-unreviewed takes auto-approved ones", err=True)
