"""``kuar image build``: the project's OCI images, from its pyproject.toml's ``[tool.kuar.image]``.

Thin: :func:`kuar.image.build_wheels` and :func:`kuar.image.build_images` do the work; this
module maps flags and the environment (SOURCE_DATE_EPOCH) to settings and prints the result.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from kuar.cli._common import fail
from kuar.image import (
    BuildSettings,
    ImageError,
    build_images,
    build_wheels,
    default_cache,
    load_project,
)
from kuar.image.settings import DEFAULT_EPOCH


@click.group("image")
def image() -> None:
    """Build OCI images of this project (Debian root file system + its wheels)."""


@image.command("build")
@click.option("-d", "--output-dir", "output", type=click.Path(file_okay=False, path_type=Path),
              default=Path("build/images"), show_default=True,
              help="Folder for KEY.oci.tar, images.json, images.env, kustomization.yaml.")
@click.option("--project", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=Path("."), show_default=True, help="Folder with the pyproject.toml.")
@click.option("--dist", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the sdists and wheels (default: PROJECT/dist).")
@click.option("--no-build", is_flag=True,
              help="Use the wheels already in --dist instead of building them.")
@click.option("--only", "only", multiple=True, metavar="KEY", help="Build only these images.")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Cache folder (default: ~/.cache/kuar/image).")
@click.option("--index-url", default=None, help="Package index for the dependencies "
              "(default: pip's configuration).")
def build(output: Path, project: Path, dist: Path | None, no_build: bool, only: tuple[str, ...],
          cache: Path | None, index_url: str | None) -> None:
    """Build the images declared in PROJECT/pyproject.toml ([tool.kuar.image]).

    Same inputs give the same digests: every time in the images is SOURCE_DATE_EPOCH
    (default 1700000000). Needs mmdebstrap and umoci (apt-get install mmdebstrap umoci).
    """
    started = time.monotonic()
    try:
        epoch = int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_EPOCH))
    except ValueError as exc:
        raise click.UsageError("SOURCE_DATE_EPOCH must be an integer") from exc
    try:
        declared = load_project(project)
        images = [i for i in declared.images if not only or i.key in only]
        unknown = set(only) - {i.key for i in declared.images}
        if unknown:
            raise ImageError(f"no image named {', '.join(sorted(unknown))} in "
                             f"{project / 'pyproject.toml'}")
        wheels = dist or project / "dist"
        if not no_build:
            for folder in declared.distributions:
                click.echo(f"building the distributions of {folder} into {wheels}", err=True)
            build_wheels(list(declared.distributions), wheels, epoch=epoch)
        settings = BuildSettings(output=output, wheels=wheels, cache=cache or default_cache(),
                                 source_date_epoch=epoch, index_url=index_url)
        built = build_images(images, settings)
    except ImageError as exc:
        fail(str(exc))
        return
    for one in built:
        click.echo(f"{one.key}\t{one.reference}\t{one.compressed_bytes / 1e6:.1f} MB\t"
                   f"{one.archive}")
    click.echo(f"built {len(built)} image(s) in {time.monotonic() - started:.1f} s; "
               f"digests in {output / 'images.json'}", err=True)
