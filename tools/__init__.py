"""Command-line tools that read what training runs leave behind; importable as `tools.*`."""
