"""Discord-facing pieces shared by cogs: embeds, views, transformers, checks."""
