"""`loopwise config check`: load a config as `serve` would and say what it routes to, what it
accepts without acting on, and, when it cannot load, each problem on a line of its own."""

from __future__ import annotations

import typer

from proxy.cli.options import ConfigOption, fail_all, settings_or_exit
from proxy.embeddings.model import ModelNotFound, check_model_dir
from proxy.settings import Deployment, Settings

config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)


def _deployment_line(deployment: Deployment) -> str:
    params = deployment.litellm_params
    adapter = "relay" if deployment.uses_relay else "litellm"
    where = f" at {params.api_base}" if params.api_base else ""
    limits = [
        f"{name} {params.setting(name)}" for name in ("weight", "rpm", "tpm", "order") if params.setting(name)
    ]
    extra = f" ({', '.join(limits)})" if limits else ""
    return f"    -> {params.model}{where} via {adapter}{extra}"


def problems(settings: Settings) -> list[str]:
    """What would stop `serve` after the config loaded: an embedding model directory that is
    not there."""
    found = []
    if settings.embedding.model_path is not None:
        try:
            check_model_dir(settings.embedding.model_path)
        except ModelNotFound as exc:
            found.append(str(exc))
    return found


def describe(settings: Settings) -> list[str]:
    lines: list[str] = []
    groups: dict[str, list[Deployment]] = {}
    for deployment in settings.model_list:
        groups.setdefault(deployment.model_name, []).append(deployment)
    upstream = settings.upstream
    lines.append(
        f"{len(groups)} models, {len(settings.model_list)} deployments; routing {upstream.routing_strategy}, "
        f"{upstream.num_retries} retries, cooldown {upstream.cooldown_s:g} s after "
        f"{upstream.allowed_fails} failures in a row"
    )
    for name, deployments in groups.items():
        lines.append(f"  {name}" + (" (wildcard: the requested model fills the star)" if "*" in name else ""))
        lines += [_deployment_line(d) for d in deployments]
    for alias, target in upstream.model_group_alias.items():
        lines.append(f"  {alias} -> alias of {target}")
    names = set(groups) | set(upstream.model_group_alias)
    for model, others in upstream.fallbacks.items():
        unknown = [o for o in others if o not in names]
        lines.append(f"  fallbacks for {model}: {', '.join(others)}")
        if unknown:
            lines.append(
                f"config: upstream.fallbacks.{model} names no model here: {', '.join(unknown)} (skipped)"
            )
    lines.append(
        "master key: " + ("set" if settings.access.master_key else "none (the proxy serves loopback only)")
    )
    lines += settings.notes
    return lines


@config_app.command("check")
def check(config: ConfigOption = None) -> None:
    """Load the config (exit 2 with one line per problem when it cannot), then print each
    model_name with its deployments and adapter, and what is accepted but not acted on."""
    settings = settings_or_exit(config)
    found = problems(settings)
    if found:
        fail_all(found, 2)
    typer.echo("\n".join(describe(settings)))
