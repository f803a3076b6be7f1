"""Files that hold secrets (private keys, kubeconfigs): created 0600 from the first byte.

Place in the pipeline: the base layer; the webhook's self-signed CA folder and the demo's
service key are written through :func:`write_private`. Writing a file and ``chmod``-ing it
afterwards leaves a window in which the secret is readable under the usual umask (0644);
here the file is born 0600 and nothing is ever written to a wider one.

Guarantees of :func:`write_private`:
- The data goes to a new temporary file in the same folder, created with
  ``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode 0600, then ``os.replace``-d over the target: the
  target is always either the old file or the complete new one (a crash never leaves half a
  key), an existing file with a wider mode is replaced rather than rewritten in place, and a
  symlink planted at the target is replaced, never followed.
- The temporary file is removed when anything fails.
Caveat: the folder's own permissions are the caller's business (``mkdir(mode=0o700)``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

PRIVATE_MODE = 0o600


def write_private(path: str | os.PathLike[str], data: bytes, *, mode: int = PRIVATE_MODE) -> Path:
    """Write ``data`` to ``path`` as a file readable by its owner only (see the module).

    ``mode`` (default 0600) is given to the complete file (``fchmod``) before it takes the
    target's place; the file is 0600 while it is written.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, PRIVATE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            if mode != PRIVATE_MODE:
                os.fchmod(f.fileno(), mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return target
