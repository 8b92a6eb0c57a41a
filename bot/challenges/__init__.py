"""Community challenges: a phase machine in the database (open, voting, closed or cancelled), driven by a sweeper."""
