"""Instructions: synthesis from the constraint taxonomy, LLM evolution, benchmark loaders."""
