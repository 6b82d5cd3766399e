"""``playnext users forget ID``: delete a listener's data on request. Registered on ``playnext.cli``'s app."""

from __future__ import annotations

import typer

from playnext.cli import app, fail, out, settings_of

users_app = typer.Typer(help="Listeners' data: delete it on request.", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("forget")
def users_forget(ctx: typer.Context, user_id: str) -> None:
    """Delete everything about USER_ID: events (log and lake), feature rows, precomputed lists, sessions, and
    their rows in model versions; a tombstone keeps their past events from coming back. With a server running,
    use DELETE /v1/users/{id} (admin key) instead: the server holds the event log."""
    from playnext.online.store import StoreUnavailable, open_store
    from playnext.privacy.forget import LogBusy, forget_user

    settings = settings_of(ctx)
    if not user_id or len(user_id) > 128 or not user_id.isprintable():
        fail(f"not a listener id: {user_id[:40]!r}")
    store = open_store(settings)
    try:
        report = forget_user(settings, user_id, store)
    except (LogBusy, StoreUnavailable) as exc:
        fail(str(exc), code=1)
    finally:
        store.close()
    rows = ", ".join(f"{table} {n:,}" for table, n in report.lake_rows.items() if n) or "none"
    out.print(
        f"forgot {user_id} (as of {report.forgotten_at}): lake rows removed: {rows}; {report.files_rewritten} file(s) "
        f"rewritten; model versions scrubbed: {', '.join(report.model_versions) or 'none'}",
        highlight=False,
    )
