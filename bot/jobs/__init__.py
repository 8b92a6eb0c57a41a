"""Jobs: what to run (a technique, its config and a seed), from slash commands, inline flags or the CLI."""
