"""The OpenAI-compatible serving layer; today: response formats shared with the CLI."""
