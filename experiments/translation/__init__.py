"""The translation study: speech translation quality and speed against references."""
