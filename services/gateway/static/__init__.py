"""The chat page (HTML, CSS, JS), a package so the wheel carries these files (package-data globs are per package)."""
