"""Built-in evaluation: retrieval and answer quality measured through the real gateway API."""
