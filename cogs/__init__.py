"""One module per command group. Cogs are thin: parse, check, defer, call a service, render."""
