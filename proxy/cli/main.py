"""`loopwise`: serve the proxy, inspect sessions, review lessons, check policies, explain."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from proxy import __version__
from proxy.cli import access, insights, migrate, render, serve
from proxy.cli.config import config_app
from proxy.cli.options import ConfigOption, DataDirOption, JsonOption, fail, repo_or_exit, settings_or_exit
from proxy.records import LESSON_STATUSES, LessonStatus
from proxy.storage import triggers

app = typer.Typer(
    help="Loopwise: an OpenAI-compatible LLM proxy that learns from feedback.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
sessions_app = typer.Typer(help="Inspect session trails.", no_args_is_help=True)
lessons_app = typer.Typer(help="List and review lessons.", no_args_is_help=True)
policy_app = typer.Typer(help="Validate policies.", no_args_is_help=True)
index_app = typer.Typer(help="Maintain the embedded vector index.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")
app.add_typer(lessons_app, name="lessons")
app.add_typer(policy_app, name="policy")
app.add_typer(index_app, name="index")
app.add_typer(access.keys_app, name="keys")
app.add_typer(access.users_app, name="users")
app.add_typer(config_app, name="config")
app.command("serve")(serve.serve)
app.command("migrate")(migrate.migrate)
app.command("report")(insights.report)
app.command("export")(insights.export)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"loopwise {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Loopwise: an OpenAI-compatible LLM proxy that learns from feedback."""


def _print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str, ensure_ascii=False))


@sessions_app.command("list")
def sessions_list(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
    app_name: Annotated[str | None, typer.Option("--app", help="only this app")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
) -> None:
    """The most recent sessions."""
    repo = repo_or_exit(settings_or_exit(config, data_dir=data_dir))
    rows = repo.list_sessions(limit, app_name)
    if as_json:
        return _print_json(rows)
    if not rows:
        typer.echo("no sessions yet: send requests with an X-Session-Id header")
    for row in rows:
        typer.echo(
            f"{row['session_id']}  app {row['app']}  user {row['user_id'] or '-'}  "
            f"{row['turns']} turns  last {render.when(row['last_at'])}"
        )


@sessions_app.command("show")
def sessions_show(
    session_id: str,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every turn of a session: asked, injected, answered, tokens, latency, feedback."""
    repo = repo_or_exit(settings_or_exit(config, data_dir=data_dir))
    turns = repo.session_trail(session_id)
    if not turns:
        fail(f"no session {session_id!r}")
    if as_json:
        return _print_json(turns)
    typer.echo(f"Session {session_id}: {len(turns)} turns")
    for number, row in enumerate(turns, 1):
        typer.echo("")
        typer.echo("\n".join(render.turn(number, row)))


@lessons_app.command("list")
def lessons_list(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
    status: Annotated[str | None, typer.Option(help=f"one of {', '.join(LESSON_STATUSES)}")] = None,
    app_name: Annotated[str | None, typer.Option("--app")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
) -> None:
    """Lessons, most recently changed first."""
    if status is not None and status not in LESSON_STATUSES:
        fail(f"unknown status {status!r}; valid: {', '.join(LESSON_STATUSES)}", 2)
    repo = repo_or_exit(settings_or_exit(config, data_dir=data_dir))
    found = repo.list_lessons(status, app_name, limit)
    if as_json:
        return _print_json([item.__dict__ for item in found])
    if not found:
        typer.echo("no lessons")
    for item in found:
        typer.echo("\n".join(render.lesson(item)))


@lessons_app.command("show")
def lessons_show(
    lesson_id: str,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """One lesson in full, with its provenance and effect counters."""
    repo = repo_or_exit(settings_or_exit(config, data_dir=data_dir))
    item = repo.get_lesson(lesson_id)
    if item is None:
        fail(f"no lesson {lesson_id!r}")
    asked = triggers.listed(repo.conn, item.id)
    if as_json:
        return _print_json({**item.__dict__, "triggers": asked})
    typer.echo("\n".join(render.lesson(item, full=True)))
    for trigger in asked:
        typer.echo(f"  trigger ({trigger['source']}): {render.short(trigger['question'], 2000)}")


def _review(
    lesson_id: str, status: LessonStatus, note: str | None, config: Path | None, data_dir: Path | None
) -> None:
    repo = repo_or_exit(settings_or_exit(config, data_dir=data_dir), write=True)
    item = repo.set_lesson_status(lesson_id, status, note)
    if item is None:
        fail(f"no lesson {lesson_id!r}")
    typer.echo(f"lesson {lesson_id} is now {status}; a running proxy applies it within a second")


NoteOption = Annotated[str | None, typer.Option(help="why, kept with the lesson")]


@lessons_app.command("approve")
def lessons_approve(
    lesson_id: str, note: NoteOption = None, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Make a lesson active: recall may inject it."""
    _review(lesson_id, "active", note, config, data_dir)


@lessons_app.command("reject")
def lessons_reject(
    lesson_id: str, note: NoteOption = None, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Reject a lesson: it is never injected."""
    _review(lesson_id, "rejected", note, config, data_dir)


@lessons_app.command("retire")
def lessons_retire(
    lesson_id: str, note: NoteOption = None, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Retire a lesson that no longer applies."""
    _review(lesson_id, "retired", note, config, data_dir)


@policy_app.command("check")
def policy_check(
    directory: Annotated[
        Path | None, typer.Argument(help="policies directory (default: from config)")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Validate a policies directory; exit 1 with the precise error when it is broken."""
    from injectors import load_registry
    from policies import PolicyError, load_policies, shipped_policies_dir

    if directory is None:
        directory = settings_or_exit(config).policies_dir or shipped_policies_dir()
    try:
        loaded = load_policies(directory, load_registry())
    except PolicyError as exc:
        fail(exc)
    typer.echo(f"{directory}: {len(loaded.policies)} policies OK (version {loaded.version})")
    for compiled in loaded.policies:
        names = ", ".join(i.name for i in compiled.injectors) or "no injectors"
        typer.echo(f"  {compiled.name} ({compiled.source}): {names}")


@policy_app.command("injectors")
def policy_injectors() -> None:
    """Every injector a policy may name (built-in and installed plugins), with its parameters."""
    import inspect

    from injectors import load_registry

    for name, cls in load_registry().items():
        typer.secho(name, bold=True)
        typer.echo("  " + "\n  ".join(inspect.cleandoc(cls.__doc__ or "(undocumented)").splitlines()))
        for field, info in cls.Params.model_fields.items():
            default = info.get_default(call_default_factory=True)
            shown = "required" if info.is_required() else f"default {default!r}"
            typer.echo(f"  - {field} ({shown}){': ' + info.description if info.description else ''}")
        typer.echo("")


@app.command("explain")
def explain_command(
    question: str,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    app_name: Annotated[str, typer.Option("--app", help="X-App of the request")] = "default",
    model: Annotated[str | None, typer.Option(help="model name (default: the first configured)")] = None,
    user_role: Annotated[str | None, typer.Option("--user-role")] = None,
    user_id: Annotated[str | None, typer.Option("--user-id")] = None,
    system: Annotated[str | None, typer.Option(help="a system message to include")] = None,
    url: Annotated[
        str | None, typer.Option(help="a running proxy (default: the one serving this data_dir)")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Which policy matches, which lessons would be recalled (with scores) and the exact
    messages that would be sent, without calling the provider."""
    from proxy.cli.explain import ExplainError, run_explain

    settings = settings_or_exit(config, data_dir=data_dir)
    headers = {"x-app": app_name}
    if user_role:
        headers["x-user-role"] = user_role
    if user_id:
        headers["x-user-id"] = user_id
    try:
        found = asyncio.run(run_explain(settings, question, model, system, headers, url))
    except ExplainError as exc:
        fail(exc)
    if as_json:
        return _print_json(found)
    typer.echo("\n".join(render.explanation(found)))


@index_app.command("optimize")
def index_optimize(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Build the HNSW graph of the embedded index now, while the proxy is stopped.

    A running proxy builds it itself, in a child process, once `vector_store.graph_after`
    lessons sit outside the graph; until then searches scan the lessons their filter selects.
    """
    import time

    from proxy.vectors.edge import EdgeIndex

    settings = settings_or_exit(config, data_dir=data_dir)
    if settings.vector_store.url:
        typer.echo("a Qdrant server optimizes its own collections; nothing to do")
        return
    running = serve.find_running(settings.data_dir)
    if running is not None:
        fail(
            f"a proxy (pid {running.pid}, {running.url}) serves {settings.data_dir}; "
            "it builds the graph itself in the background (vector_store.graph_after); to build "
            "it now, stop it first"
        )
    try:
        index = EdgeIndex(settings.vector_path)
    except RuntimeError as exc:
        fail(exc)
    began = time.perf_counter()
    try:
        index.optimize()
        points, indexed = index.info()
    finally:
        index.close()
    typer.echo(
        f"optimized in {time.perf_counter() - began:.1f} s: {indexed} of {points} vectors in the graph"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
