"""The ``offline-service release`` verbs: publish, list and remove a product's releases.

A license's maximum version (``license create --max-version``, ``license set-max-version``) is an
attribute of the license, set through licensing.services, so it is a licensing verb, not one of these.
"""

from __future__ import annotations

from typing import Any

from offline_service._files import read_limited
from offline_service.cli.context import EXIT_OK, Context, emit, iso, now, verb
from offline_service.releases import services as releases
from offline_service.releases.representations import release_json

__all__ = ["register"]


def _release_lines(published: releases.PublishedRelease) -> list[str]:
    r = published.release
    lines = [f"{r.id}  {r.product_id}  {r.version}  {r.channel}  published {iso(r.published_at)}"]
    lines += [f"  {f.sha256}  {releases.size_text(f.size):>12}  {f.name}" for f in published.files]
    return lines


def _publish(ctx: Context) -> int:
    a = ctx.args
    notes = a.notes or ""
    if a.notes_file is not None:
        notes = read_limited(a.notes_file, 4 * releases.MAX_NOTES, what="notes file").decode(
            "utf-8", "replace"
        )
    published = releases.publish(
        ctx.store,
        ctx.account(),
        root=ctx.settings.release_root,
        product_id=a.product,
        version=a.version,
        channel=a.channel,
        notes=notes,
        files=a.files,
        now=now(),
    )
    emit(a, release_json(published.release, published.files), "\n".join(_release_lines(published)))
    return EXIT_OK


def _list(ctx: Context) -> int:
    found = releases.list_releases(ctx.store, ctx.account(), ctx.args.product)
    data = [release_json(p.release, p.files) for p in found]
    emit(ctx.args, data, "\n".join(line for p in found for line in _release_lines(p)) or "no releases")
    return EXIT_OK


def _remove(ctx: Context) -> int:
    a = ctx.args
    removed = releases.remove(
        ctx.store,
        ctx.account(),
        root=ctx.settings.release_root,
        product_id=a.product,
        version=a.version,
        channel=a.channel,
        now=now(),
    )
    emit(a, {"removed": removed.id}, f"removed release {removed.id} ({removed.version}, {removed.channel})")
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add ``release publish|list|remove`` to the command's subparsers."""
    rel = subparsers.add_parser(
        "release", help="publish releases for the portal's Downloads page"
    ).add_subparsers(dest="sub", required=True, metavar="ACTION")
    p = verb(
        rel,
        "publish",
        _publish,
        "copy files into the releases directory and publish them as a version of a product",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--product", required=True, metavar="ID")
    p.add_argument("--version", required=True, metavar="V", help="e.g. 2.10.0 or 2.10.0-beta.1")
    p.add_argument(
        "--channel",
        default=releases.DEFAULT_CHANNEL,
        help="stable (default), beta, or another lower-case word",
    )
    notes = p.add_mutually_exclusive_group()
    notes.add_argument("--notes", metavar="TEXT", help="release notes (plain text)")
    notes.add_argument("--notes-file", metavar="FILE", help="release notes from a UTF-8 text file")
    p = verb(rel, "list", _list, "list releases and their files with size and SHA-256")
    p.add_argument("--product", metavar="ID")
    p = verb(rel, "remove", _remove, "unpublish a release and delete its files")
    p.add_argument("--product", required=True, metavar="ID")
    p.add_argument("--version", required=True, metavar="V")
    p.add_argument("--channel", help="needed when the version is on several channels")
