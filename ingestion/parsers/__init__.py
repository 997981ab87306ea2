"""One parser module per structured format; each returns Markdown-flavoured plain text."""
