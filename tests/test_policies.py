"""Policy loading, every error, selection, and hot reload that keeps the last good set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from injectors import load_registry
from policies import MatchContext, PolicyError, PolicyStore, load_policies, shipped_policies_dir
from tests.helpers import ask

REGISTRY = load_registry()
EXAMPLES = Path(__file__).parent.parent / "policies" / "examples"


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def test_shipped_and_example_policies_load() -> None:
    assert [p.name for p in load_policies(shipped_policies_dir(), REGISTRY).policies] == ["default"]
    assert [p.name for p in load_policies(EXAMPLES, REGISTRY).policies] == [
        "reviewed",
        "support",
        "everyone-else",
    ]


def test_first_match_by_app_model_role_and_metadata(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        """
policies:
  - name: admins
    match: {user_roles: [admin]}
  - name: support-gpt4
    match: {apps: ["support-*"], models: ["gpt-4*"]}
  - name: beta
    match: {metadata: {cohort: beta}}
  - name: fallback
""",
    )
    loaded = load_policies(tmp_path, REGISTRY)

    def pick(app: str, model: str = "gpt-4o", role: str | None = None, **metadata: str) -> str | None:
        found = loaded.select(MatchContext(app, model, role, metadata))
        return found.name if found else None

    assert pick("support-eu", role="admin") == "admins"
    assert pick("support-eu") == "support-gpt4"
    assert pick("support-eu", model="claude") == "fallback"
    assert pick("shop", cohort="beta") == "beta"
    assert pick("shop") == "fallback"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("policies: [", "a.yaml: invalid YAML"),
        ("policies: []", "a.yaml: policies: Tuple should have at least 1 item"),
        (
            "policies:\n  - name: x\n    injectors: [few_shots]",
            "a.yaml: policies[0].injectors[0]: unknown injector 'few_shots'; "
            "valid choices: corrections, few_shot, guidance, preferences, static",
        ),
        (
            "policies:\n  - name: x\n    injectors:\n      - corrections: {max_lessons: 0}",
            "a.yaml: policies[0].injectors[0].corrections.max_lessons: "
            "Input should be greater than or equal to 1",
        ),
        (
            "policies:\n  - name: x\n    injectors:\n      - static: {}",
            "a.yaml: policies[0].injectors[0].static.text: Field required",
        ),
        ("policies:\n  - name: x\n    recal: {}", "a.yaml: policies[0].recal: unknown field 'recal'"),
        (
            "policies:\n  - name: x\n    recall: {scope: team}",
            "a.yaml: policies[0].recall.scope: Input should be 'app' or 'user' (got 'team')",
        ),
        (
            "policies:\n  - name: x\n    learn: {from: [thumbs]}",
            "a.yaml: policies[0].learn.from[0]: Input should be",
        ),
        (
            "policies:\n  - name: x\n    holdout: 2",
            "a.yaml: policies[0].holdout: Input should be less than or equal to 1",
        ),
        ("policies:\n  - name: x\n  - name: x", "a.yaml: policy name 'x' already used in a.yaml"),
    ],
)
def test_errors_name_file_path_and_choices(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, "a.yaml", text)
    with pytest.raises(PolicyError) as caught:
        load_policies(tmp_path, REGISTRY)
    assert str(caught.value).startswith(message)


def test_missing_or_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        load_policies(tmp_path / "nope", REGISTRY)
    with pytest.raises(PolicyError, match=r"no \*.yaml policy files"):
        load_policies(tmp_path, REGISTRY)


def _touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


def test_store_reloads_and_keeps_last_good_set_on_a_broken_edit(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "policies:\n  - name: first\n")
    store = PolicyStore(tmp_path, REGISTRY)
    path.write_text("policies:\n  - name: second\n")
    _touch_later(path)
    assert store.reload_if_changed() and store.current.policies[0].name == "second"
    path.write_text("policies:\n  - name: third\n    injectors: [nope]\n")
    _touch_later(path)
    assert not store.reload_if_changed()
    assert store.current.policies[0].name == "second"
    assert store.error is not None and "unknown injector 'nope'" in store.error
    path.write_text("policies:\n  - name: fourth\n")
    _touch_later(path)
    assert store.reload_if_changed() and store.error is None


async def test_broken_edit_shows_in_readyz_while_requests_keep_the_last_policy(
    make_settings, start, provider, tmp_path: Path
) -> None:
    folder = tmp_path / "policies"
    path = write(
        folder,
        "main.yaml",
        "policies:\n  - name: house\n    injectors:\n      - static: {text: HOUSE RULES}\n",
    )
    client = await start(make_settings(policies_dir=str(folder)))
    assert (await client.get("/readyz")).json()["checks"]["policies"]["status"] == "ok"
    path.write_text("policies:\n  - name: house\n    injectors:\n      - statik: {text: x}\n")
    _touch_later(path)
    start.services(client).policies.reload_if_changed()
    ready = (await client.get("/readyz")).json()
    assert ready["status"] == "degraded"
    assert ready["checks"]["policies"]["error"].startswith(
        "main.yaml: policies[0].injectors[0]: unknown injector 'statik'"
    )
    assert (await ask(client, "hello")).status_code == 200
    assert provider.last_messages[0] == {"role": "system", "content": "HOUSE RULES"}
